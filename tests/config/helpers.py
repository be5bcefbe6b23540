"""Assertions and small builders shared by the configuration tests."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from rest_framework.response import Response

from apps.config import services
from apps.config.choices import LimitMethod
from apps.config.models import Characteristic, ControlLimits
from tests.support.signing import limits_signer


def error_of(response: Response, status: int, field: str | None = None) -> dict[str, Any]:
    """Assert the status and the one error format, and with `field` that the error names it; return it."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}, error
    assert isinstance(error["message"], str)
    assert error["message"]
    if field is not None:
        assert field in error["fields"], error
        assert error["message"].startswith(f"{field}: ") or field in error["message"], error
    return error


def limits_set(
    characteristic: Characteristic,
    *,
    center: float = 10.0,
    half_width: float = 0.3,
    user: AbstractBaseUser | None = None,
    reason: str = "Capability study",
) -> ControlLimits:
    """Add a version of control limits around `center` (sigma = half_width / 3)."""
    return services.control_limits_set(
        signer=limits_signer(),
        characteristic=characteristic,
        center=center,
        ucl=center + half_width,
        lcl=center - half_width,
        sigma=half_width / 3,
        method=LimitMethod.HISTORICAL,
        reason=reason,
        user=user,
    )


def characteristic_row(characteristic: Characteristic) -> dict[str, Any]:
    """The stored SPC settings, to compare before and after a refused change."""
    fresh = Characteristic.objects.get(pk=characteristic.pk)
    return {name: getattr(fresh, name) for name in services.CHARACTERISTIC_FIELDS}

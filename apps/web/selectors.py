"""Reads for the pages."""

from typing import Any

from django.contrib.auth.models import AnonymousUser, User

from apps.config.models import Characteristic


def characteristic_decimals(*, characteristic: Characteristic) -> int:
    """Decimal places to show: the characteristic's own, else its test's."""
    if characteristic.decimals is not None:
        return characteristic.decimals
    return characteristic.test.decimals


def overview_groups(*, user: User | AnonymousUser) -> list[Any]:
    return []

"""Device token authentication: `Authorization: Device <token>`."""

import hashlib
from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from apps.config.models import Device

KEYWORD = b"device"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class DeviceTokenAuthentication(BaseAuthentication):
    """Authenticates a device as its service user; `request.auth` is the Device."""

    def authenticate(self, request: Request) -> tuple[Any, Device] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Give the header as: Authorization: Device <token>")
        try:
            token = parts[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The device token has invalid characters.") from None
        device = (
            Device.objects.select_related("user")
            .filter(token_hash=token_hash(token), active=True, user__is_active=True)
            .first()
        )
        if device is None:
            raise exceptions.AuthenticationFailed("Unknown or deactivated device token.")
        # One write per minute at most: this runs on every ingestion request.
        now = timezone.now()
        if device.last_used_at is None or (now - device.last_used_at).total_seconds() > 60:
            Device.objects.filter(pk=device.pk).update(last_used_at=now)
        return device.user, device

    def authenticate_header(self, request: Request) -> str:
        return "Device"


class DeviceTokenScheme(OpenApiAuthenticationExtension):
    """Documents the device token in the OpenAPI schema."""

    target_class = "apps.config.authentication.DeviceTokenAuthentication"
    name = "deviceToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Device <token>`: a device's token, for ingestion endpoints.",
        }

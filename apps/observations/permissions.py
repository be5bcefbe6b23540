"""Permissions of the observation API beyond the role model permissions of apps.config."""

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.config.models import Device
from apps.config.permissions import RoleModelPermissions
from apps.config.roles import Role, has_role

if TYPE_CHECKING:
    from rest_framework.views import APIView


class IsDevice(BasePermission):
    """Authenticated with a device token (`Authorization: Device <token>`), as a Device-role user."""

    message = (
        "Only devices post here, with Authorization: Device <token>; people post to /api/v1/observations/."
    )

    def has_permission(self, request: Request, view: "APIView") -> bool:
        return isinstance(request.auth, Device) and has_role(request.user, Role.DEVICE)


class RoleModelChangePermissions(RoleModelPermissions):
    """For actions that POST a change to existing rows (assign, select plans, set status): `change`."""

    perms_map = {**RoleModelPermissions.perms_map, "POST": ["%(app_label)s.change_%(model_name)s"]}

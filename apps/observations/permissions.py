"""Permissions of the observation API beyond the role model permissions of apps.config."""

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.config.models import Device
from openspc.permissions import RoleModelPermissions
from openspc.roles import Role, has_role

if TYPE_CHECKING:
    from rest_framework.views import APIView


def data_entry_role(request: Request) -> Role | None:
    """Who enters data (docs/roles.md): a device with its own token, or a person signed in with the
    Tester role, for the items assigned to them (services.item_entry_check, per entry). Nobody
    else: not operations leads, quality specialists or superusers, whatever model permissions an
    administrator gives their group, because a result must come from whoever measured it."""
    user = request.user
    if isinstance(request.auth, Device):
        return Role.DEVICE if has_role(user, Role.DEVICE) else None
    if user.is_authenticated and has_role(user, Role.TESTER) and not has_role(user, Role.DEVICE):
        return Role.TESTER
    return None


ENTRY_REFUSALS = {
    Role.TESTER: "Only testers post here, for the items assigned to them; devices post to "
    "/api/v1/device/observations/ with Authorization: Device <token>.",
    Role.DEVICE: "Only devices post here, with Authorization: Device <token>; testers post to "
    "/api/v1/observations/.",
}


class DataEntry(BasePermission):
    """The one check of every data-entry endpoint (POST /observations/, /device/observations/,
    /samples/): data_entry_role, which must be the role the view names in `data_entry_by`."""

    def has_permission(self, request: Request, view: "APIView") -> bool:
        expected: Role = getattr(view, "data_entry_by")  # noqa: B009 (a view without it is a bug: fail loudly)
        if data_entry_role(request) == expected:
            return True
        self.message = ENTRY_REFUSALS[expected]
        return False


class AssignsItems(BasePermission):
    """Those who hand items to testers (the right to change items: operations leads)."""

    message = "Your role does not assign items to testers."

    def has_permission(self, request: Request, view: "APIView") -> bool:
        return request.user.has_perm("observations.change_item")


class RoleModelChangePermissions(RoleModelPermissions):
    """For actions that POST a change to existing rows (assign, select plans, set status): `change`."""

    perms_map = {**RoleModelPermissions.perms_map, "POST": ["%(app_label)s.change_%(model_name)s"]}


class HoldsAny(BasePermission):
    """Signed-in people (no device token) holding one of the view's `required_perms`; the service
    then checks the rule of each row (own results, four eyes) and says what is not allowed."""

    message = "Your role does not correct or verify results."

    def has_permission(self, request: Request, view: "APIView") -> bool:
        user = request.user
        if not (user and user.is_authenticated) or has_role(user, Role.DEVICE):
            return False
        perms: list[str] = getattr(view, "required_perms", {}).get(getattr(view, "action", ""), [])
        return any(user.has_perm(perm) for perm in perms)

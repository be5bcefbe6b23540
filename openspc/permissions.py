"""DRF permissions by role.

Role rights are Django model permissions held by the role groups (see
openspc/roles.py), so the admin and the API agree on who may do what. Reads need
`view`, as writes need `add` / `change` / `delete`. Which rows a user may read
is decided by each queryset's `visible_to(user)`, which starts from the same `view`
right (roles.may_view: none without it) so that the pages and sockets, which call it
too, agree with the API; a tester, for example, sees only what is assigned to them,
and anything else is a 404. Who may enter data is one rule of its own
(apps.observations.permissions.data_entry_role).
"""

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission, DjangoModelPermissions
from rest_framework.request import Request

if TYPE_CHECKING:  # rest_framework.views imports the permission classes named in settings
    from rest_framework.views import APIView

from openspc.roles import Role, has_role


class RoleModelPermissions(DjangoModelPermissions):
    """Model permissions for every method, reads included."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }


class IsHuman(BasePermission):
    """Signed-in people; device tokens are for ingestion endpoints only."""

    message = "Device tokens may only post observations."

    def has_permission(self, request: Request, view: "APIView") -> bool:
        user = request.user
        return bool(user and user.is_authenticated and not has_role(user, Role.DEVICE))

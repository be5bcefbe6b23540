"""The five roles, as Django groups with model permissions.

Groups and their permissions are created by data migrations (each app grants
its own models' permissions through `grant_permissions`), so a fresh database
has them and an admin can still adjust them per site.
"""

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Model


class Role(StrEnum):
    QUALITY_SPECIALIST = "Quality Specialist"
    OPERATIONS_LEAD = "Operations Lead"
    TESTER = "Tester"
    MANAGER = "Manager"
    DEVICE = "Device"


def user_roles(user: User | AnonymousUser) -> frozenset[str]:
    """The names of the user's role groups, cached on the user object for the request."""
    if not user.is_authenticated:
        return frozenset()
    cached: frozenset[str] | None = getattr(user, "_openspc_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        setattr(user, "_openspc_roles", cached)  # noqa: B010 (a per-request cache, not a model field)
    return cached


def has_role(user: User | AnonymousUser, *roles: Role) -> bool:
    return bool(user_roles(user) & {str(role) for role in roles})


def may_view(user: User | AnonymousUser, model: type[Model]) -> bool:
    """Whether the user's role holds the right to read `model` (`<app>.view_<model>`): the right the
    API's RoleModelPermissions asks on a read. Every `visible_to(user)` starts here, so the pages,
    the sockets and the API read rows under one rule; a user with no role reads nothing."""
    meta = model._meta
    return user.has_perm(f"{meta.app_label}.view_{meta.model_name}")


def is_tester_only(user: User | AnonymousUser) -> bool:
    """A tester with no broader role: reads are limited to what is assigned to them."""
    return has_role(user, Role.TESTER) and not has_role(
        user, Role.QUALITY_SPECIALIST, Role.OPERATIONS_LEAD, Role.MANAGER
    )


def grant_permissions(apps: Any, app_label: str, grants: dict[Role, dict[str, Iterable[str]]]) -> None:
    """Create the role groups if needed and give them permissions on one app's models.

    For data migrations: `grants` maps a role to {model_name: actions}, e.g.
    {Role.MANAGER: {"product": ["view"]}}. Permissions are created first,
    because Django only creates them after the last migration has run.
    """
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config(app_label)
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for role in Role:
        group_model.objects.get_or_create(name=str(role))
    for role, models in grants.items():
        group = group_model.objects.get(name=str(role))
        codenames = [f"{action}_{model}" for model, actions in models.items() for action in actions]
        permissions = permission_model.objects.filter(
            content_type__app_label=app_label, codename__in=codenames
        )
        missing = set(codenames) - set(permissions.values_list("codename", flat=True))
        if missing:
            raise LookupError(f"Unknown permissions for {app_label}: {sorted(missing)}")
        group.permissions.add(*permissions)

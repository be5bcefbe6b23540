"""The five roles, as Django groups with model permissions.

Groups and their permissions are created by data migrations (each app grants
its own models' permissions through `grant_permissions`), so a fresh database
has them and an admin can still adjust them per site.
"""

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, cast

from django.contrib.auth.models import AnonymousUser, Group, Permission, User
from django.db.models import CharField, Model, Value


class Role(StrEnum):
    QUALITY_SPECIALIST = "Quality Specialist"
    OPERATIONS_LEAD = "Operations Lead"
    TESTER = "Tester"
    MANAGER = "Manager"
    DEVICE = "Device"


def _access_load(user: User) -> frozenset[str]:
    """The user's role groups, read in one query with the permissions of those groups and the
    user's own: the permissions go where ModelBackend caches them on the user object for the
    request (`_group_perm_cache`, `_user_perm_cache`), so that the role check and the permission
    check of a request cost one statement, not three. A superuser's permissions (all of them) and
    an inactive user's (none) are left to ModelBackend."""
    by_group = (
        Group.objects.filter(user=user)
        .order_by()
        .values_list("name", "permissions__content_type__app_label", "permissions__codename")
    )
    own = (
        Permission.objects.filter(user=user)
        .order_by()
        .values_list(Value(None, output_field=CharField()), "content_type__app_label", "codename")
    )
    roles: set[str] = set()
    group_perms: set[str] = set()
    user_perms: set[str] = set()
    for group, app_label, codename in by_group.union(own, all=True):
        if group is not None:
            roles.add(group)
        if codename is not None:
            (group_perms if group is not None else user_perms).add(f"{app_label}.{codename}")
    if user.is_active and not user.is_superuser:
        for name, perms in (("_group_perm_cache", group_perms), ("_user_perm_cache", user_perms)):
            if not hasattr(user, name):
                setattr(user, name, perms)
    return frozenset(roles)


def user_roles(user: User | AnonymousUser) -> frozenset[str]:
    """The names of the user's role groups, cached on the user object for the request."""
    if not user.is_authenticated:
        return frozenset()
    cached: frozenset[str] | None = getattr(user, "_openspc_roles", None)
    if cached is None:
        cached = _access_load(cast(User, user))
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

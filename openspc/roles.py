"""The five roles, as Django groups with model permissions.

Groups and their permissions are created by data migrations (each app grants
its own models' permissions through `grant_permissions`), so a fresh database
has them and an admin can still adjust them per site.
"""

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any, cast

from django.contrib.auth.models import AnonymousUser, Group, Permission, User
from django.db.models import CharField, Model, Value

from openspc.kept import kept_one


class Role(StrEnum):
    QUALITY_SPECIALIST = "Quality Specialist"
    OPERATIONS_LEAD = "Operations Lead"
    TESTER = "Tester"
    MANAGER = "Manager"
    DEVICE = "Device"


# The generation (openspc.kept) of who holds which role and permission: replaced by every write of
# a user's groups or permissions, a group's permissions, a group or a permission
# (apps.config.signals).
ACCESS = "access"

Access = tuple[frozenset[str], frozenset[str], frozenset[str]]  # roles, group perms, own perms


def _access_read(user_ids: Sequence[int]) -> dict[int, Access]:
    """The role groups of each user, read in one query with the permissions of those groups and the
    user's own."""
    by_group = (
        Group.objects.filter(user__in=user_ids)
        .order_by()
        .values_list("user", "name", "permissions__content_type__app_label", "permissions__codename")
    )
    own = (
        Permission.objects.filter(user__in=user_ids)
        .order_by()
        .values_list("user", Value(None, output_field=CharField()), "content_type__app_label", "codename")
    )
    found: dict[int, tuple[set[str], set[str], set[str]]] = {pk: (set(), set(), set()) for pk in user_ids}
    for user_id, group, app_label, codename in by_group.union(own, all=True):
        roles, group_perms, user_perms = found[user_id]
        if group is not None:
            roles.add(group)
        if codename is not None:
            (group_perms if group is not None else user_perms).add(f"{app_label}.{codename}")
    return {pk: (frozenset(r), frozenset(g), frozenset(u)) for pk, (r, g, u) in found.items()}


def _access_load(user: User) -> frozenset[str]:
    """The user's role groups. Their permissions go where ModelBackend caches them on the user
    object for the request (`_group_perm_cache`, `_user_perm_cache`), so that the role check and
    the permission check of a request cost one statement, not three; and all three are kept in
    the process until a role or permission is written (openspc.kept), so most requests cost none.
    A superuser's permissions (all of them) and an inactive user's (none) are left to ModelBackend."""
    access = kept_one(ACCESS, "user", user.pk, _access_read)
    roles, group_perms, user_perms = access or (frozenset(), frozenset(), frozenset())
    if user.is_active and not user.is_superuser:
        for name, perms in (("_group_perm_cache", group_perms), ("_user_perm_cache", user_perms)):
            if not hasattr(user, name):
                setattr(user, name, set(perms))
    return roles


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

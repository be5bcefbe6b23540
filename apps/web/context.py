"""Template context for every page: the navigation the user's role may use."""

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest
from django.urls import reverse

from apps.config.roles import Role, has_role


@dataclass(frozen=True)
class NavLink:
    label: str
    url: str
    active: bool


def list_pages(user: User | AnonymousUser) -> list[tuple[str, str]]:
    """The violations list for the roles that read violations; the audit log for those that read the
    audit trail (quality specialists)."""
    pages = []
    if user.has_perm("calculations.view_violation"):
        pages.append(("Violations", "web-violations"))
    if user.has_perm("audit.view_auditentry"):
        pages.append(("Audit log", "web-audit"))
    return pages


def navigation(request: HttpRequest) -> dict[str, list[NavLink]]:
    """Links to the pages that exist and that the user may use; none before sign-in or for a device.

    Every role gets the overview and the API docs; the list pages go to the roles that may read them
    (list_pages); a quality specialist also gets the admin (the configuration lives there).
    """
    user = request.user
    if not user.is_authenticated or has_role(user, Role.DEVICE):
        return {"navigation": []}
    current = request.resolver_match.view_name if request.resolver_match else None
    pages = [("Overview", "web-overview"), *list_pages(user), ("API docs", "api-docs")]
    if has_role(user, Role.QUALITY_SPECIALIST) or user.is_superuser:
        pages.append(("Admin", "admin:index"))
    return {
        "navigation": [
            NavLink(label=label, url=reverse(name), active=name == current) for label, name in pages
        ]
    }

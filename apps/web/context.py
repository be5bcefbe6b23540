"""Template context for every page: the navigation the user's role may use."""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest
from django.urls import reverse

from apps.subscriptions.selectors import inbox_readable, notification_unread_count
from openspc.roles import Role, has_role

Person = User | AnonymousUser


@dataclass(frozen=True)
class NavLink:
    label: str
    url: str
    active: bool
    badge: int | None = None  # a count shown beside the link (unread notifications)


def _everyone(user: Person) -> bool:
    return True


def _perm(name: str) -> Callable[[Person], bool]:
    return lambda user: user.has_perm(name)


@dataclass(frozen=True)
class NavPage:
    label: str
    view: str
    may_use: Callable[[Person], bool]
    within: tuple[str, ...] = ()  # other views that are part of this page (its link stays active)
    badge: Callable[[Person], int] | None = None  # a count shown beside the link


# In the order shown. A page is listed for whoever may use it: the same permission its view checks.
PAGES = (
    NavPage("Overview", "web-overview", _everyone),
    # Only testers are handed items (observations.services.items.items_assign).
    NavPage("My work", "web-worklist", lambda user: has_role(user, Role.TESTER)),
    NavPage("Lots", "web-lots", _perm("observations.view_lot"), within=("web-lot", "web-lot-create")),
    NavPage("Violations", "web-violations", _perm("calculations.view_violation")),
    # Only subscriptions fill an inbox: the roles that may subscribe. One query for the count;
    # static/js/notify.js keeps it live.
    NavPage(
        "Notifications",
        "web-notifications",
        lambda user: inbox_readable(user=user),
        within=("web-subscriptions",),
        badge=lambda user: notification_unread_count(user=user),
    ),
    NavPage("Audit log", "web-audit", _perm("audit.view_auditentry")),
    NavPage("QA runs", "web-qa-runs", _perm("qa_runs.view_qapackagerun"), within=("web-qa-run",)),
    NavPage("API docs", "api-docs", _everyone),
    # The configuration lives in the admin.
    NavPage(
        "Admin",
        "admin:index",
        lambda user: user.is_superuser or has_role(user, Role.QUALITY_SPECIALIST),
    ),
)


def navigation(request: HttpRequest) -> dict[str, list[NavLink]]:
    """Links to the pages that exist and that the user may use; none before sign-in or for a device."""
    user = request.user
    if not user.is_authenticated or has_role(user, Role.DEVICE):
        return {"navigation": []}
    current = request.resolver_match.view_name if request.resolver_match else None
    return {
        "navigation": [
            NavLink(
                label=page.label,
                url=reverse(page.view),
                active=current in (page.view, *page.within),
                badge=page.badge(user) if page.badge else None,
            )
            for page in PAGES
            if page.may_use(user)
        ]
    }

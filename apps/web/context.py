"""Template context for every page: the navigation the user's role may use."""

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse

from apps.config.roles import Role, has_role
from apps.subscriptions.selectors import notification_unread_count


@dataclass(frozen=True)
class NavLink:
    label: str
    url: str
    active: bool
    badge: int | None = None  # a count shown beside the link (unread notifications)


def navigation(request: HttpRequest) -> dict[str, list[NavLink]]:
    """Links to the pages that exist and that the user may use; none before sign-in or for a device.

    Every role gets the overview and the API docs; a tester also their worklist; whoever may read
    lots (not a tester) the lots; a quality specialist also the admin (the configuration lives
    there).
    """
    user = request.user
    if not user.is_authenticated or has_role(user, Role.DEVICE):
        return {"navigation": []}
    current = request.resolver_match.view_name if request.resolver_match else None
    pages = [("Overview", "web-overview"), ("API docs", "api-docs")]
    if user.has_perm("observations.view_lot"):  # operations leads, quality specialists, managers
        pages.insert(1, ("Lots", "web-lots"))
        if current in ("web-lot", "web-lot-create"):
            current = "web-lots"  # a lot's page and the new-lot form are within the lots
    if has_role(user, Role.TESTER):  # only testers are handed items (services.items_assign)
        pages.insert(1, ("My work", "web-worklist"))
    if has_role(user, Role.QUALITY_SPECIALIST) or user.is_superuser:
        pages.append(("Admin", "admin:index"))
    links = [NavLink(label=label, url=reverse(name), active=name == current) for label, name in pages]
    links.extend(notifications_links(request, current))
    return {"navigation": links}


NOTIFICATION_PAGES = ("web-notifications", "web-subscriptions")


def notifications_links(request: HttpRequest, current: str | None) -> list[NavLink]:
    """The inbox, with the unread count, for the roles that may subscribe (only subscriptions fill
    an inbox). One query for the count; static/js/notify.js keeps it live."""
    user = request.user
    if not user.has_perm("subscriptions.view_subscription"):
        return []
    unread = notification_unread_count(user=user)
    return [NavLink("Notifications", reverse("web-notifications"), current in NOTIFICATION_PAGES, unread)]

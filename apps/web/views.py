"""Page views: they check who may see the page and hand a selector's result to a template."""

from typing import Any

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase
from django.urls import NoReverseMatch, reverse
from django.views.generic import DetailView, TemplateView

from apps.config.models import Characteristic
from apps.config.roles import Role, has_role
from apps.subscriptions.models import SubscriptionEvent
from apps.web import selectors


class PageMixin(LoginRequiredMixin):
    """Every page: signed in (else to the login page), and not a device's service user (403)."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.user.is_authenticated and has_role(request.user, Role.DEVICE):
            raise PermissionDenied("Device credentials are for ingestion only.")
        return super().dispatch(request, *args, **kwargs)


class OverviewView(PageMixin, TemplateView):
    """The plant overview: every characteristic the user may read, by site, area, line and cell."""

    template_name = "web/overview.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["groups"] = selectors.overview_groups(user=self.request.user)
        context["time_zone"] = settings.TIME_ZONE
        return context


class ChartView(PageMixin, DetailView):
    """One characteristic's chart. The page is a shell: static/js/chart.js loads the data."""

    template_name = "web/chart.html"
    context_object_name = "characteristic"

    def get_queryset(self) -> QuerySet[Characteristic]:
        return Characteristic.objects.visible_to(self.request.user).with_config()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        characteristic: Characteristic = self.object
        context["decimals"] = selectors.characteristic_decimals(characteristic=characteristic)
        context["time_zone"] = settings.TIME_ZONE
        return context


# --- Notifications: the inbox and the subscriptions that fill it ---------------------------------


def page_url_pattern(name: str) -> str:
    """`/lots/{id}/` for a page that takes a pk, or "" while there is no such page (the scripts then
    link to the API instead)."""
    try:
        return reverse(name, args=[0]).replace("/0/", "/{id}/")
    except NoReverseMatch:
        return ""


class NotificationsPageMixin(PageMixin, PermissionRequiredMixin):
    """The roles that may subscribe (quality specialists, operations leads, managers); others 403.
    Only subscriptions put anything in an inbox, so a role without them has none to read."""

    permission_required = "subscriptions.view_subscription"


class NotificationsView(NotificationsPageMixin, TemplateView):
    """The inbox. A shell: static/js/notifications.js loads it and keeps it live."""

    template_name = "web/notifications.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["lot_url"] = page_url_pattern("web-lot")
        return context


class SubscriptionsView(NotificationsPageMixin, TemplateView):
    """The user's subscriptions: list, add, delete. static/js/subscriptions.js does it through the API."""

    template_name = "web/subscriptions.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["scopes"] = selectors.subscription_scopes()
        context["events"] = SubscriptionEvent.choices
        context["may_email"] = bool(getattr(self.request.user, "email", ""))
        return context

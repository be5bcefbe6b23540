"""Page views: they check who may see the page and hand a selector's result to a template."""

from typing import Any

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.generic import DetailView, TemplateView

from apps.config.models import Characteristic
from apps.config.roles import Role, has_role
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


class KioskView(PageMixin, TemplateView):
    """One line's live charts for a wall screen: no navigation, large type. The line is named by
    ?site=&area=&line= (the overview's group headings link here). static/js/kiosk.js draws.

    A wall screen stays signed in: every load of this page (kiosk.js fetches it again every half
    hour) saves the session, so it expires SESSION_COOKIE_AGE after the screen last reached the
    server, not after sign-in."""

    template_name = "web/kiosk.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        request.session.modified = True
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        query = self.request.GET
        line = selectors.Line(query.get("site", ""), query.get("area", ""), query.get("line", ""))
        cards = selectors.kiosk_cards(user=self.request.user, line=line)
        context.update(
            line=line,
            cards=cards[: selectors.KIOSK_MAX_CHARTS],
            hidden_count=max(0, len(cards) - selectors.KIOSK_MAX_CHARTS),
            time_zone=settings.TIME_ZONE,
        )
        return context

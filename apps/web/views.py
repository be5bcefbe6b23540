"""Page views: they check who may see the page and hand a selector's result to a template."""

from typing import Any

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase
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
        # The same permissions the API checks (AcknowledgePermissions, LimitsPermissions): a
        # role that would be refused does not see the controls.
        user = self.request.user
        context["can_acknowledge"] = user.has_perm("calculations.change_violation")
        context["can_change_limits"] = user.has_perm("config.add_controllimits")
        return context

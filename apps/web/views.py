"""Page views: they check who may see the page and hand a selector's result to a template."""

from typing import Any

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase
from django.views.generic import DetailView, TemplateView

from apps.audit.models import AuditAction
from apps.config.models import Characteristic
from apps.config.roles import Role, has_role
from apps.web import selectors
from apps.web.forms import (
    PAGE_SIZE,
    AuditFilterForm,
    ViolationFilterForm,
    object_type_key,
    object_type_label,
)


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


class ViolationsView(PageMixin, PermissionRequiredMixin, TemplateView):
    """The violations list: filters in the URL, rows from the API (static/js/violations.js), batch
    acknowledgement for the roles that may acknowledge."""

    template_name = "web/violations.html"
    permission_required = "calculations.view_violation"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        user = self.request.user
        characteristics = selectors.filter_characteristics(user=user)
        form = ViolationFilterForm(self.request.GET, characteristics=characteristics)
        context["form"] = form
        context["api_query"] = form.api_query() if form.is_valid() else None
        context["page_size"] = PAGE_SIZE
        context["can_acknowledge"] = user.has_perm("calculations.change_violation")
        context["characteristics"] = {
            c.pk: {
                "product": c.product.code,
                "test": c.test.code,
                "name": c.test.name,
                "decimals": selectors.characteristic_decimals(characteristic=c),
                "unit": c.test.unit,
            }
            for c in characteristics
        }
        context["user_names"] = selectors.acknowledger_names(user=user)  # type: ignore[arg-type]
        return context


class AuditLogView(PageMixin, PermissionRequiredMixin, TemplateView):
    """The audit trail, newest first, filtered in the URL; static/js/audit.js reads it from the API
    and shows each entry's before and after as a diff of fields."""

    template_name = "web/audit.html"
    permission_required = "audit.view_auditentry"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        actors = selectors.audit_actors()
        object_types = selectors.audit_object_types()
        form = AuditFilterForm(self.request.GET, actors=actors, object_types=object_types)
        context["form"] = form
        context["api_query"] = form.api_query() if form.is_valid() else None
        context["labels"] = {
            "users": {u.pk: u.get_full_name() or u.get_username() for u in actors},
            "actions": dict(AuditAction.choices),
            "object_types": {object_type_key(t): object_type_label(t) for t in object_types},
            # Foreign keys the trail stores by id, by name (people are in "users").
            "references": {"acknowledgement_reason": selectors.acknowledgement_reason_labels()},
        }
        return context

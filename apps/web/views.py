"""Page views: they check who may see the page and hand a selector's result to a template."""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect
from django.template.defaultfilters import pluralize
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views import View
from django.views.generic import DetailView, FormView, ListView, TemplateView
from rest_framework.exceptions import ValidationError as DRFValidationError

from apps.audit.services import Actor
from apps.config.models import Characteristic
from apps.observations import services as observation_services
from apps.observations.choices import (
    LOT_DISPOSITIONS,
    LOT_TRANSITIONS,
    LOT_WORKING,
    LotStatus,
    MissedSampleReason,
)
from apps.observations.models import Lot
from apps.observations.selectors import (
    lot_progress,
    scheduled_samples_open,
    scheduled_samples_visible,
    tester_queryset,
)
from apps.qa_runs import selectors as qa_selectors
from apps.records.choices import (
    APPROVE_PERMISSION,
    DECISION_MEANING,
    DECISION_STATUS,
    VERIFY_PERMISSION,
    Decision,
    Verdict,
)
from apps.records.selectors import lot_review
from apps.subscriptions.choices import SubscriptionEvent
from apps.subscriptions.selectors import inbox_readable
from apps.web import overview, selectors
from apps.web.filters import (
    PAGE_SIZE,
    RULE_NAMES,
    AuditFilterForm,
    ViolationFilterForm,
)
from apps.web.forms import LotOpenForm
from openspc.api import DomainConflict
from openspc.roles import Role, has_role, may_view


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
        context["groups"] = overview.overview_groups(user=self.request.user)
        context["no_access"] = not may_view(self.request.user, Characteristic)
        context["time_zone"] = settings.TIME_ZONE
        return context


class ChartView(PageMixin, DetailView):
    """One characteristic's chart. The page is a shell: static/js/chart.js loads the data. Those
    the API refuses the chart data (no right to read characteristics) get 403 here too; one they
    may not read (visible_to) is a 404, as in the API."""

    template_name = "web/chart.html"
    context_object_name = "characteristic"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.user.is_authenticated and not may_view(request.user, Characteristic):
            raise PermissionDenied("Your role does not include reading charts.")
        return super().dispatch(request, *args, **kwargs)

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
        context["rule_names"] = RULE_NAMES  # for the tooltip and the acknowledge dialog
        # Never green while its data is rejected, has stopped, or a sample is overdue: the card's words.
        context["card"] = overview.characteristic_card(user=user, characteristic=characteristic)
        return context


# --- Lots (the operations pages) -----------------------------------------------------------------


class PermissionPageMixin(PageMixin):
    """A page for users with these model permissions (roles grant them); others get 403."""

    permissions: tuple[str, ...] = ()

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.user.is_authenticated and not request.user.has_perms(self.permissions):
            raise PermissionDenied("Your role does not include this page.")
        return super().dispatch(request, *args, **kwargs)


class LotListView(PermissionPageMixin, ListView):
    """The lots, newest first, with their progress; filtered by product and status."""

    template_name = "web/lots.html"
    permissions = ("observations.view_lot",)
    paginate_by = 25

    def filters(self) -> tuple[int | None, str]:
        product = self.request.GET.get("product", "")
        status = self.request.GET.get("status", "")
        return (int(product) if product.isdigit() else None), (status if status in LotStatus.values else "")

    def get_queryset(self) -> QuerySet[Lot]:
        product, status = self.filters()
        return selectors.lots_list(product=product, status=status)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        product, status = self.filters()
        context["rows"] = selectors.lots_rows(lots=context["page_obj"].object_list)
        context["products"] = selectors.lot_products()
        context["statuses"] = LotStatus.choices
        context["chosen_product"], context["chosen_status"] = product, status
        context["filtered"] = product is not None or bool(status)
        query = self.request.GET.copy()
        query.pop("page", None)
        context["filter_query"] = query.urlencode()
        return context


class LotCreateView(PermissionPageMixin, FormView):
    """Open a lot with its items on their test plans, in one transaction (services.lot_open)."""

    template_name = "web/lot_create.html"
    permissions = ("observations.add_lot", "observations.add_item", "observations.change_item")
    form_class = LotOpenForm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["plan_choices"] = selectors.lot_plan_choices()
        return context

    def form_valid(self, form: LotOpenForm) -> HttpResponse:
        try:
            user = self.request.user
            assert isinstance(user, User)  # signed in: PageMixin
            lot = observation_services.lot_open(
                **form.service_arguments(), user=user, actor=Actor.of(self.request, "web")
            )
        except ValidationError as error:
            form.add_error(None, error)
            return self.form_invalid(form)
        items = lot.items.count()
        messages.success(self.request, f"Lot {lot.number} is open with {items} item{pluralize(items)}.")
        return redirect("web-lot", pk=lot.pk)


VIEW_LOT = "observations.view_lot"


class LotDetailView(PageMixin, DetailView):
    """One lot: progress, statistics per test, the review (results by item and test with their
    verdicts, what blocks the release, investigations, signatures), items with plans and testers;
    assignment, verification, the signed disposition and the request to release."""

    template_name = "web/lot.html"
    context_object_name = "lot"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        user = request.user
        if user.is_authenticated and not (user.has_perm(VIEW_LOT) or user.has_perm(VERIFY_PERMISSION)):
            raise PermissionDenied("Your role does not include this page.")
        return super().dispatch(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Lot]:
        return selectors.lots_list()

    def get_object(self, queryset: QuerySet[Lot] | None = None) -> Lot:
        lot: Lot = super().get_object(queryset)
        user = self.request.user
        # A verifier whose role reads no lots (a tester) opens the page to verify results of others.
        if not user.has_perm(VIEW_LOT) and not selectors.lot_open_to_verifier(lot=lot, user=user):
            raise PermissionDenied(
                "Your role opens a lot's page only while the lot is worked on and has results to verify."
            )
        return lot

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        lot: Lot = self.object
        user = self.request.user
        working = lot.status in LOT_WORKING
        context["progress"] = lot_progress(lot=lot)
        context["tests"] = selectors.lot_tests(lot=lot)
        context["items"] = selectors.lot_items(lot=lot, user=user)
        context["can_assign"] = working and user.has_perm("observations.change_item")
        context["testers"] = tester_queryset() if context["can_assign"] else []
        changes_lots = user.has_perm("observations.change_lot")
        context["transitions"] = (
            [
                (status, LOT_ACTIONS[status])
                for status in LotStatus.values
                if status in LOT_TRANSITIONS[lot.status] and status not in LOT_DISPOSITIONS
            ]
            if changes_lots
            else []
        )
        review = context["review"] = lot_review(lot=lot)
        context["can_list_lots"] = user.has_perm(VIEW_LOT)
        # Offered only where it can be used: results waiting, a status the decision can still set.
        context["can_verify"] = user.has_perm(VERIFY_PERMISSION) and any(
            cell and cell.current and cell.verdict == Verdict.TO_BE_VERIFIED
            for row in review.rows
            for cell in row.cells
        )
        context["final"] = not LOT_TRANSITIONS[lot.status]
        context["matrix"] = selectors.review_matrix(review)
        approves = user.has_perm(APPROVE_PERMISSION)
        context["decisions"] = [
            (value, label, DECISION_MEANING[value])
            for value, label in Decision.choices
            if (approves or (value == Decision.QUARANTINE and changes_lots))
            and DECISION_STATUS[value] in LOT_TRANSITIONS[lot.status]
        ]
        context["can_request_release"] = (
            changes_lots and not approves and LotStatus.RELEASED in (LOT_TRANSITIONS[lot.status])
        )
        return context


# What the lot page's buttons say for each status a lot can move to without a disposition.
LOT_ACTIONS: dict[str, str] = {
    LotStatus.IN_TESTING: "Start testing",
}


class WorklistView(PageMixin, TemplateView):
    """A tester's work: assigned items, the tests still due, and an entry form per test. The page
    is a shell: static/js/worklist.js loads GET /api/v1/me/items/ and posts the observations."""

    template_name = "web/worklist.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        # Known now, so a tester with nothing to do reads so at once, not after a loading message.
        context["has_work"] = selectors.worklist_has_work(user=self.request.user)
        context["lots_to_verify"] = selectors.lots_to_verify(user=self.request.user)
        context["samples_due"] = scheduled_samples_open(user=self.request.user)
        context["may_close_samples"] = self.request.user.has_perm(CLOSE_SCHEDULED)
        context["miss_reasons"] = MissedSampleReason.choices
        return context


CLOSE_SCHEDULED = "observations.change_scheduledsample"


class ScheduledSampleCloseView(PermissionPageMixin, View):
    """The worklist's "Close as missed" form: a due or overdue sample closed with a reason code
    (services.scheduled_sample_close), then back to the worklist with what happened."""

    permissions = (CLOSE_SCHEDULED,)
    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        sample = get_object_or_404(scheduled_samples_visible(user=request.user), pk=pk)
        user = request.user
        assert isinstance(user, User)  # signed in: PageMixin
        try:
            closed = observation_services.scheduled_sample_close(
                sample=sample, user=user, reason_code=request.POST.get("reason_code", ""),
                note=request.POST.get("note", ""),
            )  # fmt: skip
        except (DRFValidationError, DomainConflict) as error:
            messages.error(request, f"The sample was not closed: {_said(error)}")
        else:
            label = MissedSampleReason(closed.reason_code).label
            due = timezone.localtime(closed.due_at)
            messages.success(request, f"Sample due {due:%H:%M} closed as missed ({label}).")
        return redirect("web-worklist")


def _said(error: Exception) -> str:
    """An error's words for a message: a validation error's messages, else its text."""
    detail = getattr(error, "detail", None)
    if isinstance(detail, dict):
        said = [value if isinstance(value, list) else [value] for value in detail.values()]
        return " ".join(str(message) for messages_ in said for message in messages_)
    return str(error)


class ViolationsView(PermissionPageMixin, TemplateView):
    """The violations list: filters in the URL, rows from the API (static/js/violations.js), batch
    acknowledgement for the roles that may acknowledge."""

    template_name = "web/violations.html"
    permissions = ("calculations.view_violation",)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        user = self.request.user
        characteristics = selectors.filter_characteristics(user=user)
        form = ViolationFilterForm(self.request.GET, characteristics=characteristics)
        context["form"] = form
        context["api_query"] = form.api_query() if form.is_valid() else None
        context["page_size"] = PAGE_SIZE
        context["can_acknowledge"] = user.has_perm("calculations.change_violation")
        context["characteristics"] = selectors.characteristic_labels(characteristics)
        context["user_names"] = selectors.acknowledger_names(user=user)  # type: ignore[arg-type]
        context["rule_names"] = RULE_NAMES
        return context


class AuditLogView(PermissionPageMixin, TemplateView):
    """The audit trail, newest first, filtered in the URL (one record's history too); static/js/audit.js
    reads it from the API and shows each entry in words; the same filters download as CSV."""

    template_name = "web/audit.html"
    permissions = ("audit.view_auditentry",)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        actors = selectors.audit_actors()
        object_types = selectors.audit_object_types()
        form = AuditFilterForm(self.request.GET, actors=actors, object_types=object_types)
        context["form"] = form
        valid = form.is_valid()
        context["api_query"] = form.api_query() if valid else None
        context["csv_query"] = form.csv_query() if valid else None
        return context


# --- Notifications: the inbox and the subscriptions that fill it ---------------------------------


def page_url_pattern(name: str) -> str:
    """`/lots/{id}/` for a page that takes a pk, or "" while there is no such page (the scripts then
    link to the API instead)."""
    try:
        return reverse(name, args=[0]).replace("/0/", "/{id}/")
    except NoReverseMatch:
        return ""


class NotificationsPageMixin(PageMixin):
    """The roles that may subscribe (quality specialists, operations leads, managers); others 403.
    Only subscriptions put anything in an inbox, so a role without them has none to read."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.user.is_authenticated and not inbox_readable(user=request.user):
            raise PermissionDenied("Your role does not include this page.")
        return super().dispatch(request, *args, **kwargs)


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


class KioskView(PageMixin, TemplateView):
    """One line's live charts for a wall screen: no navigation, large type. The line is named by
    ?site=&area=&line= (the overview's group headings link here). static/js/kiosk.js draws.

    A wall screen stays signed in for SESSION_MAX_HOURS: kiosk.js fetches this page again three
    times per SESSION_IDLE_MINUTES (keep_alive_ms), and every request moves the session's idle
    expiry on."""

    template_name = "web/kiosk.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        request.session.modified = True
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        query = self.request.GET
        line = overview.Line(query.get("site", ""), query.get("area", ""), query.get("line", ""))
        cards = overview.kiosk_cards(user=self.request.user, line=line)
        context.update(
            line=line,
            cards=cards[: overview.KIOSK_MAX_CHARTS],
            hidden_count=max(0, len(cards) - overview.KIOSK_MAX_CHARTS),
            no_access=not may_view(self.request.user, Characteristic),
            time_zone=settings.TIME_ZONE,
            keep_alive_ms=settings.SESSION_COOKIE_AGE * 1000 // 3,
        )
        return context


# --- QA package runs -------------------------------------------------------------------------------


class QaRunsView(PermissionPageMixin, TemplateView):
    """The QA packages with a button to start a run (roles that may), and the latest runs."""

    template_name = "web/qa_runs.html"
    permissions = ("qa_runs.view_qapackagerun",)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["packages"] = qa_selectors.qa_package_queryset()
        context["runs"] = qa_selectors.qa_run_queryset()[:25]
        context["can_run"] = self.request.user.has_perm("qa_runs.add_qapackagerun")
        return context


class QaRunView(PermissionPageMixin, DetailView):
    """One run, live: its status, events as they come (static/js/qa_run.js polls the events API
    every 2 s), per-operation outcomes and each failure's curl reproducer."""

    template_name = "web/qa_run.html"
    permissions = ("qa_runs.view_qapackagerun",)
    slug_field = slug_url_kwarg = "plan_id"
    context_object_name = "run"

    def get_queryset(self) -> QuerySet[Any]:
        return qa_selectors.qa_run_queryset()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["can_cancel"] = self.request.user.has_perm("qa_runs.change_qapackagerun")
        return context

"""QA packages (quality specialists) and their runs: start one (202 with the plan id), follow its
status and events, cancel it, download its reports. Every write goes through services / pipeline."""

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from apps.qa_runs import pipeline, selectors, services
from apps.qa_runs.api import serializers
from apps.qa_runs.choices import RUN_TERMINAL
from apps.qa_runs.evaluate import html_report, junit_xml
from apps.qa_runs.filtersets import QaRunFilterSet
from apps.qa_runs.models import QaPackage, QaPackageRun
from apps.qa_runs.selectors import unsafe_warning
from openspc.api import acting_user, instance_of
from openspc.permissions import IsHuman, RoleModelPermissions


class ReportNegotiation(BaseContentNegotiation):
    """A report is XML or HTML whatever the client accepts (a browser's download link, curl); its
    errors are JSON, in the API's error format. DRF's documented way to ignore the Accept header."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0]

    def select_renderer(self, request: Request, renderers: Any, format_suffix: str | None = None) -> Any:
        return (renderers[0], renderers[0].media_type)


AUTH_FIELDS = ("auth_kind", "auth_header_name", "auth_secret", "auth_secret_env")


class RunStartPermissions(RoleModelPermissions):
    """Starting a run needs the right to add runs (quality specialists), whatever the package's model."""

    perms_map = {**RoleModelPermissions.perms_map, "POST": ["qa_runs.add_qapackagerun"]}


class RunCancelPermissions(RoleModelPermissions):
    """Cancelling a run changes it: qa_runs.change_qapackagerun."""

    perms_map = {**RoleModelPermissions.perms_map, "POST": ["qa_runs.change_qapackagerun"]}


class QaPackageViewSet(viewsets.ModelViewSet):
    """Integration targets to test with generated scenarios. The credential is write-only."""

    queryset = QaPackage.objects.all()
    serializer_class = serializers.QaPackageSerializer
    permission_classes = [IsHuman, RoleModelPermissions]
    search_fields = ["name", "target_base_url"]
    ordering_fields = ["name", "updated_at"]

    def get_queryset(self) -> QuerySet[QaPackage]:
        return selectors.qa_package_queryset()

    def perform_create(self, serializer: BaseSerializer) -> None:
        data = dict(serializer.validated_data)
        auth = {key: data.pop(key) for key in AUTH_FIELDS if key in data}
        with transaction.atomic():
            package = services.qa_package_create(
                **data, created_by=acting_user(self.request), request_hosts=[self.request.get_host()]
            )
            services.qa_package_auth_change(package=package, auth=auth, created=True)
        serializer.instance = package

    def perform_update(self, serializer: BaseSerializer) -> None:
        data = dict(serializer.validated_data)
        auth = {key: data.pop(key) for key in AUTH_FIELDS if key in data}
        with transaction.atomic():
            package = services.qa_package_update(
                package=instance_of(serializer), data=data, request_hosts=[self.request.get_host()]
            )
            services.qa_package_auth_change(package=package, auth=auth, created=False)
        serializer.instance = package

    @extend_schema(
        request=serializers.RunStartSerializer,
        responses={202: serializers.RunStartedSerializer},
        summary="Start a run of the package; poll status_url and events_url",
        description="A package that allows unsafe methods needs confirm_unsafe: true (else 400 naming "
        "the target). A package targeting this system itself is refused (409) unless the administrator "
        "set QA_ALLOW_SELF_TARGET.",
    )
    @action(detail=True, methods=["post"], permission_classes=[IsHuman, RunStartPermissions])
    def run(self, request: Request, pk: str | None = None) -> Response:
        package: QaPackage = self.get_object()
        asked = serializers.RunStartSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        warning = unsafe_warning(package=package)
        if warning and not asked.validated_data["confirm_unsafe"]:
            raise ValidationError({"confirm_unsafe": [f"{warning} Send confirm_unsafe: true to start it."]})
        run = pipeline.qa_run_start(
            package=package, requested_by=acting_user(request), requested_host=request.get_host()
        )
        links = serializers.run_links(run)
        body = {
            "plan_id": run.plan_id,
            "status": run.status,
            "allow_unsafe_methods": package.allow_unsafe_methods,
            "warning": warning,
            **links,
        }
        return Response(serializers.RunStartedSerializer(body).data, status=status.HTTP_202_ACCEPTED)


AFTER = OpenApiParameter(
    "after", OpenApiTypes.INT, description="Only events with a higher sequence (default 0: all)."
)
PASSED = OpenApiParameter("passed", OpenApiTypes.BOOL, description="Only passed (true) or failed (false).")


class QaRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Runs by plan id: status, totals, verdict; events, scenarios, operations, cancel, reports."""

    queryset = QaPackageRun.objects.all()
    serializer_class = serializers.QaRunSerializer
    permission_classes = [IsHuman, RoleModelPermissions]
    filterset_class = QaRunFilterSet
    lookup_field = "plan_id"
    lookup_value_regex = "[0-9a-fA-F-]{36}"
    ordering_fields = ["requested_at"]

    def get_queryset(self) -> QuerySet[QaPackageRun]:
        return selectors.qa_run_queryset()

    @extend_schema(parameters=[AFTER], responses=serializers.QaEventsSerializer, filters=False)
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None)
    def events(self, request: Request, plan_id: str | None = None) -> Response:
        """The run's events after a sequence number, in order (at most 1,000 per call)."""
        raw = request.query_params.get("after", "0")
        if not raw.isdigit():
            raise ValidationError({"after": ["A sequence number (0 or more)."]})
        run = self.get_object()
        events = selectors.qa_run_events(run=run, after=int(raw))
        body = {
            "status": run.status,
            "finished": run.status in RUN_TERMINAL,
            "last_sequence": events[-1].sequence if events else int(raw),
            "events": events,
        }
        return Response(serializers.QaEventsSerializer(body).data)

    @extend_schema(parameters=[PASSED], responses=serializers.ScenarioSerializer(many=True), filters=False)
    @action(detail=True, methods=["get"], filterset_class=None)
    def scenarios(self, request: Request, plan_id: str | None = None) -> Response:
        """The run's scenarios with each step's outcome and curl reproducer (bodies left out)."""
        raw = request.query_params.get("passed")
        if raw not in (None, "true", "false"):
            raise ValidationError({"passed": ["true or false."]})
        scenarios = selectors.qa_run_scenarios(
            run=self.get_object(), passed=None if raw is None else raw == "true"
        )
        page = self.paginate_queryset(scenarios)
        data = serializers.ScenarioSerializer(page if page is not None else scenarios, many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)

    @extend_schema(responses=serializers.OperationOutcomeSerializer(many=True), filters=False)
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None)
    def operations(self, request: Request, plan_id: str | None = None) -> Response:
        """Per operation: its scenarios, how many passed, failed, and are still to run."""
        rows = selectors.qa_run_operations(run=self.get_object())
        return Response(serializers.OperationOutcomeSerializer(rows, many=True).data)

    @extend_schema(request=None, responses={202: serializers.QaRunSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsHuman, RunCancelPermissions])
    def cancel(self, request: Request, plan_id: str | None = None) -> Response:
        """Stop the run: at once while it is queued, else at the pipeline's next check. 409 once ended."""
        run = pipeline.qa_run_cancel(run=self.get_object())
        return Response(self.get_serializer(run).data, status=status.HTTP_202_ACCEPTED)

    def _report(self, text: str, content_type: str, extension: str) -> HttpResponse:
        run: QaPackageRun = self.get_object()
        response = HttpResponse(text, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="qa-run-{run.plan_id}.{extension}"'
        return response

    @extend_schema(responses={(200, "application/xml"): OpenApiResponse(OpenApiTypes.STR)}, filters=False)
    @action(
        detail=True,
        methods=["get"],
        url_path="report/junit",
        url_name="junit",
        filterset_class=None,
        content_negotiation_class=ReportNegotiation,
    )
    def junit(self, request: Request, plan_id: str | None = None) -> HttpResponse:
        """The run as JUnit XML (one test case per scenario), for CI systems."""
        return self._report(junit_xml(run=self.get_object()), "application/xml; charset=utf-8", "xml")

    @extend_schema(responses={(200, "text/html"): OpenApiResponse(OpenApiTypes.STR)}, filters=False)
    @action(
        detail=True,
        methods=["get"],
        url_path="report/html",
        url_name="html",
        filterset_class=None,
        content_negotiation_class=ReportNegotiation,
    )
    def html(self, request: Request, plan_id: str | None = None) -> HttpResponse:
        """The run as a self-contained HTML report."""
        return self._report(html_report(run=self.get_object()), "text/html; charset=utf-8", "html")

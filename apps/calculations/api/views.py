"""Calculation API: samples (catch-up and synchronous submission), violations, statistics, limits, charts."""

from collections.abc import Sequence
from typing import Any, TypeVar

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from apps.audit.services import Actor
from apps.calculations import selectors, services
from apps.calculations.api import serializers
from apps.calculations.filtersets import (
    LotStatisticsFilterSet,
    ProductStatisticsFilterSet,
    SampleFilterSet,
    ViolationEventFilterSet,
    ViolationFilterSet,
)
from apps.calculations.models import (
    AcknowledgementReason,
    AlarmShelf,
    LotStatistics,
    ProductStatistics,
    Violation,
    ViolationEvent,
)
from apps.calculations.services.shelving import shelves_active
from apps.calculations.services.submit import sample_submit
from apps.config.models import Characteristic
from apps.config.selectors import characteristic_kept
from apps.observations.models import Sample
from apps.observations.permissions import DataEntry, data_entry_role
from apps.observations.services.samples import sample_exclude
from apps.signatures.api.serializers import signer_from_request
from apps.signatures.choices import SignedAction
from apps.signatures.services import Signer
from openspc.api import acting_user
from openspc.permissions import IsHuman, RoleModelPermissions
from openspc.roles import Role

HUMAN = [IsHuman, RoleModelPermissions]
M = TypeVar("M", Violation, ViolationEvent)


def _limits_signer(request: Request, data: dict[str, Any]) -> Signer | None:
    """The checked signer of a limits change (popped from `data`), before the service's transaction:
    a wrong password is refused (403, audited) and nothing is stored. A preview is never signed."""
    signature = data.pop("signature", None)
    if data.get("preview"):
        return None
    return signer_from_request(request, signature, action=SignedAction.CONTROL_LIMITS)


class LimitsPermissions(RoleModelPermissions):
    """Changing limits, or which samples they are calculated from, needs the right to add control
    limits (quality specialists)."""

    perms_map = {**RoleModelPermissions.perms_map, "POST": ["config.add_controllimits"]}


class SequencePagination(CursorPagination):
    """Ordered by sequence, paged by an opaque cursor: stable while new samples arrive."""

    ordering = "sequence"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class SampleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Samples (subgroups) of a characteristic, in sequence order. `since` is the last sequence
    a client has (after a WebSocket reconnect); POST submits a whole subgroup and answers
    with the judged sample."""

    queryset = Sample.objects.all()
    serializer_class = serializers.SampleSerializer
    permission_classes = HUMAN
    filterset_class = SampleFilterSet
    pagination_class = SequencePagination
    ordering_fields: list[str] = []
    http_method_names = ["get", "post", "head", "options"]
    data_entry_by = Role.TESTER

    def get_permissions(self) -> Sequence[Any]:
        # Submitting a subgroup is data entry: testers only, for their items (apps.observations);
        # OPTIONS describes the body to those who may post it.
        if self.action == "create":
            return [DataEntry(), RoleModelPermissions()]
        if self.action == "metadata" and data_entry_role(self.request) is not None:
            return [DataEntry()]
        return super().get_permissions()

    def get_queryset(self) -> QuerySet[Sample]:
        return selectors.sample_queryset(self.request.user)

    def get_serializer_class(self) -> type[BaseSerializer]:
        # OPTIONS ('metadata') describes the POST body, as create reads it.
        if self.action in ("exclude", "include"):
            return serializers.SampleExcludeSerializer
        return (
            serializers.SampleSubmitSerializer
            if self.action in ("create", "metadata")
            else serializers.SampleSerializer
        )

    def _exclusion(self, request: Request, excluded: bool) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        sample = sample_exclude(
            sample=self.get_object(), excluded=excluded, reason=body.validated_data["reason"],
            actor=Actor(acting_user(request), "api"),
        )  # fmt: skip
        return Response(serializers.SampleSerializer(self.get_queryset().get(pk=sample.pk)).data)

    @extend_schema(request=serializers.SampleExcludeSerializer, responses=serializers.SampleSerializer)
    @action(detail=True, methods=["post"], permission_classes=[IsHuman, LimitsPermissions])
    def exclude(self, request: Request, pk: str | None = None) -> Response:
        """Leave the sample out of control-limit calculations, with a reason (audited). The chart
        still shows it; the next recalculation of the limits leaves it out."""
        return self._exclusion(request, True)

    @extend_schema(request=serializers.SampleExcludeSerializer, responses=serializers.SampleSerializer)
    @action(detail=True, methods=["post"], permission_classes=[IsHuman, LimitsPermissions])
    def include(self, request: Request, pk: str | None = None) -> Response:
        """Take an excluded sample back into control-limit calculations (audited)."""
        return self._exclusion(request, False)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not request.query_params.get("characteristic"):
            raise DRFValidationError({"characteristic": ["Give the characteristic whose samples to list."]})
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=serializers.SampleSubmitSerializer,
        responses={201: serializers.SampleResultSerializer},
        summary="Submit a whole subgroup and get it back judged (synchronous)",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        characteristic = characteristic_kept(data["characteristic_id"])
        if characteristic is None:
            raise DRFValidationError(
                {"characteristic_id": [f"Characteristic {data['characteristic_id']} does not exist."]}
            )
        result = sample_submit(
            characteristic=characteristic,
            measurements=data["measurements"],
            context=data["context"],
            user=acting_user(request),
        )
        answer = {
            "sample": result.sample,
            "violations": result.violations,
            "observation": result.observation.pk,
        }
        return Response(serializers.SampleResultSerializer(answer).data, status=status.HTTP_201_CREATED)


class AcknowledgePermissions(RoleModelPermissions):
    """Acknowledging changes a violation (Managers, Quality Specialists)."""

    perms_map = {**RoleModelPermissions.perms_map, "POST": ["calculations.change_violation"]}


def _batch(
    body_class: type[BaseSerializer], request: Request, visible: QuerySet[M], noun: str
) -> tuple[list[M], dict[str, Any]]:
    """A batch acknowledgement's rows (`ids`, in the order given, each once) among those the user
    may read, and the rest of its body; 400 naming any that is not there."""
    body = body_class(data=request.data)
    body.is_valid(raise_exception=True)
    data = dict(body.validated_data)
    ids = list(dict.fromkeys(data.pop("ids")))
    found = {row.pk: row for row in visible.filter(pk__in=ids)}
    unknown = [str(pk) for pk in ids if pk not in found]
    if unknown:
        raise DRFValidationError({"ids": [f"No {noun} {', '.join(unknown)} (or not visible to you)."]})
    return [found[pk] for pk in ids], data


class ViolationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Rule violations, newest first, with the sequences of every point in the pattern; one
    violation with its sample and the pattern's samples; counts; acknowledgement."""

    queryset = Violation.objects.all()
    serializer_class = serializers.ViolationSerializer
    permission_classes = [IsHuman, AcknowledgePermissions]
    filterset_class = ViolationFilterSet
    ordering_fields = ["created_at", "rule"]

    def get_queryset(self) -> QuerySet[Violation]:
        if self.action == "retrieve":
            return selectors.violation_detail_queryset(self.request.user)
        return selectors.violation_queryset(self.request.user)

    def get_serializer_class(self) -> type[BaseSerializer]:
        return (
            serializers.ViolationDetailSerializer
            if self.action == "retrieve"
            else serializers.ViolationSerializer
        )

    @extend_schema(responses=serializers.ViolationDetailSerializer)
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        violation = self.get_object()
        violation.pattern_samples = selectors.violation_pattern(violation)
        return Response(serializers.ViolationDetailSerializer(violation).data)

    @extend_schema(
        responses=serializers.ViolationStatsSerializer, summary="Counts of the violations the filters select"
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def stats(self, request: Request) -> Response:
        """In all, awaiting acknowledgement, by rule and by characteristic; the list's filters apply."""
        violations = self.filter_queryset(self.get_queryset())
        return Response(serializers.ViolationStatsSerializer(selectors.violation_stats(violations)).data)

    @extend_schema(
        request=serializers.AcknowledgeBatchSerializer,
        responses={200: serializers.AcknowledgeBatchResultSerializer},
        summary="Acknowledge several violations, all or none (409 naming those acknowledged before)",
        operation_id="v1_violations_acknowledge_batch",
    )
    @action(
        detail=False, methods=["post"], url_path="acknowledge", url_name="acknowledge-batch",
        serializer_class=serializers.AcknowledgeBatchSerializer,
    )  # fmt: skip
    def acknowledge_batch(self, request: Request) -> Response:
        violations, data = _batch(
            serializers.AcknowledgeBatchSerializer, request, self.get_queryset(), "violation"
        )
        acknowledged = services.violations_acknowledge(
            violations=violations, user=acting_user(request), **data
        )
        answer = {"count": len(acknowledged), "violations": acknowledged}
        return Response(serializers.AcknowledgeBatchResultSerializer(answer).data)

    @extend_schema(
        request=serializers.AcknowledgeSerializer,
        responses={200: serializers.ViolationSerializer},
        summary="Acknowledge a violation (409 if it was acknowledged already)",
    )
    @action(detail=True, methods=["post"], serializer_class=serializers.AcknowledgeSerializer)
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        violation = self.get_object()
        body = serializers.AcknowledgeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        acknowledged = services.violation_acknowledge(
            violation=violation, user=acting_user(request), **body.validated_data
        )
        return Response(serializers.ViolationSerializer(acknowledged).data)


class EventAcknowledgePermissions(RoleModelPermissions):
    """Acknowledging an event changes it and its violations (Managers, Quality Specialists)."""

    perms_map = {
        **RoleModelPermissions.perms_map,
        "POST": ["calculations.change_violationevent", "calculations.change_violation"],
    }


class ViolationEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Violation events, newest first: each special cause once, however many points its pattern
    runs for (docs/alarms.md); acknowledgement of one, several, or all that match the filters."""

    queryset = ViolationEvent.objects.all()
    serializer_class = serializers.ViolationEventSerializer
    permission_classes = [IsHuman, EventAcknowledgePermissions]
    filterset_class = ViolationEventFilterSet
    ordering_fields = ["started_at", "updated_at", "priority", "rule"]

    def get_queryset(self) -> QuerySet[ViolationEvent]:
        return selectors.violation_event_queryset(self.request.user)

    @extend_schema(
        request=serializers.AcknowledgeSerializer,
        responses={200: serializers.ViolationEventSerializer},
        summary="Acknowledge an event: its violations so far and those it gathers from now on "
        "(409 if it was acknowledged already)",
    )
    @action(detail=True, methods=["post"], serializer_class=serializers.AcknowledgeSerializer)
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        found = self.get_object()
        body = serializers.AcknowledgeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        (acknowledged,) = services.violation_events_acknowledge(
            events=[found], user=acting_user(request), **body.validated_data
        )
        return Response(serializers.ViolationEventSerializer(acknowledged).data)

    @extend_schema(
        request=serializers.AcknowledgeEventsSerializer,
        responses={200: serializers.AcknowledgeEventsResultSerializer},
        summary="Acknowledge several events, all or none (409 naming those acknowledged before)",
        operation_id="v1_violation_events_acknowledge_batch",
    )
    @action(
        detail=False, methods=["post"], url_path="acknowledge", url_name="acknowledge-batch",
        serializer_class=serializers.AcknowledgeEventsSerializer,
    )  # fmt: skip
    def acknowledge_batch(self, request: Request) -> Response:
        events, data = _batch(serializers.AcknowledgeEventsSerializer, request, self.get_queryset(), "event")
        acknowledged = services.violation_events_acknowledge(events=events, user=acting_user(request), **data)
        answer = {"count": len(acknowledged), "events": acknowledged}
        return Response(serializers.AcknowledgeEventsResultSerializer(answer).data)

    @extend_schema(
        request=serializers.AcknowledgeSerializer,
        responses={200: serializers.AcknowledgeMatchingResultSerializer},
        summary="Acknowledge every event the filters (the list's query parameters) select that awaits "
        "acknowledgement, with one reason, in one action",
    )
    @action(
        detail=False, methods=["post"], url_path="acknowledge-matching", url_name="acknowledge-matching",
        serializer_class=serializers.AcknowledgeSerializer,
    )  # fmt: skip
    def acknowledge_matching(self, request: Request) -> Response:
        body = serializers.AcknowledgeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        filters = ViolationEventFilterSet(request.query_params, queryset=self.get_queryset(), request=request)
        if not filters.is_valid():
            raise DRFValidationError(filters.errors)
        acknowledged = services.violation_events_acknowledge_matching(
            events=filters.qs, described=filters.described(), user=acting_user(request),
            **body.validated_data,
        )  # fmt: skip
        answer = {"count": len(acknowledged), "ids": [e.pk for e in acknowledged]}
        return Response(serializers.AcknowledgeMatchingResultSerializer(answer).data)


class ShelfPermissions(RoleModelPermissions):
    """Shelving and ending a shelf (Quality Specialists)."""

    perms_map = {**RoleModelPermissions.perms_map, "POST": ["calculations.add_alarmshelf"]}


class AlarmShelfViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Shelved alarms (ISA-18.2): a characteristic's violation events notify nobody for a stated
    time (docs/alarms.md). Newest first; `active=true` lists those in force."""

    queryset = AlarmShelf.objects.all()
    serializer_class = serializers.AlarmShelfSerializer
    permission_classes = [IsHuman, ShelfPermissions]
    filterset_fields = ["characteristic"]

    def get_queryset(self) -> QuerySet[AlarmShelf]:
        shelves = AlarmShelf.objects.filter(
            characteristic__in=Characteristic.objects.visible_to(self.request.user)
        )
        active = self.request.query_params.get("active")
        if active in ("true", "false"):
            in_force = shelves.filter(shelves_active())
            shelves = in_force if active == "true" else shelves.exclude(pk__in=in_force.values("pk"))
        return shelves

    @extend_schema(
        request=serializers.AlarmShelveSerializer,
        responses={201: serializers.AlarmShelfSerializer},
        summary="Shelve a characteristic's alarms for a stated time, with a reason (409 if shelved already)",
        parameters=[
            OpenApiParameter("active", bool, description="true: in force now; false: ended or expired.")
        ],
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = serializers.AlarmShelveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        characteristic = body.validated_data["characteristic"]
        if not Characteristic.objects.visible_to(request.user).filter(pk=characteristic.pk).exists():
            raise DRFValidationError({"characteristic": [f"No characteristic {characteristic.pk}."]})
        shelf = services.alarms_shelve(
            characteristic=characteristic, user=acting_user(request), minutes=body.validated_data["minutes"],
            reason=body.validated_data["reason"],
        )  # fmt: skip
        return Response(serializers.AlarmShelfSerializer(shelf).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=serializers.ShelfEndSerializer,
        responses={200: serializers.AlarmShelfSerializer},
        summary="End a shelf before it expires (409 if it is not in force)",
    )
    @action(detail=True, methods=["post"], serializer_class=serializers.ShelfEndSerializer)
    def end(self, request: Request, pk: str | None = None) -> Response:
        shelf = self.get_object()
        body = serializers.ShelfEndSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ended = services.shelf_end(
            shelf=shelf, user=acting_user(request), reason=body.validated_data["reason"]
        )
        return Response(serializers.AlarmShelfSerializer(ended).data)


class AcknowledgementReasonViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The reason codes violations are acknowledged with (kept in the admin)."""

    queryset = AcknowledgementReason.objects.filter(active=True)
    serializer_class = serializers.AcknowledgementReasonSerializer
    permission_classes = HUMAN
    pagination_class = None
    filterset_class = None


class LotStatisticsViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Statistics per (lot, test): n, mean, SD, min, max, out of spec, Cpk, disposition hint."""

    queryset = LotStatistics.objects.all()
    serializer_class = serializers.LotStatisticsSerializer
    permission_classes = HUMAN
    filterset_class = LotStatisticsFilterSet
    ordering_fields = ["updated_at", "cpk"]

    def get_queryset(self) -> QuerySet[LotStatistics]:
        return selectors.lot_statistics_queryset()


class ProductStatisticsViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Statistics per characteristic over all lots, with Cp, Cpk, Pp, Ppk and the current limits."""

    queryset = ProductStatistics.objects.all()
    serializer_class = serializers.ProductStatisticsSerializer
    permission_classes = HUMAN
    filterset_class = ProductStatisticsFilterSet
    ordering_fields = ["updated_at", "cpk", "ppk"]

    def get_queryset(self) -> QuerySet[ProductStatistics]:
        return selectors.product_statistics_queryset()


class CharacteristicChartViewSet(viewsets.GenericViewSet):
    """Chart data and control limit changes of a characteristic (the calculation side of
    /characteristics/{id}/; the configuration side is apps.config's viewset)."""

    queryset = Characteristic.objects.all()
    permission_classes = [IsHuman, LimitsPermissions]
    filterset_class = None
    pagination_class = None
    body_serializers: dict[str, type[BaseSerializer]] = {
        "recalculate_limits": serializers.RecalculateLimitsSerializer,
        "set_limits": serializers.SetLimitsSerializer,
        "freeze_limits": serializers.FreezeLimitsSerializer,
        "chart_data": serializers.ChartQuerySerializer,
    }

    def get_queryset(self) -> QuerySet[Characteristic]:
        return Characteristic.objects.visible_to(self.request.user).select_related("product", "test")

    def get_serializer_class(self) -> type[BaseSerializer]:
        """What the action reads. OPTIONS runs as DRF's implicit 'metadata' action and describes
        the body of the route's own action (each route here has one)."""
        action: str | None = self.action
        if action == "metadata":
            action = next(iter(self.action_map.values()), None)
        return self.body_serializers[action or "chart_data"]

    def _limits_answer(self, change: services.LimitsChange) -> Response:
        return Response(serializers.LimitsChangeSerializer(change).data)

    @extend_schema(
        request=serializers.RecalculateLimitsSerializer, responses=serializers.LimitsChangeSerializer
    )
    @action(detail=True, methods=["post"], url_path="recalculate-limits")
    def recalculate_limits(self, request: Request, pk: str | None = None) -> Response:
        """New limits from the latest samples: I-MR for n = 1, X̄-R for n ≤ 10, X̄-S above
        (p, np, c, u for attributes), leaving out samples with violations if asked."""
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        characteristic = self.get_object()
        signer = _limits_signer(request, data)
        change = services.limits_recalculate(
            characteristic=characteristic, user=acting_user(request), signer=signer, **data
        )
        return self._limits_answer(change)

    @extend_schema(request=serializers.SetLimitsSerializer, responses=serializers.LimitsChangeSerializer)
    @action(detail=True, methods=["post"], url_path="set-limits")
    def set_limits(self, request: Request, pk: str | None = None) -> Response:
        """Historical limits from a known mean and sigma (or p̄, n·p̄, c̄, ū)."""
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        characteristic = self.get_object()
        signer = _limits_signer(request, data)
        change = services.limits_set_historical(
            characteristic=characteristic, user=acting_user(request), signer=signer, **data
        )
        return self._limits_answer(change)

    @extend_schema(request=serializers.FreezeLimitsSerializer, responses=serializers.LimitsChangeSerializer)
    @action(detail=True, methods=["post"], url_path="freeze-limits")
    def freeze_limits(self, request: Request, pk: str | None = None) -> Response:
        """Freeze the current limits (recalculation is refused until unfrozen), or unfreeze them."""
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        characteristic = self.get_object()
        signer = _limits_signer(request, data)
        change = services.limits_freeze(
            characteristic=characteristic, user=acting_user(request), signer=signer, **data
        )
        return self._limits_answer(change)

    @extend_schema(
        parameters=[
            OpenApiParameter("limit", int, description="Points to return, newest last (default 100)."),
            OpenApiParameter("lot", int, description="Only the samples of this lot."),
        ],
        responses=serializers.ChartDataSerializer,
    )
    @action(detail=True, methods=["get"], url_path="chart-data")
    def chart_data(self, request: Request, pk: str | None = None) -> Response:
        """Points, current limits, zones and violations (with their points) in one response."""
        query = self.get_serializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = selectors.chart_data(
            characteristic=self.get_object(), limit=query.validated_data["limit"],
            lot_id=query.validated_data.get("lot"),
        )  # fmt: skip
        return Response(serializers.ChartDataSerializer(data).data)

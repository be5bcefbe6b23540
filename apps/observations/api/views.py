"""Observation API: lots, items, a tester's worklist, and ingestion. Writes go through services."""

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.serializers import BaseSerializer

from apps.audit.services import Actor
from apps.config.authentication import DeviceTokenAuthentication
from apps.config.models import Device
from apps.observations import selectors, services
from apps.observations.api import serializers
from apps.observations.choices import ObservationSource
from apps.observations.filtersets import (
    InvalidationFilterSet,
    ItemFilterSet,
    LotFilterSet,
    ObservationFilterSet,
    TesterFilterSet,
)
from apps.observations.models import Invalidation, Item, Lot, Observation, ScheduledSample
from apps.observations.permissions import AssignsItems, DataEntry, HoldsAny, RoleModelChangePermissions
from apps.signatures.api.serializers import signer_from_request
from apps.signatures.choices import SignedAction
from openspc.api import ERROR_SCHEMA, acting_user
from openspc.permissions import IsHuman, RoleModelPermissions
from openspc.roles import Role

HUMAN = [IsHuman, RoleModelPermissions]
HUMAN_CHANGE = [IsHuman, RoleModelChangePermissions]
DATA_ENTRY = [DataEntry, RoleModelPermissions]
TOO_LARGE = OpenApiResponse(ERROR_SCHEMA, description="The body is larger than the configured limit.")


class LotViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Lots of products, opened by operations leads. Items are added with `items/`."""

    queryset = Lot.objects.all()
    serializer_class = serializers.LotSerializer
    permission_classes = HUMAN
    filterset_class = LotFilterSet
    search_fields = ["number", "product__code"]
    ordering_fields = ["number", "status", "created_at"]

    def get_queryset(self) -> QuerySet[Lot]:
        return selectors.lot_queryset()

    def perform_create(self, serializer: BaseSerializer) -> None:
        data = serializer.validated_data
        lot = services.lot_create(
            product=data["product"], number=data["number"], user=acting_user(self.request),
            actor=Actor.of(self.request, "api"),
        )  # fmt: skip
        serializer.instance = self.get_queryset().get(pk=lot.pk)

    @extend_schema(
        request=serializers.ItemsCreateSerializer, responses={201: serializers.ItemSerializer(many=True)}
    )
    @action(detail=True, methods=["post"], serializer_class=serializers.ItemsCreateSerializer)
    def items(self, request: Request, pk: str | None = None) -> Response:
        """Add items to the lot: `count` auto-numbered ones, or a list of `serials`."""
        body = serializers.ItemsCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        items = services.items_create(
            lot=self.get_object(), **body.validated_data, actor=Actor.of(request, "api")
        )
        return Response(serializers.ItemSerializer(items, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=serializers.LotProgressSerializer, filters=False)
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None)
    def progress(self, request: Request, pk: str | None = None) -> Response:
        """Items, tests done and due, and observations received / confirmed / rejected."""
        return Response(serializers.LotProgressSerializer(selectors.lot_progress(lot=self.get_object())).data)

    @extend_schema(request=serializers.LotStatusSerializer, responses=serializers.LotSerializer)
    @action(
        detail=True, methods=["post"], url_path="status", serializer_class=serializers.LotStatusSerializer,
        permission_classes=HUMAN_CHANGE,
    )  # fmt: skip
    def set_status(self, request: Request, pk: str | None = None) -> Response:
        """Move the lot on: open → in_testing (and a quarantined lot back to in_testing for retests).
        Releasing, rejecting and quarantining are signed dispositions: POST lots/{id}/disposition/."""
        body = serializers.LotStatusSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        lot = services.lot_status_set(
            lot=self.get_object(), status=body.validated_data["status"], user=acting_user(request),
            actor=Actor.of(request, "api"),
        )  # fmt: skip
        return Response(serializers.LotSerializer(self.get_queryset().get(pk=lot.pk)).data)


class ItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Items of lots. Testers see the items assigned to them."""

    queryset = Item.objects.all()
    serializer_class = serializers.ItemSerializer
    permission_classes = HUMAN
    filterset_class = ItemFilterSet
    search_fields = ["serial", "lot__number"]
    ordering_fields = ["serial", "created_at", "assigned_at"]

    def get_queryset(self) -> QuerySet[Item]:
        return selectors.item_queryset(user=self.request.user)

    def _respond(self, items: list[Item]) -> Response:
        fresh = self.get_queryset().filter(pk__in=[item.pk for item in items]).order_by("lot", "serial")
        return Response(serializers.ItemSerializer(fresh, many=True).data)

    @extend_schema(
        request=serializers.ItemsSelectPlansSerializer, responses=serializers.ItemSerializer(many=True)
    )
    @action(
        detail=False, methods=["post"], url_path="select-plans",
        serializer_class=serializers.ItemsSelectPlansSerializer, permission_classes=HUMAN_CHANGE,
    )  # fmt: skip
    def select_plans(self, request: Request) -> Response:
        """Set the test plans of items: released plans assigned to their product, in effect now."""
        body = serializers.ItemsSelectPlansSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        items = selectors.items_get(ids=body.validated_data["items"])
        plans = selectors.plans_get(ids=body.validated_data["plans"])
        return self._respond(
            services.items_select_plans(items=items, plans=plans, actor=Actor.of(request, "api"))
        )

    @extend_schema(request=serializers.ItemsAssignSerializer, responses=serializers.ItemSerializer(many=True))
    @action(
        detail=False, methods=["post"], serializer_class=serializers.ItemsAssignSerializer,
        permission_classes=HUMAN_CHANGE,
    )  # fmt: skip
    def assign(self, request: Request) -> Response:
        """Hand items to a tester (a user with the Tester role), or take them back with null."""
        body = serializers.ItemsAssignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        items = selectors.items_get(ids=body.validated_data["items"])
        tester = body.validated_data["tester"]
        return self._respond(
            services.items_assign(items=items, tester=tester, actor=Actor.of(request, "api"))
        )


class MyItemsView(generics.ListAPIView):
    """The items assigned to you that still have tests due, each with those tests."""

    queryset = Item.objects.all()
    serializer_class = serializers.MyItemSerializer
    permission_classes = HUMAN
    filterset_class = None
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[Item]:
        return selectors.tester_items(user=self.request.user)


class TesterViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The users items can be handed to (active, with the Tester role), for whoever assigns items."""

    queryset = get_user_model().objects.none()
    serializer_class = serializers.TesterSerializer
    permission_classes = [IsHuman, AssignsItems]
    filterset_class = TesterFilterSet
    search_fields = ["username", "first_name", "last_name"]
    ordering_fields = ["username", "first_name", "last_name"]

    def get_queryset(self) -> QuerySet[Any]:
        return selectors.tester_queryset()


OBSERVATIONS_REQUEST = PolymorphicProxySerializer(
    component_name="ObservationsPost",
    serializers=[serializers.ObservationEntrySerializer, serializers.ObservationEntrySerializer(many=True)],
    resource_type_field_name=None,
    many=False,
)
DEVICE_REQUEST = serializers.DeviceObservationSerializer(many=True)


def _accepted(request: Request, result: services.RecordResult) -> Response:
    if len(result.ids) == 1:
        url = reverse("observation-detail", args=[result.ids[0]], request=request)
    else:
        url = reverse("observation-list", request=request) + "?ids=" + ",".join(map(str, result.ids))
    body = {
        "ids": result.ids,
        "duplicates": result.duplicates,
        "repeated": result.repeated,
        "status_url": url,
    }
    return Response(serializers.ObservationsAcceptedSerializer(body).data, status=status.HTTP_202_ACCEPTED)


class ObservationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Observations and their status. Testers post for their assigned items and read their own;
    a device reads the status of those it posted (the status URL of its 202), and nothing else."""

    queryset = Observation.objects.all()
    serializer_class = serializers.ObservationSerializer
    filterset_class = ObservationFilterSet
    ordering_fields = ["received_at", "observed_at", "id"]
    data_entry_by = Role.TESTER
    # Corrections and verification: the role's right here, each row's rule in the service.
    required_perms = {
        "invalidate": [services.corrections.ENTER, services.corrections.APPROVE],
        "amend": [services.corrections.ENTER, services.corrections.APPROVE],
        "verify": [services.verification.VERIFY],
    }

    def get_permissions(self) -> list[Any]:
        # Reads are open to device tokens too: visible_to gives a device only its own observations.
        if self.action in self.required_perms:
            return [HoldsAny()]
        classes = DATA_ENTRY if self.action in ("create", "retest") else [RoleModelPermissions]
        return [permission() for permission in classes]

    def get_queryset(self) -> QuerySet[Observation]:
        visible = Observation.objects.visible_to(self.request.user)
        return selectors.observations_with_verification(visible).select_related(
            "item", "lot", "test", "user", "verified_by", "invalidation__requested_by",
            "invalidation__decided_by",
        )  # fmt: skip

    def _detail(self, pk: int, code: int = status.HTTP_200_OK) -> Response:
        row = self.get_queryset().get(pk=pk)
        return Response(serializers.ObservationSerializer(row).data, status=code)

    @extend_schema(request=serializers.InvalidateSerializer, responses=serializers.ObservationSerializer)
    @action(detail=True, methods=["post"], serializer_class=serializers.InvalidateSerializer)
    def invalidate(self, request: Request, pk: str | None = None) -> Response:
        """Invalidate the result (kept, with why and who). Yours: asked for, approved by a quality
        specialist where the test wants it; a quality specialist's takes effect at once, signed."""
        body = serializers.InvalidateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        observation = self.get_object()
        signer = signer_from_request(
            request, body.validated_data.get("signature"), action=SignedAction.INVALIDATION_APPROVAL
        )
        services.invalidation_request(
            observation=observation, user=acting_user(request), reason=body.validated_data["reason"],
            retest=body.validated_data["retest"], signer=signer,
        )  # fmt: skip
        return self._detail(observation.pk)

    @extend_schema(request=serializers.AmendSerializer, responses=serializers.ObservationSerializer)
    @action(detail=True, methods=["post"], serializer_class=serializers.AmendSerializer)
    def amend(self, request: Request, pk: str | None = None) -> Response:
        """Correct a typo: the result is invalidated and the corrected values recorded as a new result
        linked to it (once approved, where approval is needed). Never an update in place."""
        body = serializers.AmendSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        observation = self.get_object()
        signer = signer_from_request(
            request, body.validated_data.get("signature"), action=SignedAction.INVALIDATION_APPROVAL
        )
        services.observation_amend(
            observation=observation, user=acting_user(request), values=body.validated_data["values"],
            reason=body.validated_data["reason"], signer=signer,
        )  # fmt: skip
        return self._detail(observation.pk)

    @extend_schema(
        request=serializers.RetestSerializer, responses={202: serializers.ObservationsAcceptedSerializer}
    )
    @action(detail=True, methods=["post"], serializer_class=serializers.RetestSerializer)
    def retest(self, request: Request, pk: str | None = None) -> Response:
        """Record a retest of your invalidated result: a new result linked to it, checked as any other."""
        body = serializers.RetestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = services.observation_retest(
            observation=self.get_object(), user=acting_user(request), values=body.validated_data["values"],
            observed_at=body.validated_data.get("observed_at"),
            idempotency_key=body.validated_data.get("idempotency_key"),
        )  # fmt: skip
        return _accepted(request, result)

    @extend_schema(
        request=serializers.VerifySerializer, responses=serializers.ObservationSerializer(many=True)
    )
    @action(detail=False, methods=["post"], serializer_class=serializers.VerifySerializer)
    def verify(self, request: Request) -> Response:
        """Verify results entered by others (four eyes), all or none, signed with meaning "verified"."""
        body = serializers.VerifySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ids = body.validated_data["observations"]
        signer = signer_from_request(
            request, body.validated_data.get("signature"), action=SignedAction.VERIFICATION
        )
        rows = services.results_verify(
            observations=[Observation(pk=pk) for pk in ids], user=acting_user(request), signer=signer
        )
        fresh = (
            selectors.observations_with_verification(Observation.objects.all())
            .select_related("item", "lot", "test", "user", "verified_by")
            .in_bulk([row.pk for row in rows])
        )
        return Response(serializers.ObservationSerializer([fresh[row.pk] for row in rows], many=True).data)

    @extend_schema(
        request=OBSERVATIONS_REQUEST,
        responses={202: serializers.ObservationsAcceptedSerializer, 413: TOO_LARGE},
        summary="Post observations for your assigned items (one object or a list of up to 500)",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Stored at once as `received`, then checked by a worker: read the status URL for the verdict.

        A retry with the same idempotency keys (or, without keys, the same item, test,
        values and observed_at) creates nothing and answers the original ids. A key used
        before with another body is 409 `idempotency_key_reused`, and nothing is stored.
        """
        rows, batch = serializers.batch_validate(
            request.data, serializers.ObservationEntrySerializer, max_entries=serializers.MAX_TESTER_BATCH
        )
        user = acting_user(request)
        entries = services.tester_entries_resolve(rows=rows, user=user, batch=batch)
        result = services.observations_record(entries=entries, source=ObservationSource.MANUAL, user=user)
        return _accepted(request, result)


class InvalidationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Invalidations of results: those waiting for approval, and the decided ones. Testers read those
    of their own results; quality specialists approve (signed) or refuse (with a note)."""

    queryset = Invalidation.objects.all()
    serializer_class = serializers.InvalidationSerializer
    filterset_class = InvalidationFilterSet
    ordering_fields = ["requested_at", "id"]
    required_perms = {
        "list": ["observations.view_observation"],
        "retrieve": ["observations.view_observation"],
        "approve": [services.corrections.APPROVE],
        "refuse": [services.corrections.APPROVE],
    }
    permission_classes = [HoldsAny]

    def get_queryset(self) -> QuerySet[Invalidation]:
        return Invalidation.objects.filter(
            observation__in=Observation.objects.visible_to(self.request.user)
        ).select_related("observation", "requested_by", "decided_by")

    def _decide(self, request: Request, approve: bool) -> Response:
        body = serializers.DecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        invalidation = self.get_object()
        signer = None
        if approve:
            signer = signer_from_request(
                request, body.validated_data.get("signature"), action=SignedAction.INVALIDATION_APPROVAL
            )
        services.invalidation_decide(
            invalidation=invalidation, user=acting_user(request), approve=approve,
            note=body.validated_data["note"], signer=signer,
        )  # fmt: skip
        return Response(serializers.InvalidationSerializer(self.get_queryset().get(pk=invalidation.pk)).data)

    @extend_schema(request=serializers.DecisionSerializer, responses=serializers.InvalidationSerializer)
    @action(detail=True, methods=["post"], serializer_class=serializers.DecisionSerializer)
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Approve the invalidation, signed (meaning "approved"): the result is invalidated now."""
        return self._decide(request, approve=True)

    @extend_schema(request=serializers.DecisionSerializer, responses=serializers.InvalidationSerializer)
    @action(detail=True, methods=["post"], serializer_class=serializers.DecisionSerializer)
    def refuse(self, request: Request, pk: str | None = None) -> Response:
        """Refuse the invalidation, saying why in `note`: the result stands."""
        return self._decide(request, approve=False)


class DeviceObservationViewSet(mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Ingestion for devices: batches of observations by characteristic or product/test codes."""

    queryset = Observation.objects.none()
    serializer_class = serializers.DeviceObservationSerializer
    authentication_classes = [DeviceTokenAuthentication]
    permission_classes = DATA_ENTRY
    data_entry_by = Role.DEVICE

    @extend_schema(
        request=DEVICE_REQUEST,
        responses={202: serializers.ObservationsAcceptedSerializer, 413: TOO_LARGE},
        summary="Post a batch of device observations (up to 5,000)",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Each entry names a lot that exists and is open (devices do not open lots) and,
        optionally, an item serial in it. Stored as `received`, then checked by a worker.
        A key used before with another body is 409 `idempotency_key_reused`."""
        rows, batch = serializers.batch_validate(
            request.data, serializers.DeviceObservationSerializer, max_entries=serializers.MAX_DEVICE_BATCH
        )
        device = request.auth if isinstance(request.auth, Device) else None
        if device is None:  # IsDevice lets only a device token through; this keeps mypy and a reader sure
            raise PermissionDenied("Only devices post here, with Authorization: Device <token>.")
        entries = services.device_entries_resolve(rows=rows, batch=batch, device=device)
        result = services.observations_record(
            entries=entries, source=ObservationSource.DEVICE, user=acting_user(request), device=device
        )
        return _accepted(request, result)


class ScheduledSampleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Samples the sampling schedules asked for (docs/alarms.md, "Sampling schedules"), oldest due
    first; `state=due` and `state=overdue` are what is still to take. A due or overdue one not
    taken is closed as missed with a reason code (`close`, audited)."""

    queryset = ScheduledSample.objects.all()
    serializer_class = serializers.ScheduledSampleSerializer
    permission_classes = [IsHuman, RoleModelChangePermissions]
    filterset_fields = ["characteristic", "lot", "state"]

    def get_queryset(self) -> QuerySet[ScheduledSample]:
        return selectors.scheduled_samples_visible(user=self.request.user)

    @extend_schema(
        request=serializers.ScheduledSampleCloseSerializer,
        responses={200: serializers.ScheduledSampleSerializer},
        summary="Close a due or overdue sample as missed, with a reason code (409 if taken or closed)",
    )
    @action(detail=True, methods=["post"], serializer_class=serializers.ScheduledSampleCloseSerializer)
    def close(self, request: Request, pk: str | None = None) -> Response:
        sample = self.get_object()
        body = serializers.ScheduledSampleCloseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        closed = services.scheduled_sample_close(
            sample=sample, user=acting_user(request), reason_code=body.validated_data["reason_code"],
            note=body.validated_data["note"],
        )  # fmt: skip
        return Response(serializers.ScheduledSampleSerializer(closed).data)

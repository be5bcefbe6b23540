"""Configuration API. Declarative viewsets; every write goes through apps.config.services."""

from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from apps.audit.services import Actor
from apps.config import services
from apps.config.api import serializers
from apps.config.filtersets import (
    CharacteristicFilterSet,
    DeviceFilterSet,
    PlanAssignmentFilterSet,
    ProductFilterSet,
    TestFilterSet,
    TestPlanFilterSet,
)
from apps.config.models import (
    Characteristic,
    Device,
    PlanAssignment,
    Product,
    SamplingSchedule,
    Test,
    TestPlan,
    TestPlanEntry,
)
from apps.config.selectors import current_limits_prefetch, product_config_queryset
from apps.signatures.api.serializers import signer_from_request
from apps.signatures.choices import SignedAction
from openspc.api import acting_user, instance_of
from openspc.permissions import IsHuman, RoleModelPermissions
from openspc.roles import user_roles

CONFIG_PERMISSIONS = [IsHuman, RoleModelPermissions]


def _actor(request: Request) -> Actor:
    """Who changes the configuration, for the audit trail: the signed-in user, through the API."""
    return Actor(acting_user(request), "api")


def _entries(data: dict[str, Any]) -> list[services.PlanEntryInput] | None:
    if "tests" not in data:
        return None
    return [
        services.PlanEntryInput(
            test=e["test"], replicates=e["replicates"], requires_verification=e["requires_verification"]
        )
        for e in data.pop("tests")
    ]


class ProductViewSet(viewsets.ModelViewSet):
    queryset = Product.objects.all()
    serializer_class = serializers.ProductSerializer
    permission_classes = CONFIG_PERMISSIONS
    filterset_class = ProductFilterSet
    search_fields = ["code", "name", "description"]
    ordering_fields = ["code", "name", "created_at"]

    def get_queryset(self) -> QuerySet[Product]:
        return product_config_queryset() if self.action == "config" else Product.objects.all()

    def perform_create(self, serializer: BaseSerializer) -> None:
        serializer.instance = services.product_create(**serializer.validated_data, actor=_actor(self.request))

    def perform_update(self, serializer: BaseSerializer) -> None:
        serializer.instance = services.product_update(
            product=instance_of(serializer), data=serializer.validated_data, actor=_actor(self.request)
        )

    def perform_destroy(self, instance: Product) -> None:
        services.product_delete(product=instance, actor=_actor(self.request))

    @extend_schema(
        responses=serializers.ProductConfigSerializer, summary="The product's whole test configuration"
    )
    @action(detail=True, methods=["get"])
    def config(self, request: Request, pk: str | None = None) -> Response:
        return Response(serializers.ProductConfigSerializer(self.get_object()).data)


class TestViewSet(viewsets.ModelViewSet):
    serializer_class = serializers.TestSerializer
    permission_classes = CONFIG_PERMISSIONS
    filterset_class = TestFilterSet
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name", "kind", "created_at"]
    queryset = Test.objects.all()

    def get_queryset(self) -> QuerySet[Test]:
        return Test.objects.visible_to(self.request.user)

    def perform_create(self, serializer: BaseSerializer) -> None:
        serializer.instance = services.test_create(**serializer.validated_data, actor=_actor(self.request))

    def perform_update(self, serializer: BaseSerializer) -> None:
        serializer.instance = services.test_update(
            test=instance_of(serializer), data=serializer.validated_data, actor=_actor(self.request)
        )

    def perform_destroy(self, instance: Test) -> None:
        services.test_delete(test=instance, actor=_actor(self.request))


class TestPlanViewSet(viewsets.ModelViewSet):
    queryset = TestPlan.objects.prefetch_related(
        Prefetch("entries", queryset=TestPlanEntry.objects.select_related("test").order_by("position"))
    )
    serializer_class = serializers.TestPlanSerializer
    permission_classes = CONFIG_PERMISSIONS
    filterset_class = TestPlanFilterSet
    search_fields = ["code", "name"]
    ordering_fields = ["code", "version", "status", "created_at"]

    def get_serializer_class(self) -> type[BaseSerializer]:
        # One plan is shown with its release signatures; the list stays light.
        return (
            serializers.TestPlanSerializer if self.action == "list" else serializers.TestPlanDetailSerializer
        )

    def perform_create(self, serializer: BaseSerializer) -> None:
        data = dict(serializer.validated_data)
        entries = _entries(data) or []
        serializer.instance = services.test_plan_create(**data, entries=entries, actor=_actor(self.request))

    def perform_update(self, serializer: BaseSerializer) -> None:
        data = dict(serializer.validated_data)
        entries = _entries(data)
        serializer.instance = services.test_plan_update(
            plan=instance_of(serializer), data=data, entries=entries, actor=_actor(self.request)
        )

    def perform_destroy(self, instance: TestPlan) -> None:
        services.test_plan_delete(plan=instance, actor=_actor(self.request))

    def _respond(self, plan: TestPlan, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=plan.pk)).data, status=code)

    @extend_schema(request=serializers.TestPlanTestsSerializer, responses=serializers.TestPlanSerializer)
    @action(detail=True, methods=["post"], serializer_class=serializers.TestPlanTestsSerializer)
    def tests(self, request: Request, pk: str | None = None) -> Response:
        """Set the plan's tests in order: adds, removes and reorders (draft plans only)."""
        body = serializers.TestPlanTestsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        plan = services.test_plan_set_tests(
            plan=self.get_object(), entries=_entries(dict(body.validated_data)) or [], actor=_actor(request)
        )
        return Response(serializers.TestPlanSerializer(self.get_queryset().get(pk=plan.pk)).data)

    @extend_schema(request=serializers.PlanReleaseSerializer, responses=serializers.TestPlanDetailSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request: Request, pk: str | None = None) -> Response:
        """Release a draft plan, saying why. It can be assigned to products from then on, and never
        changes again."""
        body = serializers.PlanReleaseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        plan = self.get_object()
        # Checked before the release's transaction: a wrong password is refused (403, audited) and
        # the plan stays a draft.
        signer = signer_from_request(
            request, body.validated_data.get("signature"), action=SignedAction.PLAN_RELEASE
        )
        plan = services.test_plan_release(
            plan=plan, user=acting_user(request), actor=_actor(request), signer=signer,
            reason=body.validated_data["reason"],
        )  # fmt: skip
        return self._respond(plan)

    @extend_schema(request=None, responses=serializers.TestPlanSerializer)
    @action(detail=True, methods=["post"])
    def retire(self, request: Request, pk: str | None = None) -> Response:
        """Retire a released plan: observations against it are rejected from then on."""
        return self._respond(services.test_plan_retire(plan=self.get_object(), actor=_actor(request)))

    @extend_schema(request=None, responses={201: serializers.TestPlanSerializer})
    @action(detail=True, methods=["post"], url_path="new-version")
    def new_version(self, request: Request, pk: str | None = None) -> Response:
        """A draft copy of the plan with the next version number, to be edited and released."""
        draft = services.test_plan_new_version(plan=self.get_object(), actor=_actor(request))
        return self._respond(draft, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={201: serializers.TestPlanSerializer})
    @action(detail=True, methods=["post"])
    def reinstate(self, request: Request, pk: str | None = None) -> Response:
        """Bring a retired plan's tests back as a new draft version (the next number of its code), to
        be released and assigned. The retired version stays retired."""
        draft = services.test_plan_reinstate(plan=self.get_object(), actor=_actor(request))
        return self._respond(draft, status.HTTP_201_CREATED)


class PlanAssignmentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Test plans assigned to products for a period [effective_from, effective_to): from a moment
    (default now) until an exclusive end. An assignment is ended (effective_to), never deleted."""

    queryset = PlanAssignment.objects.select_related("assigned_by")
    serializer_class = serializers.PlanAssignmentSerializer
    permission_classes = CONFIG_PERMISSIONS
    filterset_class = PlanAssignmentFilterSet
    ordering_fields = ["effective_from", "created_at"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.action == "partial_update":
            return serializers.PlanAssignmentUpdateSerializer
        return serializers.PlanAssignmentSerializer

    def perform_create(self, serializer: BaseSerializer) -> None:
        serializer.instance = services.plan_assign(
            **serializer.validated_data, user=acting_user(self.request), actor=_actor(self.request)
        )

    def perform_update(self, serializer: BaseSerializer) -> None:
        assignment = instance_of(serializer)
        effective_to = serializer.validated_data.get("effective_to", assignment.effective_to)
        serializer.instance = services.plan_assignment_end(
            assignment=assignment, effective_to=effective_to, actor=_actor(self.request)
        )


class CharacteristicViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """SPC settings of each test on each product. Created by plan assignment; read and updated here."""

    queryset = Characteristic.objects.all()
    serializer_class = serializers.CharacteristicSerializer
    permission_classes = CONFIG_PERMISSIONS
    filterset_class = CharacteristicFilterSet
    search_fields = ["product__code", "test__code", "tag", "line", "cell"]
    ordering_fields = ["product__code", "test__code", "site", "area", "line", "cell", "updated_at"]
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Characteristic]:
        return (
            Characteristic.objects.visible_to(self.request.user)
            .with_config()
            .prefetch_related(current_limits_prefetch())
        )

    def perform_update(self, serializer: BaseSerializer) -> None:
        data = dict(serializer.validated_data)
        reason = data.pop("reason", "")
        characteristic = services.characteristic_update(
            characteristic=instance_of(serializer), data=data, actor=_actor(self.request), reason=reason
        )
        serializer.instance = self.get_queryset().get(pk=characteristic.pk)

    @extend_schema(responses=serializers.SignedControlLimitsSerializer(many=True), filters=False)
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None)
    def limits(self, request: Request, pk: str | None = None) -> Response:
        """Every version of the control limits, newest first."""
        versions = self.get_object().limits.select_related("set_by").order_by("-version")
        return Response(serializers.SignedControlLimitsSerializer(versions, many=True).data)


class DeviceViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Devices, their tokens and what they may post to. The token is in the creation response only.

    A device posts only to its `characteristics` (ids) and to every test of its `products` (ids);
    anything else is refused with 403. Set both on creation or with PATCH."""

    queryset = Device.objects.prefetch_related("characteristics", "products")
    serializer_class = serializers.DeviceSerializer
    permission_classes = CONFIG_PERMISSIONS
    filterset_class = DeviceFilterSet
    search_fields = ["name"]
    ordering_fields = ["name", "created_at", "last_used_at"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    @extend_schema(responses={201: serializers.DeviceCreatedSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device, token = services.device_create(**serializer.validated_data, actor=_actor(request))
        body = dict(serializers.DeviceSerializer(device).data, token=token)
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer: BaseSerializer) -> None:
        serializer.instance = services.device_update(
            device=instance_of(serializer), data=serializer.validated_data, actor=_actor(self.request)
        )


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=serializers.MeSerializer, summary="Who is signed in, and their roles")
    def get(self, request: Request) -> Response:
        user = request.user
        body = {
            "id": user.pk,
            "username": user.get_username(),
            "roles": sorted(user_roles(user)),
            "is_staff": user.is_staff,
        }
        return Response(serializers.MeSerializer(body).data)


class PingView(APIView):
    """The cheapest authenticated answer: what Django, DRF, authentication and the server cost per
    request, with no work of ours (bench/samples_sync.py measures the API's ceiling with it)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses=serializers.PingSerializer,
        summary="Answer {ok: true} to anyone signed in, doing nothing else (a ceiling for load tests)",
    )
    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class SamplingScheduleViewSet(viewsets.ModelViewSet):
    """When samples of a characteristic are due (docs/alarms.md, "Sampling schedules"): every N
    minutes, once per shift, once per lot, or every N units made; one per characteristic, or one per
    test for its characteristics without their own. Quality specialists write them (audited)."""

    serializer_class = serializers.SamplingScheduleSerializer
    permission_classes = CONFIG_PERMISSIONS
    filterset_fields = ["characteristic", "test", "kind", "active"]
    queryset = SamplingSchedule.objects.order_by("pk")

    def perform_create(self, serializer: BaseSerializer) -> None:
        serializer.instance = services.schedule_create(
            **serializer.validated_data, actor=_actor(self.request)
        )

    def perform_update(self, serializer: BaseSerializer) -> None:
        serializer.instance = services.schedule_update(
            schedule=instance_of(serializer), data=serializer.validated_data, actor=_actor(self.request)
        )

    def perform_destroy(self, instance: SamplingSchedule) -> None:
        services.schedule_delete(schedule=instance, actor=_actor(self.request))

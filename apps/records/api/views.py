"""Lot records API: a lot's review, its signed disposition, the request to release it, and the
out-of-spec investigations. Writes go through services."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.observations.models import Lot
from apps.records import selectors, services
from apps.records.api import serializers
from apps.records.filtersets import OosInvestigationFilterSet
from apps.records.models import LotDisposition, OosInvestigation
from apps.signatures.api.serializers import signer_from_request
from apps.signatures.choices import SignedAction
from apps.signatures.selectors import signatures_of
from openspc.api import acting_user
from openspc.permissions import IsHuman, RoleModelPermissions


class ReadsLots(BasePermission):
    """Whoever reads lots reads their review (Quality Specialists, Operations Leads, Managers)."""

    message = "Your role does not read lots."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.user.has_perm("observations.view_lot")


class LotRecordsViewSet(viewsets.GenericViewSet):
    """A lot's review, its disposition (signed) and the request to release it."""

    queryset = Lot.objects.select_related("product")
    permission_classes = [IsHuman, ReadsLots]
    filterset_class = None
    pagination_class = None
    serializer_class = serializers.LotReviewSerializer

    @extend_schema(responses=serializers.LotReviewSerializer, filters=False)
    @action(detail=True, methods=["get"])
    def review(self, request: Request, pk: str | None = None) -> Response:
        """The item × test matrix with each result's verdict, the counts, open investigations,
        violations waiting for acknowledgement, signatures, and every reason blocking release."""
        review = selectors.lot_review(lot=self.get_object())
        return Response(serializers.LotReviewSerializer(review).data)

    @extend_schema(
        request=serializers.DispositionInputSerializer, responses={201: serializers.DispositionSerializer}
    )
    @action(detail=True, methods=["post"], serializer_class=serializers.DispositionInputSerializer)
    def disposition(self, request: Request, pk: str | None = None) -> Response:
        """Release, reject or quarantine the lot, with your electronic signature. A release is
        refused (409 `release_blocked`, with `reasons`) while anything blocks it, unless it is under
        a deviation: give `deviation` with its justification. Release and reject need the
        approve-lot-disposition right."""
        lot = self.get_object()
        body = serializers.DispositionInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        user = acting_user(request)
        services.disposition_may(user=user, decision=data["decision"])
        signature = data.get("signature")
        services.disposition_validate(
            decision=data["decision"], deviation=data.get("deviation", ""),
            meaning=signature["meaning"] if signature else None,
        )  # fmt: skip
        signer = signer_from_request(request, signature, action=SignedAction.LOT_DISPOSITION)
        disposition = services.lot_disposition_decide(
            lot=lot, decision=data["decision"], user=user, signer=signer, deviation=data.get("deviation", ""),
            reason=data.get("reason", ""), under_deviation="deviation" in data,
        )  # fmt: skip
        return Response(_disposition_data(disposition), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=serializers.ReleaseRequestInputSerializer,
        responses={201: serializers.ReleaseRequestSerializer},
    )
    @action(
        detail=True, methods=["post"], url_path="request-release",
        serializer_class=serializers.ReleaseRequestInputSerializer,
    )  # fmt: skip
    def request_release(self, request: Request, pk: str | None = None) -> Response:
        """Ask the approvers (Quality Specialists) to release the lot: each is notified, with what
        still blocks the release."""
        lot = self.get_object()
        body = serializers.ReleaseRequestInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        release = services.lot_release_request(
            lot=lot, user=acting_user(request), note=body.validated_data.get("note", "")
        )
        release.reasons = selectors.lot_review(lot=lot).reasons  # type: ignore[attr-defined]
        return Response(serializers.ReleaseRequestSerializer(release).data, status=status.HTTP_201_CREATED)


def _disposition_data(disposition: LotDisposition) -> dict[str, Any]:
    disposition.manifests = signatures_of(disposition)  # type: ignore[attr-defined]
    return serializers.DispositionSerializer(disposition).data


class OosInvestigationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Out-of-spec investigations, opened when a tester's confirmed result is outside its
    specification limits: open → phase_one (start/) → closed (close/, outcome lab_error or
    confirmed_oos). Quality Specialists work them."""

    queryset = OosInvestigation.objects.all()
    serializer_class = serializers.OosInvestigationSerializer
    permission_classes = [IsHuman, RoleModelPermissions]
    filterset_class = OosInvestigationFilterSet
    ordering_fields = ["opened_at", "status"]

    def get_queryset(self) -> QuerySet[OosInvestigation]:
        return selectors.investigation_queryset()

    def _answer(self, investigation: OosInvestigation) -> Response:
        row = self.get_queryset().get(pk=investigation.pk)
        context = self.get_serializer_context()
        return Response(serializers.OosInvestigationSerializer(row, context=context).data)

    def get_permissions(self) -> Any:
        if self.action in {"start", "notes", "close"}:
            return [IsHuman(), ChangesInvestigations()]
        return super().get_permissions()

    @extend_schema(request=None, responses=serializers.OosInvestigationSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str | None = None) -> Response:
        """Begin phase I (the laboratory investigation); you become its owner."""
        investigation = services.oos_investigation_start(
            investigation=self.get_object(), user=acting_user(request)
        )
        return self._answer(investigation)

    @extend_schema(request=serializers.NoteInputSerializer, responses=serializers.OosInvestigationSerializer)
    @action(detail=True, methods=["post"], serializer_class=serializers.NoteInputSerializer)
    def notes(self, request: Request, pk: str | None = None) -> Response:
        """Add a note (who and when are recorded)."""
        body = serializers.NoteInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        investigation = self.get_object()
        services.oos_investigation_note(
            investigation=investigation, user=acting_user(request), text=body.validated_data["text"]
        )
        return self._answer(investigation)

    @extend_schema(
        request=serializers.InvestigationCloseSerializer, responses=serializers.OosInvestigationSerializer
    )
    @action(detail=True, methods=["post"], serializer_class=serializers.InvestigationCloseSerializer)
    def close(self, request: Request, pk: str | None = None) -> Response:
        """Close phase I: `lab_error` (the result is invalidated, a retest follows) or `confirmed_oos`."""
        body = serializers.InvestigationCloseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        investigation = services.oos_investigation_close(
            investigation=self.get_object(), user=acting_user(request), **body.validated_data
        )
        return self._answer(investigation)


class ChangesInvestigations(BasePermission):
    message = "Your role does not work on out-of-spec investigations."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.user.has_perm("records.change_oosinvestigation")

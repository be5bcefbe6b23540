"""What the bridge could not read, the Sparkplug edge nodes it knows and the data health alarms it
raised, read-only, for the quality specialists and the plant's IT (also in the admin)."""

from collections.abc import Sequence
from typing import Any

import django_filters
from django.conf import settings
from django.db.models import QuerySet
from django.db.models.functions import Length
from rest_framework import mixins, viewsets
from rest_framework.request import Request
from rest_framework.views import APIView

from apps.audit.api.views import NewestFirstPagination, ReadOnlyPermissions
from apps.config.choices import DataSource
from apps.config.models import Characteristic
from apps.mqtt_bridge.api.serializers import (
    DataHealthAlarmSerializer,
    DeadLetterSerializer,
    EdgeNodeSerializer,
)
from apps.mqtt_bridge.choices import DataHealthKind, DeadLetterReason
from apps.mqtt_bridge.models import DataHealthAlarm, DeadLetter, EdgeNode
from apps.mqtt_bridge.selectors import dead_letters_fitting, sparkplug_health
from openspc.permissions import IsHuman


class DeadLetterFilterSet(django_filters.FilterSet):
    reason = django_filters.MultipleChoiceFilter(choices=DeadLetterReason.choices)
    topic = django_filters.CharFilter(lookup_expr="startswith", help_text="Topics starting with this.")
    received_after = django_filters.IsoDateTimeFilter(field_name="last_received_at", lookup_expr="gte")

    class Meta:
        model = DeadLetter
        fields = ["reason", "topic", "received_after"]


class DeadLetterPagination(NewestFirstPagination):
    """Newest first; a page also ends once the payloads on it pass MQTT_DEAD_LETTER_PAGE_BYTES
    (it has at least one row), and `next` goes on after its last row."""

    ordering = ("-last_received_at", "-id")
    rows_fitting: int | None = None  # set per request: rows that fit the byte budget

    def get_page_size(self, request: Request) -> int | None:
        size = super().get_page_size(request)
        return min(size, self.rows_fitting) if size and self.rows_fitting else size

    def paginate_queryset(
        self, queryset: QuerySet[Any, Any] | Sequence[Any], request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        assert isinstance(queryset, QuerySet)
        # First the page's rows with their payload sizes only, to find how many fit; then the
        # page of that many with the payloads. Two queries, and never a page's worth of megabytes.
        self.rows_fitting = None
        sizes = queryset.defer("payload").annotate(stored_bytes=Length("payload"))
        sized: list[Any] | None = super().paginate_queryset(sizes, request, view)
        if sized is None:
            return None
        self.rows_fitting = dead_letters_fitting(
            sizes=[row.stored_bytes for row in sized], budget=settings.MQTT_DEAD_LETTER_PAGE_BYTES
        )
        return super().paginate_queryset(queryset, request, view)


class DeadLetterViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Messages `mqtt_listen` could not turn into observations, with the start of their raw bytes
    (MQTT_DEAD_LETTER_KEEP_BYTES), their size, SHA-256 and the reason. A page holds at most
    `page_size` rows and stops early once their payloads pass MQTT_DEAD_LETTER_PAGE_BYTES: follow
    `next` for the rest."""

    queryset = DeadLetter.objects.all()
    serializer_class = DeadLetterSerializer
    permission_classes = [IsHuman, ReadOnlyPermissions]
    filterset_class = DeadLetterFilterSet
    pagination_class = DeadLetterPagination
    ordering_fields: list[str] = []
    search_fields = ["topic", "message"]


class EdgeNodeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Sparkplug B edge nodes and devices: online since their BIRTH, offline after their DEATH."""

    queryset = EdgeNode.objects.all()
    serializer_class = EdgeNodeSerializer
    permission_classes = [IsHuman, ReadOnlyPermissions]
    filterset_fields = ["online", "group", "node"]
    ordering_fields = ["group", "node", "device", "born_at", "died_at"]
    search_fields = ["group", "node", "device"]

    def get_queryset(self) -> QuerySet[EdgeNode]:
        return EdgeNode.objects.order_by("group", "node", "device")

    def get_serializer_context(self) -> dict[str, Any]:
        fed = Characteristic.objects.filter(data_source=DataSource.SPARKPLUG, tag__isnull=False)
        return {
            **super().get_serializer_context(),
            "fed_by_metric": dict(fed.values_list("tag", "pk")),
            "health": sparkplug_health(),
        }


class DataHealthAlarmFilterSet(django_filters.FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=DataHealthKind.choices)
    raised_after = django_filters.IsoDateTimeFilter(field_name="raised_at", lookup_expr="gte")

    class Meta:
        model = DataHealthAlarm
        fields = ["kind", "source", "raised_after"]


class RaisedPagination(NewestFirstPagination):
    ordering = ("-raised_at", "-id")


class DataHealthAlarmViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Data that may have been lost before OpenSPC stored it, newest first: for now, the MQTT broker's
    dropped-message counter moving (`mqtt_listen` watches it in $SYS). Also sent live as
    `data_health.alarm` to the channel group `data_health`."""

    queryset = DataHealthAlarm.objects.all()
    serializer_class = DataHealthAlarmSerializer
    permission_classes = [IsHuman, ReadOnlyPermissions]
    filterset_class = DataHealthAlarmFilterSet
    pagination_class = RaisedPagination
    ordering_fields: list[str] = []
    search_fields = ["source", "subject", "message"]

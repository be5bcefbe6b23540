"""What the bridge could not read and the Sparkplug edge nodes it knows, read-only, for the quality
specialists and the plant's IT (also in the admin)."""

from typing import Any

import django_filters
from django.db.models import QuerySet
from rest_framework import mixins, viewsets

from apps.audit.api.views import NewestFirstPagination, ReadOnlyPermissions
from apps.config.choices import DataSource
from apps.config.models import Characteristic
from apps.config.permissions import IsHuman
from apps.mqtt_bridge.api.serializers import DeadLetterSerializer, EdgeNodeSerializer
from apps.mqtt_bridge.models import DeadLetter, DeadLetterReason, EdgeNode


class DeadLetterFilterSet(django_filters.FilterSet):
    reason = django_filters.MultipleChoiceFilter(choices=DeadLetterReason.choices)
    topic = django_filters.CharFilter(lookup_expr="startswith", help_text="Topics starting with this.")
    received_after = django_filters.IsoDateTimeFilter(field_name="last_received_at", lookup_expr="gte")

    class Meta:
        model = DeadLetter
        fields = ["reason", "topic", "received_after"]


class LastReceivedPagination(NewestFirstPagination):
    ordering = ("-last_received_at", "-id")


class DeadLetterViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Messages `mqtt_listen` could not turn into observations, with their raw bytes and the reason."""

    queryset = DeadLetter.objects.all()
    serializer_class = DeadLetterSerializer
    permission_classes = [IsHuman, ReadOnlyPermissions]
    filterset_class = DeadLetterFilterSet
    pagination_class = LastReceivedPagination
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
        return {**super().get_serializer_context(), "fed_by_metric": dict(fed.values_list("tag", "pk"))}

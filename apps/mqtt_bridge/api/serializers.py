import base64
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.mqtt_bridge.models import DataHealthAlarm, DeadLetter, EdgeNode
from apps.mqtt_bridge.selectors import source_health
from apps.observations.models import CharacteristicHealth

PREVIEW_BYTES = 2000


class DeadLetterSerializer(serializers.ModelSerializer):
    payload_text = serializers.SerializerMethodField(
        help_text="The first 2,000 bytes as UTF-8, bytes that are not text escaped (\\xNN)."
    )
    payload_base64 = serializers.SerializerMethodField(
        help_text="The payload as kept, byte for byte: the first MQTT_DEAD_LETTER_KEEP_BYTES of the message."
    )
    payload_truncated = serializers.SerializerMethodField(
        help_text="Whether the message was longer than what is kept (payload_size and payload_sha256: "
        "the whole message's)."
    )

    class Meta:
        model = DeadLetter
        fields = [
            "id", "topic", "reason", "message", "count", "first_received_at", "last_received_at",
            "listener", "payload_text", "payload_base64", "payload_size", "payload_sha256",
            "payload_truncated",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.CharField())
    def get_payload_text(self, obj: DeadLetter) -> str:
        return bytes(obj.payload[:PREVIEW_BYTES]).decode("utf-8", errors="backslashreplace")

    @extend_schema_field(serializers.CharField())
    def get_payload_base64(self, obj: DeadLetter) -> str:
        return base64.b64encode(bytes(obj.payload)).decode()

    @extend_schema_field(serializers.BooleanField())
    def get_payload_truncated(self, obj: DeadLetter) -> bool:
        return obj.payload_size > len(obj.payload)


class SourceHealthSerializer(serializers.Serializer):
    """The data health of the characteristics a source feeds, summed over the last check's window."""

    confirmed = serializers.IntegerField(help_text="Values confirmed.")
    rejected = serializers.IntegerField(help_text="Values rejected, dead letters meant for them included.")
    rejected_percent = serializers.IntegerField()
    dead_letters = serializers.IntegerField(help_text="Its messages kept as dead letters.")
    unhealthy = serializers.DictField(
        child=serializers.CharField(),
        help_text="Characteristic id -> its state (rejecting, offline, stale), for those not ok.",
    )


class EdgeNodeSerializer(serializers.ModelSerializer):
    characteristics = serializers.SerializerMethodField(
        help_text="Ids of the characteristics fed by a metric of its last BIRTH."
    )
    health = serializers.SerializerMethodField(
        help_text='The data health of those characteristics (docs/alarms.md, "Data health"), per source.'
    )

    class Meta:
        model = EdgeNode
        fields = [
            "id",
            "group",
            "node",
            "device",
            "online",
            "metrics",
            "characteristics",
            "born_at",
            "died_at",
            "stale_deaths",
            "stale_death_at",
            "health",
        ]
        read_only_fields = fields  # a list and a detail, nothing written: the same schema on every database

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_characteristics(self, obj: EdgeNode) -> list[int]:
        fed: dict[str, int] = self.context.get("fed_by_metric", {})
        return sorted({fed[name] for name in obj.metrics if name in fed})

    @extend_schema_field(SourceHealthSerializer)
    def get_health(self, obj: EdgeNode) -> dict[str, Any]:
        rows: dict[int, CharacteristicHealth] = self.context.get("health", {})
        return source_health([rows[pk] for pk in self.get_characteristics(obj) if pk in rows])


class DataHealthAlarmSerializer(serializers.ModelSerializer):
    class Meta:
        model = DataHealthAlarm
        fields = [
            "id", "kind", "source", "subject", "message", "value_before", "value_after", "raised_at",
            "listener",
        ]  # fmt: skip
        read_only_fields = fields

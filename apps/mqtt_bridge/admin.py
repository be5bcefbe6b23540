"""The bridge's rows in the admin: what could not be read, the Sparkplug edge nodes, and the data
health alarms (the broker dropped messages)."""

from django.contrib import admin

from apps.mqtt_bridge.models import DataHealthAlarm, DeadLetter, EdgeNode
from openspc.admin import ReadOnlyAdmin


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ["topic", "reason", "count", "payload_size", "last_received_at", "listener"]
    list_filter = ["reason", "listener"]
    search_fields = ["topic", "message"]
    date_hierarchy = "last_received_at"
    fields = readonly_fields = (
        "topic", "reason", "message", "payload_shown", "payload_size", "payload_sha256", "count",
        "first_received_at", "last_received_at", "listener",
    )  # fmt: skip

    @admin.display(description="payload")
    def payload_shown(self, obj: DeadLetter) -> str:
        """The raw bytes as text where they are text, escaped where not; the first 2,000."""
        return bytes(obj.payload[:2000]).decode("utf-8", errors="backslashreplace")


@admin.register(EdgeNode)
class EdgeNodeAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "online", "born_at", "died_at", "stale_deaths"]
    list_filter = ["online", "group"]
    search_fields = ["group", "node", "device"]


@admin.register(DataHealthAlarm)
class DataHealthAlarmAdmin(ReadOnlyAdmin):
    list_display = ["raised_at", "kind", "source", "subject", "value_before", "value_after", "listener"]
    list_filter = ["kind", "source"]
    search_fields = ["source", "subject", "message"]
    date_hierarchy = "raised_at"
    fields = readonly_fields = (
        "kind", "source", "subject", "message", "value_before", "value_after", "raised_at", "listener",
    )  # fmt: skip

"""Shape of the audit trail in the API."""

from rest_framework import serializers

from apps.audit.models import AuditEntry
from openspc.api import ModelSerializer


class AuditEntrySerializer(ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True, allow_null=True)
    object_type = serializers.SerializerMethodField(help_text="app_label.model of the object changed.")

    class Meta:
        model = AuditEntry
        fields = [
            "id", "at", "user", "username", "action", "object_type", "object_id", "object_repr", "before",
            "after", "reason", "source",
        ]  # fmt: skip
        read_only_fields = fields

    def get_object_type(self, obj: AuditEntry) -> str:
        return f"{obj.content_type.app_label}.{obj.content_type.model}"

"""Shape of the audit trail in the API: the stored entry (raw `before` and `after`, ids as stored)
and the same entry in words (names of people and things, labels, `changes` as text)."""

from dataclasses import asdict
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.audit import words
from apps.audit.models import AuditEntry
from openspc.api import ModelSerializer


class ChangeSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="The field's name as stored in before / after.")
    label = serializers.CharField(help_text="The field in words.")  # type: ignore[assignment]
    before = serializers.CharField(help_text="The value before, in words ('' for a creation).")
    after = serializers.CharField(help_text="The value after, in words ('' for a deletion).")


class AuditEntryListSerializer(serializers.ListSerializer):
    """Loads what the page's entries refer to once for the page (words.references_load)."""

    def to_representation(self, data: Any) -> list[Any]:
        entries = list(data.all() if hasattr(data, "all") else data)
        self._context["references"] = words.references_load(entries)  # type: ignore[index]
        return super().to_representation(entries)


class AuditEntrySerializer(ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True, allow_null=True)
    user_name = serializers.SerializerMethodField(help_text="Full name, or user name; 'The system'.")
    action_label = serializers.CharField(source="get_action_display", read_only=True)
    object_type = serializers.SerializerMethodField(help_text="app_label.model of the object changed.")
    object_type_label = serializers.SerializerMethodField(help_text="The kind of record, in words.")
    changes = serializers.SerializerMethodField(
        help_text="Each field in before / after with its label and its values in words (references "
        "by what they name, times in the plant's time zone)."
    )

    class Meta:
        model = AuditEntry
        list_serializer_class = AuditEntryListSerializer
        fields = [
            "id", "seq", "at", "user", "username", "user_name", "action", "action_label", "object_type",
            "object_type_label", "object_id", "object_repr", "before", "after", "changes", "reason",
            "source", "prev_hash", "hash",
        ]  # fmt: skip
        read_only_fields = fields

    def get_user_name(self, obj: AuditEntry) -> str:
        return words.user_name(obj.user)

    def get_object_type(self, obj: AuditEntry) -> str:
        return f"{obj.content_type.app_label}.{obj.content_type.model}"

    def get_object_type_label(self, obj: AuditEntry) -> str:
        return words.record_type(obj)

    @extend_schema_field(ChangeSerializer(many=True))
    def get_changes(self, obj: AuditEntry) -> list[dict[str, str]]:
        references = self.context.get("references")
        if references is None:  # one entry (retrieve)
            references = words.references_load([obj])
        return [asdict(change) for change in words.entry_changes(obj, references)]

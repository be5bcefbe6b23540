"""Lot review, disposition, release request and out-of-spec investigation bodies."""

from typing import Any

from rest_framework import serializers

from apps.records.choices import Decision, InvestigationOutcome, Verdict
from apps.records.models import InvestigationNote, LotDisposition, OosInvestigation
from apps.signatures.api.serializers import ManifestSerializer, SignatureInputSerializer


class ReviewColumnSerializer(serializers.Serializer):
    test = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    unit = serializers.CharField()
    decimals = serializers.IntegerField()
    lsl = serializers.FloatField(allow_null=True)
    usl = serializers.FloatField(allow_null=True)


class ReviewResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    values = serializers.ListField(child=serializers.JSONField())
    status = serializers.CharField()
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    out_of_spec = serializers.BooleanField()
    needs_verification = serializers.BooleanField()
    entered_by = serializers.CharField(allow_null=True)
    entered_at = serializers.DateTimeField()
    verified_by = serializers.CharField(allow_null=True)
    verified_at = serializers.DateTimeField(allow_null=True)
    retest_of = serializers.IntegerField(allow_null=True)


class ReviewCellSerializer(serializers.Serializer):
    test = serializers.IntegerField()
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    current = ReviewResultSerializer(
        allow_null=True, help_text="The result that counts (the last confirmed one)."
    )
    results = ReviewResultSerializer(
        many=True, help_text="Every result of the test on the item, oldest first."
    )


class ReviewRowSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    serial = serializers.CharField()
    tester = serializers.CharField(allow_null=True)
    cells = ReviewCellSerializer(many=True, allow_null=True, help_text="In column order; null: not required.")


class ReviewLotLevelSerializer(serializers.Serializer):
    test = serializers.IntegerField()
    code = serializers.CharField()
    confirmed = serializers.IntegerField()
    received = serializers.IntegerField()
    rejected = serializers.IntegerField()


class BlockingReasonSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class InvestigationSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    status_label = serializers.CharField()
    outcome = serializers.CharField()
    item = serializers.IntegerField(allow_null=True)
    serial = serializers.CharField(allow_null=True)
    test = serializers.IntegerField()
    code = serializers.CharField()
    observation = serializers.IntegerField()
    owner = serializers.CharField(allow_null=True)
    opened_at = serializers.DateTimeField()


class LotReviewSerializer(serializers.Serializer):
    lot = serializers.IntegerField()
    number = serializers.CharField()
    product = serializers.CharField()
    status = serializers.CharField()
    columns = ReviewColumnSerializer(many=True)
    rows = ReviewRowSerializer(many=True)
    lot_level = ReviewLotLevelSerializer(
        many=True, help_text="Device data that names only the lot, per test."
    )
    tests_required = serializers.IntegerField(help_text="(item, test) pairs the items' plans ask for.")
    tests_done = serializers.IntegerField()
    results_to_verify = serializers.IntegerField(help_text="Done tests whose result needs verification.")
    results_verified = serializers.IntegerField()
    out_of_spec = serializers.IntegerField()
    being_checked = serializers.IntegerField()
    violations_unacknowledged = serializers.IntegerField()
    investigations_open = serializers.IntegerField()
    investigations = InvestigationSummarySerializer(many=True)
    releasable = serializers.BooleanField()
    reasons = BlockingReasonSerializer(
        many=True, help_text="Every reason the lot cannot be released, in words."
    )
    signatures = ManifestSerializer(many=True)


class DispositionInputSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Decision.choices)
    deviation = serializers.CharField(
        required=False, allow_blank=True, max_length=4000, trim_whitespace=True,
        help_text="Release under deviation: its justification (required when given).",
    )  # fmt: skip
    reason = serializers.CharField(required=False, allow_blank=True, max_length=4000)
    signature = SignatureInputSerializer(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "deviation" in attrs and not attrs["deviation"]:
            raise serializers.ValidationError(
                {"deviation": "A release under deviation needs its justification."}
            )
        return attrs


class DispositionSerializer(serializers.ModelSerializer[LotDisposition]):
    decided_by_name = serializers.SerializerMethodField()
    signatures = ManifestSerializer(many=True, read_only=True, source="manifests")

    class Meta:
        model = LotDisposition
        fields = [
            "id", "lot", "decision", "deviation", "reason", "blocking_reasons", "decided_by",
            "decided_by_name", "decided_at", "signatures",
        ]  # fmt: skip

    def get_decided_by_name(self, obj: LotDisposition) -> str:
        return obj.decided_by.get_full_name() or obj.decided_by.get_username()


class ReleaseRequestInputSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ReleaseRequestSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    lot = serializers.IntegerField(source="lot_id")
    requested_by = serializers.IntegerField(source="requested_by_id")
    requested_at = serializers.DateTimeField()
    note = serializers.CharField()
    reasons = BlockingReasonSerializer(many=True, help_text="What still blocks the release as requested.")


class InvestigationNoteSerializer(serializers.ModelSerializer[InvestigationNote]):
    written_by_name = serializers.SerializerMethodField()

    class Meta:
        model = InvestigationNote
        fields = ["id", "text", "written_by", "written_by_name", "written_at"]

    def get_written_by_name(self, obj: InvestigationNote) -> str:
        return obj.written_by.get_full_name() or obj.written_by.get_username()


class OosInvestigationSerializer(serializers.ModelSerializer[OosInvestigation]):
    lot_number = serializers.CharField(source="lot.number", read_only=True)
    test_code = serializers.CharField(source="test.code", read_only=True)
    item = serializers.IntegerField(source="observation.item_id", read_only=True, allow_null=True)
    notes = InvestigationNoteSerializer(many=True, read_only=True)

    class Meta:
        model = OosInvestigation
        fields = [
            "id", "lot", "lot_number", "observation", "item", "characteristic", "test", "test_code", "status",
            "outcome", "owner", "opened_at", "started_at", "closed_at", "closed_by", "summary", "notes",
        ]  # fmt: skip
        read_only_fields = fields


class InvestigationStartSerializer(serializers.Serializer):
    pass


class NoteInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=4000)


class InvestigationCloseSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=InvestigationOutcome.choices)
    summary = serializers.CharField(max_length=4000)

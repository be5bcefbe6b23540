"""Shapes of the observation API. They check the form of a request; services check the rules."""

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.config.choices import MAX_SUBGROUP_SIZE
from apps.observations.choices import LOT_DISPOSITIONS, LotStatus, MissedSampleReason
from apps.observations.models import Invalidation, Item, Lot, Observation, ScheduledSample
from apps.observations.services.items import MAX_ITEMS_PER_REQUEST
from apps.observations.services.verification import MAX_VERIFY_BATCH
from apps.signatures.api.serializers import SignatureInputSerializer
from openspc.api import ModelSerializer

MAX_TESTER_BATCH = 500
MAX_DEVICE_BATCH = 5000


class LotSerializer(ModelSerializer):
    product_code = serializers.CharField(source="product.code", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    item_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = Lot
        fields = [
            "id", "product", "product_code", "number", "status", "item_count",
            "created_by", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["status"]
        # Uniqueness of the number within the product is the service's rule, in its words.
        validators: list[object] = []


class LotStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=LotStatus.choices)

    def validate_status(self, value: str) -> str:
        # Release, reject and quarantine are signed dispositions under the release policy (apps.records).
        if value in LOT_DISPOSITIONS:
            label = LotStatus(value).label.lower()
            raise serializers.ValidationError(
                f"A lot is {label} only by a signed disposition: POST /api/v1/lots/{{id}}/disposition/ "
                "(the lot page's Disposition button)."
            )
        return value


class ItemsCreateSerializer(serializers.Serializer):
    count = serializers.IntegerField(
        min_value=1, max_value=MAX_ITEMS_PER_REQUEST, required=False,
        help_text="Create this many items with serials 0001, 0002, … (skipping serials in use).",
    )  # fmt: skip
    serials = serializers.ListField(
        child=serializers.CharField(max_length=64), min_length=1, max_length=MAX_ITEMS_PER_REQUEST,
        required=False, help_text="Create one item per serial.",
    )  # fmt: skip

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("count" in attrs) == ("serials" in attrs):
            raise serializers.ValidationError("Give either count or serials.")
        return attrs


class LotProgressSerializer(serializers.Serializer):
    items = serializers.IntegerField()
    items_assigned = serializers.IntegerField()
    tests_total = serializers.IntegerField(help_text="(item, test) pairs the items' plans ask for.")
    tests_done = serializers.IntegerField(help_text="Pairs with a confirmed observation.")
    tests_due = serializers.IntegerField()
    received = serializers.IntegerField(help_text="Observations stored, not yet checked.")
    confirmed = serializers.IntegerField()
    rejected = serializers.IntegerField()


class ItemSerializer(ModelSerializer):
    lot_number = serializers.CharField(source="lot.number", read_only=True)
    product = serializers.IntegerField(source="lot.product_id", read_only=True)
    tester = serializers.CharField(source="tester.username", read_only=True, allow_null=True)

    class Meta:
        model = Item
        fields = [
            "id",
            "lot",
            "lot_number",
            "product",
            "serial",
            "plans",
            "tester",
            "assigned_at",
            "created_at",
        ]
        read_only_fields = fields


class ItemIdsSerializer(serializers.Serializer):
    items = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=MAX_ITEMS_PER_REQUEST
    )


class ItemsSelectPlansSerializer(ItemIdsSerializer):
    plans = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=50)


class ItemsAssignSerializer(ItemIdsSerializer):
    tester = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.all(), allow_null=True,
        help_text="The user (with the Tester role) to hand the items to; null takes them back.",
    )  # fmt: skip


class TestDueSerializer(serializers.Serializer):
    test = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    unit = serializers.CharField()
    decimals = serializers.IntegerField()
    instructions = serializers.CharField()
    replicates = serializers.IntegerField(help_text="Values to post for this test on this item.")
    plausible_min = serializers.FloatField(allow_null=True)
    plausible_max = serializers.FloatField(allow_null=True)
    lsl = serializers.FloatField(allow_null=True, help_text="The product's lower spec limit, if any.")
    usl = serializers.FloatField(allow_null=True, help_text="The product's upper spec limit, if any.")
    plan = serializers.CharField(help_text="The plan asking for it, e.g. 'RING v2'.")
    retest_of = serializers.IntegerField(
        allow_null=True,
        help_text="The invalidated result of this test on this item, if any: post the retest to "
        "/api/v1/observations/{retest_of}/retest/.",
    )


class MyItemSerializer(ModelSerializer):
    lot_number = serializers.CharField(source="lot.number", read_only=True)
    lot_status = serializers.CharField(source="lot.status", read_only=True)
    product_code = serializers.CharField(source="lot.product.code", read_only=True)
    tests_due = serializers.SerializerMethodField()

    class Meta:
        model = Item
        fields = [
            "id",
            "lot",
            "lot_number",
            "lot_status",
            "product_code",
            "serial",
            "assigned_at",
            "tests_due",
        ]
        read_only_fields = fields

    @extend_schema_field(TestDueSerializer(many=True))
    def get_tests_due(self, obj: Item) -> list[dict[str, Any]]:
        from apps.observations.selectors import item_tests_due

        return item_tests_due(obj)


@extend_schema_field(
    {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": MAX_SUBGROUP_SIZE}
)
class ValuesField(serializers.Field):
    """The replicate values of one test: a list of JSON numbers, as posted.

    Only the shape is checked here. Whether a number is finite, plausible and of
    the right count is the worker's verdict, kept with the row (1e999 parses to
    infinity and is stored, then rejected as not a finite number).
    """

    def to_internal_value(self, data: Any) -> list[Any]:
        if not isinstance(data, list):
            raise serializers.ValidationError("Give a list of numbers, e.g. [74.02].")
        if not 1 <= len(data) <= MAX_SUBGROUP_SIZE:
            raise serializers.ValidationError(
                f"Give between 1 and {MAX_SUBGROUP_SIZE} values; got {len(data)}."
            )
        for position, value in enumerate(data, start=1):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise serializers.ValidationError(f"Value {position} ({value!r:.40}) is not a number.")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class ObservationEntrySerializer(serializers.Serializer):
    """One observation by a tester: all replicate values of one test on one assigned item."""

    item = serializers.IntegerField(min_value=1, help_text="An item assigned to you.")
    test = serializers.IntegerField(min_value=1, help_text="A test of the item's plans.")
    values = ValuesField(help_text="The replicate values, as many as the plan asks for.")
    observed_at = serializers.DateTimeField(required=False, help_text="When it was measured; default: now.")
    idempotency_key = serializers.CharField(
        max_length=128, required=False,
        help_text="Your key for this observation: a retry with the same key creates nothing new.",
    )  # fmt: skip


class DeviceObservationSerializer(serializers.Serializer):
    """One observation by a device: by characteristic id, or by product and test codes."""

    characteristic = serializers.IntegerField(min_value=1, required=False)
    product = serializers.CharField(max_length=64, required=False, help_text="Product code.")
    test = serializers.CharField(max_length=64, required=False, help_text="Test code.")
    lot = serializers.CharField(max_length=64, help_text="Lot number; the lot must exist and be open.")
    item = serializers.CharField(max_length=64, required=False, help_text="Item serial in the lot, if any.")
    values = ValuesField()
    observed_at = serializers.DateTimeField(required=False, help_text="When it was measured; default: now.")
    idempotency_key = serializers.CharField(max_length=128, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        by_codes = "product" in attrs or "test" in attrs
        if ("characteristic" in attrs) == by_codes:
            raise serializers.ValidationError("Give characteristic, or product and test codes.")
        if by_codes and not ("product" in attrs and "test" in attrs):
            raise serializers.ValidationError("Give both product and test codes.")
        return attrs


def batch_validate(
    data: Any, child: type[serializers.Serializer], *, max_entries: int
) -> tuple[list[dict[str, Any]], bool]:
    """One object or a list of them, each checked by `child`. Returns (entries, was_a_list).

    Errors name the entry: `values` for one object, `[3].values` in a list.
    """
    batch = isinstance(data, list)
    if not batch and not isinstance(data, dict):
        raise serializers.ValidationError("Send one observation object or a list of them.")
    rows = data if batch else [data]
    if not rows:
        raise serializers.ValidationError("The list is empty.")
    if len(rows) > max_entries:
        raise serializers.ValidationError(f"At most {max_entries} observations per request; got {len(rows)}.")
    entries: list[dict[str, Any]] = []
    errors: dict[str, Any] = {}
    # One serializer for every row, as a ListSerializer does: building one per row deep-copies
    # its fields each time, which cost more than the rest of a 100-entry device post.
    serializer = child()
    for index, row in enumerate(rows):
        try:
            entries.append(dict(serializer.run_validation(row)))
            continue
        except serializers.ValidationError as exc:
            detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        for name, messages in detail.items():
            key = name if name != "non_field_errors" else "entry"
            errors[f"[{index}].{key}" if batch else key] = messages
        if len(errors) >= 20:  # enough to fix the client; a 5,000-entry list of errors is not
            break
    if errors:
        raise serializers.ValidationError(errors)
    return entries, batch


class ObservationsAcceptedSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), help_text="One per entry, in order.")
    duplicates = serializers.ListField(
        child=serializers.IntegerField(), help_text="Ids that were stored by an earlier request (a retry)."
    )
    repeated = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Positions (from 0) of entries that repeat an earlier entry of this request with the "
        "same idempotency key and body: they answer that entry's id and store nothing more.",
    )
    status_url = serializers.CharField(help_text="Where to read their status (confirmed / rejected).")


class ReasonSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="e.g. test_not_in_plan, not_a_number, out_of_range, lot_closed")
    message = serializers.CharField()


class InvalidationSummarySerializer(ModelSerializer):
    """Why and by whom a result was (asked to be) invalidated."""

    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, allow_null=True)

    class Meta:
        model = Invalidation
        fields = [
            "id", "reason", "status", "requested_by", "requested_at", "decided_by", "decided_at",
            "decision_note", "retest_requested", "amended_values",
        ]  # fmt: skip
        read_only_fields = fields


class InvalidationSerializer(InvalidationSummarySerializer):
    observation = serializers.IntegerField(source="observation_id", read_only=True)
    lot = serializers.IntegerField(source="observation.lot_id", read_only=True)
    values = serializers.JSONField(source="observation.values", read_only=True)

    class Meta(InvalidationSummarySerializer.Meta):
        fields = ["observation", "lot", "values", *InvalidationSummarySerializer.Meta.fields]
        read_only_fields = fields


class ObservationSerializer(ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True)
    verified_by = serializers.CharField(source="verified_by.username", read_only=True, allow_null=True)
    needs_verification = serializers.BooleanField(
        read_only=True,
        help_text="Its test, or a plan entry of its item, requires a second person's verification.",
    )
    to_be_verified = serializers.BooleanField(
        read_only=True, help_text="Needs verification, is confirmed and nobody has verified it yet."
    )
    invalidation = serializers.SerializerMethodField()
    item_serial = serializers.CharField(source="item.serial", read_only=True, allow_null=True)
    lot_number = serializers.CharField(source="lot.number", read_only=True)
    test_code = serializers.CharField(source="test.code", read_only=True)
    values = serializers.JSONField(read_only=True)
    reasons = ReasonSerializer(many=True, read_only=True, help_text="Why it was rejected; empty otherwise.")

    class Meta:
        model = Observation
        fields = [
            "id", "item", "item_serial", "lot", "lot_number", "test", "test_code", "characteristic",
            "values", "observed_at", "received_at", "source", "user", "idempotency_key", "status",
            "reasons", "processed_at", "historical", "late", "retest_of", "needs_verification",
            "to_be_verified", "verified_by", "verified_at", "invalidation",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(InvalidationSummarySerializer(allow_null=True))
    def get_invalidation(self, obj: Observation) -> dict[str, Any] | None:
        invalidation = getattr(obj, "invalidation", None)
        return InvalidationSummarySerializer(invalidation).data if invalidation is not None else None


class InvalidateSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="Why the result is invalid.")
    retest = serializers.BooleanField(default=False, help_text="The item is to be tested again.")
    signature = SignatureInputSerializer(
        required=False, help_text="Needed when you approve it yourself (a quality specialist)."
    )


class AmendSerializer(serializers.Serializer):
    values = ValuesField(help_text="The corrected values: recorded as a new result linked to this one.")
    reason = serializers.CharField(max_length=2000, help_text="What was wrong, e.g. 'typo: 47.3 for 74.3'.")
    signature = SignatureInputSerializer(required=False)


class RetestSerializer(serializers.Serializer):
    values = ValuesField()
    observed_at = serializers.DateTimeField(required=False)
    idempotency_key = serializers.CharField(max_length=128, required=False)


class DecisionSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    signature = SignatureInputSerializer(required=False, help_text="Needed to approve.")


class VerifySerializer(serializers.Serializer):
    observations = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=MAX_VERIFY_BATCH,
        help_text="The results to verify: all or none.",
    )  # fmt: skip
    signature = SignatureInputSerializer(required=False, help_text='Your password and meaning "verified".')


class TesterSerializer(ModelSerializer):
    full_name = serializers.CharField(source="get_full_name", read_only=True, help_text="Empty if not set.")

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "full_name"]
        read_only_fields = fields


class ScheduledSampleSerializer(ModelSerializer):
    class Meta:
        model = ScheduledSample
        fields = [
            "id", "characteristic", "slot", "lot", "state", "due_at", "overdue_at", "taken_at", "closed_by",
            "closed_at", "reason_code", "note", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class ScheduledSampleCloseSerializer(serializers.Serializer):
    reason_code = serializers.ChoiceField(
        choices=MissedSampleReason.choices, help_text="Why it was not taken."
    )
    note = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required with reason 'other'.",
    )

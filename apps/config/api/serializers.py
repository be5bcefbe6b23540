"""Shapes of the configuration API. Validation of single fields lives here; rules that span
fields or rows live in the services, which the views call."""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.config.choices import MAX_SUBGROUP_SIZE, AlarmPriority, RulePreset
from apps.config.models import (
    Characteristic,
    ControlLimits,
    Device,
    PlanAssignment,
    Product,
    SamplingSchedule,
    Test,
    TestPlan,
    TestPlanEntry,
)
from apps.config.services.characteristics import SUBGROUP_TIMEOUT_MAX
from apps.signatures.api.serializers import ManifestSerializer, SignatureInputSerializer
from apps.signatures.selectors import Manifest, signatures_of
from openspc.api import FiniteFloatField, ModelSerializer


class ProductSerializer(ModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "code", "name", "description", "active", "created_at", "updated_at"]


class TestSerializer(ModelSerializer):
    decimals = serializers.IntegerField(min_value=0, max_value=10, default=2)

    class Meta:
        model = Test
        fields = [
            "id", "code", "name", "unit", "kind", "decimals", "instructions",
            "plausible_min", "plausible_max", "active", "requires_verification",
            "invalidation_needs_approval", "created_at", "updated_at",
        ]  # fmt: skip


class TestPlanEntrySerializer(ModelSerializer):
    test_code = serializers.CharField(source="test.code", read_only=True)
    test_name = serializers.CharField(source="test.name", read_only=True)
    unit = serializers.CharField(source="test.unit", read_only=True)

    class Meta:
        model = TestPlanEntry
        fields = ["position", "test", "test_code", "test_name", "unit", "replicates", "requires_verification"]
        read_only_fields = fields


class PlanEntryInputSerializer(serializers.Serializer):
    test = serializers.PrimaryKeyRelatedField(queryset=Test.objects.all())
    replicates = serializers.IntegerField(min_value=1, max_value=MAX_SUBGROUP_SIZE, default=1)
    requires_verification = serializers.BooleanField(
        default=False, help_text="Results of this test under this plan need a second person's verification."
    )

    def validate(self, attrs: dict[str, object]) -> dict[str, object]:
        # A PATCH makes nested fields optional too; an entry still needs its test.
        if "test" not in attrs:
            raise serializers.ValidationError({"test": "This field is required."})
        return {"replicates": 1, "requires_verification": False, **attrs}


class TestPlanSerializer(ModelSerializer):
    entries = TestPlanEntrySerializer(many=True, read_only=True)
    tests = PlanEntryInputSerializer(
        many=True, write_only=True, required=False,
        help_text="The plan's tests in order. On update, replaces the list (draft plans only).",
    )  # fmt: skip

    class Meta:
        model = TestPlan
        fields = [
            "id", "code", "version", "name", "description", "status", "entries", "tests",
            "created_at", "updated_at", "released_at",
        ]  # fmt: skip
        read_only_fields = ["version", "status", "released_at"]
        # Uniqueness of code is a service rule (a new code, or a new version of an existing one).
        validators: list[object] = []


class TestPlanDetailSerializer(TestPlanSerializer):
    """One plan, with the signatures of its release and whether each still fits the plan."""

    signatures = serializers.SerializerMethodField(
        help_text="The release's signatures; state changed_after_signing if the plan differs from "
        "what was signed."
    )

    class Meta(TestPlanSerializer.Meta):
        fields = [*TestPlanSerializer.Meta.fields, "signatures"]

    @extend_schema_field(ManifestSerializer(many=True))
    def get_signatures(self, obj: TestPlan) -> list[dict[str, object]]:
        return _manifests(signatures_of(obj))


def _manifests(manifests: list[Manifest]) -> list[dict[str, object]]:
    return [dict(row) for row in ManifestSerializer(manifests, many=True).data]


class TestPlanTestsSerializer(serializers.Serializer):
    tests = PlanEntryInputSerializer(many=True, help_text="The plan's tests in their new order.")


class PlanAssignmentSerializer(ModelSerializer):
    assigned_by = serializers.CharField(source="assigned_by.username", read_only=True, allow_null=True)
    effective_from = serializers.DateTimeField(
        required=False,
        help_text="When it takes effect (inclusive); defaults to now. An earlier moment covers "
        "measurements already taken. A date alone means its start in the plant's time zone.",
    )
    effective_to = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="When it stops applying (exclusive); null: open-ended. A date alone means its start "
        "in the plant's time zone, so the day before is the last one covered.",
    )

    class Meta:
        model = PlanAssignment
        fields = [
            "id",
            "product",
            "plan",
            "effective_from",
            "effective_to",
            "assigned_by",
            "created_at",
        ]
        validators: list[object] = []


class PlanAssignmentUpdateSerializer(PlanAssignmentSerializer):
    """An assignment is only ever ended (or its end moved): the rest is fixed once made."""

    effective_from = serializers.DateTimeField(read_only=True)

    class Meta(PlanAssignmentSerializer.Meta):
        read_only_fields = ["product", "plan"]


class ControlLimitsSerializer(ModelSerializer):
    set_by = serializers.CharField(source="set_by.username", read_only=True, allow_null=True)

    class Meta:
        model = ControlLimits
        fields = [
            "id", "version", "center", "ucl", "lcl", "sigma", "dispersion_center", "dispersion_ucl",
            "dispersion_lcl", "method", "baseline", "excluded", "reason", "frozen", "set_by", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class SignedControlLimitsSerializer(ControlLimitsSerializer):
    """A version of the control limits with its signatures (none for a preview, which is not stored)."""

    signatures = serializers.SerializerMethodField(
        help_text="The signatures of this version; state changed_after_signing if it differs from "
        "what was signed."
    )

    class Meta(ControlLimitsSerializer.Meta):
        fields = [*ControlLimitsSerializer.Meta.fields, "signatures"]
        read_only_fields = fields

    @extend_schema_field(ManifestSerializer(many=True))
    def get_signatures(self, obj: ControlLimits) -> list[dict[str, object]]:
        return _manifests(signatures_of(obj)) if obj.pk else []


class CharacteristicSerializer(ModelSerializer):
    product_code = serializers.CharField(source="product.code", read_only=True)
    test_code = serializers.CharField(source="test.code", read_only=True)
    test_name = serializers.CharField(source="test.name", read_only=True)
    unit = serializers.CharField(source="test.unit", read_only=True)
    effective_chart_type = serializers.CharField(read_only=True)
    subgroup_size = serializers.IntegerField(min_value=1, max_value=MAX_SUBGROUP_SIZE, required=False)
    decimals = serializers.IntegerField(min_value=0, max_value=10, required=False, allow_null=True)
    # Bounds given here: the model field's maximum would come from the database (32 or 64 bits),
    # and the committed schema must not depend on which one generated it.
    subgroup_timeout = serializers.IntegerField(
        min_value=1, max_value=SUBGROUP_TIMEOUT_MAX, required=False, allow_null=True,
        help_text="Seconds an unfinished subgroup may stay open, from its first value; null: no limit.",
    )  # fmt: skip
    rule_preset = serializers.ChoiceField(
        choices=RulePreset.choices, required=False,
        help_text="On write, a named preset replaces the rules (unless rules are given too).",
    )  # fmt: skip
    lsl = FiniteFloatField(allow_null=True, required=False)
    usl = FiniteFloatField(allow_null=True, required=False)
    target = FiniteFloatField(allow_null=True, required=False)
    acknowledge_rules = serializers.ListField(
        child=serializers.IntegerField(), required=False,
        help_text="Nelson rules (1–8, each once) whose violations must be acknowledged; violations of "
        "the others are informational. Applies to violations found from then on.",
    )  # fmt: skip
    rule_priorities = serializers.DictField(
        child=serializers.ChoiceField(choices=AlarmPriority.choices), required=False,
        help_text="Priority of a rule's violation events where it differs from the default (rule 1 "
        'high, rules 2–8 medium), keyed by rule number, e.g. {"2": "low"}.',
    )  # fmt: skip
    current_limits = serializers.SerializerMethodField()
    reason = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=1000,
        help_text="Why the change is made: required when it changes lsl, target, usl, rules, "
        "acknowledge_rules or rule_priorities; kept in the audit trail.",
    )  # fmt: skip

    class Meta:
        model = Characteristic
        fields = [
            "id", "product", "product_code", "test", "test_code", "test_name", "unit",
            "lsl", "target", "usl", "spec_warning_margin", "subgroup_size", "chart_type",
            "effective_chart_type", "chart_params",
            "rule_preset", "rules", "acknowledge_rules", "rule_priorities", "data_source", "tag",
            "subgroup_timeout",
            "subgroup_timeout_policy", "site", "area", "line", "cell", "decimals", "active", "current_limits",
            "created_at", "updated_at", "reason",
        ]  # fmt: skip
        read_only_fields = ["product", "test"]
        validators: list[object] = []

    @extend_schema_field(ControlLimitsSerializer(allow_null=True))
    def get_current_limits(self, obj: Characteristic) -> dict[str, object] | None:
        # Views prefetch the versions newest first into `limit_versions`.
        versions = getattr(obj, "limit_versions", None)
        if versions is None:
            versions = list(obj.limits.all()[:1])
        latest = versions[0] if versions else None
        return dict(ControlLimitsSerializer(latest).data) if latest else None


class PlanReleaseSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=1000, required=False, allow_blank=True, default="",
        help_text="Why the plan is released (required; kept in the audit trail).",
    )  # fmt: skip
    signature = SignatureInputSerializer(
        required=False,
        help_text="Your electronic signature (password, meaning approved or released; the user name for "
        "your first signature): required where plan releases are signed.",
    )


class PlanAssignmentConfigSerializer(ModelSerializer):
    plan = TestPlanSerializer(read_only=True)

    class Meta:
        model = PlanAssignment
        fields = ["id", "effective_from", "effective_to", "plan"]


class ProductConfigSerializer(ModelSerializer):
    plans = PlanAssignmentConfigSerializer(source="plan_assignments", many=True, read_only=True)
    characteristics = CharacteristicSerializer(many=True, read_only=True)

    class Meta:
        model = Product
        fields = ["id", "code", "name", "description", "active", "plans", "characteristics"]


class DeviceSerializer(ModelSerializer):
    class Meta:
        model = Device
        fields = [
            "id",
            "name",
            "description",
            "active",
            "token_prefix",
            "created_at",
            "last_used_at",
            "characteristics",
            "products",
        ]
        read_only_fields = ["token_prefix", "last_used_at"]


class DeviceCreatedSerializer(DeviceSerializer):
    token = serializers.CharField(read_only=True, help_text="Shown once; only its hash is stored.")

    class Meta(DeviceSerializer.Meta):
        fields = [*DeviceSerializer.Meta.fields, "token"]


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    is_staff = serializers.BooleanField()


class PingSerializer(serializers.Serializer):
    ok = serializers.BooleanField()


class SamplingScheduleSerializer(ModelSerializer):
    description = serializers.CharField(source="describe", read_only=True)

    class Meta:
        model = SamplingSchedule
        fields = [
            "id", "characteristic", "test", "kind", "every_minutes", "every_units", "grace_minutes", "active",
            "description", "created_at", "updated_at",
        ]  # fmt: skip
        # The service says what is wrong in plain words (one target, the number the kind needs).
        validators: list[Any] = []
        extra_kwargs: dict[str, dict[str, Any]] = {
            "characteristic": {"validators": []},
            "test": {"validators": []},
        }

"""Shapes of the calculation API: samples, violations, statistics, limits and chart data."""

from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.calculations.models import (
    AcknowledgementReason,
    AlarmShelf,
    LotStatistics,
    ProductStatistics,
    Violation,
    ViolationEvent,
)
from apps.calculations.selectors import MAX_CHART_POINTS
from apps.calculations.services.limits import LIMITS_REASON_MISSING
from apps.calculations.services.shelving import MAX_SHELF_MINUTES
from apps.calculations.services.stats import within_dof_of
from apps.calculations.services.violations import MAX_BATCH
from apps.calculations.window import plotted_statistic
from apps.config.api.serializers import ControlLimitsSerializer, SignedControlLimitsSerializer
from apps.config.models import Characteristic
from apps.observations.api.serializers import ValuesField
from apps.observations.models import Sample
from apps.signatures.api.serializers import SignatureInputSerializer
from openspc.api import FiniteFloatField, ModelSerializer
from spc import index_intervals


class SampleSerializer(ModelSerializer):
    statistic = serializers.SerializerMethodField(help_text="The plotted value: the mean, or p / u.")
    values = serializers.ListField(child=serializers.FloatField(), read_only=True)
    observation_ids = serializers.ListField(child=serializers.IntegerField(), read_only=True)

    class Meta:
        model = Sample
        fields = [
            "id", "characteristic", "sequence", "lot", "values", "observation_ids", "n", "mean", "range",
            "sd", "statistic", "undersized", "in_control", "limits_version", "excluded", "exclusion_reason",
            "invalidated", "created_at", "evaluated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_statistic(self, obj: Sample) -> float:
        return plotted_statistic(obj.characteristic.effective_chart_type, obj.mean, obj.n)


class SampleExcludeSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default="",
        help_text="Why the sample is left out of control limits (required to exclude).",
    )  # fmt: skip


class PatternPointSerializer(ModelSerializer):
    """One sample of a violation's pattern, as the chart plots it."""

    statistic = serializers.SerializerMethodField(help_text="The plotted value: the mean, or p / u.")

    class Meta:
        model = Sample
        fields = [
            "id",
            "sequence",
            "lot",
            "n",
            "statistic",
            "mean",
            "range",
            "sd",
            "in_control",
            "created_at",
        ]
        read_only_fields = fields

    def get_statistic(self, obj: Sample) -> float:
        return plotted_statistic(obj.characteristic.effective_chart_type, obj.mean, obj.n)


class ViolationSerializer(ModelSerializer):
    sequence = serializers.IntegerField(source="sample.sequence", read_only=True)
    lot = serializers.IntegerField(source="sample.lot_id", read_only=True)
    points = serializers.ListField(
        child=serializers.IntegerField(), read_only=True, help_text="Sequences of the pattern's samples."
    )
    acknowledgement_reason: "serializers.SlugRelatedField[AcknowledgementReason]" = (
        serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    )

    class Meta:
        model = Violation
        fields = [
            "id", "characteristic", "sample", "sequence", "lot", "rule", "chart", "points", "severity",
            "event", "limits_version", "created_at", "requires_acknowledgement", "acknowledged_at",
            "acknowledged_by", "acknowledgement_reason", "acknowledgement_comment", "corrective_action",
            "withdrawn_at", "withdrawn_reason",
        ]  # fmt: skip
        read_only_fields = fields


class ViolationDetailSerializer(ViolationSerializer):
    """A violation with the sample that completed the pattern (`subgroup`: its values, mean, …) and
    every sample of the pattern (`pattern`), in sequence order."""

    subgroup = SampleSerializer(source="sample", read_only=True)
    pattern = PatternPointSerializer(many=True, read_only=True, source="pattern_samples")

    class Meta(ViolationSerializer.Meta):
        fields = [*ViolationSerializer.Meta.fields, "subgroup", "pattern"]
        read_only_fields = fields


class ViolationCountSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    unacknowledged = serializers.IntegerField(help_text="Requiring acknowledgement and not acknowledged.")


class RuleCountSerializer(ViolationCountSerializer):
    rule = serializers.IntegerField()


class CharacteristicCountSerializer(ViolationCountSerializer):
    characteristic = serializers.IntegerField()
    product_code = serializers.CharField()
    test_code = serializers.CharField()


class ViolationStatsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    unacknowledged = serializers.IntegerField(
        help_text="Violations whose rule requires acknowledgement that nobody has acknowledged yet."
    )
    by_rule = RuleCountSerializer(many=True)
    by_characteristic = CharacteristicCountSerializer(many=True)


class AcknowledgeSerializer(serializers.Serializer):
    """An acknowledgement. Who acknowledges is the signed-in user; a user named here is ignored."""

    reason = serializers.SlugRelatedField(
        slug_field="code",
        queryset=AcknowledgementReason.objects.filter(active=True),
        help_text="A reason code (GET /api/v1/acknowledgement-reasons/).",
    )
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    corrective_action = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


def batch_ids(what: str) -> "serializers.ListField":
    """The ids of a batch acknowledgement: 1 to MAX_BATCH of them."""
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=MAX_BATCH,
        help_text=f"The {what} to acknowledge (at most {MAX_BATCH}).",
    )  # fmt: skip


class AcknowledgeBatchSerializer(AcknowledgeSerializer):
    """Acknowledge several violations at once, all or none."""

    ids = batch_ids("violations")


class AcknowledgeBatchResultSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    violations = ViolationSerializer(many=True)


class ViolationEventSerializer(ModelSerializer):
    """A special cause as one alarm: the violations of one continuing pattern, every rule it sets off."""

    rules = serializers.ListField(
        child=serializers.IntegerField(), read_only=True,
        help_text="Every rule involved (`rule` is the one that started it).",
    )  # fmt: skip
    points = serializers.ListField(
        child=serializers.IntegerField(), read_only=True, help_text="Sequences of every sample in it."
    )
    violations = serializers.IntegerField(
        source="violations_count", read_only=True, help_text="Violations (signals) it gathers."
    )
    ongoing = serializers.BooleanField(read_only=True, help_text="Not ended, not withdrawn.")
    acknowledgement_reason: "serializers.SlugRelatedField[AcknowledgementReason]" = (
        serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    )

    class Meta:
        model = ViolationEvent
        fields = [
            "id", "characteristic", "lot", "rule", "rules", "chart", "priority", "first_point", "last_point",
            "points",
            "violations", "limits_version", "requires_acknowledgement", "ongoing", "started_at",
            "updated_at", "ended_at", "ended_at_sequence", "acknowledged_at", "acknowledged_by",
            "acknowledgement_reason", "acknowledgement_comment", "corrective_action", "withdrawn_at",
        ]  # fmt: skip
        read_only_fields = fields


class AcknowledgeEventsSerializer(AcknowledgeSerializer):
    """Acknowledge several events at once, all or none."""

    ids = batch_ids("events")


class AcknowledgeEventsResultSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    events = ViolationEventSerializer(many=True)


class AcknowledgeMatchingResultSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Events acknowledged (those awaiting it that matched).")
    ids = serializers.ListField(child=serializers.IntegerField())


class AlarmShelfSerializer(ModelSerializer):
    active = serializers.SerializerMethodField(help_text="In force now: started, not expired, not ended.")

    class Meta:
        model = AlarmShelf
        fields = [
            "id", "characteristic", "reason", "shelved_by", "shelved_at", "until", "ended_at", "ended_by",
            "end_reason", "active",
        ]  # fmt: skip
        read_only_fields = fields

    def get_active(self, obj: AlarmShelf) -> bool:
        return obj.active_at(timezone.now())


class AlarmShelveSerializer(serializers.Serializer):
    characteristic = serializers.PrimaryKeyRelatedField(queryset=Characteristic.objects.all())
    minutes = serializers.IntegerField(
        min_value=1, max_value=MAX_SHELF_MINUTES, help_text="How long; the shelf then expires by itself."
    )
    reason = serializers.CharField(max_length=2000, help_text="Why (kept in the audit trail).")


class ShelfEndSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="Why it ends early (kept in the audit trail).")


class AcknowledgementReasonSerializer(ModelSerializer):
    class Meta:
        model = AcknowledgementReason
        fields = ["code", "label", "active"]
        read_only_fields = fields


class SampleContextSerializer(serializers.Serializer):
    lot = serializers.IntegerField(min_value=1, help_text="The lot (of the characteristic's product).")
    item = serializers.IntegerField(
        min_value=1, required=False, help_text="The item measured, if one; testers must name their item."
    )
    observed_at = serializers.DateTimeField(required=False)
    idempotency_key = serializers.CharField(max_length=128, required=False)


class SampleSubmitSerializer(serializers.Serializer):
    """A whole subgroup, judged at once (flow 1 of the seed)."""

    characteristic_id = serializers.IntegerField(min_value=1)
    measurements = ValuesField(
        help_text="The subgroup: as many values as the subgroup size (1 count for attributes)."
    )
    context = SampleContextSerializer()  # type: ignore[assignment]  # a field; DRF pops it off the class


class SampleResultSerializer(serializers.Serializer):
    sample = SampleSerializer()
    violations = ViolationSerializer(many=True)
    observation = serializers.IntegerField(help_text="The stored observation holding the measurements.")


def limits_signature(note: str = "") -> SignatureInputSerializer:
    """The `signature` of a request that stores control limits."""
    return SignatureInputSerializer(
        required=False,
        help_text="Your electronic signature (password, meaning approved or reviewed; the user name for "
        f"your first signature): required where control limit changes are signed{note}.",
    )


class RecalculateLimitsSerializer(serializers.Serializer):
    sample_count = serializers.IntegerField(min_value=2, max_value=10_000, default=25)
    exclude_out_of_control = serializers.BooleanField(
        default=True, help_text="Leave out samples with a violation (any rule)."
    )
    start = serializers.DateTimeField(required=False, allow_null=True)
    end = serializers.DateTimeField(required=False, allow_null=True)
    reason = serializers.CharField(
        max_length=1000, required=False, allow_blank=True, default="",
        help_text="Why the limits change; required unless `preview` (kept with them and audited).",
    )  # fmt: skip
    preview = serializers.BooleanField(
        default=False,
        help_text="Only show what the limits would be: the same answer, nothing stored (`new` has no id).",
    )
    signature = limits_signature(" (not for a preview)")


class SignedLimitsChangeSerializer(serializers.Serializer):
    """Limits stored by a person: why (kept with them and in the audit trail), and signed."""

    reason = serializers.CharField(
        max_length=1000, error_messages={"required": LIMITS_REASON_MISSING, "blank": LIMITS_REASON_MISSING}
    )
    signature = limits_signature()


class SetLimitsSerializer(SignedLimitsChangeSerializer):
    center = FiniteFloatField(help_text="Process mean; or p̄, n·p̄, c̄, ū for attribute charts.")
    sigma = FiniteFloatField(
        required=False, allow_null=True, help_text="Process sigma of individual values (variables only)."
    )


class FreezeLimitsSerializer(SignedLimitsChangeSerializer):
    frozen = serializers.BooleanField(default=True)


class LimitsChangeSerializer(serializers.Serializer):
    previous = SignedControlLimitsSerializer(allow_null=True)
    new = SignedControlLimitsSerializer()
    method = serializers.CharField(
        help_text="How sigma was estimated: mrbar_d2, rbar_d2, sbar_c4, pbar, given."
    )
    samples_used = serializers.IntegerField(source="used")
    excluded = serializers.ListField(child=serializers.DictField(), help_text="Samples left out, with why.")


class ChartQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_CHART_POINTS, default=100)
    lot = serializers.IntegerField(min_value=1, required=False)


class ChartPointSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sequence = serializers.IntegerField()
    lot = serializers.IntegerField()
    n = serializers.IntegerField()
    statistic = serializers.FloatField()
    dispersion = serializers.FloatField(allow_null=True, help_text="MR, R or S; empty where there is none.")
    mean = serializers.FloatField()
    range = serializers.FloatField(allow_null=True)
    sd = serializers.FloatField(allow_null=True)
    in_control = serializers.BooleanField(allow_null=True)
    limits_version = serializers.IntegerField(allow_null=True)
    undersized = serializers.BooleanField()
    invalidated = serializers.BooleanField(
        help_text="Holds a value of an invalidated result: drawn apart, never judged or used for limits."
    )
    invalidation_reason = serializers.CharField(help_text="Why its result was invalidated; empty otherwise.")
    out_of_spec = serializers.BooleanField(
        help_text="A value of it is outside the specification limits (a spec alarm; marked apart)."
    )
    created_at = serializers.DateTimeField()


class ZonesSerializer(serializers.Serializer):
    sigma_1 = serializers.ListField(child=serializers.FloatField(), help_text="[lower, upper] at 1 σ.")
    sigma_2 = serializers.ListField(child=serializers.FloatField())
    sigma_3 = serializers.ListField(child=serializers.FloatField())


class ChartDataSerializer(serializers.Serializer):
    characteristic = serializers.IntegerField(source="characteristic.pk")
    chart_type = serializers.CharField(source="kind")
    subgroup_size = serializers.IntegerField(source="characteristic.subgroup_size")
    lsl = serializers.FloatField(source="characteristic.lsl", allow_null=True)
    usl = serializers.FloatField(source="characteristic.usl", allow_null=True)
    target = serializers.FloatField(source="characteristic.target", allow_null=True)
    spec_warning_margin = serializers.FloatField(
        source="characteristic.spec_warning_margin", allow_null=True,
        help_text="The spec warning band inside each limit (drawn dotted), or null.",
    )  # fmt: skip
    limits = ControlLimitsSerializer(allow_null=True)
    zones = ZonesSerializer(
        allow_null=True, help_text="Zone lines of the location chart at the subgroup size."
    )
    points = ChartPointSerializer(many=True)
    violations = ViolationSerializer(many=True)


class LotStatisticsSerializer(ModelSerializer):
    lot_number = serializers.CharField(source="lot.number", read_only=True)
    test_code = serializers.CharField(source="test.code", read_only=True)

    class Meta:
        model = LotStatistics
        fields = [
            "id", "lot", "lot_number", "test", "test_code", "characteristic", "observations", "n", "mean",
            "sd", "minimum", "maximum", "out_of_spec", "cpk", "disposition", "checksum", "recomputed_at",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class ProductStatisticsSerializer(ModelSerializer):
    product = serializers.IntegerField(source="characteristic.product_id", read_only=True)
    product_code = serializers.CharField(source="characteristic.product.code", read_only=True)
    test_code = serializers.CharField(source="characteristic.test.code", read_only=True)
    limits = serializers.SerializerMethodField()
    intervals = serializers.SerializerMethodField(
        help_text="95 % confidence intervals [lower, upper] of cp and pp (chi-square) and cpk and ppk "
        "(Bissell's normal approximation): pp and ppk with n − 1 degrees of freedom, cp and cpk with "
        "those of the within sigma (its estimator over the samples it came from, as Minitab "
        "approximates them; n − 1 for given limits); null where the index is."
    )
    trusted = serializers.SerializerMethodField(
        help_text="Enough data for capability: CAPABILITY_MIN_VALUES values (n = 1) or "
        "CAPABILITY_MIN_SUBGROUPS subgroups (n > 1). Below, the pages grey the indices."
    )
    trust_note = serializers.SerializerMethodField(
        help_text='Why not trusted, e.g. "too few values (n = 12)".'
    )

    class Meta:
        model = ProductStatistics
        fields = [
            "characteristic", "product", "product_code", "test_code", "n", "mean", "sd", "minimum",
            "maximum", "out_of_spec", "sigma_within", "sigma_source", "cp", "cpk", "pp", "ppk", "intervals",
            "trusted", "trust_note", "limits_version", "limits", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(
        serializers.DictField(child=serializers.ListField(child=serializers.FloatField(), allow_null=True))
    )
    def get_intervals(self, obj: ProductStatistics) -> dict[str, list[float] | None]:
        versions = getattr(obj.characteristic, "limit_versions", None)  # prefetched, newest first
        dof = within_dof_of(obj, obj.characteristic, versions[0] if versions else None)
        found = index_intervals(n=obj.n, cp=obj.cp, cpk=obj.cpk, pp=obj.pp, ppk=obj.ppk, within_dof=dof)
        return {key: None if i is None else [i.lower, i.upper] for key, i in found.items()}

    def get_trusted(self, obj: ProductStatistics) -> bool:
        return not self.get_trust_note(obj)

    def get_trust_note(self, obj: ProductStatistics) -> str:
        size = obj.characteristic.subgroup_size
        if size <= 1:
            return "" if obj.n >= settings.CAPABILITY_MIN_VALUES else f"too few values (n = {obj.n})"
        subgroups = obj.n // size
        if subgroups >= settings.CAPABILITY_MIN_SUBGROUPS:
            return ""
        return f"too few subgroups ({subgroups}; {settings.CAPABILITY_MIN_SUBGROUPS} needed)"

    @extend_schema_field(ControlLimitsSerializer(allow_null=True))
    def get_limits(self, obj: ProductStatistics) -> dict[str, Any] | None:
        versions = getattr(obj.characteristic, "limit_versions", None)  # prefetched, newest first
        return dict(ControlLimitsSerializer(versions[0]).data) if versions else None

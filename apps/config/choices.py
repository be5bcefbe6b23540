"""Enumerations of the configuration domain."""

from django.db import models


class TestKind(models.TextChoices):
    VARIABLE = "variable", "Variable measurement"
    DEFECTIVES = "defectives", "Attribute: defectives (pass/fail per unit)"
    DEFECTS = "defects", "Attribute: defect count"


class PlanStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    RELEASED = "released", "Released"
    RETIRED = "retired", "Retired"


class ChartType(models.TextChoices):
    AUTO = "auto", "Automatic (by subgroup size)"
    IMR = "imr", "Individuals and moving range (I-MR)"
    XBAR_R = "xbar_r", "Mean and range (X̄-R)"
    XBAR_S = "xbar_s", "Mean and standard deviation (X̄-S)"
    P = "p", "Proportion defective (p)"
    NP = "np", "Number defective (np)"
    C = "c", "Defects per sample (c)"
    U = "u", "Defects per unit (u)"
    EWMA = "ewma", "Exponentially weighted moving average (EWMA)"
    CUSUM = "cusum", "Tabular CUSUM"


# The most values in one subgroup (a characteristic's subgroup_size, a plan entry's replicates, one
# reading): the d2/c4 tables of the SPC engine and the X̄-S chart are used up to here.
MAX_SUBGROUP_SIZE = 25
# Up to this subgroup size the range estimates sigma (X̄-R); above it the standard deviation (X̄-S).
MAX_RANGE_SUBGROUP_SIZE = 10


def chart_type_by_subgroup_size(subgroup_size: int) -> ChartType:
    """The Shewhart chart for variables subgroups of this size: 1 I-MR, 2–10 X̄-R, above X̄-S."""
    if subgroup_size == 1:
        return ChartType.IMR
    return ChartType.XBAR_R if subgroup_size <= MAX_RANGE_SUBGROUP_SIZE else ChartType.XBAR_S


VARIABLE_CHARTS = frozenset(
    {ChartType.IMR, ChartType.XBAR_R, ChartType.XBAR_S, ChartType.EWMA, ChartType.CUSUM}
)
DEFECTIVES_CHARTS = frozenset({ChartType.P, ChartType.NP})
DEFECTS_CHARTS = frozenset({ChartType.C, ChartType.U})


class DataSource(models.TextChoices):
    MANUAL = "manual", "Manual entry or REST"
    TAG = "tag", "MQTT topic (JSON payloads)"
    SPARKPLUG = "sparkplug", "Sparkplug B metric"


# Data sources fed by `manage.py mqtt_listen`: their characteristics need a tag.
MQTT_SOURCES = (DataSource.TAG, DataSource.SPARKPLUG)


class SubgroupTimeoutPolicy(models.TextChoices):
    FLUSH = "flush", "Flush as an undersized sample"
    DISCARD = "discard", "Discard (values stay stored, on no sample)"


class RulePreset(models.TextChoices):
    NELSON = "nelson", "Nelson (rules 1–8)"
    WESTERN_ELECTRIC = "western_electric", "Western Electric (rules 1, 2, 5, 6)"
    CUSTOM = "custom", "Custom"


class AlarmPriority(models.TextChoices):
    """How urgent a rule's violation events are (ISA-18.2 priorities), per rule and characteristic."""

    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


# A point beyond a control limit is high; a pattern (a run, a trend, points near a limit) medium.
RULE_PRIORITY_DEFAULT = {1: AlarmPriority.HIGH} | dict.fromkeys(range(2, 9), AlarmPriority.MEDIUM)


class LimitMethod(models.TextChoices):
    CALCULATED = "calculated", "Calculated from baseline samples"
    HISTORICAL = "historical", "From a given (historical) mean and sigma"
    MANUAL = "manual", "Entered by hand"


class RejectionCode(models.TextChoices):
    """Why observation_confirm refused an observation (stored with rejected rows)."""

    PRODUCT_INACTIVE = "product_inactive", "Product is inactive"
    TEST_NOT_IN_PLAN = "test_not_in_plan", "Test is not in the item's test plans"
    PLAN_RETIRED = "plan_retired", "Test plan is retired"
    NOT_EFFECTIVE = "not_effective", "No plan assignment is effective at that time"
    NO_VALUES = "no_values", "No values"
    NOT_A_NUMBER = "not_a_number", "Value is not a finite number"
    NOT_A_COUNT = "not_a_count", "Value is not a non-negative whole number"
    OUT_OF_RANGE = "out_of_range", "Value is outside the test's plausible range"
    REPLICATE_COUNT = "replicate_count", "Wrong number of replicates"
    OBSERVED_IN_FUTURE = "observed_in_future", "Measured later than it was received"
    OBSERVED_TOO_EARLY = "observed_too_early", "Measured too long before it was received"


class ScheduleKind(models.TextChoices):
    """How often a characteristic is to be sampled (docs/alarms.md, "Sampling schedules")."""

    INTERVAL = "interval", "Every N minutes"
    SHIFT = "shift", "Once per shift"
    LOT = "lot", "Once per lot"
    UNITS = "units", "Every N units produced"

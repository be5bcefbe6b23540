import datetime

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from apps.calculations.choices import ChartPart, Disposition, Severity
from apps.config.choices import AlarmPriority


class ChartState(models.Model):
    """How far the calculation worker has taken one characteristic; its row lock orders the work.

    The worker locks this row (SELECT … FOR UPDATE) for the whole calculation
    transaction, so however many worker processes run, one characteristic's samples
    are judged and its statistics updated one batch at a time, in sequence order.
    """

    characteristic = models.OneToOneField(
        "config.Characteristic", primary_key=True, on_delete=models.PROTECT, related_name="chart_state"
    )
    last_sequence = models.PositiveIntegerField(default=0, help_text="Samples judged: 1 … this.")
    last_position = models.PositiveBigIntegerField(
        default=0, help_text="Confirmed observations in the statistics: 1 … this."
    )
    rewinds = models.PositiveIntegerField(
        default=0, help_text="Corrections taken in: a window cached before the last one is stale."
    )
    events = models.JSONField(
        default=dict,
        blank=True,
        help_text='The latest violation event of each chart part: {"location": [id, last point, ended]}; '
        'what a new violation may continue, read with the row lock (keys per rule, "location:2", '
        "from before ADR 0022 are read as their chart part's).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Chart state of characteristic {self.characteristic_id}"


class AcknowledgementReason(models.Model):
    """A reason code a violation is acknowledged with; the list is kept in the admin."""

    code = models.SlugField(max_length=32, unique=True)
    label = models.CharField(max_length=128)
    active = models.BooleanField(default=True, help_text="Inactive codes stay on old acknowledgements.")
    position = models.PositiveSmallIntegerField(default=0, help_text="Order in pick lists.")

    class Meta:
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return self.label


# A violation or event that awaits acknowledgement: its rule requires it, nobody has given it, and
# no correction withdrew it.
AWAITING_ACKNOWLEDGEMENT = Q(
    requires_acknowledgement=True, acknowledged_at__isnull=True, withdrawn_at__isnull=True
)


class ViolationEvent(models.Model):
    """One special cause as the operator sees it: a pattern on one chart of a characteristic, from
    its first point while it continues, with every rule it sets off. A violation whose points overlap
    the event's, or follow on from its last point while it lasts, grows it instead of starting another;
    the event ends at the first sample judged after its last point that does not continue it
    (docs/alarms.md). It is acknowledged once, and the acknowledgement covers its points as it grows."""

    characteristic = models.ForeignKey(
        "config.Characteristic", on_delete=models.PROTECT, related_name="violation_events"
    )
    rule = models.PositiveSmallIntegerField(help_text="The Nelson rule (1–8) that started it.")
    rules = models.JSONField(
        default=list, help_text="Every rule involved: those of the violations it gathers, in order."
    )
    chart = models.CharField(max_length=16, choices=ChartPart.choices, default=ChartPart.LOCATION)
    priority = models.CharField(
        max_length=8, choices=AlarmPriority.choices, help_text="That of the most urgent rule involved."
    )
    first_point = models.PositiveIntegerField(help_text="Sequence of its first sample.")
    last_point = models.PositiveIntegerField(help_text="Sequence of its last sample so far.")
    points = models.JSONField(help_text="Sequences of every sample in it, in order.")
    violations_count = models.PositiveIntegerField(default=1, help_text="Violations (signals) it gathers.")
    lot = models.ForeignKey(
        "observations.Lot", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The lot of the sample that started it.",
    )  # fmt: skip
    limits_version = models.PositiveIntegerField(help_text="The control limits version that judged it.")
    requires_acknowledgement = models.BooleanField(default=True)
    started_at = models.DateTimeField()
    updated_at = models.DateTimeField(help_text="When its last point came in.")
    ended_at = models.DateTimeField(
        null=True, blank=True, help_text="When a sample after its last point did not continue it."
    )
    ended_at_sequence = models.PositiveIntegerField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledgement_reason = models.ForeignKey(
        AcknowledgementReason, null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    acknowledgement_comment = models.TextField(blank=True)
    corrective_action = models.TextField(blank=True)
    withdrawn_at = models.DateTimeField(
        null=True, blank=True, help_text="When corrections withdrew every violation it gathered."
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(rule__gte=1) & Q(rule__lte=8), name="violationevent_rule_1_8"),
            models.CheckConstraint(
                condition=Q(last_point__gte=F("first_point")), name="violationevent_points_ordered"
            ),
        ]
        indexes = [
            models.Index(fields=["characteristic", "-started_at"], name="violationevent_char_started"),
            models.Index(
                fields=["characteristic"],
                condition=Q(
                    acknowledged_at__isnull=True, requires_acknowledgement=True, withdrawn_at__isnull=True
                ),
                name="violationevent_awaiting",
            ),
        ]

    def __str__(self) -> str:
        return f"Rule {self.rule} event {self.pk} on characteristic {self.characteristic_id}"

    @property
    def ongoing(self) -> bool:
        return self.ended_at is None and self.withdrawn_at is None


class Violation(models.Model):
    """A Nelson rule signal: the sample that completed the pattern and every point of the pattern."""

    characteristic = models.ForeignKey(
        "config.Characteristic", on_delete=models.PROTECT, related_name="violations"
    )
    sample = models.ForeignKey("observations.Sample", on_delete=models.PROTECT, related_name="violations")
    rule = models.PositiveSmallIntegerField(help_text="Nelson rule 1–8.")
    chart = models.CharField(max_length=16, choices=ChartPart.choices, default=ChartPart.LOCATION)
    points = models.JSONField(help_text="Sequence numbers of the samples in the pattern, in order.")
    event = models.ForeignKey(
        ViolationEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="violations",
        help_text="The event it belongs to (the pattern it starts or continues).",
    )  # fmt: skip
    severity = models.CharField(max_length=16, choices=Severity.choices)
    limits_version = models.PositiveIntegerField(help_text="The control limits version that judged it.")
    requires_acknowledgement = models.BooleanField(
        default=True, help_text="Its rule is one the characteristic wants acknowledged."
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledgement_reason = models.ForeignKey(
        AcknowledgementReason, null=True, blank=True, on_delete=models.PROTECT, related_name="violations"
    )
    acknowledgement_comment = models.TextField(blank=True)
    corrective_action = models.TextField(blank=True)
    withdrawn_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When a correction (an invalidated result) undid the pattern; kept, not deleted.",
    )  # fmt: skip
    withdrawn_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["sample", "rule", "chart"], name="violation_once_per_sample_rule"
            ),
            models.CheckConstraint(condition=Q(rule__gte=1) & Q(rule__lte=8), name="violation_rule_1_8"),
        ]
        indexes = [
            models.Index(fields=["characteristic", "-created_at"], name="violation_char_created"),
            models.Index(fields=["acknowledged_at"], name="violation_acknowledged"),
        ]

    def __str__(self) -> str:
        return f"Rule {self.rule} on sample {self.sample_id}"


class Moments(models.Model):
    """Running statistics of a set of values (Welford's update, O(1) per value).

    The update runs on the values minus `shift` (the first value): Welford's error grows
    with mean / SD, so 1e6 ± 0.001 would otherwise lose half the digits of the SD.
    """

    n = models.PositiveIntegerField(default=0)
    mean = models.FloatField(null=True, blank=True)
    m2 = models.FloatField(default=0.0, help_text="Sum of squared deviations from the mean.")
    shift = models.FloatField(null=True, blank=True, help_text="Subtracted from every value (the first one).")
    shifted_mean = models.FloatField(default=0.0, help_text="Mean of the values minus the shift.")
    sd = models.FloatField("SD", null=True, blank=True, help_text="Sample SD (n − 1).")
    minimum = models.FloatField(null=True, blank=True)
    maximum = models.FloatField(null=True, blank=True)
    out_of_spec = models.PositiveIntegerField(default=0, help_text="Values below LSL or above USL.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class LotStatistics(Moments):
    """Statistics of one lot for one test, with the checksum of the observations they contain."""

    lot = models.ForeignKey("observations.Lot", on_delete=models.PROTECT, related_name="statistics")
    test = models.ForeignKey("config.Test", on_delete=models.PROTECT, related_name="+")
    characteristic = models.ForeignKey("config.Characteristic", on_delete=models.PROTECT, related_name="+")
    observations = models.PositiveIntegerField(default=0)
    cpk = models.FloatField("Cpk", null=True, blank=True, help_text="Against the spec, with the lot's SD.")
    disposition = models.CharField(max_length=16, choices=Disposition.choices, default=Disposition.PENDING)
    checksum = models.BigIntegerField(default=0, help_text="Lot checksum of what these statistics contain.")
    recomputed_at = models.DateTimeField(
        null=True, blank=True, help_text="Last full recompute (after a checksum mismatch)."
    )

    class Meta:
        verbose_name_plural = "lot statistics"
        ordering = ["lot", "test"]
        constraints = [models.UniqueConstraint(fields=["lot", "test"], name="lotstatistics_lot_test_unique")]

    def __str__(self) -> str:
        return f"Statistics of lot {self.lot_id}, test {self.test_id}"


class ProductStatistics(Moments):
    """Statistics of one characteristic over all lots, with capability and performance indices.

    The within-subgroup sigma comes from the current control limits when there are
    some, else from the samples (mean of R/d2, S/c4 or MR/d2, kept as a running sum).
    """

    characteristic = models.OneToOneField(
        "config.Characteristic", primary_key=True, on_delete=models.PROTECT, related_name="statistics"
    )
    within_sum = models.FloatField(default=0.0)
    within_count = models.PositiveIntegerField(default=0)
    last_value = models.FloatField(null=True, blank=True, help_text="Last sample mean (moving ranges).")
    sigma_within = models.FloatField(null=True, blank=True)
    sigma_source = models.CharField(max_length=16, blank=True, help_text="'limits' or 'samples'.")
    cp = models.FloatField("Cp", null=True, blank=True)
    cpk = models.FloatField("Cpk", null=True, blank=True)
    pp = models.FloatField("Pp", null=True, blank=True)
    ppk = models.FloatField("Ppk", null=True, blank=True)
    limits_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "product statistics"
        ordering = ["characteristic"]

    def __str__(self) -> str:
        return f"Statistics of characteristic {self.characteristic_id}"


class AlarmShelf(models.Model):
    """A characteristic's alarms shelved for a stated time, with a reason (ISA-18.2 shelving): its
    violation events are still stored and shown, but notify nobody until `until`, when the shelf
    expires by itself, or until someone ends it. Shelving and ending are audited."""

    characteristic = models.ForeignKey(
        "config.Characteristic", on_delete=models.PROTECT, related_name="alarm_shelves"
    )
    reason = models.TextField()
    shelved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    shelved_at = models.DateTimeField()
    until = models.DateTimeField(help_text="When it expires by itself.")
    ended_at = models.DateTimeField(null=True, blank=True, help_text="When someone ended it before that.")
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    end_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-shelved_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(until__gt=F("shelved_at")), name="alarmshelf_until_after_start"
            )
        ]
        indexes = [models.Index(fields=["characteristic", "until"], name="alarmshelf_char_until")]

    def __str__(self) -> str:
        return f"Alarms of characteristic {self.characteristic_id} shelved until {self.until:%Y-%m-%d %H:%M}"

    def active_at(self, at: "datetime.datetime") -> bool:
        end = self.ended_at if self.ended_at is not None and self.ended_at < self.until else self.until
        return self.shelved_at <= at < end

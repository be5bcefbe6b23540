from django.db import models
from django.db.models import Q


class Sample(models.Model):
    """One subgroup of one characteristic: the values that make one plotted point, in order.

    Formed by the observations.in worker from confirmed observations of the same
    characteristic and lot, in arrival order (a subgroup never mixes lots). Its
    `sequence` numbers the characteristic's points 1, 2, 3, …. The calculation worker
    judges it against the control limits and sets `in_control` (None until then, and
    while the characteristic has no limits).
    """

    # No index of their own: (characteristic, sequence), (characteristic, created_at) and (lot,
    # characteristic) below lead with them, and each index is a write per sample.
    characteristic = models.ForeignKey(
        "config.Characteristic", on_delete=models.PROTECT, related_name="samples", db_index=False
    )
    sequence = models.PositiveIntegerField(help_text="1, 2, 3, … per characteristic, in arrival order.")
    lot = models.ForeignKey(
        "observations.Lot", on_delete=models.PROTECT, related_name="samples", db_index=False
    )
    values = models.JSONField(help_text="The subgroup's values, in order.")
    observation_ids = models.JSONField(help_text="The observations the values came from, in order.")
    n = models.PositiveSmallIntegerField(help_text="Number of values (units inspected, for attributes).")
    mean = models.FloatField()
    range = models.FloatField(null=True, blank=True, help_text="Max − min; empty for a single value.")
    sd = models.FloatField("SD", null=True, blank=True, help_text="Sample SD (n − 1); empty for n = 1.")
    undersized = models.BooleanField(
        default=False, help_text="Closed with fewer values than the subgroup size (its lot was closed)."
    )
    in_control = models.BooleanField(
        null=True, blank=True, help_text="False when a rule flagged it; empty until judged."
    )
    limits_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The control limits version it was judged against."
    )
    excluded = models.BooleanField(
        default=False, help_text="Left out of control-limit calculations (an assignable cause, a bad run)."
    )
    exclusion_reason = models.TextField(blank=True)
    invalidated = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Holds a value of an invalidated result: drawn apart, never judged or used for limits.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["characteristic", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["characteristic", "sequence"], name="sample_sequence_unique_per_characteristic"
            ),
            models.CheckConstraint(condition=Q(n__gte=1), name="sample_n_positive"),
        ]
        indexes = [
            models.Index(fields=["lot", "characteristic"], name="sample_lot_characteristic"),
            # The first sample since a scheduled sample fell due (schedules_check, every minute).
            models.Index(fields=["characteristic", "created_at"], name="sample_characteristic_created"),
        ]

    def __str__(self) -> str:
        return f"Sample {self.sequence} of characteristic {self.characteristic_id}"


class SubgroupFeed(models.Model):
    """Where the observations.in worker is with one characteristic: its row lock orders the work.

    Confirmed observations of a characteristic are numbered (`last_position`) and
    folded into subgroups while this row is locked (SELECT … FOR UPDATE), so two
    workers never interleave a characteristic's values. `pending` holds the values
    of unfinished subgroups per lot: {"<lot id>": {"values": [...], "observations": [...]}}.
    `checksums` holds the lot checksum of each working lot as its newest observation
    carries it ({"<lot id>": checksum}), so numbering a batch reads no observation; a lot
    missing from it (closed and reopened, or older data) is read from its observations.
    """

    characteristic = models.OneToOneField(
        "config.Characteristic", primary_key=True, on_delete=models.PROTECT, related_name="feed"
    )
    last_position = models.PositiveBigIntegerField(default=0)
    last_sequence = models.PositiveIntegerField(default=0)
    pending = models.JSONField(default=dict, blank=True)
    checksums = models.JSONField(default=dict, blank=True)
    # A correction (apps.observations.services.corrections) asks the calculation to take the
    # characteristic back: samples from this sequence on are judged again, and the statistics of
    # these lots and of the product are recomputed from what is still confirmed (docs/adr/0015).
    recalculate_from = models.PositiveIntegerField(
        null=True, blank=True, help_text="First sample sequence to judge again after a correction."
    )
    recalculate_lots = models.JSONField(
        default=list, blank=True, help_text="Lots whose statistics a correction asks to recompute."
    )

    def __str__(self) -> str:
        return f"Subgroup feed of characteristic {self.characteristic_id}"

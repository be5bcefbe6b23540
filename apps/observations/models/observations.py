from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.observations.choices import InvalidationStatus, ObservationSource, ObservationStatus


class ObservationQuerySet(models.QuerySet["Observation"]):
    def visible_to(self, user: User | AnonymousUser) -> "ObservationQuerySet":
        """A tester or a device reads only what they posted (a device: the status of its own
        ingestion); other roles with the view right read all, users without it nothing."""
        from openspc.roles import Role, has_role, is_tester_only, may_view

        if not may_view(user, self.model):
            return self.none()
        if is_tester_only(user) or has_role(user, Role.DEVICE):
            return self.filter(user=user.pk)
        return self


class Observation(models.Model):
    """One posted observation: the replicate values of one test on one item (or lot, for device data).

    Stored with status `received` before anything is acknowledged, then checked by
    the `observations.in` worker and marked `confirmed` or `rejected`. Nothing
    posted is ever discarded: a rejected observation keeps its values and reasons.
    The idempotency key makes a retried post create nothing new.
    """

    item = models.ForeignKey(
        "observations.Item",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="observations",
        db_index=False,  # observation_item_test_status leads with it
        help_text="Empty for device data that names only the lot.",
    )
    lot = models.ForeignKey(
        "observations.Lot",
        on_delete=models.PROTECT,
        related_name="observations",
        db_index=False,  # observation_lot_test_position leads with it
    )
    test = models.ForeignKey("config.Test", on_delete=models.PROTECT, related_name="observations")
    characteristic = models.ForeignKey(
        "config.Characteristic",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="observations",
        db_index=False,  # observation_position_unique_per_characteristic leads with it
        help_text="Set when the observation is confirmed.",
    )
    values = models.JSONField(help_text="The values as posted (replicates of one test), in order.")
    observed_at = models.DateTimeField(help_text="When the source measured it (the post time if not given).")
    received_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=16, choices=ObservationSource.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="observations",
        help_text="Who posted it: the tester, or the device's service user.",
    )
    # Unique by a constraint in Meta, not unique=True: on PostgreSQL that also makes a second
    # index for LIKE lookups, which no query makes, and every index is written for every row.
    idempotency_key = models.CharField(
        max_length=200,
        help_text="The poster's id and the client's key, or a hash of what was posted.",
    )
    status = models.CharField(
        max_length=16, choices=ObservationStatus.choices, default=ObservationStatus.RECEIVED
    )
    reasons = models.JSONField(
        default=list, blank=True, help_text='Why it was rejected: [{"code", "message"}].'
    )
    processed_at = models.DateTimeField(null=True, blank=True)
    position = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="Order folded among the characteristic's confirmed observations: arrival order, but "
        "historical values confirmed together by the time they were measured.",
    )
    hash = models.BigIntegerField(
        null=True, blank=True, help_text="64-bit hash of (id, values) of a confirmed observation."
    )
    lot_checksum = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Sum mod 2^64 of the hashes of its lot's confirmed observations of this test, up to it.",
    )
    retest_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="retests",
        db_index=False,  # observation_retest_of, partial: most rows are no retest
        help_text="The invalidated result this one retests or corrects.",
    )
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        db_index=False,  # observation_verified_by: the verified rows only
        help_text="The second person who verified the result (never who entered it).",
    )  # fmt: skip
    verified_at = models.DateTimeField(null=True, blank=True)
    historical = models.BooleanField(
        db_default=False, help_text="Sent as historical by its source (Sparkplug store and forward)."
    )
    late = models.BooleanField(
        db_default=False,
        help_text="Historical, measured before the chart's last point when it arrived: kept apart, "
        "on no sample.",
    )
    sample = models.ForeignKey(
        "observations.Sample",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # nothing looks observations up by sample; Sample.observation_ids lists them
        help_text="The subgroup that holds its (last) value; empty while the subgroup is incomplete.",
    )

    objects = ObservationQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="observation_idempotency_key_unique"),
            models.CheckConstraint(
                condition=Q(status__in=ObservationStatus.values), name="observation_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(source__in=ObservationSource.values), name="observation_source_valid"
            ),
            models.CheckConstraint(
                condition=Q(status=ObservationStatus.RECEIVED, processed_at__isnull=True)
                | (~Q(status=ObservationStatus.RECEIVED) & Q(processed_at__isnull=False)),
                name="observation_processed_at_iff_processed",
            ),
            models.UniqueConstraint(
                fields=["characteristic", "position"], name="observation_position_unique_per_characteristic"
            ),
            models.CheckConstraint(
                condition=Q(verified_by__isnull=True, verified_at__isnull=True)
                | Q(verified_by__isnull=False, verified_at__isnull=False),
                name="observation_verified_at_with_verifier",
            ),
            models.CheckConstraint(
                condition=Q(verified_by__isnull=True) | ~Q(verified_by=models.F("user")),
                name="observation_verified_by_another",
            ),
        ]
        # Every index is written on each insert and again when the worker confirms the row (status,
        # position and sample change, so the update is never HOT): a foreign key led by a
        # composite index below has no index of its own.
        indexes = [
            # The stale sweep reads only rows still waiting; a partial index stays small.
            models.Index(
                fields=["received_at"],
                condition=Q(status=ObservationStatus.RECEIVED),
                name="observation_received_sweep",
            ),
            # The data health check counts the rejections since its last run; rejected rows are few,
            # and so is this index.
            models.Index(
                fields=["processed_at"],
                condition=Q(status=ObservationStatus.REJECTED),
                name="observation_rejected_processed",
            ),
            # Every index costs every row a write when stored and again when processed (the
            # update changes indexed columns: never HOT), so none repeats another's leading columns.
            models.Index(fields=["item", "test", "status"], name="observation_item_test_status"),
            models.Index(fields=["lot", "test", "position"], name="observation_lot_test_position"),
            models.Index(
                fields=["retest_of"], condition=Q(retest_of__isnull=False), name="observation_retest_of"
            ),
            models.Index(
                fields=["verified_by"], condition=Q(verified_by__isnull=False), name="observation_verified_by"
            ),
        ]
        permissions = [
            ("verify_observation", "Can verify results"),
            ("approve_invalidation", "Can approve invalidations"),
        ]

    def __str__(self) -> str:
        return f"Observation {self.pk} ({self.status})"


class Invalidation(models.Model):
    """Why and by whom a result was (or is asked to be) invalidated. The result itself is never
    changed in place: once approved its status becomes `invalidated`, and a retest or an amended
    value is a new observation whose `retest_of` is this one."""

    observation = models.OneToOneField(Observation, on_delete=models.PROTECT, related_name="invalidation")
    reason = models.TextField()
    status = models.CharField(
        max_length=16, choices=InvalidationStatus.choices, default=InvalidationStatus.REQUESTED
    )
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    retest_requested = models.BooleanField(default=False, help_text="The item is to be tested again.")
    amended_values = models.JSONField(
        null=True, blank=True,
        help_text="An amendment's corrected values: a new result once the invalidation takes effect.",
    )  # fmt: skip

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=InvalidationStatus.values), name="invalidation_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status=InvalidationStatus.REQUESTED, decided_at__isnull=True)
                | (~Q(status=InvalidationStatus.REQUESTED) & Q(decided_at__isnull=False)),
                name="invalidation_decided_at_iff_decided",
            ),
        ]

    def __str__(self) -> str:
        return f"Invalidation of observation {self.observation_id} ({self.get_status_display()})"

"""Sampling schedules (issue #21, docs/alarms.md "Sampling schedules"): how often a characteristic
is to be sampled, so that a missed sample is noticed."""

from django.db import models
from django.db.models import Q

from apps.config.choices import ScheduleKind


class SamplingSchedule(models.Model):
    """When samples of a characteristic are due: every N minutes, once per shift (the plant's
    SHIFT_STARTS), once per working lot, or every N units (items) made. One per characteristic, or
    one per test for every characteristic of the test that has none of its own. A sample is
    overdue `grace_minutes` after it fell due."""

    characteristic = models.OneToOneField(
        "config.Characteristic", null=True, blank=True, on_delete=models.CASCADE, related_name="schedule"
    )
    test = models.OneToOneField(
        "config.Test", null=True, blank=True, on_delete=models.CASCADE, related_name="schedule",
        help_text="A schedule for every characteristic of this test without its own.",
    )  # fmt: skip
    kind = models.CharField(max_length=16, choices=ScheduleKind.choices)
    every_minutes = models.PositiveIntegerField(null=True, blank=True, help_text="For every N minutes.")
    every_units = models.PositiveIntegerField(null=True, blank=True, help_text="For every N units made.")
    grace_minutes = models.PositiveIntegerField(
        default=15, help_text="How long after it falls due a sample becomes overdue."
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(characteristic__isnull=False, test__isnull=True)
                | Q(characteristic__isnull=True, test__isnull=False),
                name="schedule_for_characteristic_or_test",
            ),
            models.CheckConstraint(condition=Q(kind__in=ScheduleKind.values), name="schedule_kind_valid"),
            models.CheckConstraint(
                condition=~Q(kind=ScheduleKind.INTERVAL) | Q(every_minutes__gte=1),
                name="schedule_interval_has_minutes",
            ),
            models.CheckConstraint(
                condition=~Q(kind=ScheduleKind.UNITS) | Q(every_units__gte=1),
                name="schedule_units_has_units",
            ),
        ]

    def __str__(self) -> str:
        target = (
            f"characteristic {self.characteristic_id}" if self.characteristic_id else f"test {self.test_id}"
        )
        return f"Sampling schedule of {target}: {self.describe()}"

    def describe(self) -> str:
        if self.kind == ScheduleKind.INTERVAL:
            return f"every {self.every_minutes} min"
        if self.kind == ScheduleKind.UNITS:
            return f"every {self.every_units} units"
        return "once per shift" if self.kind == ScheduleKind.SHIFT else "once per lot"

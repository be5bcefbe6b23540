"""Samples a sampling schedule asked for (issue #21), and the alarms that go back to the plant over
MQTT from the observation side (data health, spec, schedules)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.observations.choices import MissedSampleReason, ScheduledSampleState


class ScheduledSample(models.Model):
    """One sample a characteristic's schedule asked for: due from `due_at`, overdue from
    `overdue_at`, taken when a sample of the characteristic was made since it fell due (in its lot,
    for a schedule per lot), or closed as missed with a reason code by a person."""

    characteristic = models.ForeignKey("config.Characteristic", on_delete=models.CASCADE, related_name="+")
    slot = models.CharField(
        max_length=64, help_text="Which sample of the schedule: 'interval:<start>', 'lot:<id>', 'units:<k>'."
    )
    lot = models.ForeignKey(
        "observations.Lot", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    due_at = models.DateTimeField()
    overdue_at = models.DateTimeField()
    state = models.CharField(
        max_length=16, choices=ScheduledSampleState.choices, default=ScheduledSampleState.DUE
    )
    taken_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    reason_code = models.CharField(max_length=32, blank=True, choices=MissedSampleReason.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["characteristic", "slot"], name="scheduled_sample_once_per_slot"),
            models.CheckConstraint(
                condition=Q(state__in=ScheduledSampleState.values), name="scheduled_sample_state_valid"
            ),
            models.CheckConstraint(
                condition=~Q(state=ScheduledSampleState.MISSED) | ~Q(reason_code=""),
                name="scheduled_sample_missed_has_reason",
            ),
        ]
        indexes = [
            models.Index(
                fields=["characteristic", "due_at"],
                name="scheduled_sample_open",
                condition=Q(state__in=["due", "overdue"]),
            )
        ]

    def __str__(self) -> str:
        due = f"{self.due_at:%Y-%m-%d %H:%M}"
        return f"Sample of characteristic {self.characteristic_id} due {due} ({self.state})"


class PlantMessage(models.Model):
    """An alarm of the observation side to publish back to the plant over MQTT (an outbox: written
    in the transaction that raised it; apps.mqtt_bridge.publisher publishes it at least once):
    `spc/health/...` for data health, `spc/spec/...` for values out of spec, `spc/schedule/...`
    for overdue samples."""

    event = models.CharField(max_length=32, help_text="data.rejected, spec.violated, sample.overdue, …")
    characteristic = models.ForeignKey("config.Characteristic", on_delete=models.CASCADE, related_name="+")
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.event} of characteristic {self.characteristic_id}"

"""Data health of each characteristic (issue #21): whether its values are being rejected."""

from django.db import models
from django.utils import timezone

from apps.observations.choices import HealthState


class CharacteristicHealth(models.Model):
    """What the last data health check (observations.data_health, every DATA_HEALTH_INTERVAL_SECONDS)
    found for one characteristic over the last DATA_HEALTH_WINDOW_SECONDS: values confirmed and
    rejected, the most frequent reasons, and the state the overview shows."""

    characteristic = models.OneToOneField(
        "config.Characteristic", primary_key=True, on_delete=models.CASCADE, related_name="health"
    )
    state = models.CharField(max_length=16, choices=HealthState.choices, default=HealthState.OK)
    since = models.DateTimeField(help_text="When the characteristic entered this state.")
    confirmed = models.PositiveIntegerField(default=0, help_text="Values confirmed in the window.")
    rejected = models.PositiveIntegerField(
        default=0, help_text="Values rejected in the window, dead letters meant for it included."
    )
    dead_letters = models.PositiveIntegerField(
        default=0, help_text="MQTT messages meant for it kept as dead letters in the window."
    )
    dead_letters_total = models.PositiveBigIntegerField(
        default=0, help_text="Dead letters meant for it ever (counted up by apps.mqtt_bridge)."
    )
    dead_letters_counted = models.PositiveBigIntegerField(
        default=0, help_text="dead_letters_total as the last check read it."
    )
    dead_letter_reason = models.JSONField(
        default=dict, blank=True, help_text='The latest dead letter\'s {"code", "message"}.'
    )
    reasons = models.JSONField(
        default=list, blank=True, help_text='The most frequent reasons, [{"code", "message", "count"}].'
    )
    positions = models.JSONField(
        default=list, blank=True,
        help_text="[[time, confirmed position]] per check within the window: the confirmed values are "
        "counted from these, never by scanning observations.",
    )  # fmt: skip
    window_seconds = models.PositiveIntegerField(default=0, help_text="How long the counts cover.")
    last_value_at = models.DateTimeField(
        null=True, blank=True,
        help_text="The check that last saw a value arrive (confirmed or rejected), else the first check.",
    )  # fmt: skip
    checked_at = models.DateTimeField()
    source_offline = models.BooleanField(
        default=False,
        help_text="Its Sparkplug B metric is announced only by dead nodes (kept by apps.mqtt_bridge).",
    )

    class Meta:
        verbose_name_plural = "characteristic health"

    def __str__(self) -> str:
        return f"Data health of characteristic {self.characteristic_id}: {self.state}"

    @property
    def rejected_percent(self) -> int:
        total = self.confirmed + self.rejected
        return round(100 * self.rejected / total) if total else 0

    @property
    def summary(self) -> str:
        """What the overview says while the data is unhealthy: '38 % rejected: not in an effective
        plan', 'Not receiving data since 10:42', 'Data source offline since 10:40'."""
        if self.state == HealthState.STALE:
            return f"Not receiving data since {timezone.localtime(self.last_value_at or self.since):%H:%M}"
        if self.state == HealthState.OFFLINE:
            return f"Data source offline since {timezone.localtime(self.since):%H:%M}"
        if self.state != HealthState.REJECTING:
            return ""
        top = self.reasons[0]["message"] if self.reasons else "no reason recorded"
        return f"{self.rejected_percent} % rejected: {top}"

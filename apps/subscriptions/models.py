"""Subscriptions of users to results, and the notifications they get."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.subscriptions.choices import SubscriptionEvent, SubscriptionScope


def events_default() -> list[str]:
    return [SubscriptionEvent.VIOLATIONS.value]


class Subscription(models.Model):
    """What one user wants to hear about: one scope, some kinds of event, optionally by e-mail."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscriptions")
    scope = models.CharField(max_length=16, choices=SubscriptionScope.choices)
    product = models.ForeignKey(
        "config.Product", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    test = models.ForeignKey("config.Test", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    lot = models.ForeignKey(
        "observations.Lot", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    characteristic = models.ForeignKey(
        "config.Characteristic", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    events = models.JSONField(
        default=events_default, help_text="Kinds of event: results, violations, limits, disposition."
    )
    email = models.BooleanField(default=False, help_text="Also send them by e-mail, batched per interval.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user", "scope", "id"]
        constraints = [
            models.CheckConstraint(
                name="subscription_target_matches_scope",
                condition=(
                    Q(
                        scope="product",
                        product__isnull=False,
                        test__isnull=True,
                        lot__isnull=True,
                        characteristic__isnull=True,
                    )
                    | Q(
                        scope="test",
                        product__isnull=True,
                        test__isnull=False,
                        lot__isnull=True,
                        characteristic__isnull=True,
                    )
                    | Q(
                        scope="lot",
                        product__isnull=True,
                        test__isnull=True,
                        lot__isnull=False,
                        characteristic__isnull=True,
                    )
                    | Q(
                        scope="characteristic",
                        product__isnull=True,
                        test__isnull=True,
                        lot__isnull=True,
                        characteristic__isnull=False,
                    )
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.scope}"


class Notification(models.Model):
    """One message in a user's inbox, made from an event by a subscription."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    event = models.CharField(max_length=32, help_text="The event it came from, e.g. violation.created.")
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    link = models.CharField(max_length=500, blank=True, help_text="Where to look: the chart or the lot.")
    data = models.JSONField(default=dict, blank=True, help_text="The event's data.")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    dedup_key = models.CharField(
        max_length=100,
        blank=True,
        help_text="Names the event it came from (violation.created:42): a redelivered event adds nothing.",
    )
    coalesce_key = models.CharField(
        max_length=100,
        blank=True,
        help_text="Results of one lot and characteristic: while unread, new results update this one.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "dedup_key"], condition=~Q(dedup_key=""), name="notification_once_per_event"
            ),
            models.UniqueConstraint(
                fields=["user", "coalesce_key"],
                condition=Q(read_at__isnull=True) & ~Q(coalesce_key=""),
                name="notification_one_unread_per_coalesce_key",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="notification_user_created"),
            models.Index(fields=["user", "read_at"], name="notification_user_read"),
            # The e-mail digest reads only the few not yet e-mailed.
            models.Index(
                fields=["user"], condition=Q(emailed_at__isnull=True), name="notification_unemailed"
            ),
        ]

    def __str__(self) -> str:
        return self.title

"""Enumerations of subscriptions and notifications."""

from django.db import models


class SubscriptionScope(models.TextChoices):
    PRODUCT = "product", "Product"
    TEST = "test", "Test (across products)"
    LOT = "lot", "Lot"
    CHARACTERISTIC = "characteristic", "Characteristic"


class SubscriptionEvent(models.TextChoices):
    RESULTS = "results", "New results and statistics updates"
    VIOLATIONS = "violations", "Violations"
    LIMITS = "limits", "Control limit changes"
    DISPOSITION = "disposition", "Lot disposition"
    DATA_HEALTH = "data_health", "Data health (values rejected, data stopped, source offline)"
    SPEC = "spec", "Values out of specification"
    SCHEDULE = "schedule", "Samples overdue by their schedule"

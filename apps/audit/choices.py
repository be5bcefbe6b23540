"""Enumerations of the audit trail."""

from django.db import models


class AuditAction(models.TextChoices):
    CREATE = "create", "Created"
    UPDATE = "update", "Changed"
    DELETE = "delete", "Deleted"
    ACKNOWLEDGE = "acknowledge", "Acknowledged"
    LIMITS = "limits", "Control limits changed"
    EXCLUDE = "exclude", "Sample excluded"
    INCLUDE = "include", "Sample included again"
    SIGN = "sign", "Signed"
    SIGN_FAILED = "sign_failed", "Signature refused"
    SIGN_LOCKED = "sign_locked", "Signing locked"
    STATUS = "status", "Status changed"
    ITEMS_ADDED = "items_added", "Items added"
    PLANS_CHOSEN = "plans_chosen", "Test plans chosen"
    ASSIGNED = "assigned", "Items handed to a tester"
    RESULTS = "results", "Results entered"
    CLOSE_MISSED = "close_missed", "Scheduled sample closed as missed"

"""Reads of the audit trail."""

from django.db.models import QuerySet

from apps.audit.models import AuditEntry


def audit_entry_queryset() -> QuerySet[AuditEntry]:
    return AuditEntry.objects.select_related("user", "content_type")

"""The audit trail: who changed what, when, from what to what, and why. Append-only."""

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models

from apps.audit.choices import AuditAction


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: object) -> int:
        raise TypeError("Audit entries are never changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError("Audit entries are never deleted.")


class AuditEntry(models.Model):
    """One audited change. Rows are only ever inserted (services.audit_record); the model refuses
    updates and deletes, and the API and admin only read."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=255)
    before = models.JSONField(
        null=True, blank=True, help_text="The audited fields before; empty for a creation."
    )
    after = models.JSONField(
        null=True, blank=True, help_text="The audited fields after; empty for a deletion."
    )
    reason = models.TextField(blank=True)
    source = models.CharField(max_length=16, blank=True, help_text="'api', 'admin', 'worker', …")

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["content_type", "object_id"], name="audit_object")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.object_repr}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise TypeError("Audit entries are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise TypeError("Audit entries are never deleted.")

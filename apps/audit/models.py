"""The audit trail: who changed what, when, from what to what, and why. Append-only."""

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone

from apps.audit.choices import AuditAction

GENESIS_HASH = "0" * 64  # the `prev_hash` of the first entry of the chain


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: object) -> int:
        raise TypeError("Audit entries are never changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError("Audit entries are never deleted.")


class AuditEntry(models.Model):
    """One audited change. Rows are only ever inserted (services.audit_record); the model refuses
    updates and deletes, and the API and admin only read.

    The entries form a hash chain: `seq` is the position, `prev_hash` the `hash` of the entry before
    (GENESIS_HASH for the first), and `hash` the SHA-256 of `prev_hash` and the entry's content
    (apps/audit/chain.py). `manage.py audit_verify` walks it."""

    seq = models.PositiveBigIntegerField(unique=True, help_text="Position in the hash chain, from 1.")
    prev_hash = models.CharField(max_length=64, help_text="The hash of the entry before (hex SHA-256).")
    hash = models.CharField(max_length=64, help_text="SHA-256 of prev_hash and this entry's content.")
    at = models.DateTimeField(default=timezone.now, db_index=True)
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
        ordering = ["-seq"]
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


class AuditChainHead(models.Model):
    """The end of the hash chain: the last entry's position and hash, in one row (pk 1).

    Every append locks this row (SELECT … FOR UPDATE) until its transaction commits, so appends
    are serialised and each takes the next position and the hash before it."""

    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"audit chain at {self.seq}"

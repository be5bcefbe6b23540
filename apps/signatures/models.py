"""Electronic signatures: who signed which record, meaning what, when, bound to what they signed."""

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q

from apps.signatures.choices import SignatureMeaning, SignedAction


class Signature(models.Model):
    """One electronic signature (21 CFR Part 11 §11.50, §11.70): the printed name, the time with its
    time zone and the meaning form its manifest; `content_hash` binds it to the record as signed,
    so a record changed afterwards shows "changed after signing" and the signature no longer counts.
    Rows are only inserted (services.signature_record)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    full_name = models.CharField(max_length=300, help_text="The signer's printed name at signing.")
    meaning = models.CharField(max_length=16, choices=SignatureMeaning.choices)
    action = models.CharField(max_length=32, choices=SignedAction.choices)
    signed_at = models.DateTimeField()
    time_zone = models.CharField(max_length=64, help_text="The time zone the manifest states the time in.")
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=255)
    content = models.JSONField(help_text="What was signed, as signed.")
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of the canonical signed content.")
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["signed_at", "id"]
        indexes = [models.Index(fields=["content_type", "object_id"], name="signature_record")]
        constraints = [
            models.CheckConstraint(
                condition=Q(meaning__in=SignatureMeaning.values), name="signature_meaning_valid"
            ),
            models.CheckConstraint(
                condition=Q(action__in=SignedAction.values), name="signature_action_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.full_name}: {self.get_meaning_display()} {self.object_repr}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise TypeError("Signatures are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise TypeError("Signatures are never deleted.")

"""Lot records: the signed disposition of a lot, requests to release it, and the out-of-spec
investigations its results open."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.records.choices import Decision, InvestigationOutcome, InvestigationStatus


class LotDisposition(models.Model):
    """One decision on a lot (release, reject, quarantine), who took it and why; the electronic
    signature binds it to the lot's results as they were (apps.signatures, signed content:
    selectors.disposition_content). A release under deviation carries its justification.
    Rows are only inserted (services.lot_disposition_decide)."""

    lot = models.ForeignKey("observations.Lot", on_delete=models.PROTECT, related_name="dispositions")
    decision = models.CharField(max_length=16, choices=Decision.choices)
    deviation = models.TextField(
        blank=True, help_text="The justification of a release under deviation (empty: no deviation)."
    )
    reason = models.TextField(blank=True)
    blocking_reasons = models.JSONField(
        default=list,
        blank=True,
        help_text="What blocked a normal release when this one was taken (deviation).",
    )
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["decided_at", "id"]
        permissions = [("approve_lotdisposition", "Can release or reject lots (approve lot disposition)")]
        constraints = [
            models.CheckConstraint(
                condition=Q(decision__in=Decision.values), name="disposition_decision_valid"
            ),
            models.CheckConstraint(
                condition=Q(deviation="") | Q(decision=Decision.RELEASE),
                name="disposition_deviation_release_only",
            ),
        ]

    def __str__(self) -> str:
        under = " under deviation" if self.deviation else ""
        return f"{self.get_decision_display()}{under} of lot {self.lot_id}"


class LotReleaseRequest(models.Model):
    """An operations lead's request that the approvers release a lot (they are notified)."""

    lot = models.ForeignKey("observations.Lot", on_delete=models.PROTECT, related_name="release_requests")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"Release request {self.pk} for lot {self.lot_id}"


class OosInvestigation(models.Model):
    """An out-of-spec investigation opened by a confirmed manual result outside its specification
    limits. Phase I looks for an assignable laboratory cause: found, the result is invalidated and
    retested (outcome lab_error); not found, the out-of-spec result is confirmed. While it is not
    closed the lot cannot be released."""

    lot = models.ForeignKey("observations.Lot", on_delete=models.PROTECT, related_name="oos_investigations")
    observation = models.OneToOneField(
        "observations.Observation", on_delete=models.PROTECT, related_name="oos_investigation"
    )
    characteristic = models.ForeignKey("config.Characteristic", on_delete=models.PROTECT, related_name="+")
    test = models.ForeignKey("config.Test", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=16, choices=InvestigationStatus.choices, default=InvestigationStatus.OPEN
    )
    outcome = models.CharField(max_length=16, choices=InvestigationOutcome.choices, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    summary = models.TextField(blank=True, help_text="The closing summary: what was found.")

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=InvestigationStatus.values), name="oos_investigation_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status=InvestigationStatus.CLOSED, closed_at__isnull=False) & ~Q(outcome="")
                | (~Q(status=InvestigationStatus.CLOSED) & Q(closed_at__isnull=True, outcome="")),
                name="oos_investigation_closed_with_outcome",
            ),
        ]

    def __str__(self) -> str:
        return f"OOS investigation {self.pk} ({self.get_status_display()})"


class InvestigationNote(models.Model):
    """A note on an investigation: who wrote what, when. Only added."""

    investigation = models.ForeignKey(OosInvestigation, on_delete=models.CASCADE, related_name="notes")
    text = models.TextField()
    written_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    written_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["written_at", "id"]

    def __str__(self) -> str:
        return f"Note {self.pk} on investigation {self.investigation_id}"

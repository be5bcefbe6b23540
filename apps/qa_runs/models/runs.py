import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.qa_runs.choices import EVENT_TERMINAL, EventType, RunStatus, Verdict


class QaPackageRun(models.Model):
    """One run of a package: its plan id (what clients poll), where it stands, and what it found.

    Status moves along choices.RUN_TRANSITIONS, only through services.qa_run_transition.
    last_sequence counts the run's events: services.event_publish increments it with an UPDATE,
    which is also the lock that keeps two publishers from taking the same sequence number.
    """

    plan_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    package = models.ForeignKey("qa_runs.QaPackage", on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=24, choices=RunStatus.choices, default=RunStatus.REQUESTED)
    spec_hash = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the spec document used.")
    operations_total = models.PositiveIntegerField(default=0)
    operations_covered = models.PositiveIntegerField(
        default=0, help_text="Operations with a scenario executed."
    )
    scenarios_total = models.PositiveIntegerField(default=0)
    scenarios_passed = models.PositiveIntegerField(default=0)
    scenarios_failed = models.PositiveIntegerField(default=0)
    scenarios_skipped = models.PositiveIntegerField(
        default=0, help_text="Not executed on purpose: a step the package does not allow (safety.py)."
    )
    steps_total = models.PositiveIntegerField(default=0)
    steps_failed = models.PositiveIntegerField(default=0)
    verdict = models.CharField(max_length=24, choices=Verdict.choices, blank=True)
    error = models.TextField(blank=True, help_text="Why the run failed, in words.")
    last_sequence = models.PositiveIntegerField(default=0, editable=False)
    cancel_requested_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Set by a cancel request; the pipeline stops at its next check and ends the run CANCELLED.",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_host = models.CharField(
        max_length=255,
        blank=True,
        editable=False,
        help_text="The host (and port) the run was started through: one of this system's own names.",
    )
    requested_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["package", "-requested_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=RunStatus.values), name="qa_run_status_valid"),
            models.CheckConstraint(
                condition=Q(verdict__in=["", *Verdict.values]), name="qa_run_verdict_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.package} run {self.plan_id} ({self.status})"

    @property
    def coverage(self) -> float | None:
        """Share of the spec's operations that had a scenario executed; None before any are known."""
        return self.operations_covered / self.operations_total if self.operations_total else None


class QaEvent(models.Model):
    """Something that happened in a run, numbered 1, 2, 3… per run: clients poll the events after
    the last sequence they hold. Exactly one terminal event (COMPLETE, FAILED, CANCELLED) ends a run."""

    run = models.ForeignKey("qa_runs.QaPackageRun", on_delete=models.CASCADE, related_name="events")
    sequence = models.PositiveIntegerField()
    type = models.CharField(max_length=24, choices=EventType.choices)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["run", "sequence"], name="qa_event_sequence_unique"),
            models.UniqueConstraint(
                fields=["run"],
                condition=Q(type__in=sorted(EVENT_TERMINAL)),
                name="qa_event_one_terminal_per_run",
            ),
            models.CheckConstraint(condition=Q(type__in=EventType.values), name="qa_event_type_valid"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.type}"

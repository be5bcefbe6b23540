from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.qa_runs.choices import ScenarioKind, ScenarioSource


class Scenario(models.Model):
    """A sequence of requests against one operation (a chain touches several; operation_id names the
    one it starts from). steps holds the steps as data, in the shape of generate.SCENARIO_SCHEMA."""

    run = models.ForeignKey("qa_runs.QaPackageRun", on_delete=models.CASCADE, related_name="scenarios")
    position = models.PositiveIntegerField(help_text="Order within the run.")
    name = models.CharField(max_length=300)
    operation_id = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=2048)
    kind = models.CharField(max_length=16, choices=ScenarioKind.choices)
    source = models.CharField(max_length=16, choices=ScenarioSource.choices)
    steps = models.JSONField(default=list)
    passed = models.BooleanField(null=True, blank=True, help_text="Empty until executed.")
    skipped_reason = models.CharField(
        max_length=500,
        blank=True,
        help_text="Why it is not executed (an unsafe method the package does not allow, a call of this "
        "system's own runs); empty: it is to run.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="qa_scenario_position_unique"),
            models.CheckConstraint(condition=Q(kind__in=ScenarioKind.values), name="qa_scenario_kind_valid"),
            models.CheckConstraint(
                condition=Q(source__in=ScenarioSource.values), name="qa_scenario_source_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class StepResult(models.Model):
    """What one step sent and got back, with secrets masked and the body truncated
    (services.step_result_record), and a curl line that reproduces it (credential masked too)."""

    scenario = models.ForeignKey("qa_runs.Scenario", on_delete=models.CASCADE, related_name="step_results")
    index = models.PositiveIntegerField()
    request = models.JSONField(default=dict, help_text="Method, URL, headers and body as sent (masked).")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty: no response.")
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True)
    body_truncated = models.BooleanField(default=False)
    duration_ms = models.PositiveIntegerField(default=0)
    checks = models.JSONField(default=list, blank=True, help_text="Each check's name, outcome and message.")
    passed = models.BooleanField(default=False)
    error = models.TextField(blank=True, help_text="Timeout, refused connection…: why there is no response.")
    curl = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["scenario", "index"]
        constraints = [
            models.UniqueConstraint(fields=["scenario", "index"], name="qa_step_result_index_unique")
        ]

    def __str__(self) -> str:
        return f"{self.scenario} step {self.index}: {self.response_status or self.error[:40]}"

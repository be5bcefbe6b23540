"""Enumerations of QA package runs (seed 001): run status and its transitions, verdicts, events,
where a scenario came from and what it tries."""

from django.db import models


class AuthKind(models.TextChoices):
    NONE = "none", "No authentication"
    BEARER = "bearer", "Bearer token (Authorization: Bearer …)"
    HEADER = "header", "A header with a value (e.g. X-Api-Key)"


class GeneratorKind(models.TextChoices):
    """How a package's scenarios are written: from the spec alone, or by the AI generator (which
    falls back to the spec's scenarios when it is not configured or fails)."""

    SPEC = "spec", "From the spec (deterministic)"
    AI = "ai", "By the AI generator, falling back to the spec's"


class RunStatus(models.TextChoices):
    REQUESTED = "REQUESTED", "Requested"
    SPEC_FETCHED = "SPEC_FETCHED", "Spec fetched"
    SCENARIOS_CREATED = "SCENARIOS_CREATED", "Scenarios created"
    EXECUTING = "EXECUTING", "Executing"
    EVALUATED = "EVALUATED", "Evaluated"
    COMPLETE = "COMPLETE", "Complete"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"


RUN_TERMINAL = frozenset({RunStatus.COMPLETE, RunStatus.FAILED, RunStatus.CANCELLED})
# Where a run may go from each status: forward one stage, or stop (failed, cancelled) at any stage
# before the end. A run that finished stays finished. services.qa_run_transition is the one place
# that changes a run's status, and it reads this table.
_STOP = frozenset({RunStatus.FAILED, RunStatus.CANCELLED})
RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    RunStatus.REQUESTED: frozenset({RunStatus.SPEC_FETCHED}) | _STOP,
    RunStatus.SPEC_FETCHED: frozenset({RunStatus.SCENARIOS_CREATED}) | _STOP,
    RunStatus.SCENARIOS_CREATED: frozenset({RunStatus.EXECUTING}) | _STOP,
    RunStatus.EXECUTING: frozenset({RunStatus.EVALUATED}) | _STOP,
    RunStatus.EVALUATED: frozenset({RunStatus.COMPLETE}) | _STOP,
    RunStatus.COMPLETE: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}


class Verdict(models.TextChoices):
    PASS = "PASS", "Pass"
    PASS_WITH_WARNINGS = "PASS_WITH_WARNINGS", "Pass with warnings"
    FAIL = "FAIL", "Fail"
    ERROR = "ERROR", "Error (the run could not judge the target)"


class EventType(models.TextChoices):
    REQUESTED = "REQUESTED", "Requested"
    SPEC_FETCHED = "SPEC_FETCHED", "Spec fetched"
    SPEC_FETCH_FAILED = "SPEC_FETCH_FAILED", "Spec fetch failed"
    SCENARIO_CREATED = "SCENARIO_CREATED", "Scenario created"
    AI_FAILED = "AI_FAILED", "AI generation failed (one attempt)"
    AI_SUCCESS = "AI_SUCCESS", "AI generation succeeded"
    EXECUTION_STARTED = "EXECUTION_STARTED", "Execution started"
    EXECUTION_SUCCESS = "EXECUTION_SUCCESS", "Scenario executed, checks passed"
    EXECUTION_FAILED = "EXECUTION_FAILED", "Scenario executed, checks failed"
    EXECUTION_SKIPPED = "EXECUTION_SKIPPED", "Scenario not executed: a step is not allowed"
    QA_EVAL_DONE = "QA_EVAL_DONE", "QA evaluation done"
    COMPLETE = "COMPLETE", "Complete"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"


# A run has exactly one of these, and nothing after it (services.event_publish; a partial unique
# constraint on QaEvent backs it up).
EVENT_TERMINAL = frozenset({EventType.COMPLETE, EventType.FAILED, EventType.CANCELLED})
# The event a status change publishes, in the same transaction as the change. SCENARIOS_CREATED has
# none: each scenario publishes its own SCENARIO_CREATED as it is stored.
STATUS_EVENT: dict[str, str] = {
    RunStatus.REQUESTED: EventType.REQUESTED,
    RunStatus.SPEC_FETCHED: EventType.SPEC_FETCHED,
    RunStatus.EXECUTING: EventType.EXECUTION_STARTED,
    RunStatus.EVALUATED: EventType.QA_EVAL_DONE,
    RunStatus.COMPLETE: EventType.COMPLETE,
    RunStatus.FAILED: EventType.FAILED,
    RunStatus.CANCELLED: EventType.CANCELLED,
}


class ScenarioSource(models.TextChoices):
    GENERATED = "generated", "Generated from the spec (deterministic)"
    AI = "ai", "Written by the AI generator"
    FALLBACK = "fallback", "Generated after the AI generator failed"


class ScenarioKind(models.TextChoices):
    POSITIVE = "positive", "Valid request"
    NEGATIVE = "negative", "Invalid request, expects a 4xx"
    UNAUTHENTICATED = "unauthenticated", "Request without credentials, expects 401/403"
    CHAIN = "chain", "Create → read → delete"

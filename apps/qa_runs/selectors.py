"""Reads of QA package runs: runs with their package, events after a sequence, scenarios with
their step results, and each operation's outcome."""

from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet

from apps.qa_runs.models import QaEvent, QaPackage, QaPackageRun, Scenario, StepResult

EVENTS_PER_READ = 1000  # events one poll returns at most; the client asks again after the last one


def qa_package_queryset() -> QuerySet[QaPackage]:
    return QaPackage.objects.all()


def unsafe_warning(*, package: QaPackage) -> str:
    """What a run of the package may do to its target, in words naming it; "" for a read-only one.
    The API's start answer and the Start button's confirmation (web/qa_runs.html) say it."""
    if not package.allow_unsafe_methods:
        return ""
    return (
        f"This package sends POST, PUT, PATCH and DELETE requests to {package.target_base_url}: a run "
        "may create, change or delete records there."
    )


def qa_run_queryset() -> QuerySet[QaPackageRun]:
    return QaPackageRun.objects.select_related("package", "requested_by")


def qa_run_events(*, run: QaPackageRun, after: int = 0, limit: int = EVENTS_PER_READ) -> list[QaEvent]:
    """The run's events numbered after `after`, in order, at most `limit`."""
    return list(QaEvent.objects.filter(run=run, sequence__gt=after).order_by("sequence")[:limit])


def qa_run_scenarios(*, run: QaPackageRun, passed: bool | None = None) -> QuerySet[Scenario]:
    """The run's scenarios in order with their step results (bodies left out: the list stays small;
    a scenario's detail has them). passed=False gives the failures."""
    steps = StepResult.objects.defer("response_body", "response_headers").order_by("index")
    scenarios = Scenario.objects.filter(run=run).prefetch_related(Prefetch("step_results", queryset=steps))
    if passed is not None:
        scenarios = scenarios.filter(passed=passed)
    return scenarios.order_by("position")


def qa_run_operations(*, run: QaPackageRun) -> list[dict[str, Any]]:
    """Per operation of the run's scenarios: how many it had, passed, failed, were skipped (a step
    the package does not allow) and are still to run."""
    rows = (
        Scenario.objects.filter(run=run)
        .values("operation_id", "method", "path")
        .annotate(  # not named `passed`: that is the field the filters read
            n_scenarios=Count("id"),
            n_passed=Count("id", filter=Q(passed=True)),
            n_failed=Count("id", filter=Q(passed=False)),
            n_skipped=Count("id", filter=~Q(skipped_reason="")),
        )
        .order_by("path", "method", "operation_id")
    )
    # A chain's rows name the operation it starts from; one row per operation id is what is shown.
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = merged.setdefault(
            row["operation_id"],
            {"operation_id": row["operation_id"], "method": row["method"], "path": row["path"],
             "scenarios": 0, "passed": 0, "failed": 0, "skipped": 0},
        )  # fmt: skip
        entry["scenarios"] += row["n_scenarios"]
        entry["passed"] += row["n_passed"]
        entry["failed"] += row["n_failed"]
        entry["skipped"] += row["n_skipped"]
    for entry in merged.values():
        entry["pending"] = entry["scenarios"] - entry["passed"] - entry["failed"] - entry["skipped"]
    return list(merged.values())

"""A QA package run from start to end (seed 001): fetch the spec, generate scenarios, execute them,
evaluate, complete. `run_execute` is what the Celery task `qa_runs.run` calls.

Stages and their events, in order:

    REQUESTED → SPEC_FETCHED (or SPEC_FETCH_FAILED, then FAILED) → SCENARIO_CREATED × n (AI_FAILED /
    AI_SUCCESS among them with the AI generator) → EXECUTION_STARTED → EXECUTION_SUCCESS /
    EXECUTION_FAILED × n → QA_EVAL_DONE → COMPLETE

and exactly one terminal event: COMPLETE, FAILED (with the reason) or CANCELLED.

Cancel: `qa_run_cancel` ends a run still waiting in the queue at once; a running one gets
`cancel_requested_at`, which the pipeline reads between stages, between operations while generating
and (through a watcher thread) between scenarios while executing; it then ends the run CANCELLED.
The same checks end a run that outlives its package's run_timeout_seconds (FAILED).

Recovery: the task is acknowledged when a worker takes it (tasks.py says why), so a run whose worker
was killed is not run again; `qa_runs_sweep_stale` (every minute, from beat) marks a run that has
not ended long after its time limit FAILED. A run found past REQUESTED when the task starts (a
duplicate delivery) is marked FAILED, never run twice.
"""

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from itertools import zip_longest
from typing import Any, TypeVar

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

from apps.qa_runs.ai import AiGenerator, ai_configured
from apps.qa_runs.choices import RUN_TERMINAL, EventType, GeneratorKind, RunStatus
from apps.qa_runs.evaluate import evaluation_compute
from apps.qa_runs.execute import scenarios_execute
from apps.qa_runs.generate import (
    GeneratedScenario,
    GenerationContext,
    ScenarioGenerator,
    SpecGenerator,
    operations_select,
)
from apps.qa_runs.models import QaPackage, QaPackageRun
from apps.qa_runs.net import TargetRefused, fetch, qa_client, url_check
from apps.qa_runs.push import run_events_push
from apps.qa_runs.safety import SAFE_METHODS, scenario_skip_reason, target_self_refusal
from apps.qa_runs.services import (
    CredentialMissing,
    RunFinished,
    RunTransitionError,
    event_publish,
    qa_run_request,
    qa_run_transition,
    scenario_store,
)
from apps.qa_runs.spec import Operation, Spec, SpecError, spec_parse
from openspc import queues

logger = logging.getLogger(__name__)

WATCH_SECONDS = 0.5  # how often the watcher reads the cancel flag and pushes new events
SWEEP_GRACE = timedelta(minutes=2)  # past a run's time limit before the sweep calls it dead
SPEC_REDIRECTS = 3
T = TypeVar("T")


class Stop(Exception):
    """The run is to end here: cancelled (status CANCELLED) or out of time (FAILED)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class SpecUnusable(Exception):
    """The spec could not be fetched or read; the message says why, for SPEC_FETCH_FAILED."""


# --- Start, cancel and the sweep (writes outside the run's own worker) -----------------------------


def qa_run_start(*, package: QaPackage, requested_by: User | None, requested_host: str = "") -> QaPackageRun:
    """A new run, REQUESTED, queued on `qa_runs` once it is committed (a worker must find the row).
    TargetRefused when the package targets this system itself (seen from requested_host, the host
    the request came through) and QA_ALLOW_SELF_TARGET is off: nothing is queued then."""
    refusal = target_self_refusal(package.target_base_url, request_hosts=[requested_host])
    if refusal:
        raise TargetRefused(package.target_base_url, refusal)
    with transaction.atomic():
        run = qa_run_request(package=package, requested_by=requested_by, requested_host=requested_host)
        transaction.on_commit(lambda: current_app.send_task(queues.QA_RUNS_RUN, kwargs={"run_id": run.pk}))
        transaction.on_commit(lambda: run_events_push(run=run, after=0))
    return run


def qa_run_cancel(*, run: QaPackageRun) -> QaPackageRun:
    """Ask the run to stop. Still queued: CANCELLED now. Running: flagged, and the pipeline ends it
    CANCELLED at its next check (within a scenario's time). RunTransitionError once it has ended."""
    if run.status in RUN_TERMINAL:
        raise RunTransitionError(f"Run {run.plan_id} has already ended ({run.status}).")
    QaPackageRun.objects.filter(pk=run.pk, cancel_requested_at__isnull=True).update(
        cancel_requested_at=timezone.now()
    )
    if run.status == RunStatus.REQUESTED:
        try:
            return qa_run_transition(
                run=run, to=RunStatus.CANCELLED, payload={"reason": "Cancelled before it started."}
            )
        except RunTransitionError:
            pass  # a worker took it meanwhile: it sees the flag at its first check
    run.refresh_from_db()
    return run


def qa_runs_sweep_stale(*, now: Any = None) -> list[QaPackageRun]:
    """Mark FAILED the runs that have not ended SWEEP_GRACE after their package's time limit: their
    worker was killed (or lost its broker connection), so nothing else will ever end them."""
    now = now or timezone.now()
    failed = []
    for run in QaPackageRun.objects.exclude(status__in=RUN_TERMINAL).select_related("package"):
        began = run.started_at or run.requested_at
        if began + timedelta(seconds=run.package.run_timeout_seconds) + SWEEP_GRACE > now:
            continue
        reason = (
            f"The run stopped at {run.get_status_display().lower()} and did not finish within its "
            f"time limit ({run.package.run_timeout_seconds} s): its worker was stopped or lost. "
            "Start a new run."
        )
        try:
            failed.append(
                qa_run_transition(run=run, to=RunStatus.FAILED, error=reason, payload={"reason": reason})
            )
        except RunTransitionError:
            continue  # it ended meanwhile
        run_events_push(run=run, after=run.last_sequence)
    return failed


# --- The watcher -----------------------------------------------------------------------------------


class RunWatch:
    """Beside the run, in a thread of its own (so it works while the executor's threads are busy):
    reads the cancel flag, notices the run's time limit, and pushes newly committed events to the
    channel layer. `stop()` ends it; `check()` is the same reading in the caller's thread."""

    def __init__(self, *, run: QaPackageRun, deadline: float, pushed: int = 0) -> None:
        self.run = run
        self.deadline = deadline
        self.pushed = pushed
        self.stop_status: str | None = None
        self.stop_reason = ""
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"qa-watch-{run.pk}", daemon=True)

    def start(self) -> "RunWatch":
        self._thread.start()
        return self

    def stopped(self) -> bool:
        """The `cancelled` callback for scenarios_execute: cheap, and safe from any thread."""
        return self.stop_status is not None

    def check(self) -> None:
        """Read the flag and the clock now; raise Stop when the run is to end."""
        self._read()
        if self.stop_status is not None:
            raise Stop(self.stop_status, self.stop_reason)

    def push(self) -> None:
        self.pushed = run_events_push(run=self.run, after=self.pushed)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _read(self) -> None:
        if self.stop_status is not None:
            return
        if QaPackageRun.objects.filter(pk=self.run.pk, cancel_requested_at__isnull=False).exists():
            self.stop_reason = "Cancelled on request."
            self.stop_status = RunStatus.CANCELLED
        elif time.monotonic() > self.deadline:
            limit = self.run.package.run_timeout_seconds
            self.stop_reason = f"The run took longer than its time limit ({limit} s)."
            self.stop_status = RunStatus.FAILED

    def _loop(self) -> None:
        try:
            while not self._stopping.wait(WATCH_SECONDS):
                try:
                    self._read()
                    self.push()
                except Exception:  # a busy database (SQLite's lock), a channel layer that is down
                    logger.debug("run %s: watch failed once", self.run.plan_id, exc_info=True)
        finally:
            connection.close()  # this thread's own connection


# --- The stages ------------------------------------------------------------------------------------


def spec_text_get(*, package: QaPackage) -> str:
    """The package's spec: the uploaded text, or the document at spec_url (checked against the SSRF
    policy, same-host redirects followed, size-capped). SpecUnusable says why not."""
    if package.spec_text:
        return package.spec_text
    try:
        target = url_check(package.spec_url)
        with qa_client(targets=[target], timeout_seconds=package.step_timeout_seconds) as client:
            fetched = fetch(
                client,
                "GET",
                target.url,
                max_bytes=settings.QA_SPEC_MAX_BYTES + 1,
                timeout_seconds=package.step_timeout_seconds,
                max_redirects=SPEC_REDIRECTS,
                headers={"Accept": "application/json, application/yaml;q=0.9, */*;q=0.5"},
            )
    except TargetRefused as error:
        raise SpecUnusable(str(error)) from None
    except Exception as error:  # httpx's connect and read errors, a deadline
        raise SpecUnusable(
            f"The spec could not be fetched from {package.spec_url}: {error or type(error).__name__}."
        ) from None
    if fetched.status_code != 200:
        raise SpecUnusable(f"{package.spec_url} answered {fetched.status_code}, not the spec.")
    if fetched.truncated:
        raise SpecUnusable(f"The spec is larger than the limit of {settings.QA_SPEC_MAX_BYTES:,} bytes.")
    return fetched.body.decode("utf-8", errors="replace")


def servers_refused(*, spec: Spec, base: str) -> list[str]:
    """The spec's `servers` that the SSRF policy refuses, with the reason. Requests go to the
    package's target base URL only; a refused server is reported, and never called."""
    refused = []
    for server in spec.servers:
        try:
            url_check(server, base=base)
        except TargetRefused as error:
            refused.append(str(error))
    return refused


def scenarios_select(generated: Sequence[Sequence[T]], limit: int) -> list[T]:
    """Up to `limit` scenarios, taken round-robin over the operations (each one's first, then each
    one's second…), so a limit below the total still covers as many operations as it can."""
    chosen: list[T] = []
    for rank in zip_longest(*generated):
        for scenario in rank:
            if scenario is not None and len(chosen) < limit:
                chosen.append(scenario)
    return chosen


def generator_for(*, run: QaPackageRun) -> ScenarioGenerator:
    """The AI generator when the package asks for it and it is configured; the spec's otherwise."""
    fallback = SpecGenerator()
    if run.package.generator == GeneratorKind.AI and ai_configured():

        def publish(event_type: str, payload: dict[str, Any]) -> None:
            event_publish(run=run, type=event_type, payload=payload)

        return AiGenerator(publish, fallback)
    return fallback


def package_operations(*, package: QaPackage, spec: Spec) -> tuple[Operation, ...]:
    """The spec's operations the package's runs cover (include_tags, path_prefix)."""
    return operations_select(
        spec.operations, tags=package.include_tags or (), path_prefix=package.path_prefix
    )


def scenarios_create(*, run: QaPackageRun, operations: Sequence[Operation], watch: RunWatch) -> int:
    """Generate per operation (cancel checked between operations) and store the chosen ones: the
    limit goes to scenarios that may run first; those the package does not allow (an unsafe method
    in a read-only run) fill what is left, stored as skipped so the run reports them."""
    package = run.package
    context = GenerationContext(
        operations=tuple(operations),
        max_steps=package.max_steps_per_scenario,
        expected_status_overrides=package.expected_status_overrides or {},
    )
    generator = generator_for(run=run)
    offline = SpecGenerator()
    runnable: list[list[GeneratedScenario]] = []
    skipped: list[list[tuple[GeneratedScenario, str]]] = []
    for operation in operations:
        watch.check()
        # An operation that only writes gets skipped scenarios in a read-only run: no AI call for it.
        writes_only = operation.method not in SAFE_METHODS and not package.allow_unsafe_methods
        judged = [
            (scenario, scenario_skip_reason(
                steps=[step.to_dict() for step in scenario.steps], allow_unsafe=package.allow_unsafe_methods
            ))
            for scenario in (offline if writes_only else generator).generate(operation, context)
        ]  # fmt: skip
        runnable.append([scenario for scenario, reason in judged if not reason])
        skipped.append([(scenario, reason) for scenario, reason in judged if reason])
    chosen = [(scenario, "") for scenario in scenarios_select(runnable, package.max_scenarios)]
    chosen += scenarios_select(skipped, package.max_scenarios - len(chosen))
    for position, (scenario, reason) in enumerate(chosen, start=1):
        if position % 50 == 0:
            watch.check()
        scenario_store(run=run, scenario=scenario, position=position, skipped_reason=reason)
    return len(chosen)


def _stages(run: QaPackageRun, watch: RunWatch) -> None:
    package = run.package
    # Refused: FAILED with the reason, before anything is sent (the spec fetch included).
    refusal = target_self_refusal(package.target_base_url, request_hosts=[run.requested_host])
    if refusal:
        raise TargetRefused(package.target_base_url, refusal)
    url_check(package.target_base_url)
    try:
        spec = spec_parse(spec_text_get(package=package), max_bytes=settings.QA_SPEC_MAX_BYTES)
    except (SpecUnusable, SpecError) as error:
        event_publish(run=run, type=EventType.SPEC_FETCH_FAILED, payload={"reason": str(error)})
        raise SpecUnusable(str(error)) from None
    refused = servers_refused(spec=spec, base=package.spec_url or package.target_base_url)
    operations = package_operations(package=package, spec=spec)
    run = qa_run_transition(
        run=run,
        to=RunStatus.SPEC_FETCHED,
        spec_hash=spec.sha256,
        operations_total=len(operations),
        payload={
            "title": spec.title,
            "version": spec.version,
            "operations": len(operations),
            "operations_in_spec": len(spec.operations),
            "read_only": not package.allow_unsafe_methods,
            "servers_refused": refused,
        },
    )
    watch.check()
    total = scenarios_create(run=run, operations=operations, watch=watch)
    run = qa_run_transition(run=run, to=RunStatus.SCENARIOS_CREATED, scenarios_total=total)
    watch.check()
    run = qa_run_transition(run=run, to=RunStatus.EXECUTING, payload={"scenarios": total})
    scenarios_execute(
        run=run,
        scenarios=list(run.scenarios.order_by("position")),
        base_url=package.target_base_url,
        cancelled=watch.stopped,
        operations=spec.operations,  # all of them: a step may touch one outside the selection
    )
    watch.check()
    evaluation = evaluation_compute(run=run, operations=operations)
    fields = evaluation.run_fields()
    run = qa_run_transition(run=run, to=RunStatus.EVALUATED, payload=evaluation.summary(), **fields)
    qa_run_transition(run=run, to=RunStatus.COMPLETE, payload=_summary(fields))


def _summary(fields: dict[str, Any]) -> dict[str, Any]:
    """The evaluation's figures for the COMPLETE event (JSON-safe values only)."""
    keys = (
        "verdict", "scenarios_total", "scenarios_passed", "scenarios_failed", "scenarios_skipped",
        "steps_total", "steps_failed", "operations_total", "operations_covered",
    )  # fmt: skip
    return {key: fields[key] for key in keys if key in fields}


def _end(run: QaPackageRun, status: str, reason: str) -> None:
    """End the run (FAILED or CANCELLED) unless it has ended already."""
    fields = {"error": reason} if status == RunStatus.FAILED else {}
    with contextlib.suppress(RunTransitionError):
        qa_run_transition(run=run, to=status, payload={"reason": reason}, **fields)


def run_execute(*, run_id: int) -> None:
    """The whole run (see the module's docstring); every way out leaves it ended, with one terminal
    event, and its events pushed to the channel layer."""
    run = QaPackageRun.objects.select_related("package").get(pk=run_id)
    if run.status in RUN_TERMINAL:
        return  # cancelled while queued, or ended by the sweep: nothing to do
    if run.status != RunStatus.REQUESTED:
        _end(
            run,
            RunStatus.FAILED,
            f"The run was interrupted at {run.get_status_display().lower()}; start a new run.",
        )
        run_events_push(run=run, after=0)
        return
    watch = RunWatch(run=run, deadline=time.monotonic() + run.package.run_timeout_seconds).start()
    try:
        _stages(run, watch)
    except Stop as stop:
        _end(run, stop.status, stop.reason)
    except (RunTransitionError, RunFinished):
        pass  # ended elsewhere (a cancel while queued, the sweep): that ending stands
    except (SpecUnusable, TargetRefused, CredentialMissing) as error:
        _end(run, RunStatus.FAILED, str(error))
    except Exception as error:
        logger.exception("QA run %s failed", run.plan_id)
        _end(run, RunStatus.FAILED, f"Unexpected error: {type(error).__name__}: {error}")
    finally:
        watch.stop()
        watch.push()

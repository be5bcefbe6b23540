"""Must show: a run against OpenSPC's own API — its OpenAPI schema (openapi.yaml), a live server
(daphne on the test database), a token for a test user — completes with a verdict, its events in
the documented order ending in exactly one terminal event, every operation given a scenario, and
every read-only operation covered; and that it was read-only: no row of the target's database
changed apart from the run's own records, and no run started but this one.

The run is started through the API and executed by a real Celery worker on the `qa_runs` queue.
The target is this system itself, refused by default: QA_ALLOW_SELF_TARGET allows it here, and
QA_TARGET_ALLOWLIST lists loopback, for the server and the worker. The package keeps the default
(read-only), so the writes of the spec are skipped. The token is a manager's: the run's guessed ids
may 404 or 403."""

import hashlib
from pathlib import Path

import pytest
from django.db import connection

from apps.qa_runs.choices import EVENT_TERMINAL, EventType, RunStatus
from apps.qa_runs.models import QaEvent, QaPackageRun, StepResult
from apps.qa_runs.safety import SAFE_METHODS
from apps.qa_runs.services import qa_package_auth_set, qa_package_create
from apps.qa_runs.spec import spec_parse
from tests.support.daphne import Daphne, access_token
from tests.support.workers import BASE_DIR, CeleryWorkers

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.services,
]

STAGES = [
    EventType.REQUESTED,
    EventType.SPEC_FETCHED,
    EventType.SCENARIO_CREATED,
    EventType.EXECUTION_STARTED,
    EventType.EXECUTION_SUCCESS,  # EXECUTION_FAILED and EXECUTION_SKIPPED are the same stage
    EventType.QA_EVAL_DONE,
    EventType.COMPLETE,
]
EXECUTED = (EventType.EXECUTION_SUCCESS, EventType.EXECUTION_FAILED)


def stage(event_type: str) -> int:
    same = (EventType.EXECUTION_FAILED, EventType.EXECUTION_SKIPPED)
    return STAGES.index(EventType.EXECUTION_SUCCESS if event_type in same else event_type)


def rows_fingerprint() -> dict[str, tuple[int, str]]:
    """Per table of the database but the QA runs' own: its row count and a hash of every row
    (read and hashed here, so that it works on PostgreSQL and SQLite alike)."""
    fingerprint = {}
    with connection.cursor() as cursor:
        tables = [
            name for name in connection.introspection.table_names(cursor) if not name.startswith("qa_runs_")
        ]
        for table in tables:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows = sorted(hashlib.sha256(repr(row).encode()).hexdigest() for row in cursor.fetchall())
            fingerprint[table] = (len(rows), hashlib.sha256(",".join(rows).encode()).hexdigest())
    return fingerprint


def test_a_run_against_openspc_itself(
    tmp_path: Path, monkeypatch, settings, manager, quality_specialist
) -> None:
    monkeypatch.setenv("QA_TARGET_ALLOWLIST", "127.0.0.0/8,localhost")
    settings.QA_TARGET_ALLOWLIST = ["127.0.0.0/8", "localhost"]
    monkeypatch.setenv("QA_ALLOW_SELF_TARGET", "1")  # the target is this system: allowed on purpose
    settings.QA_ALLOW_SELF_TARGET = True
    spec_text = (BASE_DIR / "openapi.yaml").read_text()
    operations = spec_parse(spec_text).operations
    with (
        Daphne(log_dir=tmp_path) as web,
        CeleryWorkers(count=1, log_dir=tmp_path, queues=("qa_runs",)) as workers,
    ):
        package = qa_package_create(
            name="openspc itself",
            target_base_url=web.origin,
            spec_text=spec_text,
            max_scenarios=len(operations) * 2,
            concurrency=4,
            step_timeout_seconds=20,
            run_timeout_seconds=600,
        )
        qa_package_auth_set(package=package, kind="bearer", value=access_token(manager))
        specialist_token = access_token(quality_specialist)
        before = rows_fingerprint()
        status, started = web.http("POST", f"/api/v1/qa/packages/{package.pk}/run/", token=specialist_token)
        assert status == 202, started
        plan = started["plan_id"]
        run = QaPackageRun.objects.get(plan_id=plan)
        workers.wait_for(
            lambda: QaPackageRun.objects.filter(pk=run.pk, finished_at__isnull=False).exists(),
            timeout=300,
            what="the run to end",
        )
        status, answer = web.http("GET", f"/api/v1/qa/runs/{plan}/events/?after=0", token=specialist_token)
    # Read-only: nothing but the run's own records changed, and it started no run of its own.
    after = rows_fingerprint()
    assert {table for table in before if before[table] != after[table]} == set()
    assert QaPackageRun.objects.count() == 1
    sent = set(
        StepResult.objects.filter(scenario__run__plan_id=plan).values_list("request__method", flat=True)
    )
    assert sent
    assert sent <= SAFE_METHODS
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETE, run.error
    assert run.verdict != ""
    assert run.operations_total == len(operations)
    read_only = {op.operation_id for op in operations if op.method in SAFE_METHODS}
    assert run.operations_covered == len(read_only)  # every read-only operation covered
    skipped = set(run.scenarios.exclude(skipped_reason="").values_list("operation_id", flat=True))
    assert skipped == {op.operation_id for op in operations} - read_only
    events = [(e["sequence"], e["type"]) for e in answer["events"]]
    assert [sequence for sequence, _ in events] == list(range(1, len(events) + 1))
    assert events == list(QaEvent.objects.filter(run=run).values_list("sequence", "type"))
    stages = [stage(kind) for _, kind in events]
    assert stages == sorted(stages), "events out of the documented order"
    assert [kind for _, kind in events if kind in EVENT_TERMINAL] == [EventType.COMPLETE]
    assert events[-1][1] == EventType.COMPLETE
    executed = [kind for _, kind in events if kind in EXECUTED]
    assert len(executed) == run.scenarios_total - run.scenarios_skipped
    assert sum(1 for _, kind in events if kind == EventType.EXECUTION_SKIPPED) == run.scenarios_skipped
    assert run.scenarios_total == sum(1 for _, kind in events if kind == EventType.SCENARIO_CREATED)
    assert answer["finished"] is True
    covered = set(run.scenarios.values_list("operation_id", flat=True))
    assert covered == {op.operation_id for op in operations}

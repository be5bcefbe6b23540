"""Must show: a run against OpenSPC's own API — its OpenAPI schema (openapi.yaml), a live server
(daphne on the test database), a token for a test user — completes with a verdict, its events in
the documented order ending in exactly one terminal event, and every operation covered.

The run is started through the API and executed by a real Celery worker on the `qa_runs` queue.
The target is loopback, so QA_TARGET_ALLOWLIST is set for the server and the worker. The token is a
manager's: the run's guessed ids and bodies may 404 or 403, and a manager cannot touch QA packages
(no run can start runs of its own)."""

from pathlib import Path

import pytest

from apps.qa_runs.choices import EVENT_TERMINAL, EventType, RunStatus
from apps.qa_runs.models import QaEvent, QaPackageRun
from apps.qa_runs.services import qa_package_auth_set, qa_package_create
from apps.qa_runs.spec import spec_parse
from tests.calculations.workers import BASE_DIR, CeleryWorkers
from tests.subscriptions.helpers import Daphne, access_token

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.services]

STAGES = [
    EventType.REQUESTED,
    EventType.SPEC_FETCHED,
    EventType.SCENARIO_CREATED,
    EventType.EXECUTION_STARTED,
    EventType.EXECUTION_SUCCESS,  # EXECUTION_FAILED is the same stage
    EventType.QA_EVAL_DONE,
    EventType.COMPLETE,
]


def stage(event_type: str) -> int:
    return STAGES.index(
        EventType.EXECUTION_SUCCESS if event_type == EventType.EXECUTION_FAILED else event_type
    )


def test_a_run_against_openspc_itself(
    tmp_path: Path, monkeypatch, settings, manager, quality_specialist
) -> None:
    monkeypatch.setenv("QA_TARGET_ALLOWLIST", "127.0.0.0/8,localhost")
    settings.QA_TARGET_ALLOWLIST = ["127.0.0.0/8", "localhost"]
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
        status, started = web.http(
            "POST", f"/api/v1/qa/packages/{package.pk}/run/", token=access_token(quality_specialist)
        )
        assert status == 202, started
        plan = started["plan_id"]
        run = QaPackageRun.objects.get(plan_id=plan)
        workers.wait_for(
            lambda: QaPackageRun.objects.filter(pk=run.pk, finished_at__isnull=False).exists(),
            timeout=300,
            what="the run to end",
        )
        status, answer = web.http(
            "GET", f"/api/v1/qa/runs/{plan}/events/?after=0", token=access_token(quality_specialist)
        )
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETE, run.error
    assert run.verdict != ""
    assert run.operations_total == len(operations)
    assert run.operations_covered == run.operations_total  # every operation covered
    events = [(e["sequence"], e["type"]) for e in answer["events"]]
    assert [sequence for sequence, _ in events] == list(range(1, len(events) + 1))
    assert events == list(QaEvent.objects.filter(run=run).values_list("sequence", "type"))
    stages = [stage(kind) for _, kind in events]
    assert stages == sorted(stages), "events out of the documented order"
    assert [kind for _, kind in events if kind in EVENT_TERMINAL] == [EventType.COMPLETE]
    assert events[-1][1] == EventType.COMPLETE
    executed = [
        kind for _, kind in events if kind in (EventType.EXECUTION_SUCCESS, EventType.EXECUTION_FAILED)
    ]
    assert (
        len(executed)
        == run.scenarios_total
        == sum(1 for _, kind in events if kind == EventType.SCENARIO_CREATED)
    )
    assert answer["finished"] is True
    covered = set(run.scenarios.values_list("operation_id", flat=True))
    assert covered == {op.operation_id for op in operations}

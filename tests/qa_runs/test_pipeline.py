"""The pipeline's ways to end: a spec that cannot be had, a refused target, a duplicate delivery, a
dead worker's run swept, a cancel before generation; and the choice of scenarios within the limit."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.qa_runs.choices import EventType, RunStatus, ScenarioKind, ScenarioSource
from apps.qa_runs.generate import Expect, GeneratedScenario, Step
from apps.qa_runs.models import QaEvent, QaPackage, QaPackageRun
from apps.qa_runs.pipeline import qa_runs_sweep_stale, run_execute, scenarios_select
from apps.qa_runs.services import qa_package_create, qa_run_request, qa_run_transition
from tests.qa_runs.http_servers import local_server, text
from tests.support.qa_spec import things_spec

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def events(run: QaPackageRun) -> list[str]:
    return list(QaEvent.objects.filter(run=run).order_by("sequence").values_list("type", flat=True))


def make_package(**fields: object) -> QaPackage:
    defaults: dict[str, object] = {"name": "things", "target_base_url": "http://127.0.0.1:9/api"}
    return qa_package_create(**{**defaults, **fields})  # type: ignore[arg-type]


def test_a_spec_that_is_not_openapi_fails_the_run_with_the_reason(settings):
    settings.QA_TARGET_ALLOWLIST = ["127.0.0.0/8"]
    run = qa_run_request(package=make_package(spec_text='{"swagger": "2.0"}'), requested_by=None)
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "Swagger 2.0" in run.error
    assert events(run) == [EventType.REQUESTED, EventType.SPEC_FETCH_FAILED, EventType.FAILED]


def test_a_spec_url_answering_404_is_a_spec_fetch_failure(settings):
    settings.QA_TARGET_ALLOWLIST = ["127.0.0.0/8"]
    with local_server() as server:
        server.routes["/openapi.json"] = text("nope", status=404)
        package = make_package(spec_url=f"http://127.0.0.1:{server.port}/openapi.json")
        run = qa_run_request(package=package, requested_by=None)
        run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "answered 404" in run.error
    assert events(run)[-2:] == [EventType.SPEC_FETCH_FAILED, EventType.FAILED]


def test_a_loopback_target_is_refused_unless_listed(settings):
    settings.QA_TARGET_ALLOWLIST = []
    run = qa_run_request(package=make_package(spec_text=json.dumps(things_spec())), requested_by=None)
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "loopback" in run.error
    assert events(run) == [EventType.REQUESTED, EventType.FAILED]


def test_a_duplicate_delivery_of_a_run_under_way_marks_it_failed_not_run_twice():
    run = qa_run_request(package=make_package(spec_text="{}"), requested_by=None)
    qa_run_transition(run=run, to=RunStatus.SPEC_FETCHED)
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "interrupted at spec fetched" in run.error
    assert run.scenarios.count() == 0
    run_execute(run_id=run.pk)  # and a run that ended stays as it is
    assert events(run) == [EventType.REQUESTED, EventType.SPEC_FETCHED, EventType.FAILED]


def test_the_sweep_fails_runs_well_past_their_time_limit_only():
    package = make_package(spec_text="{}", run_timeout_seconds=60)
    stuck = qa_run_transition(
        run=qa_run_request(package=package, requested_by=None), to=RunStatus.SPEC_FETCHED
    )
    recent = qa_run_transition(
        run=qa_run_request(package=package, requested_by=None), to=RunStatus.SPEC_FETCHED
    )
    QaPackageRun.objects.filter(pk=stuck.pk).update(started_at=timezone.now() - timedelta(minutes=10))
    swept = qa_runs_sweep_stale()
    assert [run.pk for run in swept] == [stuck.pk]
    stuck.refresh_from_db()
    recent.refresh_from_db()
    assert stuck.status == RunStatus.FAILED
    assert "did not finish within its time limit (60 s)" in stuck.error
    assert recent.status == RunStatus.SPEC_FETCHED


def test_a_cancel_requested_before_generation_ends_the_run_cancelled(settings):
    settings.QA_TARGET_ALLOWLIST = ["127.0.0.0/8"]
    run = qa_run_request(package=make_package(spec_text=json.dumps(things_spec())), requested_by=None)
    QaPackageRun.objects.filter(pk=run.pk).update(cancel_requested_at=timezone.now())
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert events(run) == [EventType.REQUESTED, EventType.SPEC_FETCHED, EventType.CANCELLED]
    assert run.scenarios.count() == 0


def _scenario(operation: str, index: int) -> GeneratedScenario:
    step = Step(method="GET", path="/x", expect=Expect((200,)))
    return GeneratedScenario(
        name=f"{operation} {index}", operation_id=operation, method="GET", path="/x",
        kind=ScenarioKind.POSITIVE, source=ScenarioSource.GENERATED, steps=(step,),
    )  # fmt: skip


def test_the_limit_is_spent_round_robin_so_every_operation_is_covered():
    generated = [[_scenario(op, i) for i in range(4)] for op in ("a", "b", "c")]
    chosen = scenarios_select(generated, 5)
    assert [s.name for s in chosen] == ["a 0", "b 0", "c 0", "a 1", "b 1"]
    assert len(scenarios_select(generated, 100)) == 12

"""scenarios_execute against real local servers: bounded concurrency, values carried from one step
to the next, credentials sent and masked, redirects returned not followed, timeouts and size caps,
cancellation, events, and a refused base URL."""

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from apps.qa_runs.choices import EventType, ScenarioKind, ScenarioSource
from apps.qa_runs.execute import scenarios_execute
from apps.qa_runs.generate import Expect, GeneratedScenario, Step
from apps.qa_runs.models import QaEvent, QaPackage, QaPackageRun, Scenario, StepResult
from apps.qa_runs.net import TargetRefused
from apps.qa_runs.services import MASK, qa_package_auth_set, qa_package_create, qa_run_request, scenario_store
from tests.qa_runs.http_servers import LocalServer, local_server, reply

TOKEN = "tok-3f9a-very-secret"


@pytest.fixture(autouse=True)
def _loopback_allowed(settings: Any) -> None:
    settings.QA_TARGET_ALLOWLIST = ["127.0.0.0/8"]


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with local_server() as running:
        yield running


def json_route(status: int, body: Any, **headers: str) -> Any:
    return lambda handler: reply(
        handler, status, json.dumps(body).encode(), Content_Type="application/json", **headers
    )


def make_package(server: LocalServer, **limits: Any) -> QaPackage:
    package = qa_package_create(
        name=f"target-{server.port}-{len(limits)}",
        target_base_url=f"http://127.0.0.1:{server.port}",
        spec_text="{}",
        **limits,
    )
    return qa_package_auth_set(package=package, kind="bearer", value=TOKEN)


def store(run: QaPackageRun, *scenarios: GeneratedScenario) -> list[Scenario]:
    return [scenario_store(run=run, scenario=s, position=i) for i, s in enumerate(scenarios)]


def one_step(
    name: str,
    path: str,
    statuses: tuple[int | str, ...] = (200,),
    kind: str = ScenarioKind.POSITIVE,
    **step: Any,
) -> GeneratedScenario:
    method = step.pop("method", "GET")
    return GeneratedScenario(
        name=name,
        operation_id=name,
        method=method,
        path=path,
        kind=kind,
        source=ScenarioSource.GENERATED,
        steps=(Step(method=method, path=path, expect=Expect(statuses), operation_id=name, **step),),
    )


def execute(run: QaPackageRun, rows: list[Scenario], server: LocalServer, **kwargs: Any) -> Any:
    return scenarios_execute(run=run, scenarios=rows, base_url=f"http://127.0.0.1:{server.port}", **kwargs)


def checks_of(result: StepResult) -> dict[str, str]:
    return {check["name"]: check["outcome"] for check in result.checks}


@pytest.mark.django_db
def test_scenarios_run_in_parallel_but_never_more_than_the_package_concurrency(server: LocalServer) -> None:
    def slow(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(0.15)
        json_route(200, {"ok": True})(handler)

    server.routes["/slow"] = slow
    package = make_package(server, concurrency=3)
    run = qa_run_request(package=package, requested_by=None)
    rows = store(run, *(one_step(f"slow{i}", "/slow") for i in range(9)))
    started = time.monotonic()
    outcomes = execute(run, rows, server)
    elapsed = time.monotonic() - started
    assert server.max_in_flight == 3
    assert len(outcomes) == 9
    assert all(o.passed for o in outcomes)
    assert elapsed < 9 * 0.15  # parallel, not one after the other
    assert StepResult.objects.filter(scenario__run=run, passed=True).count() == 9
    assert set(Scenario.objects.filter(run=run).values_list("passed", flat=True)) == {True}
    assert QaEvent.objects.filter(run=run, type=EventType.EXECUTION_SUCCESS).count() == 9


@pytest.mark.django_db
def test_a_value_extracted_from_one_step_fills_the_next(server: LocalServer) -> None:
    server.routes["/things"] = json_route(201, {"id": "a/b 7", "nested": {"list": [{"code": 42}]}})
    server.routes["/things/a%2Fb%207"] = json_route(200, {"ok": True})
    server.routes["/codes"] = json_route(200, {"ok": True})
    package = make_package(server, allow_unsafe_methods=True)
    run = qa_run_request(package=package, requested_by=None)
    chain = GeneratedScenario(
        name="chain",
        operation_id="createThing",
        method="POST",
        path="/things",
        kind=ScenarioKind.CHAIN,
        source=ScenarioSource.GENERATED,
        steps=(
            Step(
                "POST",
                "/things",
                Expect((201,)),
                json={"name": "x"},
                extract={"thingId": "$.id", "code": "$.nested.list[0].code"},
            ),
            Step("GET", "/things/{{thingId}}", Expect((200,))),
            Step("GET", "/codes", Expect((200,)), query={"code": "{{code}}"}, headers={"X-Code": "{{code}}"}),
        ),
    )
    (outcome,) = execute(run, store(run, chain), server)
    assert outcome.passed, outcome.failures
    assert server.paths == ["/things", "/things/a%2Fb%207", "/codes?code=42"]
    results = list(StepResult.objects.filter(scenario__run=run).order_by("index"))
    assert results[1].request["url"].endswith("/things/a%2Fb%207")
    assert results[2].request["headers"]["X-Code"] == "42"
    assert [r.index for r in results] == [1, 2, 3]
    assert json.loads(results[0].request["body"]) == {"name": "x"}


@pytest.mark.django_db
def test_a_value_that_was_not_extracted_fails_the_extraction_and_the_next_step_is_not_sent(
    server: LocalServer,
) -> None:
    server.routes["/things"] = json_route(201, {"name": "no id here"})
    package = make_package(server, allow_unsafe_methods=True)
    run = qa_run_request(package=package, requested_by=None)
    chain = GeneratedScenario(
        "chain",
        "createThing",
        "POST",
        "/things",
        ScenarioKind.CHAIN,
        ScenarioSource.GENERATED,
        (
            Step("POST", "/things", Expect((201,)), json={}, extract={"thingId": "$.id"}),
            Step("GET", "/things/{{thingId}}", Expect((200,))),
        ),
    )
    (outcome,) = execute(run, store(run, chain), server)
    assert not outcome.passed
    assert outcome.failures == [
        "step 1 (createThing) extract: $.id is not a value in the response body (for {{thingId}})"
    ]
    second = StepResult.objects.get(scenario__run=run, index=2)
    assert second.response_status is None
    assert second.error == "not sent: {{thingId}} not extracted by an earlier step"
    assert server.paths == ["/things"]


@pytest.mark.django_db
def test_credentials_are_sent_except_unauthenticated_and_never_stored(server: LocalServer) -> None:
    seen: list[str] = []

    def echo(handler: BaseHTTPRequestHandler) -> None:
        auth = handler.headers.get("Authorization", "")
        seen.append(auth)
        status = 200 if auth == f"Bearer {TOKEN}" else 401
        json_route(status, {"you_sent": auth})(handler)

    server.routes["/me"] = echo
    package = make_package(server)
    run = qa_run_request(package=package, requested_by=None)
    rows = store(
        run,
        one_step("me", "/me"),
        one_step("anonymous", "/me", (401, 403), kind=ScenarioKind.UNAUTHENTICATED, auth=False),
    )
    outcomes = execute(run, rows, server)
    assert sorted(seen) == ["", f"Bearer {TOKEN}"]
    assert all(o.passed for o in outcomes)
    for result in StepResult.objects.filter(scenario__run=run):
        stored = json.dumps([result.request, result.response_headers, result.response_body, result.curl])
        assert TOKEN not in stored
    authenticated = StepResult.objects.get(scenario=rows[0])
    assert authenticated.request["headers"]["Authorization"] == MASK
    assert f'you_sent": "Bearer {MASK}' in authenticated.response_body
    assert authenticated.curl.startswith(f"curl -sS -i -X GET http://127.0.0.1:{server.port}/me -H ")
    assert f"'Authorization: Bearer {MASK}'" in authenticated.curl


@pytest.mark.django_db
def test_a_redirect_is_the_answer_not_followed(server: LocalServer) -> None:
    server.routes["/old"] = lambda h: reply(h, 302, b"", Location="/new")
    server.routes["/new"] = json_route(200, {})
    package = make_package(server)
    run = qa_run_request(package=package, requested_by=None)
    (outcome,) = execute(run, store(run, one_step("old", "/old")), server)
    assert server.paths == ["/old"]
    assert outcome.failures == ["step 1 (old) expected_status: answered 302, expected 200"]
    assert StepResult.objects.get(scenario__run=run).response_status == 302


@pytest.mark.django_db
def test_a_slow_step_times_out_and_the_scenario_fails_with_the_reason(server: LocalServer) -> None:
    release = threading.Event()

    def stall(handler: BaseHTTPRequestHandler) -> None:
        release.wait(5)

    server.routes["/stall"] = stall
    package = make_package(server, step_timeout_seconds=1)
    run = qa_run_request(package=package, requested_by=None)
    try:
        (outcome,) = execute(run, store(run, one_step("stall", "/stall")), server)
    finally:
        release.set()
    assert outcome.failures == ["step 1 (stall) response: timeout: no complete answer within 1 s"]
    result = StepResult.objects.get(scenario__run=run)
    assert (result.response_status, result.passed) == (None, False)
    assert result.error.startswith("timeout:")
    assert 900 <= result.duration_ms < 4000


@pytest.mark.django_db
def test_a_body_over_the_size_cap_is_cut_and_not_validated(server: LocalServer, settings: Any) -> None:
    settings.QA_MAX_RESPONSE_BYTES = 1024
    server.routes["/big"] = json_route(200, {"data": "x" * 5000})
    package = make_package(server)
    run = qa_run_request(package=package, requested_by=None)
    expect = Expect((200,), {"type": "object", "required": ["data"]})
    scenario = replace(one_step("big", "/big"), steps=(Step("GET", "/big", expect, operation_id="big"),))
    (outcome,) = execute(run, store(run, scenario), server)
    result = StepResult.objects.get(scenario__run=run)
    assert len(result.response_body) == 1024
    assert checks_of(result)["schema"] == "skip"
    assert outcome.passed


@pytest.mark.django_db
def test_cancellation_stops_new_scenarios_from_starting(server: LocalServer) -> None:
    server.routes["/x"] = json_route(200, {})
    package = make_package(server, concurrency=1)
    run = qa_run_request(package=package, requested_by=None)
    rows = store(run, *(one_step(f"x{i}", "/x") for i in range(5)))
    asked: list[int] = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) > 2

    outcomes = execute(run, rows, server, cancelled=cancelled)
    assert len(outcomes) == 2
    assert len(server.paths) == 2
    assert list(Scenario.objects.filter(run=run).order_by("position").values_list("passed", flat=True)) == [
        True,
        True,
        None,
        None,
        None,
    ]


@pytest.mark.django_db
def test_a_failed_scenario_publishes_its_failed_checks(server: LocalServer) -> None:
    server.routes["/boom"] = lambda h: reply(h, 500, b"oops", Content_Type="text/plain")
    package = make_package(server)
    run = qa_run_request(package=package, requested_by=None)
    (row,) = store(run, one_step("boom", "/boom"))
    execute(run, [row], server)
    event = QaEvent.objects.get(run=run, type=EventType.EXECUTION_FAILED)
    assert event.payload == {
        "scenario": row.pk,
        "name": "boom",
        "operation": "boom",
        "kind": "positive",
        "failed_checks": ["step 1 (boom) no_server_error: answered 500"],
        "failed_checks_total": 1,
    }


@pytest.mark.django_db
def test_a_refused_base_url_sends_nothing(server: LocalServer, settings: Any) -> None:
    settings.QA_TARGET_ALLOWLIST = []
    server.routes["/x"] = json_route(200, {})
    package = make_package(server)
    run = qa_run_request(package=package, requested_by=None)
    rows = store(run, one_step("x", "/x"))
    with pytest.raises(TargetRefused, match="loopback"):
        execute(run, rows, server)
    assert server.paths == []


@pytest.mark.django_db
def test_a_body_with_nul_bytes_is_recorded(server: LocalServer) -> None:
    """PostgreSQL text and jsonb refuse NUL; a binary body, quoted in a check message too, must not
    stop the run."""
    server.routes["/bin"] = lambda h: reply(
        h, 200, b'{"id": "\\u0000"}\x00\x01', Content_Type="application/json"
    )
    server.routes["/nul"] = lambda h: reply(h, 200, b'{"id": "a\\u0000b"}', Content_Type="application/json")
    package = make_package(server)
    run = qa_run_request(package=package, requested_by=None)
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    rows = store(
        run,
        replace(
            one_step("bin", "/bin"), steps=(Step("GET", "/bin", Expect((200,), schema), operation_id="bin"),)
        ),
        replace(
            one_step("nul", "/nul"), steps=(Step("GET", "/nul", Expect((200,), schema), operation_id="nul"),)
        ),
    )
    outcomes = execute(run, rows, server)
    assert len(outcomes) == 2
    nul = StepResult.objects.get(scenario=rows[1])
    assert nul.checks[-1] == {
        "name": "schema",
        "outcome": "fail",
        "message": "'a\\x00b' is not of type 'integer' at $.id",  # repr: no NUL itself
    }
    assert "\x00" not in StepResult.objects.get(scenario=rows[0]).response_body


@pytest.mark.django_db
def test_a_request_that_cannot_be_sent_fails_its_step_not_the_run(server: LocalServer) -> None:
    server.routes["/x"] = json_route(200, {})
    package = make_package(server)
    run = qa_run_request(package=package, requested_by=None)
    rows = store(
        run,
        one_step("accented", "/x", headers={"X-Name": "Zoë"}),
        one_step("fine", "/x"),
    )
    outcomes = {o.operation_id: o for o in execute(run, rows, server)}
    assert outcomes["fine"].passed
    (failure,) = outcomes["accented"].failures
    assert failure.startswith("step 1 (accented) response: not sent: ")
    assert server.paths == ["/x"]


@pytest.mark.django_db
def test_steps_beyond_the_package_limit_are_not_run(server: LocalServer) -> None:
    server.routes["/x"] = json_route(200, {})
    package = make_package(server, max_steps_per_scenario=2)
    run = qa_run_request(package=package, requested_by=None)
    long = replace(one_step("long", "/x"), steps=tuple(Step("GET", "/x", Expect((200,))) for _ in range(4)))
    (outcome,) = execute(run, store(run, long), server)
    assert outcome.passed
    assert server.paths == ["/x", "/x"]

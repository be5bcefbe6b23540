"""Must show: a run against a live system does it no harm unless someone says so.

- By default a run is read-only: the target receives GET, HEAD and OPTIONS only; the scenarios that
  would write are skipped and reported as skipped (EXECUTION_SKIPPED, scenarios_skipped, the
  operations left uncovered), not as failures. A package that allows unsafe methods sends them.
- This system's own run start/cancel endpoints are never called, whatever the package allows.
- A target that is this system itself is refused unless QA_ALLOW_SELF_TARGET.
- include_tags and path_prefix limit a run to the operations they select, and coverage counts those.

The target is a real HTTP server on loopback that records every request (method and path)."""

import copy
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from apps.qa_runs.choices import EventType, RunStatus, Verdict
from apps.qa_runs.execute import scenarios_execute
from apps.qa_runs.generate import Expect, GeneratedScenario, Step, operations_select
from apps.qa_runs.models import QaEvent, QaPackage, QaPackageRun, StepResult
from apps.qa_runs.pipeline import run_execute
from apps.qa_runs.safety import run_endpoint, scenario_skip_reason, step_refusal, target_self
from apps.qa_runs.services import qa_package_auth_set, qa_package_create, qa_run_request, scenario_store
from apps.qa_runs.spec import spec_parse
from tests.qa_runs.fake_openai import fake_openai
from tests.qa_runs.http_servers import LocalServer, local_server, reply
from tests.support.qa_spec import things_spec

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
THING = {"thingId": 7, "name": "abc", "size": 12}


@pytest.fixture(autouse=True)
def _loopback_allowed(settings: Any) -> None:
    settings.QA_TARGET_ALLOWLIST = ["127.0.0.0/8"]


def answer(handler: BaseHTTPRequestHandler, status: int, body: Any = None) -> None:
    raw = b"" if body is None else json.dumps(body).encode()
    reply(handler, status, raw, **({"Content_Type": "application/json"} if raw else {}))


class Things:
    """A well-behaved /things API: 401 without a token, 400 for a bad limit or body, a new id for
    each thing created (100, 101…), 404 for one deleted."""

    def __init__(self) -> None:
        self.created = iter(range(100, 200))
        self.deleted: set[str] = set()

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        if not handler.headers.get("Authorization"):
            return answer(handler, 401, {"detail": "no token"})
        path, _, query = handler.path.partition("?")
        if handler.command == "POST":
            length = int(handler.headers.get("Content-Length") or 0)
            body = json.loads(handler.rfile.read(length) or b"null")
            valid = isinstance(body, dict) and isinstance(body.get("size"), int) and 10 <= body["size"] <= 20
            valid = valid and isinstance(body.get("name"), str) and 3 <= len(body["name"]) <= 20
            if not valid:
                return answer(handler, 400, {"detail": "bad"})
            return answer(handler, 201, {**THING, "thingId": next(self.created)})
        if handler.command == "DELETE":
            self.deleted.add(path)
            return answer(handler, 204)
        if path == "/things":
            limit = query.removeprefix("limit=")
            ok = limit.isdigit() and 1 <= int(limit) <= 100
            return answer(handler, 200, [THING]) if ok else answer(handler, 400, {"detail": "limit"})
        if path in self.deleted and path != "/things/1":  # /things/1: the one that is always there
            return answer(handler, 404)
        return answer(handler, 200, THING)


@pytest.fixture
def target() -> Iterator[LocalServer]:
    with local_server() as server:
        things = Things()
        server.routes["/ping"] = lambda handler: answer(handler, 200)
        for path in ("/things", "/things/1", *(f"/things/{n}" for n in range(100, 200))):
            server.routes[path] = things
        yield server


def url(server: LocalServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def make_package(server: LocalServer, spec: dict[str, Any] | None = None, **fields: Any) -> QaPackage:
    package = qa_package_create(
        name=f"things-{server.port}",
        target_base_url=url(server),
        spec_text=json.dumps(spec or things_spec()),
        **fields,
    )
    return qa_package_auth_set(package=package, kind="bearer", value="token-1")


def run_of(package: QaPackage, requested_host: str = "") -> QaPackageRun:
    run = qa_run_request(package=package, requested_by=None, requested_host=requested_host)
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def methods(server: LocalServer) -> set[str]:
    return {request.method for request in server.seen}


def summary(run: QaPackageRun) -> dict[str, Any]:
    return QaEvent.objects.get(run=run, type=EventType.QA_EVAL_DONE).payload


# --- Read-only unless allowed ----------------------------------------------------------------------


def test_a_run_is_read_only_by_default_and_reports_what_it_skipped(target: LocalServer) -> None:
    run = run_of(make_package(target))
    assert run.status == RunStatus.COMPLETE, run.error
    assert methods(target) == {"GET"}  # no POST, no DELETE reached the target
    skipped = run.scenarios.exclude(skipped_reason="")
    assert skipped.count() == run.scenarios_skipped > 0
    assert set(skipped.values_list("operation_id", flat=True)) == {"createThing", "deleteThing"}
    assert all(
        "allow_unsafe_methods is off" in reason for reason in skipped.values_list("skipped_reason", flat=True)
    )
    assert not StepResult.objects.filter(scenario__in=skipped).exists()
    events = QaEvent.objects.filter(run=run, type=EventType.EXECUTION_SKIPPED)
    assert events.count() == run.scenarios_skipped
    # Skipped is no failure, and the verdict does not claim what was not tested.
    assert run.scenarios_failed == 0
    assert run.scenarios_passed == run.scenarios_total - run.scenarios_skipped
    assert run.verdict == Verdict.PASS_WITH_WARNINGS
    assert (run.operations_covered, run.operations_total) == (3, 5)
    assert summary(run)["operations_skipped"] == ["createThing", "deleteThing"]
    assert QaEvent.objects.get(run=run, type=EventType.REQUESTED).payload["read_only"] is True


def test_a_package_that_allows_unsafe_methods_sends_them(target: LocalServer) -> None:
    run = run_of(make_package(target, allow_unsafe_methods=True))
    assert run.status == RunStatus.COMPLETE, run.error
    assert {"GET", "POST", "DELETE"} <= methods(target)
    assert run.scenarios_skipped == 0
    assert run.operations_covered == run.operations_total == 5
    assert run.scenarios_failed == 0, summary(run)["failures"]
    assert run.verdict == Verdict.PASS_WITH_WARNINGS  # the spec leaves 401 undocumented
    assert summary(run)["operations_skipped"] == []


def test_the_executor_refuses_an_unsafe_step_even_in_a_scenario_stored_as_runnable(
    target: LocalServer,
) -> None:
    """An AI's GET scenario with a POST in its second step, or a package changed after generation."""
    run = qa_run_request(package=make_package(target), requested_by=None)
    steps = (
        Step(method="GET", path="/ping", expect=Expect((200,)), operation_id="ping"),
        Step(method="DELETE", path="/things/7", expect=Expect((204,)), operation_id="deleteThing"),
    )
    row = scenario_store(
        run=run,
        scenario=GeneratedScenario("sneaky", "ping", "GET", "/ping", "positive", "ai", steps),
        position=1,
    )
    scenarios_execute(run=run, scenarios=[row], base_url=url(target))
    assert methods(target) == set()  # checked before anything of the scenario is sent
    row.refresh_from_db()
    assert row.passed is None
    assert "DELETE is not sent" in row.skipped_reason


def test_a_step_refused_at_send_time_stops_the_scenario_which_is_skipped(
    target: LocalServer, settings: Any
) -> None:
    """A refused step found only once its URL is filled (this system's run endpoint, its name
    percent-encoded): the step before it ran; it and the ones after did not; the scenario is
    skipped (not failed) with the reason."""
    target.routes["/ping"] = lambda handler: answer(handler, 200, {"p": 1})
    run = qa_run_request(package=make_package(target), requested_by=None)
    settings.QA_SELF_URLS = [url(target)]
    steps = (
        Step(method="GET", path="/ping", expect=Expect((200,)), operation_id="ping", extract={"p": "$.p"}),
        Step(
            method="GET", path="/api/v1/qa/packages/{{p}}/%72un/", expect=Expect((202,)), operation_id="ping"
        ),
        Step(method="GET", path="/ping", expect=Expect((200,)), operation_id="ping"),
    )
    row = scenario_store(
        run=run, scenario=GeneratedScenario("chain", "ping", "GET", "/ping", "chain", "ai", steps), position=1
    )
    scenarios_execute(run=run, scenarios=[row], base_url=url(target))
    assert target.paths == ["/ping"]
    row.refresh_from_db()
    assert row.passed is None
    assert "run start/cancel" in row.skipped_reason
    assert list(row.step_results.values_list("index", "response_status")) == [(1, 200), (2, None)]
    assert QaEvent.objects.filter(run=run, type=EventType.EXECUTION_SKIPPED).count() == 1


# --- This system's own run endpoints ----------------------------------------------------------------


def own_runs_spec() -> dict[str, Any]:
    """A spec of this system's QA API: list runs, start a run, cancel a run."""
    ok = {"200": {"description": "ok"}}
    uuid = {"type": "string", "format": "uuid"}
    return {
        "openapi": "3.0.3",
        "info": {"title": "OpenSPC QA", "version": "1"},
        "paths": {
            "/api/v1/qa/runs/": {"get": {"operationId": "listRuns", "responses": ok}},
            "/api/v1/qa/packages/{id}/run/": {
                "post": {
                    "operationId": "startRun",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
                    ],
                    "responses": {"202": {"description": "started"}},
                }
            },
            "/api/v1/qa/runs/{plan_id}/cancel/": {
                "post": {
                    "operationId": "cancelRun",
                    "parameters": [{"name": "plan_id", "in": "path", "required": True, "schema": uuid}],
                    "responses": {"202": {"description": "cancelled"}},
                }
            },
        },
    }


def test_this_systems_run_endpoints_are_never_called_whatever_the_package_allows(
    target: LocalServer, settings: Any
) -> None:
    settings.QA_SELF_URLS = [url(target)]
    settings.QA_ALLOW_SELF_TARGET = True
    target.routes["/api/v1/qa/runs/"] = lambda handler: answer(handler, 200, [])
    target.routes["/api/v1/qa/packages/1/run/"] = lambda handler: answer(handler, 202, {})
    run = run_of(make_package(target, spec=own_runs_spec(), allow_unsafe_methods=True))
    assert run.status == RunStatus.COMPLETE, run.error
    assert target.paths == ["/api/v1/qa/runs/"]  # listed; never started, never cancelled
    skipped = run.scenarios.exclude(skipped_reason="")
    assert set(skipped.values_list("operation_id", flat=True)) == {"startRun", "cancelRun"}
    assert all("run start/cancel" in r for r in skipped.values_list("skipped_reason", flat=True))
    assert run.scenarios_failed == 0


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/qa/packages/1/run/",
        "/api/v1/qa/packages/1/%72un/",  # the server decodes the path before it routes it
        "/api/v1/qa/runs/00000000-0000-4000-8000-000000000000/cancel/",
    ],
)
def test_the_run_endpoints_are_known_however_the_path_is_written(path: str) -> None:
    assert run_endpoint(f"http://spc.example{path}")
    assert step_refusal(method="GET", url=f"http://spc.example{path}", allow_unsafe=True, self_target=True)
    assert not step_refusal(
        method="GET", url=f"http://spc.example{path}", allow_unsafe=True, self_target=False
    )


def test_other_paths_and_methods_pass_the_step_check() -> None:
    assert not run_endpoint("http://spc.example/api/v1/qa/runs/")
    assert not step_refusal(
        method="GET", url="http://spc.example/api/v1/qa/runs/", allow_unsafe=False, self_target=True
    )
    assert step_refusal(method="PATCH", url="http://x.example/a", allow_unsafe=False, self_target=False)
    assert not step_refusal(method="PATCH", url="http://x.example/a", allow_unsafe=True, self_target=False)
    assert not scenario_skip_reason(steps=[{"method": "HEAD"}, {"method": "OPTIONS"}], allow_unsafe=False)
    assert scenario_skip_reason(steps=[{"method": "GET"}, {"method": "put"}], allow_unsafe=False).startswith(
        "step 2: PUT is not sent"
    )


# --- This system as the target ----------------------------------------------------------------------


def test_a_target_listed_as_this_system_is_refused_before_anything_is_sent(
    target: LocalServer, settings: Any
) -> None:
    package = make_package(target)  # before the setting names it: then it could not be saved
    settings.QA_SELF_URLS = [url(target)]
    run = run_of(package)
    assert run.status == RunStatus.FAILED
    assert "the target is this system itself" in run.error
    assert "QA_ALLOW_SELF_TARGET" in run.error
    assert target.seen == []
    assert run.scenarios.count() == 0


def test_the_host_a_run_was_started_through_is_this_system(target: LocalServer) -> None:
    run = run_of(make_package(target), requested_host=f"127.0.0.1:{target.port}")
    assert run.status == RunStatus.FAILED
    assert f"this system was reached as 127.0.0.1:{target.port}" in run.error
    assert target.seen == []


def test_loopback_on_this_systems_own_port_is_this_system(target: LocalServer, settings: Any) -> None:
    package = make_package(target)
    settings.QA_SELF_PORT = target.port
    run = run_of(package)
    assert run.status == RunStatus.FAILED
    assert "loopback on this system's port" in run.error
    assert target.seen == []


def test_this_system_may_be_the_target_when_the_administrator_allows_it(
    target: LocalServer, settings: Any
) -> None:
    settings.QA_SELF_URLS = [url(target)]
    settings.QA_ALLOW_SELF_TARGET = True
    run = run_of(make_package(target))
    assert run.status == RunStatus.COMPLETE, run.error
    assert methods(target) == {"GET"}  # and still read-only


@pytest.mark.parametrize(
    ("target_url", "self_"),
    [
        ("https://spc.plant.local/api", True),  # ALLOWED_HOSTS, any port
        ("https://spc.plant.local:8443/", True),
        ("https://lab.spc.example/", True),  # .spc.example: subdomains
        ("https://spc.example/", True),
        ("https://mes.plant.local/", False),
        ("http://localhost:8000/", True),  # loopback on this system's port (PORT)
        ("http://127.0.0.1:8000/", True),
        ("http://[::1]:8000/", True),
        ("http://127.0.0.1:9000/", False),  # loopback on another port: another program
        ("https://public.example/", True),  # QA_SELF_URLS
        ("http://public.example:8080/", False),
    ],
)
def test_what_counts_as_this_system(settings: Any, target_url: str, self_: bool) -> None:
    settings.ALLOWED_HOSTS = ["spc.plant.local", ".spc.example", "localhost", "*"]
    settings.QA_SELF_URLS = ["https://public.example"]
    settings.QA_SELF_PORT = 8000
    assert bool(target_self(target_url)) is self_


# --- Limited to tags or a path prefix ----------------------------------------------------------------


def tagged_spec() -> dict[str, Any]:
    spec = copy.deepcopy(things_spec())
    spec["paths"]["/ping"]["get"]["tags"] = ["health"]
    for path in ("/things", "/things/{thingId}"):
        for operation in spec["paths"][path].values():
            if isinstance(operation, dict) and "operationId" in operation:
                operation["tags"] = ["things"]
    spec["paths"]["/things/{thingId}"]["get"]["tags"] = ["things", "reads"]
    return spec


def test_operations_are_selected_by_tag_and_by_path_prefix_in_whole_segments() -> None:
    operations = spec_parse(json.dumps(tagged_spec())).operations
    ids = lambda **kw: sorted(op.operation_id for op in operations_select(operations, **kw))  # noqa: E731
    assert ids() == sorted(op.operation_id for op in operations)
    assert ids(tags=["health"]) == ["ping"]
    assert ids(tags=["reads", "health"]) == ["getThing", "ping"]
    assert ids(path_prefix="/things") == ["createThing", "deleteThing", "getThing", "listThings"]
    assert ids(path_prefix="/things/") == ids(path_prefix="/things")
    assert ids(path_prefix="/thing") == []
    assert ids(tags=["things"], path_prefix="/things/{thingId}") == ["deleteThing", "getThing"]


def test_a_run_limited_to_a_tag_covers_and_counts_only_its_operations(target: LocalServer) -> None:
    run = run_of(make_package(target, spec=tagged_spec(), include_tags=["reads", "health"]))
    assert run.status == RunStatus.COMPLETE, run.error
    assert {request.path.split("?")[0] for request in target.seen} == {"/ping", "/things/1"}
    assert set(run.scenarios.values_list("operation_id", flat=True)) == {"ping", "getThing"}
    assert (run.operations_covered, run.operations_total) == (2, 2)
    assert run.scenarios_failed == run.scenarios_skipped == 0


def test_a_run_limited_to_a_path_prefix_covers_only_the_paths_under_it(target: LocalServer) -> None:
    run = run_of(make_package(target, path_prefix="/ping"))
    assert run.status == RunStatus.COMPLETE, run.error
    assert target.paths == ["/ping"] * len(target.seen)
    assert (run.operations_covered, run.operations_total) == (1, 1)


def test_a_read_only_run_asks_the_ai_nothing_about_operations_that_only_write(
    target: LocalServer, settings: Any
) -> None:
    """Their scenarios would all be skipped: they come from the spec, offline, and are reported."""
    with fake_openai() as fake:
        settings.QA_AI_BASE_URL = fake.base_url
        settings.QA_AI_API_KEY = "sk-test"
        settings.QA_AI_MODEL = "qa-test-model"
        settings.QA_AI_ATTEMPTS = 1
        run = run_of(make_package(target, generator="ai"))
        asked = [
            json.loads(message["content"].removeprefix("The operation:\n"))["operation_id"]
            for received in fake.received
            for message in received.body["messages"]
            if message["role"] == "user"
        ]
    assert run.status == RunStatus.COMPLETE, run.error
    assert sorted(asked) == ["getThing", "listThings", "ping"]  # one failed attempt each
    assert set(run.scenarios.exclude(skipped_reason="").values_list("operation_id", flat=True)) == {
        "createThing",
        "deleteThing",
    }
    assert methods(target) == {"GET"}

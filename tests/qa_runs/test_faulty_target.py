"""A run against a small, deliberately faulty target started by the test reports each of its four
defects, and nothing else:

1. wrong status: DELETE /items/{itemId} answers 200 where the spec documents 204;
2. a body that breaks its schema: GET /items/{itemId} gives `qty` as a string;
3. a 500 on one input: GET /items?limit=51 (above the documented maximum) crashes;
4. a missing 4xx on invalid input: POST /items accepts a name longer than maxLength.

Everything else the target does is right, including what trips a naive validator: `note` is
`nullable` (OpenAPI 3.0), `created` is a readOnly date-time, 401 answers without the token, 404
after a delete. The run goes spec_parse → SpecGenerator → scenario_store → scenarios_execute →
evaluation_compute with no Celery, so the set of failed checks is exactly the executor's finding.
"""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree as ET

import pytest

from apps.qa_runs.choices import RunStatus, Verdict
from apps.qa_runs.evaluate import evaluation_compute, html_report, junit_xml
from apps.qa_runs.execute import scenarios_execute
from apps.qa_runs.generate import GenerationContext, SpecGenerator
from apps.qa_runs.models import QaPackageRun, StepResult
from apps.qa_runs.services import (
    qa_package_auth_set,
    qa_package_create,
    qa_run_request,
    qa_run_transition,
    scenario_store,
)
from apps.qa_runs.spec import Spec, spec_parse

TOKEN = "faulty-target-token-81f2"
FIRST_CREATED_ID = 100  # ids below are standing items: readable, never really deleted

_ERROR = {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}}


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json("Error")}


ITEM_ID = {"name": "itemId", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Faulty items", "version": "1"},
    "security": [{"bearer": []}],
    "paths": {
        "/items": {
            "get": {
                "operationId": "listItems",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 50},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "items",
                        "content": {
                            "application/json": {
                                "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}
                            }
                        },
                    },
                    "400": _error("bad query"),
                    "401": _error("no token"),
                },
            },
            "post": {
                "operationId": "createItem",
                "requestBody": {"required": True, "content": _json("ItemNew")},
                "responses": {
                    "201": {"description": "created", "content": _json("Item")},
                    "400": _error("invalid item"),
                    "401": _error("no token"),
                },
            },
        },
        "/items/{itemId}": {
            "parameters": [ITEM_ID],
            "get": {
                "operationId": "getItem",
                "responses": {
                    "200": {"description": "the item", "content": _json("Item")},
                    "401": _error("no token"),
                    "404": _error("no such item"),
                },
            },
            "delete": {
                "operationId": "deleteItem",
                "responses": {
                    "204": {"description": "deleted"},
                    "401": _error("no token"),
                    "404": _error("no such item"),
                },
            },
        },
    },
    "components": {
        "schemas": {
            "ItemNew": {
                "type": "object",
                "required": ["name", "qty"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 10},
                    "qty": {"type": "integer", "minimum": 0, "maximum": 100},
                    "note": {"type": "string", "nullable": True},
                },
            },
            "Item": {
                "type": "object",
                "required": ["id", "name", "qty", "created"],
                "properties": {
                    "id": {"type": "integer", "readOnly": True},
                    "name": {"type": "string"},
                    "qty": {"type": "integer"},
                    "note": {"type": "string", "nullable": True},
                    "created": {"type": "string", "format": "date-time", "readOnly": True},
                },
            },
            "Error": _ERROR,
        },
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    },
}


@dataclass
class FaultyTarget:
    """The target's state: items created, items deleted, and the port it listens on."""

    port: int = 0
    created: dict[int, dict[str, Any]] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def item(self, item_id: int, name: str = "standing", qty: int = 1) -> dict[str, Any]:
        return {"id": item_id, "name": name, "qty": qty, "note": None, "created": "2024-05-01T08:00:00Z"}


def _handler(target: FaultyTarget) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, body: Any = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, {"detail": "a bearer token is required"})
            parts = url.path.strip("/").split("/")
            if parts == ["items"] and self.command == "GET":
                return self._list(parse_qs(url.query))
            if parts == ["items"] and self.command == "POST":
                return self._create(raw)
            if len(parts) == 2 and parts[0] == "items" and parts[1].isdigit():
                return self._one(int(parts[1]))
            return self._send(404, {"detail": "no such route"})

        def _list(self, query: dict[str, list[str]]) -> None:
            limit = (query.get("limit") or [""])[0]
            if not limit.lstrip("-").isdigit() or int(limit) < 1:
                return self._send(400, {"detail": "limit must be a positive integer"})
            if int(limit) > 50:
                raise OverflowError("page buffer")  # DEFECT 3: a 500 on one input
            return self._send(200, [target.item(1)])

        def _create(self, raw: bytes) -> None:
            try:
                body = json.loads(raw)
            except ValueError:
                return self._send(400, {"detail": "not JSON"})
            if not isinstance(body, dict):
                return self._send(400, {"detail": "an object is expected"})
            name, qty = body.get("name"), body.get("qty")
            if not isinstance(name, str) or not name:
                return self._send(400, {"detail": "name is required"})
            if not isinstance(qty, int) or isinstance(qty, bool) or not 0 <= qty <= 100:
                return self._send(400, {"detail": "qty is an integer from 0 to 100"})
            # DEFECT 4: name's maxLength (10) is never checked, so an invalid name is accepted.
            with target.lock:
                item_id = FIRST_CREATED_ID + len(target.created)
                target.created[item_id] = target.item(item_id, name, qty)
            return self._send(201, target.created[item_id])

        def _one(self, item_id: int) -> None:
            with target.lock:
                gone = item_id in target.deleted
                if self.command == "DELETE" and not gone and item_id >= FIRST_CREATED_ID:
                    target.deleted.add(item_id)
            if gone:
                return self._send(404, {"detail": "no such item"})
            if self.command == "DELETE":
                return self._send(200)  # DEFECT 1: 200 where 204 is documented
            item = target.created.get(item_id) or target.item(item_id)
            return self._send(200, {**item, "qty": "many"})  # DEFECT 2: qty must be an integer

        def _guarded(self) -> None:
            try:
                self._serve()
            except Exception as error:
                self._send(500, {"detail": f"internal error: {type(error).__name__}"})

        do_GET = do_POST = do_DELETE = _guarded

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def faulty() -> Iterator[FaultyTarget]:
    target = FaultyTarget()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(target))
    httpd.daemon_threads = True
    target.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield target
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def run_against(target: FaultyTarget) -> tuple[QaPackageRun, Spec]:
    """The pipeline's steps, called directly: parse, generate, store, execute, evaluate."""
    base_url = f"http://127.0.0.1:{target.port}"
    # Two of the defects are found by writes (POST, DELETE): this target is there to be written to.
    package = qa_package_create(
        name="faulty",
        target_base_url=base_url,
        spec_text=json.dumps(SPEC),
        concurrency=3,
        allow_unsafe_methods=True,
    )
    qa_package_auth_set(package=package, kind="bearer", value=TOKEN)
    spec = spec_parse(package.spec_text)
    run = qa_run_request(package=package, requested_by=None)
    run = qa_run_transition(run=run, to=RunStatus.SPEC_FETCHED, spec_hash=spec.sha256)
    context = GenerationContext(operations=spec.operations, max_steps=package.max_steps_per_scenario)
    generator = SpecGenerator()
    generated = [s for op in spec.operations for s in generator.generate(op, context)]
    rows = [scenario_store(run=run, scenario=s, position=i) for i, s in enumerate(generated)]
    run = qa_run_transition(run=run, to=RunStatus.SCENARIOS_CREATED, scenarios_total=len(rows))
    run = qa_run_transition(run=run, to=RunStatus.EXECUTING)
    scenarios_execute(run=run, scenarios=rows, base_url=base_url, operations=spec.operations)
    evaluation = evaluation_compute(run=run, operations=spec.operations)
    run = qa_run_transition(
        run=run, to=RunStatus.EVALUATED, payload=evaluation.summary(), **evaluation.run_fields()
    )
    return run, spec


def failed_checks(run: QaPackageRun) -> set[tuple[str, str, str]]:
    """(operation, check, detail) of every failed check of every step of the run."""
    found = set()
    for result in StepResult.objects.filter(scenario__run=run).select_related("scenario"):
        operation = (
            result.scenario.steps[result.index - 1].get("operation_id") or result.scenario.operation_id
        )
        for check in result.checks:
            if check["outcome"] == "fail":
                found.add((operation, check["name"], check["message"]))
    return found


EXPECTED_DEFECTS = {
    ("deleteItem", "expected_status", "answered 200, expected 204"),
    ("getItem", "schema", "'many' is not of type 'integer' at $.qty"),
    ("listItems", "no_server_error", "answered 500"),
    ("createItem", "rejected_4xx", "an invalid request was accepted with 201; expected a 4xx"),
}


@pytest.mark.django_db
def test_each_defect_is_reported_and_nothing_else(faulty: FaultyTarget, settings: Any) -> None:
    settings.QA_TARGET_ALLOWLIST = ["127.0.0.1"]
    run, _ = run_against(faulty)
    assert failed_checks(run) == EXPECTED_DEFECTS

    # Which scenarios those are: each defect where it was planted (and the chain, which meets
    # defects 1 and 2 on its way), every other scenario passed.
    failed = dict(run.scenarios.filter(passed=False).values_list("name", "kind"))
    assert failed == {
        "listItems: 'limit' breaks maximum": "negative",
        "createItem: 'name' breaks maxLength": "negative",
        "createItem: create → read → delete via /items/{itemId}": "chain",
        "getItem: valid request": "positive",
        "deleteItem: valid request": "positive",
    }
    assert not run.scenarios.filter(passed__isnull=True).exists()
    assert run.verdict == Verdict.FAIL
    assert (run.operations_total, run.operations_covered) == (4, 4)
    assert run.scenarios_failed == 5
    assert run.scenarios_passed == run.scenarios_total - 5
    # No warnings either: every status the target gave is documented.
    warned = [
        c for r in StepResult.objects.filter(scenario__run=run) for c in r.checks if c["outcome"] == "warn"
    ]
    assert warned == []


@pytest.mark.django_db
def test_the_chain_carries_the_created_id_and_the_target_saw_it_deleted(
    faulty: FaultyTarget, settings: Any
) -> None:
    settings.QA_TARGET_ALLOWLIST = ["127.0.0.1"]
    run, _ = run_against(faulty)
    chain = run.scenarios.get(kind="chain")
    steps = list(chain.step_results.order_by("index"))
    created_id = json.loads(steps[0].response_body)["id"]
    assert created_id >= FIRST_CREATED_ID
    assert [(s.request["method"], s.request["url"].rsplit("/", 1)[1], s.response_status) for s in steps] == [
        ("POST", "items", 201),
        ("GET", str(created_id), 200),
        ("DELETE", str(created_id), 200),
        ("GET", str(created_id), 404),
    ]
    assert created_id in faulty.deleted
    everything = json.dumps(
        [[r.request, r.response_headers, r.curl] for r in StepResult.objects.filter(scenario__run=run)]
    )
    assert TOKEN not in everything


@pytest.mark.django_db
def test_the_reports_name_the_defects_with_their_reproducers(faulty: FaultyTarget, settings: Any) -> None:
    settings.QA_TARGET_ALLOWLIST = ["127.0.0.1"]
    run, _ = run_against(faulty)

    suite = ET.fromstring(junit_xml(run=run).split("?>", 1)[1]).find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    failures = {case.get("name"): case.find("failure") for case in cases if case.find("failure") is not None}
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == (str(len(cases)), "5", "0")
    broken = failures["listItems: 'limit' breaks maximum"]
    assert broken is not None
    assert broken.get("message") == "no_server_error: answered 500"
    assert f"curl -sS -i -X GET 'http://127.0.0.1:{faulty.port}/items?limit=51'" in (broken.text or "")

    page = html_report(run=run)
    assert 'id="verdict">Fail<' in page
    for _, check, detail in EXPECTED_DEFECTS:
        assert f"{check}: {detail}".replace("'", "&#x27;") in page
    assert f"http://127.0.0.1:{faulty.port}/items?limit=51" in page
    assert TOKEN not in page

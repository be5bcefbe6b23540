"""The AI generator against a fake OpenAI-compatible server on loopback: the request it sends, the
retries (AI_FAILED per attempt) on timeouts, HTTP errors and bad replies, the fallback to the
deterministic scenarios, and the rule that every step stays on the target's base URL."""

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apps.qa_runs import ai
from apps.qa_runs.ai import AiGenerator, ai_configured, step_path_refusal
from apps.qa_runs.choices import EventType, ScenarioSource
from apps.qa_runs.generate import GenerationContext, ScenarioGenerator, SpecGenerator
from apps.qa_runs.models import QaEvent, QaPackage, QaPackageRun, Scenario
from apps.qa_runs.services import MASK, event_publish, qa_run_request, scenario_store
from apps.qa_runs.spec import Operation, Spec, spec_parse
from tests.qa_runs.fake_openai import (
    FakeOpenAI,
    completion,
    fake_openai,
    raw,
    scenarios_reply,
    slow,
    status,
)
from tests.support.qa_spec import things_spec
from tests.support.settings_env import GOOD_KEY, load_settings

KEY = "sk-test-0123456789abcdef"
MODEL = "qa-test-model"


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeOpenAI]:
    with fake_openai() as server:
        settings.QA_AI_BASE_URL = server.base_url
        settings.QA_AI_API_KEY = KEY
        settings.QA_AI_MODEL = MODEL
        # Well under the 3 s of the slow reply, well over a loaded machine's connect (0.66 s was
        # seen under a benchmark, and a 0.5 s limit turned an HTTP 401 into a timeout).
        settings.QA_AI_TIMEOUT_SECONDS = 2.0
        settings.QA_AI_ATTEMPTS = 3
        yield server


@pytest.fixture(scope="module")
def spec() -> Spec:
    return spec_parse(json.dumps(things_spec()))


def operation(spec: Spec, operation_id: str = "createThing") -> Operation:
    return next(op for op in spec.operations if op.operation_id == operation_id)


def valid_scenario(**changes: Any) -> dict[str, Any]:
    """A scenario for createThing as a model would write it."""
    scenario: dict[str, Any] = {
        "name": "createThing: a small red thing",
        "operation_id": "createThing",
        "method": "POST",
        "path": "/things",
        "kind": "positive",
        "steps": [
            {
                "method": "POST",
                "path": "/things",
                "json": {"name": "abcd", "size": 12, "colour": "red"},
                "expect": {"statuses": [201]},
            }
        ],
    }
    return scenario | changes


def negative_scenario() -> dict[str, Any]:
    return valid_scenario(
        name="createThing: size too large",
        kind="negative",
        steps=[
            {
                "method": "POST",
                "path": "/things",
                "json": {"name": "abcd", "size": 99},
                "expect": {"statuses": ["4xx"]},
            }
        ],
    )


def with_step(**step_changes: Any) -> dict[str, Any]:
    scenario = valid_scenario()
    scenario["steps"] = [scenario["steps"][0] | step_changes]
    return scenario


def generate_into_run(
    package: QaPackage, spec: Spec, operation_id: str = "createThing"
) -> tuple[QaPackageRun, list[Scenario]]:
    """A real run: the generator publishes its events on it and each scenario is stored with
    scenario_store, as the pipeline does."""
    run = qa_run_request(package=package, requested_by=None)

    def publish(event_type: str, payload: dict[str, Any]) -> None:
        event_publish(run=run, type=event_type, payload=payload)

    generator: ScenarioGenerator = AiGenerator(publish, SpecGenerator(), backoff_seconds=0)
    context = GenerationContext(operations=spec.operations)
    generated = generator.generate(operation(spec, operation_id), context)
    rows = [scenario_store(run=run, scenario=s, position=i) for i, s in enumerate(generated)]
    return run, rows


def events_after_request(run: QaPackageRun) -> list[tuple[str, dict[str, Any]]]:
    rows = QaEvent.objects.filter(run=run, sequence__gt=1).order_by("sequence")
    return [(row.type, row.payload) for row in rows]


@pytest.mark.django_db
class RetryAndFallbackTests:
    def test_a_timeout_then_a_valid_reply_gives_ai_failed_then_the_ai_scenarios(
        self, fake: FakeOpenAI, package: QaPackage, spec: Spec
    ) -> None:
        fake.program(slow(3), scenarios_reply(valid_scenario(), negative_scenario()))

        run, rows = generate_into_run(package, spec)

        events = events_after_request(run)
        assert [t for t, _ in events] == [
            EventType.AI_FAILED,
            EventType.AI_SUCCESS,
            EventType.SCENARIO_CREATED,
            EventType.SCENARIO_CREATED,
        ]
        failed, success = events[0][1], events[1][1]
        assert failed["attempt"] == 1
        assert failed["operation"] == "createThing"
        assert "timeout" in failed["reason"]
        assert success == {"operation": "createThing", "attempt": 2, "scenarios": 2}
        assert [(r.name, r.source, r.kind) for r in rows] == [
            ("createThing: a small red thing", ScenarioSource.AI, "positive"),
            ("createThing: size too large", ScenarioSource.AI, "negative"),
        ]
        assert rows[1].steps[0]["json"] == {"name": "abcd", "size": 99}
        assert [e[1]["source"] for e in events[2:]] == ["ai", "ai"]
        assert len(fake.received) == 2

    def test_three_bad_replies_give_three_ai_failed_and_the_fallback_scenarios(
        self, fake: FakeOpenAI, package: QaPackage, spec: Spec
    ) -> None:
        without_steps = {k: v for k, v in valid_scenario().items() if k != "steps"}
        fake.program(
            status(500), completion("Sure! Here are your scenarios:"), scenarios_reply(without_steps)
        )

        run, rows = generate_into_run(package, spec)

        events = events_after_request(run)
        failures = [payload for t, payload in events if t == EventType.AI_FAILED]
        assert [t for t, _ in events[:3]] == [EventType.AI_FAILED] * 3
        assert [f["attempt"] for f in failures] == [1, 2, 3]
        assert {f["operation"] for f in failures} == {"createThing"}
        assert "HTTP 500" in failures[0]["reason"]
        assert "not JSON" in failures[1]["reason"]
        assert "'steps' is a required property" in failures[2]["reason"]
        assert EventType.AI_SUCCESS not in [t for t, _ in events]
        expected = SpecGenerator().generate(operation(spec), GenerationContext(operations=spec.operations))
        assert [t for t, _ in events[3:]] == [EventType.SCENARIO_CREATED] * len(expected)
        assert [r.name for r in rows] == [s.name for s in expected]
        assert {r.source for r in rows} == {ScenarioSource.FALLBACK}
        assert {e[1]["source"] for e in events[3:]} == {"fallback"}
        assert len(fake.received) == 3

    def test_the_number_of_attempts_is_the_setting(
        self, fake: FakeOpenAI, package: QaPackage, spec: Spec, settings: Any
    ) -> None:
        settings.QA_AI_ATTEMPTS = 2
        fake.program(status(503), status(502), scenarios_reply(valid_scenario()))

        run, rows = generate_into_run(package, spec)

        failures = [p["attempt"] for t, p in events_after_request(run) if t == EventType.AI_FAILED]
        assert failures == [1, 2]
        assert len(fake.received) == 2
        assert {r.source for r in rows} == {ScenarioSource.FALLBACK}

    def test_an_unreachable_endpoint_is_a_failed_attempt(
        self, fake: FakeOpenAI, package: QaPackage, spec: Spec, settings: Any
    ) -> None:
        with fake_openai() as gone:
            settings.QA_AI_BASE_URL = gone.base_url
        settings.QA_AI_ATTEMPTS = 1

        run, rows = generate_into_run(package, spec)

        (failure,) = [p for t, p in events_after_request(run) if t == EventType.AI_FAILED]
        assert "the request failed: ConnectError" in failure["reason"]
        assert rows
        assert {r.source for r in rows} == {ScenarioSource.FALLBACK}


@pytest.mark.django_db
class RequestTests:
    def test_the_request_names_the_model_carries_the_key_and_describes_the_operation(
        self, fake: FakeOpenAI, package: QaPackage, spec: Spec
    ) -> None:
        fake.program(scenarios_reply(valid_scenario()))

        generate_into_run(package, spec)

        (request,) = fake.received
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert request.body["model"] == MODEL
        assert request.body["response_format"] == {"type": "json_object"}
        assert request.body["temperature"] == 0
        assert [m["role"] for m in request.body["messages"]] == ["system", "user"]
        system, user = (m["content"] for m in request.body["messages"])
        assert '"$id":"urn:openspc:qa-scenario"' in system  # SCENARIO_SCHEMA itself
        assert "JSON object and nothing else" in system
        described = json.loads(user.split("\n", 1)[1])
        assert described["operation_id"] == "createThing"
        assert (described["method"], described["path"]) == ("POST", "/things")
        assert described["request_body"]["schema"]["required"] == ["name", "size"]
        assert sorted(described["responses"]) == ["201", "400"]
        assert described["requires_auth"] is True
        assert "GET /things/{thingId} (getThing)" in described["other_operations"]

    def test_a_reply_in_a_json_fence_is_accepted(
        self, fake: FakeOpenAI, package: QaPackage, spec: Spec
    ) -> None:
        fenced = "```json\n" + json.dumps({"scenarios": [valid_scenario()]}) + "\n```"
        fake.program(completion(fenced))

        run, rows = generate_into_run(package, spec)

        assert [t for t, _ in events_after_request(run)] == [EventType.AI_SUCCESS, EventType.SCENARIO_CREATED]
        assert rows[0].source == ScenarioSource.AI

    def test_a_redirect_is_not_followed(self, fake: FakeOpenAI, package: QaPackage, spec: Spec) -> None:
        elsewhere = f"http://{fake.server.host}:{fake.server.port}/elsewhere"
        fake.server.routes["/elsewhere"] = lambda handler: None  # must never be asked
        fake.program(raw(b"", status=307, Location=elsewhere), scenarios_reply(valid_scenario()))

        run, _ = generate_into_run(package, spec)

        events = events_after_request(run)
        assert events[0][0] == EventType.AI_FAILED
        assert "HTTP 307" in events[0][1]["reason"]
        assert events[1][0] == EventType.AI_SUCCESS
        assert "/elsewhere" not in fake.server.paths

    def test_an_answer_over_the_size_cap_is_a_failed_attempt(
        self, fake: FakeOpenAI, package: QaPackage, spec: Spec, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(ai, "MAX_REPLY_BYTES", 4096)
        padded = valid_scenario(name="createThing: " + "x" * 280)
        fake.program(scenarios_reply(*[padded] * 15), scenarios_reply(valid_scenario()))

        run, _ = generate_into_run(package, spec)

        events = events_after_request(run)
        assert "larger than 4,096 bytes" in events[0][1]["reason"]
        assert events[1][0] == EventType.AI_SUCCESS

    def test_the_key_never_reaches_an_event_or_the_log(
        self, fake: FakeOpenAI, package: QaPackage, spec: Spec, caplog: pytest.LogCaptureFixture
    ) -> None:
        echo = json.dumps({"error": f"invalid api key {KEY}"})
        fake.program(status(401, echo), status(401, echo), status(401, echo))

        with caplog.at_level(logging.DEBUG):
            run, _ = generate_into_run(package, spec)

        failures = [p for t, p in events_after_request(run) if t == EventType.AI_FAILED]
        assert len(failures) == 3
        assert all("HTTP 401" in f["reason"] and MASK in f["reason"] for f in failures)
        stored = json.dumps(list(QaEvent.objects.filter(run=run).values_list("payload", flat=True)))
        assert KEY not in stored
        assert "HTTP 401" in caplog.text
        assert KEY not in caplog.text


@pytest.mark.django_db
class ReplyRulesTests:
    """A scenario step the model wrote must stay on the target: a path under its base URL."""

    @pytest.mark.parametrize(
        ("scenario", "reason"),
        [
            (with_step(path="https://evil.example/things"), "does not match '^/'"),
            (with_step(path="//evil.example/things"), "starts with '//'"),
            (with_step(path="/%2F%2Fevil.example/things"), "starts with '//'"),
            (with_step(path="/things/../../admin"), "'..' segments"),
            (with_step(path="/things/%2e%2e/admin"), "'..' segments"),
            (with_step(path="/\\evil.example/things"), "backslash"),
            (with_step(path="/redirect/http://evil.example/"), "contains a URL"),
            (with_step(path="/things?next=1"), "query or fragment"),
            (with_step(path="/things/a b"), "whitespace"),
            (with_step(path="/things/%0d%0aX-Injected:%201"), "control characters"),
            (with_step(path="/things/{thingId}"), "path parameter {thingId} unfilled"),
            (with_step(headers={"Host": "evil.example"}), "header(s) Host"),
            (with_step(headers={"X-Forwarded-Host": "evil.example"}), "X-Forwarded-Host"),
            (valid_scenario(operation_id="getThing"), "for operation 'getThing'"),
            (valid_scenario(path="/other"), "names POST /other"),
        ],
    )
    def test_a_refused_scenario_is_an_invalid_reply(
        self, fake: FakeOpenAI, package: QaPackage, spec: Spec, scenario: dict[str, Any], reason: str
    ) -> None:
        fake.program(scenarios_reply(valid_scenario(), scenario), scenarios_reply(valid_scenario()))

        run, rows = generate_into_run(package, spec)

        events = events_after_request(run)
        assert events[0][0] == EventType.AI_FAILED
        assert "scenario 2" in events[0][1]["reason"]
        assert reason in events[0][1]["reason"]
        assert events[1] == (
            EventType.AI_SUCCESS,
            {"operation": "createThing", "attempt": 2, "scenarios": 1},
        )
        assert [r.steps[0]["path"] for r in rows] == ["/things"]

    def test_three_replies_leaving_the_target_fall_back(
        self, fake: FakeOpenAI, package: QaPackage, spec: Spec
    ) -> None:
        fake.program(
            scenarios_reply(with_step(path="http://169.254.169.254/latest/meta-data/")),
            scenarios_reply(with_step(path="//169.254.169.254/latest/meta-data/")),
            scenarios_reply(with_step(headers={"Host": "169.254.169.254"})),
        )

        run, rows = generate_into_run(package, spec)

        types = [t for t, _ in events_after_request(run)]
        assert types[:3] == [EventType.AI_FAILED] * 3
        assert EventType.AI_SUCCESS not in types
        assert {r.source for r in rows} == {ScenarioSource.FALLBACK}
        assert all(step["path"].startswith("/things") for r in rows for step in r.steps)

    def test_a_scenario_longer_than_the_package_allows_is_refused(
        self, fake: FakeOpenAI, package: QaPackage, spec: Spec
    ) -> None:
        step = valid_scenario()["steps"][0]
        fake.program(scenarios_reply(valid_scenario(steps=[step] * 11)), scenarios_reply(valid_scenario()))

        run, _ = generate_into_run(package, spec)  # GenerationContext's default: 10 steps

        assert "11 steps; the package allows 10" in events_after_request(run)[0][1]["reason"]

    def test_a_chain_with_placeholders_is_admitted(
        self, fake: FakeOpenAI, package: QaPackage, spec: Spec
    ) -> None:
        chain = valid_scenario(
            name="createThing: create, read, delete",
            kind="chain",
            steps=[
                valid_scenario()["steps"][0] | {"extract": {"thing": "$.thingId"}},
                {"method": "GET", "path": "/things/{{thing}}", "expect": {"statuses": [200]}},
                {"method": "DELETE", "path": "/things/{{thing}}", "expect": {"statuses": [204]}},
            ],
        )
        fake.program(scenarios_reply(chain))

        run, rows = generate_into_run(package, spec)

        assert [t for t, _ in events_after_request(run)] == [EventType.AI_SUCCESS, EventType.SCENARIO_CREATED]
        assert [s["path"] for s in rows[0].steps] == ["/things", "/things/{{thing}}", "/things/{{thing}}"]
        assert rows[0].steps[0]["extract"] == {"thing": "$.thingId"}


@pytest.mark.parametrize(
    "path", ["/things", "/things/12", "/things/{{thing}}", "/a/b-c_d.e/%20x", "/", "/things/..x"]
)
def test_paths_under_the_base_url_are_admitted(path: str) -> None:
    assert step_path_refusal(path) is None


def test_ai_is_configured_only_with_endpoint_key_and_model(settings: Any) -> None:
    settings.QA_AI_BASE_URL, settings.QA_AI_API_KEY, settings.QA_AI_MODEL = "http://ai.local/v1", KEY, MODEL
    assert ai_configured()
    for name in ("QA_AI_BASE_URL", "QA_AI_API_KEY", "QA_AI_MODEL"):
        setattr(settings, name, "")
        assert not ai_configured()
        setattr(
            settings, name, {"QA_AI_BASE_URL": "http://ai.local/v1", "QA_AI_API_KEY": KEY}.get(name, MODEL)
        )


AI_SHOW = (
    "from django.conf import settings as s; "
    "print(s.QA_AI_BASE_URL, s.QA_AI_TIMEOUT_SECONDS, s.QA_AI_ATTEMPTS)"
)
AI_UNSET = {
    "QA_AI_BASE_URL": "",
    "QA_AI_API_KEY": "",
    "QA_AI_MODEL": "",
    "QA_AI_TIMEOUT_SECONDS": "",
    "QA_AI_ATTEMPTS": "",
}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"QA_AI_BASE_URL": "ftp://ai.local/v1"}, "QA_AI_BASE_URL must be a URL starting with"),
        ({"QA_AI_BASE_URL": "http://ai.local/v1", "QA_AI_MODEL": MODEL}, "set QA_AI_API_KEY and QA_AI_MODEL"),
        ({"QA_AI_TIMEOUT_SECONDS": "0"}, "QA_AI_TIMEOUT_SECONDS must be at least 1"),
        ({"QA_AI_ATTEMPTS": "three"}, "QA_AI_ATTEMPTS must be a whole number"),
    ],
)
def test_a_bad_ai_setting_stops_start_up(tmp_path: Path, env: dict[str, str], message: str) -> None:
    result = load_settings(tmp_path, AI_SHOW, SECRET_KEY=GOOD_KEY, **(AI_UNSET | env))
    assert result.returncode != 0
    assert message in result.stderr


def test_ai_settings_default_to_off_with_30_seconds_and_3_attempts(tmp_path: Path) -> None:
    result = load_settings(tmp_path, AI_SHOW, SECRET_KEY=GOOD_KEY, **AI_UNSET)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["30", "3"]
    configured = AI_UNSET | {
        "QA_AI_BASE_URL": "https://api.example.com/v1/",
        "QA_AI_API_KEY": KEY,
        "QA_AI_MODEL": MODEL,
    }
    result = load_settings(tmp_path, AI_SHOW, SECRET_KEY=GOOD_KEY, **configured)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["https://api.example.com/v1", "30", "3"]

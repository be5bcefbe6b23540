"""Execution of a run's scenarios against its target: requests in parallel (at most the package's
concurrency), each step's answer checked (checks.py) and recorded with its curl reproducer.

Worker threads only send requests and judge answers, from plain data; the calling thread (the
Celery task) writes every StepResult, Scenario.passed and event, in its own database connection,
as scenarios complete (net.run_bounded). That keeps the ORM out of the threads, so SQLite, test
transactions and PostgreSQL connection counts all behave.

Every request goes through ONE net.qa_client for the run, with the base URL checked (url_check)
and pinned before the first request; the client never follows redirects (a 3xx is the answer that
is checked), reads at most QA_MAX_RESPONSE_BYTES of a body and gives each step the package's
step_timeout_seconds.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from django.db import transaction

from apps.qa_runs.checks import EXTRACT, FAIL, PASS, RESPONSE, SKIP, Check, Status, response_checks
from apps.qa_runs.choices import AuthKind, EventType, ScenarioKind
from apps.qa_runs.models import QaPackageRun, Scenario
from apps.qa_runs.net import TargetRefused, fetch, qa_client, run_bounded, url_check
from apps.qa_runs.safety import scenario_skip_reason, step_refusal, target_self
from apps.qa_runs.services import (
    RunFinished,
    event_publish,
    qa_package_auth_headers,
    qa_package_secret,
    step_result_record,
)
from apps.qa_runs.spec import Operation

_PLACEHOLDER = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}")
_PATH_PART = re.compile(r"\.([A-Za-z0-9_\-]+)|\[([0-9]+)\]")
# Extracted values named like these are credentials (a login step's token): masked when stored.
_SECRET_NAME = re.compile(r"token|secret|password|passwd|api_?key|session|cookie", re.IGNORECASE)
_SUMMARY_LIMIT = 10


@dataclass(frozen=True)
class ScenarioOutcome:
    """How one scenario went: `failures` holds "step N (operation) check: message" per failed check."""

    scenario_id: int
    operation_id: str
    passed: bool
    failures: list[str] = field(default_factory=list)


@dataclass
class _StepRun:
    """What a worker thread found for one step; the calling thread records it."""

    index: int
    operation_id: str
    request: dict[str, Any]
    curl: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    duration_ms: int = 0
    checks: list[Check] = field(default_factory=list)
    error: str = ""
    refused: str = ""  # why safety.step_refusal kept it from being sent: the scenario is skipped

    @property
    def passed(self) -> bool:
        return self.status is not None and not any(check.outcome == FAIL for check in self.checks)


@dataclass(frozen=True)
class _Job:
    """A scenario as plain data, for a worker thread."""

    scenario_id: int
    operation_id: str
    kind: str
    steps: list[dict[str, Any]]


@dataclass(frozen=True)
class _Context:
    """What every step of the run shares."""

    client: httpx.Client
    base_url: str
    auth_headers: dict[str, str]
    operations: dict[str, Operation]
    overrides: Mapping[str, Sequence[Status]]
    timeout_seconds: float
    allow_unsafe: bool
    self_target: bool


def scenarios_execute(
    *,
    run: QaPackageRun,
    scenarios: Sequence[Scenario],
    base_url: str,
    cancelled: Callable[[], bool] = lambda: False,
    operations: Sequence[Operation] = (),
) -> list[ScenarioOutcome]:
    """Run each scenario's steps in order, scenarios in parallel (run.package.concurrency at a time),
    record each step (services.step_result_record), set Scenario.passed and publish
    EXECUTION_SUCCESS / EXECUTION_FAILED per scenario. `operations` (the spec's) let the checks
    compare answers with the documented statuses and schemas; without them the steps' own
    expectations stand in. No new scenario starts once `cancelled()` is true, the run's
    run_timeout_seconds has passed or the run has ended (a terminal event).

    Safety (safety.py), whatever the scenarios say: a scenario stored as skipped, or with a method
    the package does not allow, is not sent and gets EXECUTION_SKIPPED; each step is checked again
    on its filled URL just before it is sent, and one refused there (an unsafe method, this system's
    run start/cancel endpoint) is not sent, the scenario stops and is skipped with the reason.

    Raises TargetRefused when base_url itself is refused (nothing is sent then), and
    services.CredentialMissing when the package's credential cannot be had."""
    package = run.package
    target = url_check(base_url)
    auth_headers = qa_package_auth_headers(package=package)
    secret = qa_package_secret(package=package)
    secret_headers = [package.auth_header_name] if package.auth_kind == AuthKind.HEADER else []
    deadline = time.monotonic() + package.run_timeout_seconds
    ended = False

    def jobs() -> Iterator[_Job]:
        nonlocal ended
        for scenario in scenarios:
            if ended or cancelled() or time.monotonic() > deadline:
                return
            # The package's step limit holds for any scenario, an AI's included.
            steps = list(scenario.steps or [])[: package.max_steps_per_scenario]
            reason = scenario.skipped_reason or scenario_skip_reason(
                steps=steps, allow_unsafe=package.allow_unsafe_methods
            )
            if reason:
                ended = _skip(run, scenario, reason)
                continue
            yield _Job(scenario.pk, scenario.operation_id, scenario.kind, steps)

    outcomes: list[ScenarioOutcome] = []
    by_id = {scenario.pk: scenario for scenario in scenarios}
    with qa_client(
        targets=[target], timeout_seconds=package.step_timeout_seconds, max_connections=package.concurrency
    ) as client:
        context = _Context(
            client=client,
            base_url=str(base_url).rstrip("/"),
            auth_headers=auth_headers,
            operations={op.operation_id: op for op in operations},
            overrides=package.expected_status_overrides or {},
            timeout_seconds=float(package.step_timeout_seconds),
            allow_unsafe=package.allow_unsafe_methods,
            self_target=bool(target_self(base_url, request_hosts=[run.requested_host])),
        )
        for job, (steps, extracted) in run_bounded(
            lambda job: _scenario_run(job, context), jobs(), limit=package.concurrency
        ):
            secrets = [secret or "", *(str(v) for k, v in extracted.items() if _SECRET_NAME.search(k))]
            outcome, ended_now = _record(run, by_id[job.scenario_id], job, steps, secrets, secret_headers)
            ended = ended or ended_now
            outcomes.append(outcome)
    return outcomes


def _record(
    run: QaPackageRun,
    scenario: Scenario,
    job: _Job,
    steps: list[_StepRun],
    secrets: list[str],
    secret_headers: list[str],
) -> tuple[ScenarioOutcome, bool]:
    """Store a scenario's step results, its outcome and its event, in one transaction; True as the
    second value when the run has ended meanwhile (its event was refused)."""
    failures = [
        f"step {step.index} ({step.operation_id}) {check.name}: {check.message}"
        for step in steps
        for check in step.checks
        if check.outcome == FAIL
    ]
    refused = next((step.refused for step in steps if step.refused), "")
    passed = bool(steps) and all(step.passed for step in steps) and not refused
    outcome = ScenarioOutcome(job.scenario_id, job.operation_id, passed, failures)
    with transaction.atomic():
        for step in steps:
            step_result_record(
                scenario=scenario,
                index=step.index,
                request=_storable(step.request),
                response_status=step.status,
                response_headers=_storable(step.headers),
                response_body=step.body,
                duration_ms=step.duration_ms,
                checks=_storable([check.to_dict() for check in step.checks]),
                passed=step.passed,
                curl=step.curl.replace("\x00", "\ufffd"),
                error=step.error.replace("\x00", "\ufffd"),
                secrets=secrets,
                secret_headers=secret_headers,
            )
        if refused:
            return outcome, _skip(run, scenario, refused)
        Scenario.objects.filter(pk=scenario.pk).update(passed=passed)
        scenario.passed = passed
    payload = {
        "scenario": job.scenario_id,
        "name": scenario.name,
        "operation": job.operation_id,
        "kind": job.kind,
        "failed_checks": failures[:_SUMMARY_LIMIT],
        "failed_checks_total": len(failures),
    }
    try:
        event_publish(
            run=run,
            type=EventType.EXECUTION_SUCCESS if passed else EventType.EXECUTION_FAILED,
            payload=payload,
        )
    except RunFinished:
        return outcome, True
    return outcome, False


def _skip(run: QaPackageRun, scenario: Scenario, reason: str) -> bool:
    """Mark a scenario skipped (not executed on purpose) with its EXECUTION_SKIPPED event; True when
    the run has ended meanwhile (the event was refused)."""
    with transaction.atomic():
        Scenario.objects.filter(pk=scenario.pk).update(passed=None, skipped_reason=reason[:500])
        scenario.passed, scenario.skipped_reason = None, reason[:500]
        payload = {
            "scenario": scenario.pk,
            "name": scenario.name,
            "operation": scenario.operation_id,
            "kind": scenario.kind,
            "reason": reason,
        }
        try:
            event_publish(run=run, type=EventType.EXECUTION_SKIPPED, payload=payload)
        except RunFinished:
            transaction.set_rollback(True)
            return True
    return False


def _storable(value: Any) -> Any:
    """value without NUL characters, which PostgreSQL's text and jsonb cannot hold (a target's body
    quoted in a check message may carry them)."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    return value


# --- One scenario, in a worker thread ----------------------------------------------------------------


def _scenario_run(job: _Job, context: _Context) -> tuple[list[_StepRun], dict[str, Any]]:
    """The scenario's steps in order, values extracted by one step filling the {{placeholders}}
    of the next. Catches everything a target can cause: run_bounded must not see an error."""
    values: dict[str, Any] = {}
    results: list[_StepRun] = []
    for index, step in enumerate(job.steps, start=1):
        results.append(_step_run(index, step, job, values, context))
        if results[-1].refused:
            break  # what follows may depend on it; the scenario is skipped
    return results, values


def _step_run(
    index: int, step: Mapping[str, Any], job: _Job, values: dict[str, Any], context: _Context
) -> _StepRun:
    operation_id = str(step.get("operation_id") or job.operation_id)
    method = str(step.get("method", "GET")).upper()
    missing = sorted(set(_placeholders(step)) - set(values))
    try:
        request = _request(step, job, values, context)
    except (httpx.InvalidURL, ValueError, TypeError) as error:  # a value httpx cannot put in a URL
        shown = {
            "method": method,
            "url": context.base_url + str(step.get("path", "")),
            "headers": {},
            "body": "",
        }
        result = _StepRun(index=index, operation_id=operation_id, request=shown, curl="")
        result.error = f"not sent: the request cannot be built ({error})"
        result.checks = [Check(RESPONSE, FAIL, result.error)]
        return result
    result = _StepRun(index=index, operation_id=operation_id, request=request["shown"], curl=_curl(request))
    result.refused = step_refusal(
        method=method, url=request["url"], allow_unsafe=context.allow_unsafe, self_target=context.self_target
    )
    if result.refused:
        result.error = f"not sent: {result.refused}"
        result.checks = [Check(RESPONSE, SKIP, result.error)]
        return result
    if missing:
        names = ", ".join("{{" + name + "}}" for name in missing)
        result.error = f"not sent: {names} not extracted by an earlier step"
        result.checks = [Check(RESPONSE, SKIP, result.error)]
        return result
    started = time.monotonic()
    try:
        fetched = fetch(
            context.client,
            method,
            request["url"],
            timeout_seconds=context.timeout_seconds,
            **request["httpx"],
        )
    except TargetRefused as error:
        result.error = f"refused: {error.reason}"
    except httpx.TimeoutException:
        result.error = f"timeout: no complete answer within {context.timeout_seconds:g} s"
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as error:
        result.error = f"no response: {error or type(error).__name__}"
    except (UnicodeError, ValueError) as error:  # e.g. a header value that is not ASCII
        result.error = f"not sent: {error}"
    result.duration_ms = round((time.monotonic() - started) * 1000)
    if result.error:
        result.checks = [Check(RESPONSE, FAIL, result.error)]
        return result
    result.status = fetched.status_code
    result.headers = dict(fetched.headers.items())
    # PostgreSQL text cannot hold NUL; a binary or hostile body must not fail the recording.
    result.body = fetched.body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    result.duration_ms = fetched.elapsed_ms
    found, parsed = response_checks(
        step=step,
        kind=job.kind,
        operation=context.operations.get(operation_id),
        overrides=context.overrides,
        status=fetched.status_code,
        content_type=fetched.headers.get("content-type"),
        body=fetched.body,
        truncated=fetched.truncated,
    )
    result.checks = [Check(RESPONSE, PASS, str(fetched.status_code)), *found]
    if not any(check.outcome == FAIL for check in found):
        result.checks += _extract_all(step, parsed, values)
    return result


def _placeholders(step: Mapping[str, Any]) -> list[str]:
    text = json.dumps([step.get("path"), step.get("query"), step.get("headers"), step.get("json")])
    return _PLACEHOLDER.findall(text)


def _fill(value: Any, values: Mapping[str, Any], *, in_path: bool = False) -> Any:
    """{{name}} replaced by the extracted value: quoted as one segment in a path (an id of "../x"
    stays inside its segment); a string that is only a placeholder takes the value's own type."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole and not in_path and whole.group(1) in values:
            return values[whole.group(1)]

        def one(match: re.Match[str]) -> str:
            if match.group(1) not in values:
                return match.group(0)
            text = str(values[match.group(1)])
            return quote(text, safe="") if in_path else text

        return _PLACEHOLDER.sub(one, value)
    if isinstance(value, list):
        return [_fill(item, values) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, values) for key, item in value.items()}
    return value


def _request(
    step: Mapping[str, Any], job: _Job, values: Mapping[str, Any], context: _Context
) -> dict[str, Any]:
    """The URL, httpx arguments and the request as shown (stored, masked later) for a step."""
    method = str(step.get("method", "GET")).upper()
    path = str(_fill(str(step.get("path") or "/"), values, in_path=True))
    url = context.base_url + (path if path.startswith("/") else "/" + path)
    headers = {str(k): str(v) for k, v in (_fill(step.get("headers") or {}, values)).items()}
    if step.get("auth", True) and job.kind != ScenarioKind.UNAUTHENTICATED:
        headers.update(context.auth_headers)
    query = _fill(step.get("query") or {}, values)
    arguments: dict[str, Any] = {"headers": headers, "params": _params(query)}
    body: str | None = None
    if "json" in step and step["json"] is not None:
        body = json.dumps(_fill(step["json"], values), ensure_ascii=False)
        headers["Content-Type"] = "application/json"
        arguments["content"] = body.encode()
    full_url = str(httpx.URL(url, params=arguments["params"])) if query else url
    shown = {"method": method, "url": full_url, "headers": dict(headers), "body": body or ""}
    return {"url": url, "httpx": arguments, "shown": shown}


def _params(query: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Query parameters as httpx sends them; arrays repeat the name (OpenAPI's form, explode)."""
    pairs: list[tuple[str, str]] = []
    for name, value in query.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((name, json.dumps(item) if isinstance(item, bool) else str(item)))
    return pairs


def _curl(request: Mapping[str, Any]) -> str:
    """A shell line that sends the same request (the credential is masked when it is stored)."""
    shown = request["shown"]
    parts = ["curl", "-sS", "-i", "-X", shown["method"], shlex.quote(shown["url"])]
    for name, value in shown["headers"].items():
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    if shown["body"]:
        parts += ["--data-raw", shlex.quote(shown["body"])]
    return " ".join(parts)


def _lookup(document: Any, path: str) -> tuple[bool, Any]:
    """The value at a $.a[0].b path in a JSON document, as (found, value)."""
    if not path.startswith("$"):
        return False, None
    node = document
    for name, position in _PATH_PART.findall(path[1:]):
        if name:
            if not isinstance(node, dict) or name not in node:
                return False, None
            node = node[name]
        else:
            if not isinstance(node, list) or int(position) >= len(node):
                return False, None
            node = node[int(position)]
    return True, node


def _extract_all(step: Mapping[str, Any], parsed: Any, values: dict[str, Any]) -> list[Check]:
    checks = []
    for name, path in (step.get("extract") or {}).items():
        found, value = _lookup(parsed, str(path))
        if found and value is not None and not isinstance(value, dict | list):
            values[name] = value
            checks.append(Check(EXTRACT, PASS, f"{name} = {path}"))
        else:
            checks.append(
                Check(EXTRACT, FAIL, f"{path} is not a value in the response body (for {{{{{name}}}}})")
            )
    return checks

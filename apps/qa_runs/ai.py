"""Scenario generation by a language model behind an OpenAI-compatible chat completions endpoint.

The administrator names the endpoint, key and model in settings (QA_AI_*). For each operation,
AiGenerator sends the operation (method, path, parameters, request body, responses) and
SCENARIO_SCHEMA, asks for JSON only, and admits the reply only if every scenario matches the schema
and keeps to the rules below. Each failed attempt (timeout, HTTP error, an answer that is not JSON
or not valid scenarios) publishes AI_FAILED and is retried, up to QA_AI_ATTEMPTS; after that the
operation gets the deterministic generator's scenarios, marked source "fallback", so a run never
depends on the model being up or well-behaved.

What the model writes is untrusted input: it becomes requests the QA runner sends. Every step must be
a path under the target's base URL (no scheme, host, dot segments, query or fragment) and may not
set headers that reroute a request (Host, Forwarded…); a reply that breaks this is an invalid reply
like any other. The AI endpoint itself is not held to QA_TARGET_ALLOWLIST (the administrator chose
it, and it is often on the local network), but it is called with a timeout, no redirects and a cap
on the answer's size, and its key never appears in an event, a log line or an error.
"""

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import unquote

import httpx
from django.conf import settings

from apps.qa_runs.choices import EventType, ScenarioSource
from apps.qa_runs.generate import (
    SCENARIO_SCHEMA,
    GeneratedScenario,
    GenerationContext,
    ScenarioGenerator,
    ScenarioInvalid,
    Step,
    scenario_from_dict,
)
from apps.qa_runs.net import fetch
from apps.qa_runs.services import mask
from apps.qa_runs.spec import Operation

logger = logging.getLogger(__name__)

Publish = Callable[[str, dict[str, Any]], None]

MAX_REPLY_BYTES = 1024 * 1024  # a chat completion with a few dozen scenarios is far below this
MAX_SCENARIOS = 20  # per operation, per reply
MAX_OTHER_OPERATIONS = 50  # listed in the prompt, for chains
REASON_LIMIT = 500  # characters of a failure's reason kept in the event
# Headers that would send a request somewhere other than its URL says (virtual host, proxy
# routing) or break its framing; the executor sets the ones a request needs.
REFUSED_HEADERS = frozenset(
    {
        "host",
        "forwarded",
        "x-forwarded-host",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-original-url",
        "x-rewrite-url",
        "connection",
        "content-length",
        "transfer-encoding",
        "te",
        "upgrade",
        "proxy-authorization",
    }
)
_TEMPLATE = re.compile(r"(?<!\{)\{[^{}/]*\}(?!\})")  # {thingId}, not {{thingId}}
_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?\s*```\s*$", re.DOTALL)


class AiAttemptFailed(Exception):
    """One attempt that gave no usable scenarios; the message is the AI_FAILED event's reason."""


def ai_configured() -> bool:
    """Whether an endpoint, key and model are set, so packages asking for AI generation get it."""
    return bool(settings.QA_AI_BASE_URL and settings.QA_AI_API_KEY and settings.QA_AI_MODEL)


# --- What a reply may contain -------------------------------------------------------------------


def step_path_refusal(path: str) -> str | None:
    """Why a step's path is not a path under the target's base URL, or None when it is.

    Whichever way the executor puts base URL and path together (appending, or joining), a path that
    starts with one "/" and has no dot segments stays on the target's scheme, host and port and under
    its base path. Percent-encoded forms are judged decoded: a server may decode them before routing.
    """
    decoded = unquote(path)
    if not path.startswith("/"):
        return f"the path {path!r} does not start with '/' (an absolute URL or a relative path)"
    if decoded.startswith("//") or path.startswith("//"):
        return f"the path {path!r} starts with '//', which names another host"
    if "\\" in decoded:
        return f"the path {path!r} contains a backslash, which some clients read as '/'"
    if any(c.isspace() for c in path) or any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded):
        return f"the path {path!r} contains whitespace or control characters (encode a space as %20)"
    if "://" in decoded:
        return f"the path {path!r} contains a URL"
    if "?" in path or "#" in path:
        return f"the path {path!r} has a query or fragment; query parameters go in 'query'"
    if any(segment in {".", ".."} for segment in decoded.split("/")):
        return f"the path {path!r} has '.' or '..' segments, which leave the base URL's path"
    if template := _TEMPLATE.search(path):
        return f"the path {path!r} leaves the path parameter {template.group()} unfilled"
    return None


def step_refusal(step: Step) -> str | None:
    """Why the QA runner will not send a step the AI wrote, or None."""
    problem = step_path_refusal(step.path)
    if problem is not None:
        return problem
    rerouting = sorted(name for name in step.headers if name.strip().lower() in REFUSED_HEADERS)
    if rerouting:
        return f"the step sets the header(s) {', '.join(rerouting)}, which the runner sets itself"
    return None


def scenario_refusal(
    scenario: GeneratedScenario, operation: Operation, context: GenerationContext
) -> str | None:
    """Why a scenario the AI wrote for `operation` is not admitted, or None."""
    if scenario.operation_id != operation.operation_id:
        return f"it is for operation {scenario.operation_id!r}, not {operation.operation_id!r}"
    if (scenario.method, scenario.path) != (operation.method, operation.path):
        return f"it names {scenario.method} {scenario.path}, not {operation.method} {operation.path}"
    if len(scenario.steps) > context.max_steps:
        return f"it has {len(scenario.steps)} steps; the package allows {context.max_steps}"
    for number, step in enumerate(scenario.steps, start=1):
        problem = step_refusal(step)
        if problem is not None:
            return f"step {number}: {problem}"
    return None


def _unfenced(content: str) -> str:
    """The text inside a ```json … ``` fence, which models add even when asked not to."""
    match = _FENCE.match(content)
    return match.group(1) if match else content


def reply_scenarios(
    content: str, operation: Operation, context: GenerationContext
) -> list[GeneratedScenario]:
    """The scenarios in a model's reply ({"scenarios": [...]}; a bare list or one scenario object
    is taken too), each checked against SCENARIO_SCHEMA and the rules above; AiAttemptFailed naming
    the first problem otherwise."""
    try:
        data = json.loads(_unfenced(content))
    except json.JSONDecodeError as error:
        raise AiAttemptFailed(f"the reply is not JSON ({error.msg} at character {error.pos})") from None
    if isinstance(data, dict) and isinstance(data.get("scenarios"), list):
        items: list[Any] = data["scenarios"]
    elif isinstance(data, list):
        items = data
    elif isinstance(data, dict) and "steps" in data:
        items = [data]
    else:
        raise AiAttemptFailed('the reply is not {"scenarios": [...]}')
    if not items:
        raise AiAttemptFailed("the reply has no scenarios")
    if len(items) > MAX_SCENARIOS:
        raise AiAttemptFailed(f"the reply has {len(items)} scenarios; at most {MAX_SCENARIOS} are taken")
    scenarios = []
    for number, item in enumerate(items, start=1):
        try:
            scenario = scenario_from_dict(item, source=ScenarioSource.AI)
        except ScenarioInvalid as error:
            raise AiAttemptFailed(f"scenario {number} does not match the scenario schema: {error}") from None
        problem = scenario_refusal(scenario, operation, context)
        if problem is not None:
            raise AiAttemptFailed(f"scenario {number} is refused: {problem}")
        scenarios.append(scenario)
    return scenarios


# --- What is asked --------------------------------------------------------------------------------


def operation_describe(operation: Operation, context: GenerationContext) -> dict[str, Any]:
    """The operation as the prompt gives it: what the model needs to write requests, as JSON."""
    body = operation.request_body
    described: dict[str, Any] = {
        "operation_id": operation.operation_id,
        "method": operation.method,
        "path": operation.path,
        "summary": operation.summary,
        "parameters": [
            {"name": p.name, "in": p.location, "required": p.required, "schema": p.schema}
            for p in operation.parameters
        ],
        "request_body": (
            {"content_type": body.content_type, "required": body.required, "schema": body.schema}
            if body
            else None
        ),
        "responses": {
            status: {"description": r.description, "content_type": r.content_type, "schema": r.schema}
            for status, r in sorted(operation.responses.items())
        },
        "requires_auth": operation.requires_auth,
    }
    override = context.expected_status_overrides.get(operation.operation_id)
    if override:
        described["expected_statuses_of_a_valid_request"] = list(override)
    others = [op for op in context.operations if op.operation_id != operation.operation_id]
    if others:
        described["other_operations"] = [
            f"{op.method} {op.path} ({op.operation_id})" for op in others[:MAX_OTHER_OPERATIONS]
        ]
    return described


def system_prompt(context: GenerationContext) -> str:
    return (
        "You write API test scenarios for one operation of an OpenAPI spec. Reply with one JSON "
        'object and nothing else: {"scenarios": [ ... ]} holding 1 to '
        f"{MAX_SCENARIOS} scenarios, each matching this JSON Schema:\n"
        f"{json.dumps(SCENARIO_SCHEMA, separators=(',', ':'))}\n"
        "Rules:\n"
        "- Each scenario's operation_id, method and path are exactly the operation's.\n"
        "- Each step's path is a path under the target's base URL: it starts with a single '/', its "
        "path parameters are filled in, and it has no scheme, host, '..' segment, query string or "
        "fragment. Query parameters go in 'query'. Do not set Host or Forwarded headers.\n"
        f"- At most {context.max_steps} steps per scenario.\n"
        "- Cover a valid request (kind positive); invalid ones expecting 4xx (kind negative: a "
        "required field missing, a wrong type, a value out of range); where requires_auth is true, "
        "the valid request with auth false expecting 401 or 403 (kind unauthenticated); for a POST "
        "on a collection with an item path, create, read and delete (kind chain), extracting the "
        'new id with "extract": {"id": "$.id"} and using {{id}} in later paths.\n'
        "- Expected statuses come from the operation's responses."
    )


def chat_request(operation: Operation, context: GenerationContext) -> dict[str, Any]:
    """The chat completions request body for one operation."""
    described = json.dumps(operation_describe(operation, context), indent=1, default=str)
    return {
        "model": settings.QA_AI_MODEL,
        "messages": [
            {"role": "system", "content": system_prompt(context)},
            {"role": "user", "content": f"The operation:\n{described}"},
        ],
        "response_format": {"type": "json_object"},
        "temperature": 0,
    }


# --- The call -------------------------------------------------------------------------------------


def _message_content(body: bytes) -> str:
    """choices[0].message.content of a chat completion."""
    try:
        answer = json.loads(body)
        content = answer["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise AiAttemptFailed(
            "the endpoint's answer is not a chat completion (no choices[0].message.content)"
        ) from None
    if not isinstance(content, str) or not content.strip():
        raise AiAttemptFailed("the model's reply is empty")
    return content


def chat_complete(payload: Mapping[str, Any]) -> str:
    """POST {QA_AI_BASE_URL}/chat/completions and return the reply's text; AiAttemptFailed on a
    timeout, a connection error, a non-2xx status or an answer over MAX_REPLY_BYTES.

    Plain httpx rather than the QA client: the endpoint is the administrator's, not a target, so
    it is not held to the allow-list; environment proxy settings apply (a plant network reaching a
    cloud API often needs one). Redirects are not followed: a key is never sent on elsewhere."""
    timeout = float(settings.QA_AI_TIMEOUT_SECONDS)
    url = f"{settings.QA_AI_BASE_URL.rstrip('/')}/chat/completions"
    headers = {"Authorization": f"Bearer {settings.QA_AI_API_KEY}", "Accept": "application/json"}
    try:
        with httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False) as client:
            answer = fetch(
                client,
                "POST",
                url,
                max_bytes=MAX_REPLY_BYTES,
                timeout_seconds=timeout,
                json=payload,
                headers=headers,
            )
    except httpx.TimeoutException:
        raise AiAttemptFailed(f"no answer within {timeout:g} s (timeout)") from None
    except httpx.HTTPError as error:
        raise AiAttemptFailed(f"the request failed: {type(error).__name__}: {error}") from None
    if not 200 <= answer.status_code < 300:
        snippet = answer.body[:200].decode("utf-8", "replace").strip()
        raise AiAttemptFailed(f"HTTP {answer.status_code} from the endpoint: {snippet}")
    if answer.truncated:
        raise AiAttemptFailed(f"the answer is larger than {MAX_REPLY_BYTES:,} bytes")
    return _message_content(answer.body)


class AiGenerator:
    """ScenarioGenerator asking a model, with retries and the deterministic fallback.

    `publish(event_type, payload)` records AI_FAILED ({attempt, operation, reason}) per failed
    attempt and AI_SUCCESS ({operation, attempt, scenarios}) — in a run, a closure over
    services.event_publish. `backoff_seconds` times the attempt number is waited between attempts.
    """

    source: str = ScenarioSource.AI

    def __init__(
        self, publish: Publish, fallback: ScenarioGenerator, *, backoff_seconds: float = 1.0
    ) -> None:
        self.publish = publish
        self.fallback = fallback
        self.backoff_seconds = backoff_seconds

    def generate(self, operation: Operation, context: GenerationContext) -> list[GeneratedScenario]:
        attempts = settings.QA_AI_ATTEMPTS
        payload = chat_request(operation, context)
        for attempt in range(1, attempts + 1):
            try:
                scenarios = reply_scenarios(chat_complete(payload), operation, context)
            except AiAttemptFailed as failure:
                self._failed(operation, attempt, str(failure))
                if attempt < attempts and self.backoff_seconds > 0:
                    time.sleep(self.backoff_seconds * attempt)
                continue
            self.publish(
                EventType.AI_SUCCESS,
                {"operation": operation.operation_id, "attempt": attempt, "scenarios": len(scenarios)},
            )
            return scenarios
        logger.warning(
            "AI generation for %s failed %d times; using the spec generator", operation.operation_id, attempts
        )
        return self.fallback_scenarios(operation, context)

    def fallback_scenarios(self, operation: Operation, context: GenerationContext) -> list[GeneratedScenario]:
        return [
            replace(scenario, source=ScenarioSource.FALLBACK)
            for scenario in self.fallback.generate(operation, context)
        ]

    def _failed(self, operation: Operation, attempt: int, reason: str) -> None:
        # An endpoint may echo the request, key included, in an error body.
        reason = mask(reason, [settings.QA_AI_API_KEY])[:REASON_LIMIT]
        logger.warning("AI generation for %s, attempt %d: %s", operation.operation_id, attempt, reason)
        self.publish(
            EventType.AI_FAILED, {"attempt": attempt, "operation": operation.operation_id, "reason": reason}
        )

"""What a step's answer is judged on: pure functions of the step, the operation the spec documents
and the response, no Django, no network.

Checks, in the order they run (names are what StepResult.checks and the reports show):
- `response`: an answer came back at all (not a timeout, a refused target, a dropped connection);
- `no_server_error`: no 5xx, whatever was sent;
- `rejected_4xx` (negative scenarios) / `expected_status` (the others): the step's own expectation,
  with the package's expected-status overrides for requests that expect success;
- `status_documented`: the status is among the operation's documented responses (a warning: an
  expected but undocumented status is a gap in the spec more than a defect of the target);
- `content_type` and `schema`: the body is what the documented response for that status says;
- `extract`: the values later steps need are in the body.
One defect gives one failed check: after a 5xx the status and body checks are skipped, after an
unexpected status the documentation check is, after a wrong content type the schema check is.

Response bodies are validated with jsonschema's Draft 2020-12 validator after `openapi_schema()`
has rewritten the OpenAPI 3.0 dialect into plain JSON Schema: `nullable: true` adds "null" to the
type (or enum), a boolean exclusiveMinimum/Maximum becomes the numeric form, writeOnly properties
are no longer required (a response must not carry them), and the {"x-recursive-ref"} stand-ins of
spec.py accept anything. An OpenAPI 3.1 schema is JSON Schema 2020-12 already; the rewrite leaves
it alone because the 3.0 keywords it looks for (`nullable`, boolean exclusives) mean nothing in
3.1. `format` is an annotation in 2020-12 and real APIs stretch it (an `email` that is a login
name, a `uri` that is relative), so only formats that admit no reading but one are asserted:
date, date-time, uuid, ipv4, ipv6, checked with the standard library (no optional packages).
This is jsonschema, already pinned for the spec and scenario schemas, rather than
openapi-schema-validator, which would add a second validator for the same job.
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from apps.qa_runs.choices import ScenarioKind
from apps.qa_runs.spec import Operation, Response

Status = int | str

RESPONSE = "response"
NO_SERVER_ERROR = "no_server_error"
EXPECTED_STATUS = "expected_status"
REJECTED_4XX = "rejected_4xx"
STATUS_DOCUMENTED = "status_documented"
CONTENT_TYPE = "content_type"
SCHEMA = "schema"
EXTRACT = "extract"

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
MAX_SCHEMA_ERRORS = 3
_MESSAGE_LIMIT = 300

_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_VALUES = (
    "items",
    "additionalItems",
    "additionalProperties",
    "unevaluatedItems",
    "unevaluatedProperties",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
)


@dataclass(frozen=True)
class Check:
    """One check's outcome (pass, fail, warn, skip) and what it found, in words."""

    name: str
    outcome: str
    message: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "outcome": self.outcome, "message": self.message}


# --- Statuses ---------------------------------------------------------------------------------------


def status_matches(status: int, expected: Iterable[Status]) -> bool:
    """status is one of `expected`: 404, or a class such as "4xx" / "4XX"."""
    for item in expected:
        if isinstance(item, int) and not isinstance(item, bool):
            if item == status:
                return True
        elif str(item).lower() == f"{status // 100}xx" or str(item) == str(status):
            return True
    return False


def _is_success(expected: Sequence[Status]) -> bool:
    return bool(expected) and all(status_matches(200, [s]) or str(s).startswith("2") for s in expected)


def expected_statuses(
    step: Mapping[str, Any], overrides: Mapping[str, Sequence[Status]], operation_id: str
) -> tuple[Status, ...]:
    """The statuses the step accepts: its own, or the package's override for the operation when the
    step expects success (an override says which successes a target gives; it never turns a
    negative or unauthenticated request's 4xx into something else)."""
    expected = tuple((step.get("expect") or {}).get("statuses") or ("2xx",))
    override = overrides.get(operation_id)
    if override and _is_success(expected):
        return tuple(override)
    return expected


def documented_response(operation: Operation, status: int) -> Response | None:
    """The response the spec documents for status: the exact code, its class (4XX), or default."""
    responses = operation.responses
    for key in (str(status), f"{status // 100}XX", f"{status // 100}xx", "default"):
        if key in responses:
            return responses[key]
    return None


def _statuses_text(statuses: Iterable[Status]) -> str:
    return " or ".join(str(s) for s in statuses)


# --- Schemas ------------------------------------------------------------------------------------------


def openapi_schema(schema: Any) -> Any:
    """An OpenAPI (3.0 or 3.1) schema object as JSON Schema 2020-12 for validating a response;
    see the module docstring for what changes and why."""
    if not isinstance(schema, Mapping):
        return schema
    if "x-recursive-ref" in schema:
        return {}
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            result[key] = {name: openapi_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            result[key] = [openapi_schema(sub) for sub in value]
        elif key in _SCHEMA_VALUES:
            result[key] = openapi_schema(value)
        elif key != "nullable":
            result[key] = value
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        # pop first: a false boolean goes too, and only a true one moves the bound.
        if isinstance(result.get(exclusive), bool) and result.pop(exclusive) and bound in result:
            result[exclusive] = result.pop(bound)
    write_only = {
        name
        for name, sub in (schema.get("properties") or {}).items()
        if isinstance(sub, Mapping) and sub.get("writeOnly")
    }
    if write_only and isinstance(result.get("required"), list):
        result["required"] = [name for name in result["required"] if name not in write_only]
    if schema.get("nullable") is True:
        result = _nullable(result)
    return result


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if isinstance(kind, str):
        schema = {**schema, "type": [kind, "null"]}
    elif isinstance(kind, list) and "null" not in kind:
        schema = {**schema, "type": [*kind, "null"]}
    elif kind is None:
        return {"anyOf": [schema, {"type": "null"}]}
    if isinstance(schema.get("enum"), list) and None not in schema["enum"]:
        schema = {**schema, "enum": [*schema["enum"], None]}
    return schema


def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    # RFC 3339 wants the T (or a space, which it allows) and a zone; fromisoformat checks the rest.
    if len(value) < 20 or value[10] not in "Tt ":
        return False
    if not (value.endswith(("Z", "z")) or value[-6] in "+-"):
        return False
    try:
        datetime.fromisoformat(value[:-1] + "+00:00" if value[-1] in "Zz" else value)
    except ValueError:
        return False
    return True


def _date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        return len(value) == 10 and bool(date.fromisoformat(value))
    except ValueError:
        return False


def _uuid(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        return len(value) == 36 and bool(uuid.UUID(value))
    except ValueError:
        return False


def _address(version: int) -> Any:
    def check(value: object) -> bool:
        if not isinstance(value, str):
            return True
        try:
            return ipaddress.ip_address(value).version == version
        except ValueError:
            return False

    return check


FORMATS = FormatChecker(formats=())
for _name, _func in (
    ("date-time", _date_time),
    ("date", _date),
    ("uuid", _uuid),
    ("ipv4", _address(4)),
    ("ipv6", _address(6)),
):
    FORMATS.checks(_name)(_func)


def _where(path: Iterable[Any]) -> str:
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)


def _short(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def schema_errors(instance: Any, schema: Mapping[str, Any]) -> list[str]:
    """Why instance does not match the OpenAPI schema (at most MAX_SCHEMA_ERRORS, shallowest
    first), each naming the place as $.a[0].b; empty when it matches."""
    validator = Draft202012Validator(openapi_schema(schema), format_checker=FORMATS)
    errors = sorted(
        validator.iter_errors(instance), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path)))
    )
    return [_short(f"{e.message} at {_where(e.absolute_path)}") for e in errors[:MAX_SCHEMA_ERRORS]]


# --- The checks of one step --------------------------------------------------------------------------


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _content_type_matches(documented: str, actual: str) -> bool:
    documented = _media_type(documented)
    if documented in ("*/*", ""):
        return True
    if documented.endswith("/*"):
        return actual.startswith(documented[:-1])
    return actual == documented or (_is_json(documented) and _is_json(actual))


def _schema_check(
    status: int,
    actual: str,
    expected_type: str | None,
    body: bytes,
    truncated: bool,
    schema: Mapping[str, Any],
) -> Check:
    if truncated:
        return Check(SCHEMA, SKIP, "the body was cut at the response size cap; not validated")
    if not body:
        return Check(SCHEMA, FAIL, f"answered {status} with an empty body; the schema expects one")
    if not _is_json(actual) and (expected_type is None or _is_json(expected_type)):
        return Check(SCHEMA, FAIL, f"answered {status} with {actual or 'no content type'}, not JSON")
    try:
        instance = json.loads(body)
    except ValueError as error:
        return Check(SCHEMA, FAIL, f"the body is not valid JSON ({error})")
    problems = schema_errors(instance, schema)
    return Check(SCHEMA, FAIL, "; ".join(problems)) if problems else Check(SCHEMA, PASS)


def _body_checks(
    status: int,
    content_type: str | None,
    body: bytes,
    truncated: bool,
    documented: Response | None,
    fallback_schema: Mapping[str, Any] | None,
) -> tuple[list[Check], Any]:
    """content_type and schema checks, and the parsed JSON body (None when there is none)."""
    checks: list[Check] = []
    actual = _media_type(content_type)
    parsed: Any = None
    if body and _is_json(actual) and not truncated:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    schema = (documented.schema if documented is not None else None) or fallback_schema
    expected_type = documented.content_type if documented is not None else None
    if expected_type:
        if not _content_type_matches(expected_type, actual):
            shown = actual or "no content type"
            checks.append(
                Check(CONTENT_TYPE, FAIL, f"answered {status} with {shown}, documented {expected_type}")
            )
            checks.append(Check(SCHEMA, SKIP, "the content type is not the documented one"))
            return checks, parsed
        checks.append(Check(CONTENT_TYPE, PASS, actual))
    if schema:
        checks.append(_schema_check(status, actual, expected_type, body, truncated, schema))
    return checks, parsed


def response_checks(
    *,
    step: Mapping[str, Any],
    kind: str,
    operation: Operation | None,
    overrides: Mapping[str, Sequence[Status]],
    status: int,
    content_type: str | None,
    body: bytes,
    truncated: bool = False,
) -> tuple[list[Check], Any]:
    """The checks of a step that got an answer, and its parsed JSON body for extraction. Without
    the operation (a step naming one the spec lacks), the step's own statuses and schema stand
    in for the documentation."""
    operation_id = str(step.get("operation_id") or (operation.operation_id if operation else ""))
    if status >= 500:
        return [Check(NO_SERVER_ERROR, FAIL, f"answered {status}")], None
    checks = [Check(NO_SERVER_ERROR, PASS)]
    expected = expected_statuses(step, overrides, operation_id)
    if kind == ScenarioKind.NEGATIVE and all(str(s).startswith("4") for s in expected):
        name, wrong = REJECTED_4XX, f"an invalid request was accepted with {status}; expected a 4xx"
    else:
        name, wrong = EXPECTED_STATUS, f"answered {status}, expected {_statuses_text(expected)}"
    if not status_matches(status, expected):
        return [*checks, Check(name, FAIL, wrong)], None
    checks.append(Check(name, PASS, str(status)))
    documented = documented_response(operation, status) if operation is not None else None
    if operation is None:
        checks.append(Check(STATUS_DOCUMENTED, SKIP, "the operation is not in the spec"))
    elif documented is None:
        documented_codes = ", ".join(sorted(operation.responses)) or "none"
        checks.append(
            Check(
                STATUS_DOCUMENTED,
                WARN,
                f"{status} is not documented for {operation.operation_id} ({documented_codes})",
            )
        )
    else:
        checks.append(Check(STATUS_DOCUMENTED, PASS, documented.status))
    # The step's own schema (an AI generator's explicit expectation) where the spec gives none.
    fallback = (step.get("expect") or {}).get("schema") if 200 <= status < 300 else None
    body_checks, parsed = _body_checks(status, content_type, body, truncated, documented, fallback)
    return checks + body_checks, parsed

"""The checks of one step's answer, and the OpenAPI → JSON Schema rewrite they validate bodies with."""

import json
from typing import Any

import pytest

from apps.qa_runs.checks import openapi_schema, response_checks, schema_errors, status_matches
from apps.qa_runs.spec import Operation, Response

ERROR_SCHEMA = {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}}
THING = {
    "type": "object",
    "required": ["id", "name", "secret"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "secret": {"type": "string", "writeOnly": True},
    },
}


def operation(**responses: Response) -> Operation:
    return Operation(
        operation_id="createThing",
        method="POST",
        path="/things",
        summary="",
        parameters=(),
        request_body=None,
        responses={key.lstrip("_"): value for key, value in responses.items()},
        security=(),
    )


CREATE = operation(
    _201=Response("201", "created", "application/json", THING),
    _400=Response("400", "bad", "application/json", ERROR_SCHEMA),
    _4XX=Response("4XX", "client error", "application/problem+json", None),
)


def outcomes(
    status: int,
    body: Any = None,
    *,
    statuses: tuple[int | str, ...] = (201,),
    kind: str = "positive",
    content_type: str | None = "application/json",
    overrides: dict[str, Any] | None = None,
    op: Operation | None = CREATE,
    schema: dict[str, Any] | None = None,
) -> list[tuple[str, str, str]]:
    step = {"operation_id": "createThing", "expect": {"statuses": list(statuses), "schema": schema}}
    raw = b"" if body is None else json.dumps(body).encode()
    found, _ = response_checks(
        step=step,
        kind=kind,
        operation=op,
        overrides=overrides or {},
        status=status,
        content_type=content_type,
        body=raw,
    )
    return [(check.name, check.outcome, check.message) for check in found]


def failed(found: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    return [(name, message) for name, outcome, message in found if outcome == "fail"]


# --- Statuses ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected", "matches"),
    [
        (201, [201], True),
        (200, [201], False),
        (422, ["4xx"], True),
        (422, ["4XX"], True),
        (500, ["4xx"], False),
    ],
)
def test_status_matches_codes_and_classes(status: int, expected: list[int | str], matches: bool) -> None:
    assert status_matches(status, expected) is matches


def test_a_good_answer_passes_every_check() -> None:
    found = outcomes(201, {"id": 1, "name": "x"})
    assert [(name, outcome) for name, outcome, _ in found] == [
        ("no_server_error", "pass"),
        ("expected_status", "pass"),
        ("status_documented", "pass"),
        ("content_type", "pass"),
        ("schema", "pass"),
    ]


def test_a_server_error_is_one_failure_and_nothing_else_is_judged() -> None:
    assert outcomes(503, {"oops": True}) == [("no_server_error", "fail", "answered 503")]


def test_an_unexpected_status_fails_the_expectation_only() -> None:
    assert failed(outcomes(200, {"id": 1, "name": "x"})) == [
        ("expected_status", "answered 200, expected 201")
    ]


def test_an_accepted_negative_request_fails_as_not_rejected() -> None:
    found = outcomes(201, {"id": 1, "name": "x"}, statuses=("4xx",), kind="negative")
    assert failed(found) == [("rejected_4xx", "an invalid request was accepted with 201; expected a 4xx")]


def test_a_rejection_with_a_status_the_spec_does_not_list_is_a_warning() -> None:
    no_classes = operation(_201=Response("201", "created", "application/json", THING))
    found = outcomes(422, {"detail": "no"}, statuses=("4xx",), kind="negative", op=no_classes)
    assert ("status_documented", "warn", "422 is not documented for createThing (201)") in found
    assert failed(found) == []


def test_documented_classes_and_default_cover_their_statuses() -> None:
    found = outcomes(
        422, {"detail": "x"}, statuses=("4xx",), kind="negative", content_type="application/problem+json"
    )
    assert ("status_documented", "pass", "4XX") in found
    fallback = operation(default=Response("default", "anything", None, None))
    assert ("status_documented", "pass", "default") in outcomes(201, op=fallback)


def test_the_wrong_content_type_fails_once_and_skips_the_schema() -> None:
    found = outcomes(201, None, content_type="text/html; charset=utf-8")
    assert failed(found) == [("content_type", "answered 201 with text/html, documented application/json")]
    assert ("schema", "skip", "the content type is not the documented one") in found


def test_json_media_types_with_parameters_and_suffixes_match() -> None:
    assert failed(outcomes(201, {"id": 1, "name": "x"}, content_type="application/json; charset=utf-8")) == []
    problem = outcomes(400, {"detail": "x"}, statuses=(400,), content_type="application/problem+json")
    assert failed(problem) == []


def test_schema_failures_name_the_place() -> None:
    found = outcomes(201, {"id": "7", "name": 3})
    assert failed(found) == [
        ("schema", "'7' is not of type 'integer' at $.id; 3 is not of type 'string' at $.name")
    ]


def test_an_empty_body_where_a_schema_is_documented_fails() -> None:
    assert failed(outcomes(201, None)) == [
        ("schema", "answered 201 with an empty body; the schema expects one")
    ]


def test_package_overrides_widen_the_success_statuses_not_the_rejections() -> None:
    overrides = {"createThing": [200, 201]}
    assert failed(outcomes(200, {"id": 1, "name": "x"}, overrides=overrides)) == []
    negative = outcomes(200, {}, statuses=("4xx",), kind="negative", overrides=overrides)
    assert failed(negative) == [("rejected_4xx", "an invalid request was accepted with 200; expected a 4xx")]


def test_without_the_operation_the_steps_own_schema_stands_in() -> None:
    schema = {"type": "object", "required": ["token"]}
    found = outcomes(201, {"id": 1}, op=None, schema=schema, content_type="application/json")
    assert ("status_documented", "skip", "the operation is not in the spec") in found
    assert failed(found) == [("schema", "'token' is a required property at $")]


# --- The OpenAPI dialect --------------------------------------------------------------------------


def test_nullable_adds_null_to_the_type_and_the_enum() -> None:
    schema = {
        "type": "object",
        "properties": {"colour": {"type": "string", "enum": ["red"], "nullable": True}},
    }
    assert schema_errors({"colour": None}, schema) == []
    assert schema_errors({"colour": "blue"}, schema) == ["'blue' is not one of ['red', None] at $.colour"]
    assert openapi_schema({"type": "string", "nullable": True}) == {"type": ["string", "null"]}


def test_nullable_without_a_type_wraps_the_schema() -> None:
    schema = {"nullable": True, "allOf": [{"type": "object", "required": ["id"]}]}
    assert schema_errors(None, schema) == []
    assert schema_errors({}, schema) != []


def test_without_nullable_null_is_refused() -> None:
    assert schema_errors(None, {"type": "string"}) == ["None is not of type 'string' at $"]


def test_boolean_exclusive_bounds_become_numeric() -> None:
    schema = {
        "type": "number",
        "minimum": 0.5,
        "exclusiveMinimum": True,
        "maximum": 9,
        "exclusiveMaximum": False,
    }
    assert openapi_schema(schema) == {"type": "number", "exclusiveMinimum": 0.5, "maximum": 9}
    assert schema_errors(0.5, schema) == ["0.5 is less than or equal to the minimum of 0.5 at $"]
    assert schema_errors(9, schema) == []


def test_write_only_properties_are_not_required_in_a_response() -> None:
    assert schema_errors({"id": 1, "name": "x"}, THING) == []
    assert schema_errors({"id": 1}, THING) == ["'name' is a required property at $"]


def test_a_recursive_stand_in_accepts_anything() -> None:
    tree = {"type": "object", "properties": {"child": {"x-recursive-ref": "#/components/schemas/Tree"}}}
    assert schema_errors({"child": {"anything": [1, 2]}}, tree) == []


def test_openapi_31_schemas_are_left_as_they_are() -> None:
    schema = {"type": ["string", "null"], "exclusiveMinimum": 3, "examples": ["a"]}
    assert openapi_schema(schema) == schema


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("date-time", "2024-05-01T08:00:00Z", "2024-05-01 8am"),
        ("date-time", "2024-05-01T08:00:00.5+02:00", "2024-05-01T08:00:00"),
        ("date", "2024-05-01", "01/05/2024"),
        ("uuid", "00000000-0000-4000-8000-000000000000", "not-a-uuid"),
        ("ipv4", "192.0.2.1", "2001:db8::1"),
        ("ipv6", "2001:db8::1", "192.0.2.1"),
    ],
)
def test_unambiguous_formats_are_asserted(fmt: str, good: str, bad: str) -> None:
    schema = {"type": "string", "format": fmt}
    assert schema_errors(good, schema) == []
    assert schema_errors(bad, schema) == [f"{bad!r} is not a {fmt!r} at $"]


@pytest.mark.parametrize(("fmt", "value"), [("email", "operator-7"), ("uri", "/relative"), ("int32", "x")])
def test_loose_formats_are_annotations_only(fmt: str, value: str) -> None:
    assert schema_errors(value, {"type": "string", "format": fmt}) == []

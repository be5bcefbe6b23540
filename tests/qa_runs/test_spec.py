"""Spec intake: OpenAPI 3.0 / 3.1 in JSON or YAML, validated, $refs resolved, operations listed,
and invalid documents refused with a message that names the problem."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from apps.qa_runs.spec import Spec, SpecError, spec_hash, spec_parse
from tests.support.qa_spec import things_spec

REPO = Path(__file__).resolve().parents[2]


def as_json(document: dict[str, Any]) -> str:
    return json.dumps(document)


def as_yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False)


@pytest.mark.parametrize("version", ["3.0.3", "3.1.0"])
@pytest.mark.parametrize("dump", [as_json, as_yaml])
def test_things_spec_is_read_in_every_form(version: str, dump: Any) -> None:
    text = dump(things_spec(version))
    spec = spec_parse(text)
    assert (spec.version, spec.title, spec.sha256) == (version, "Things", spec_hash(text))
    assert spec.servers == ("https://things.example.com/api",)
    ops = {op.operation_id: op for op in spec.operations}
    assert sorted(ops) == ["createThing", "deleteThing", "getThing", "listThings", "ping"]
    assert [(op.method, op.path) for op in spec.operations] == [
        ("GET", "/ping"),
        ("GET", "/things"),
        ("POST", "/things"),
        ("GET", "/things/{thingId}"),
        ("DELETE", "/things/{thingId}"),
    ]
    create = ops["createThing"]
    assert create.request_body is not None
    assert create.request_body.required
    assert create.request_body.content_type == "application/json"
    # $refs resolved: the body's schema and a response pulled from components/responses.
    assert create.request_body.schema["properties"]["size"] == {
        "type": "integer",
        "minimum": 10,
        "maximum": 20,
    }
    assert sorted(create.responses) == ["201", "400"]
    assert create.responses["400"].schema == {"type": "object", "properties": {"detail": {"type": "string"}}}
    assert "$ref" not in json.dumps(create.responses["201"].schema)
    # The path-level parameter reaches both item operations; security inherited unless overridden.
    assert [(p.name, p.location, p.required) for p in ops["getThing"].parameters] == [
        ("thingId", "path", True)
    ]
    assert ops["deleteThing"].parameters == ops["getThing"].parameters
    assert ops["listThings"].security == ({"bearer": ()},)
    assert ops["listThings"].requires_auth
    assert ops["ping"].security == ()
    assert not ops["ping"].requires_auth


def test_openspc_own_spec_lists_every_operation() -> None:
    text = (REPO / "openapi.yaml").read_text()
    document = yaml.safe_load(text)
    expected = {
        (method.upper(), path, op["operationId"])
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace")
    }
    spec = spec_parse(text)
    assert spec.version.startswith("3.0")
    assert {(op.method, op.path, op.operation_id) for op in spec.operations} == expected
    assert len(spec.operations) == len(expected) > 50
    # Everything the document reuses was resolved.
    assert all(
        "$ref" not in json.dumps([op.responses, op.request_body, op.parameters], default=repr)
        for op in spec.operations
    )


def test_optional_security_is_not_required_auth() -> None:
    document = things_spec()
    document["paths"]["/ping"]["get"]["security"] = [{}, {"bearer": []}]
    ping = next(op for op in spec_parse(as_json(document)).operations if op.operation_id == "ping")
    assert not ping.requires_auth


def test_operations_without_an_id_are_named_by_method_and_path() -> None:
    document = things_spec()
    del document["paths"]["/things"]["post"]["operationId"]
    assert "POST /things" in {op.operation_id for op in spec_parse(as_json(document)).operations}


def test_yaml_status_codes_and_dates_stay_strings() -> None:
    text = """
openapi: 3.0.3
info: {title: Dates, version: "1"}
paths:
  /day:
    get:
      responses:
        200:
          description: ok
          content:
            application/json:
              schema: {type: string, format: date, example: 2024-01-31}
"""
    (op,) = spec_parse(text).operations
    assert list(op.responses) == ["200"]
    assert op.responses["200"].schema == {"type": "string", "format": "date", "example": "2024-01-31"}


def test_recursive_schemas_resolve_to_a_marker() -> None:
    document = things_spec("3.1.0")
    document["components"]["schemas"]["Node"] = {
        "type": "object",
        "properties": {"child": {"$ref": "#/components/schemas/Node"}, "name": {"type": "string"}},
    }
    document["paths"]["/tree"] = {"get": {"responses": {"200": {"description": "ok", "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}}}}}  # fmt: skip
    tree = next(op for op in spec_parse(as_json(document)).operations if op.path == "/tree")
    schema = tree.responses["200"].schema
    assert schema is not None
    assert schema["properties"]["child"] == {"x-recursive-ref": "#/components/schemas/Node"}


def _broken(change: Any) -> str:
    document = things_spec()
    change(document)
    return as_json(document)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("{not json", "not valid JSON"),
        ("a: [1, 2\n", "not valid YAML"),
        ("- a list\n", "top level"),
        ("swagger: '2.0'\ninfo: {}\n", "Swagger 2.0"),
        ("info: {}\n", "no `openapi` field"),
        (_broken(lambda d: d.update(openapi="4.0.0")), "OpenAPI 4.0.0 is not supported"),
        (_broken(lambda d: d.pop("info")), "'info' is a required property"),
        (
            _broken(
                lambda d: d["components"]["schemas"]["ThingNew"]["properties"]["size"].update(minimum="ten")
            ),
            "'ten' is not of type 'number'",
        ),
        (
            _broken(lambda d: d["paths"]["/things"]["post"]["responses"]["201"].pop("description")),
            "'description' is a required property",
        ),
        (
            _broken(
                lambda d: d["paths"]["/ping"]["get"]["responses"]["200"].update(
                    {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Nope"}}}}
                )
            ),
            "#/components/schemas/Nope",
        ),
        (
            _broken(
                lambda d: d["components"]["schemas"].update(Remote={"$ref": "https://evil.example/s.json"})
            ),
            "points outside the document",
        ),
        (
            _broken(lambda d: d["components"]["schemas"].update(File={"$ref": "other.yaml#/Thing"})),
            "points outside the document",
        ),
        ("openapi: 3.0.3\nx: &a [1, 2]\ny: *a\n", "aliases"),
        ("[" * 500 + "]" * 500, "nested deeper"),
        ('{"a": ' * 500 + "1" + "}" * 500, "nested deeper"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_invalid_specs_are_refused_naming_the_problem(text: str | bytes, message: str) -> None:
    with pytest.raises(SpecError, match=None) as caught:
        spec_parse(text)
    assert message in str(caught.value)


def test_the_first_errors_name_where_they_are() -> None:
    text = _broken(
        lambda d: d["components"]["schemas"]["ThingNew"]["properties"]["size"].update(minimum="ten")
    )
    with pytest.raises(SpecError) as caught:
        spec_parse(text)
    assert "not valid OpenAPI 3.0.3" in str(caught.value)
    assert "(at components › schemas › ThingNew › properties › size › minimum)" in str(caught.value)


def test_a_spec_over_the_size_limit_is_refused_before_parsing() -> None:
    with pytest.raises(SpecError, match="limit is 1,024"):
        spec_parse("{" + " " * 2000 + "}", max_bytes=1024)


def test_a_billion_laughs_document_is_refused_quickly() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
    with pytest.raises(SpecError, match="aliases"):
        spec_parse("\n".join(lines))


def test_servers_of_paths_and_operations_are_listed_once_each() -> None:
    document = things_spec()
    document["paths"]["/ping"]["servers"] = [{"url": "http://10.0.0.5:8080"}]
    document["paths"]["/ping"]["get"]["servers"] = [{"url": "/relative"}, {"url": "http://10.0.0.5:8080"}]
    spec: Spec = spec_parse(as_yaml(document))
    assert spec.servers == ("https://things.example.com/api", "http://10.0.0.5:8080", "/relative")

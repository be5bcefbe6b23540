"""Scenario generation: from one operation of a spec, the requests that test it.

Every generator answers ScenarioGenerator.generate(operation, context) with GeneratedScenario
values whose steps are data (SCENARIO_SCHEMA describes them as JSON; an AI generator's reply is
checked with scenario_from_dict). SpecGenerator is the default: offline and deterministic, with no
random choice at all, so the same spec gives the same scenarios in the same order every time:
- a valid request from examples, defaults, enums and schema bounds;
- negative variants expecting a 4xx: a required field missing, a value of the wrong type, a value
  out of range (bounds, lengths, enums);
- the valid request without credentials, expecting 401/403, where the operation requires them;
- create → read → delete, from the POST of a collection (/things) whose item path (/things/{id})
  has GET and DELETE, reading the id from the created response.
Steps refer to values extracted by earlier steps as {{name}} in their path.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import quote

from jsonschema import Draft202012Validator

from apps.qa_runs.choices import ScenarioKind, ScenarioSource
from apps.qa_runs.spec import HTTP_METHODS, Operation, Parameter

Status = int | str  # 404, or a class: "4xx"
MAX_DEPTH = 8  # of a generated value: deep enough for real payloads, finite for recursive schemas
_SKIPPED_HEADERS = {"authorization", "content-type", "accept"}  # OpenAPI: described elsewhere

_STATUS_SCHEMA = {
    "oneOf": [
        {"type": "integer", "minimum": 100, "maximum": 599},
        {"type": "string", "pattern": "^[1-5]xx$"},
    ]
}
SCENARIO_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:openspc:qa-scenario",
    "title": "QA scenario",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "operation_id", "method", "path", "kind", "steps"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 300},
        "operation_id": {"type": "string", "minLength": 1, "maxLength": 255},
        "method": {"enum": [m.upper() for m in HTTP_METHODS]},
        "path": {"type": "string", "pattern": "^/", "maxLength": 2048},
        "kind": {"enum": list(ScenarioKind.values)},
        "source": {"enum": list(ScenarioSource.values)},
        "steps": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/step"}},
    },
    "$defs": {
        "status": _STATUS_SCHEMA,
        "step": {
            "type": "object",
            "additionalProperties": False,
            "required": ["method", "path", "expect"],
            "properties": {
                "operation_id": {"type": "string"},
                "method": {"enum": [m.upper() for m in HTTP_METHODS]},
                "path": {
                    "description": "No host, parameters filled; {{name}}: a value extracted before.",
                    "type": "string",
                    "pattern": "^/",
                    "maxLength": 2048,
                },
                "query": {
                    "type": "object",
                    "additionalProperties": {"type": ["string", "number", "boolean", "array"]},
                },
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "json": {"description": "The JSON body; absent: no body."},
                "auth": {"type": "boolean", "description": "false: send without the package's credentials."},
                "expect": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["statuses"],
                    "properties": {
                        "statuses": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/status"}},
                        "schema": {"type": ["object", "null"], "description": "JSON Schema of the body."},
                    },
                },
                "extract": {
                    "type": "object",
                    "description": 'Values for later steps: {"id": "$.id"}.',
                    "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                    "additionalProperties": {
                        "type": "string",
                        "pattern": r"^\$(\.[A-Za-z0-9_\-]+|\[[0-9]+\])*$",
                    },
                },
            },
        },
    },
}
_VALIDATOR = Draft202012Validator(SCENARIO_SCHEMA)


@dataclass(frozen=True)
class Expect:
    statuses: tuple[Status, ...]
    schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class Step:
    method: str
    path: str
    expect: Expect
    operation_id: str = ""
    query: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None  # None: no body
    auth: bool = True
    extract: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"operation_id": self.operation_id, "method": self.method, "path": self.path}
        data |= {"query": self.query, "headers": self.headers}
        if self.json is not None:
            data["json"] = self.json
        data["auth"] = self.auth
        data["expect"] = {"statuses": list(self.expect.statuses), "schema": self.expect.schema}
        data["extract"] = self.extract
        return data


@dataclass(frozen=True)
class GeneratedScenario:
    """A scenario before it is stored (services.scenario_store makes the Scenario row)."""

    name: str
    operation_id: str
    method: str
    path: str
    kind: str
    source: str
    steps: tuple[Step, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "operation_id": self.operation_id,
            "method": self.method,
            "path": self.path,
            "kind": self.kind,
            "source": self.source,
            "steps": [step.to_dict() for step in self.steps],
        }


@dataclass(frozen=True)
class GenerationContext:
    """What a generator knows besides the operation: the spec's other operations (for chains) and
    the package's limits and expected-status overrides ({operation_id: [statuses]})."""

    operations: tuple[Operation, ...] = ()
    max_steps: int = 10
    expected_status_overrides: Mapping[str, Sequence[Status]] = field(default_factory=dict)


def operations_select(
    operations: Sequence[Operation], *, tags: Sequence[str] = (), path_prefix: str = ""
) -> tuple[Operation, ...]:
    """The operations a package limits its runs to: tagged with one of `tags` (none given: any) and
    under `path_prefix` in whole segments (/things takes /things and /things/{id}, not /thingstore)."""
    wanted = set(tags)
    prefix = path_prefix.rstrip("/")
    return tuple(
        op
        for op in operations
        if (not wanted or wanted & set(op.tags))
        and (not prefix or op.path == prefix or op.path.startswith(prefix + "/"))
    )


class ScenarioGenerator(Protocol):
    source: str

    def generate(self, operation: Operation, context: GenerationContext) -> list[GeneratedScenario]: ...


class ScenarioInvalid(ValueError):
    """A scenario (an AI generator's reply) that does not match SCENARIO_SCHEMA."""


def scenario_from_dict(data: Any, *, source: str) -> GeneratedScenario:
    """The scenario a JSON value describes, checked against SCENARIO_SCHEMA; ScenarioInvalid naming
    what is wrong otherwise."""
    errors = sorted(_VALIDATOR.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        raise ScenarioInvalid(
            "; ".join(
                f"{e.message} (at {'/'.join(map(str, e.absolute_path)) or 'the top level'})"
                for e in errors[:5]
            )
        )
    steps = tuple(
        Step(
            method=s["method"],
            path=s["path"],
            expect=Expect(tuple(s["expect"]["statuses"]), s["expect"].get("schema")),
            operation_id=s.get("operation_id", data["operation_id"]),
            query=dict(s.get("query", {})),
            headers=dict(s.get("headers", {})),
            json=s.get("json"),
            auth=s.get("auth", True),
            extract=dict(s.get("extract", {})),
        )
        for s in data["steps"]
    )
    return GeneratedScenario(
        data["name"], data["operation_id"], data["method"], data["path"], data["kind"], source, steps
    )


# --- Values from schemas -------------------------------------------------------------------------

_FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "12:00:00Z",
    "email": "qa@example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "byte": "cWE=",
    "password": "Secret-123",
}


def _type(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):  # 3.1: ["string", "null"]
        kind = next((k for k in kind if k != "null"), None)
    if kind is None and "properties" in schema:
        return "object"
    if kind is None and "items" in schema:
        return "array"
    return kind


def _merged(schema: Mapping[str, Any]) -> dict[str, Any]:
    """allOf folded into one schema; the first alternative of oneOf / anyOf taken."""
    result = {k: v for k, v in schema.items() if k not in ("allOf", "oneOf", "anyOf")}
    for part in schema.get("allOf") or ():
        part = _merged(part)
        result["properties"] = {**result.get("properties", {}), **part.get("properties", {})}
        result["required"] = sorted({*result.get("required", []), *part.get("required", [])})
        result |= {k: v for k, v in part.items() if k not in ("properties", "required")}
    for key in ("oneOf", "anyOf"):
        choices = [c for c in schema.get(key) or () if _type(c) != "null"]
        if choices:
            result = {**_merged(choices[0]), **result}
    return result


def _exclusive(schema: Mapping[str, Any], key: str) -> float | None:
    """A 3.1 exclusiveMinimum / exclusiveMaximum (a number); 3.0's booleans are not one."""
    value = schema.get(key)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _bounds(schema: Mapping[str, Any], step: float) -> tuple[float | None, float | None]:
    """The smallest and largest valid value, from the 3.0 (boolean) or 3.1 (number) forms."""
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and schema.get("exclusiveMinimum") is True:
        low += step
    if (exclusive := _exclusive(schema, "exclusiveMinimum")) is not None:
        low = exclusive + step
    if high is not None and schema.get("exclusiveMaximum") is True:
        high -= step
    if (exclusive := _exclusive(schema, "exclusiveMaximum")) is not None:
        high = exclusive - step
    return low, high


def _number(schema: Mapping[str, Any], integer: bool) -> int | float:
    low, high = _bounds(schema, 1 if integer else 0.5)
    if low is not None and high is not None:
        value: float = (low + high) / 2
    elif low is not None:
        value = low
    elif high is not None:
        value = min(high, 1)
    else:
        value = 1
    multiple = schema.get("multipleOf")
    if multiple:
        value = round(value / multiple) * multiple
        if low is not None and value < low:
            value += multiple
    if integer:
        value = int(value)
        if low is not None and value < low:  # a midpoint rounded below an odd bound
            value += 1
        return value
    return value


def _string(schema: Mapping[str, Any]) -> str:
    value = _FORMATS.get(str(schema.get("format", "")), "string")
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if len(value) < low:
        value += "x" * (low - len(value))
    if high is not None:
        value = value[:high]
    return value


def sample(schema: Any, *, depth: int = 0) -> Any:
    """A valid value for `schema` (as far as one can be made without solving patterns): its
    example, default, first enum value, or a value within its bounds."""
    if not isinstance(schema, Mapping) or "x-recursive-ref" in schema or depth > MAX_DEPTH:
        return None
    schema = _merged(schema)
    for key in ("const", "example", "default"):
        if key in schema:
            return schema[key]
    if schema.get("examples") and isinstance(schema["examples"], list):
        return schema["examples"][0]
    if schema.get("enum"):
        return next((v for v in schema["enum"] if v is not None), schema["enum"][0])
    kind = _type(schema)
    if kind == "string":
        return _string(schema)
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer")
    if kind == "boolean":
        return True
    if kind == "array":
        count = max(schema.get("minItems", 1), 1)
        count = min(count, schema.get("maxItems", count))
        item = sample(schema.get("items", {}), depth=depth + 1)
        return [item] * count if item is not None else []
    if kind == "object":
        return _object(schema, depth)
    return "value"


def _object(schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
    """Every property but the read-only ones (a request never sends them), sorted by name."""
    result: dict[str, Any] = {}
    for name, prop in sorted((schema.get("properties") or {}).items()):
        prop = _merged(prop) if isinstance(prop, Mapping) else {}
        if prop.get("readOnly"):
            continue
        value = sample(prop, depth=depth + 1)
        if value is not None or name in schema.get("required", ()):
            result[name] = value
    return result


def _wrong_type(schema: Mapping[str, Any]) -> Any:
    return {
        "string": 12345,
        "integer": "not-a-number",
        "number": "not-a-number",
        "boolean": "not-a-boolean",
        "array": "not-an-array",
        "object": "not-an-object",
    }.get(_type(schema) or "")


def _out_of_range(schema: Mapping[str, Any]) -> tuple[str, Any] | None:
    """A value just outside the schema's bounds, and which bound it breaks."""
    if schema.get("enum"):
        values = [str(v) for v in schema["enum"]]
        return "enum", "x" + max(values, key=len) + "-not-listed"
    kind = _type(schema)
    if kind in ("integer", "number"):
        if (exclusive := _exclusive(schema, "exclusiveMaximum")) is not None:
            return "exclusiveMaximum", exclusive
        if schema.get("maximum") is not None:
            return "maximum", schema["maximum"] + (0 if schema.get("exclusiveMaximum") is True else 1)
        if (exclusive := _exclusive(schema, "exclusiveMinimum")) is not None:
            return "exclusiveMinimum", exclusive
        if schema.get("minimum") is not None:
            return "minimum", schema["minimum"] - (0 if schema.get("exclusiveMinimum") is True else 1)
    if kind == "string":
        if schema.get("maxLength") is not None:
            return "maxLength", "x" * (schema["maxLength"] + 1)
        if schema.get("minLength", 0) > 0:
            return "minLength", "x" * (schema["minLength"] - 1)
    if kind == "array" and schema.get("maxItems") is not None:
        return "maxItems", [sample(schema.get("items", {}))] * (schema["maxItems"] + 1)
    return None


# --- Requests -------------------------------------------------------------------------------------


def _statuses(operation: Operation, context: GenerationContext) -> tuple[Status, ...]:
    override = context.expected_status_overrides.get(operation.operation_id)
    if override:
        return tuple(override)
    documented = sorted(int(s) for s in operation.responses if s.isdigit() and s.startswith("2"))
    if documented:
        return tuple(documented)
    return ("2xx",)


def _success_schema(operation: Operation) -> dict[str, Any] | None:
    for status in sorted(operation.responses):
        response = operation.responses[status]
        if status.startswith("2") and response.schema:
            return response.schema
    return None


def _fill(path: str, parameters: Sequence[Parameter], placeholders: Mapping[str, str]) -> str:
    for parameter in parameters:
        if parameter.location != "path":
            continue
        if parameter.name in placeholders:
            value = "{{" + placeholders[parameter.name] + "}}"
        else:
            value = quote(str(sample(parameter.schema) or "1"), safe="")
        path = path.replace("{" + parameter.name + "}", value)
    return path


def _query(parameters: Sequence[Parameter]) -> dict[str, Any]:
    return {
        p.name: sample(p.schema)
        for p in sorted(parameters, key=lambda p: p.name)
        if p.location == "query" and p.required
    }


def _headers(parameters: Sequence[Parameter]) -> dict[str, str]:
    return {
        p.name: str(sample(p.schema))
        for p in sorted(parameters, key=lambda p: p.name)
        if p.location == "header" and p.required and p.name.lower() not in _SKIPPED_HEADERS
    }


def valid_step(
    operation: Operation, context: GenerationContext, *, placeholders: Mapping[str, str] | None = None
) -> Step:
    """The operation called as its spec says it should be."""
    body = operation.request_body
    return Step(
        method=operation.method,
        path=_fill(operation.path, operation.parameters, placeholders or {}),
        expect=Expect(_statuses(operation, context), _success_schema(operation)),
        operation_id=operation.operation_id,
        query=_query(operation.parameters),
        headers=_headers(operation.parameters),
        json=sample(body.schema) if body and body.content_type.endswith("json") else None,
    )


def _negatives(operation: Operation, valid: Step) -> list[tuple[str, Step]]:
    """Missing required field, wrong type, out of range: on the JSON body's top-level properties
    where it has them, else on the query parameters. One variant of each kind, on the first field
    it applies to (required ones first, then by name)."""
    expect = Expect(("4xx",))
    body = operation.request_body
    schema = _merged(body.schema) if body and isinstance(valid.json, dict) else None
    if schema is not None:
        fields = {
            n: _merged(p)
            for n, p in sorted((schema.get("properties") or {}).items())
            if not p.get("readOnly")
        }
        required = [n for n in sorted(schema.get("required", ())) if n in fields]
        where, values = "json", dict(valid.json)
    else:
        query = [p for p in sorted(operation.parameters, key=lambda p: p.name) if p.location == "query"]
        fields = {p.name: _merged(p.schema) for p in query}
        required = [p.name for p in query if p.required]
        where, values = "query", dict(valid.query)

    def variant(changed: dict[str, Any]) -> Step:
        if where == "json":
            return replace(valid, json=changed, expect=expect)
        return replace(valid, query=changed, expect=expect)

    # Required fields first: a server may well ignore a wrong optional field, never a required one.
    ordered = [(n, fields[n]) for n in required] + [(n, p) for n, p in fields.items() if n not in required]
    variants: list[tuple[str, Step]] = []
    if required:
        name = required[0]
        variants.append(
            (f"missing required field '{name}'", variant({k: v for k, v in values.items() if k != name}))
        )
    for name, prop in ordered:
        wrong = _wrong_type(prop)
        if wrong is not None:
            variants.append((f"wrong type for '{name}'", variant({**values, name: wrong})))
            break
    for name, prop in ordered:
        outside = _out_of_range(prop)
        if outside is not None:
            variants.append((f"'{name}' breaks {outside[0]}", variant({**values, name: outside[1]})))
            break
    return variants


def _item_path(collection: str, operations: Sequence[Operation]) -> tuple[str, str] | None:
    """The item path under a collection path (/things → /things/{id}) with GET and DELETE, and the
    name of its parameter."""
    base = collection.rstrip("/")
    pattern = re.compile(re.escape(base) + r"/\{([^/{}]+)\}(/?)$")
    candidates: dict[str, set[str]] = {}
    for op in operations:
        match = pattern.match(op.path)
        if match and match.group(2) == ("/" if collection.endswith("/") else ""):
            candidates.setdefault(op.path, set()).add(op.method)
    for path in sorted(candidates):
        if {"GET", "DELETE"} <= candidates[path]:
            match = pattern.match(path)
            assert match is not None
            return path, match.group(1)
    return None


def _chain(operation: Operation, context: GenerationContext, create: Step) -> GeneratedScenario | None:
    if operation.method != "POST" or operation.path.rstrip("/").endswith("}"):
        return None
    found = _item_path(operation.path, context.operations)
    if found is None:
        return None
    item_path, parameter = found
    created = _merged(create.expect.schema or {})
    properties = created.get("properties") or {}
    source = parameter if parameter in properties else "id" if "id" in properties else None
    if source is None:
        return None
    by_method = {op.method: op for op in context.operations if op.path == item_path}
    read, delete = by_method["GET"], by_method["DELETE"]
    placeholders = {parameter: parameter}
    steps = [
        replace(create, extract={parameter: f"$.{source}"}),
        valid_step(read, context, placeholders=placeholders),
        valid_step(delete, context, placeholders=placeholders),
    ]
    if "404" in read.responses or "410" in read.responses:
        gone = valid_step(read, context, placeholders=placeholders)
        steps.append(replace(gone, expect=Expect((404, 410))))
    if len(steps) > context.max_steps:
        steps = steps[:3]  # the read-after-delete check goes first; the delete cleans up, it stays
    if len(steps) > context.max_steps:
        return None
    return GeneratedScenario(
        name=f"{operation.operation_id}: create → read → delete via {item_path}",
        operation_id=operation.operation_id,
        method=operation.method,
        path=operation.path,
        kind=ScenarioKind.CHAIN,
        source=ScenarioSource.GENERATED,
        steps=tuple(steps),
    )


class SpecGenerator:
    """The default generator: the spec alone, offline and deterministic."""

    source: str = ScenarioSource.GENERATED

    def generate(self, operation: Operation, context: GenerationContext) -> list[GeneratedScenario]:
        valid = valid_step(operation, context)

        def scenario(name: str, kind: str, *steps: Step) -> GeneratedScenario:
            return GeneratedScenario(
                name=f"{operation.operation_id}: {name}",
                operation_id=operation.operation_id,
                method=operation.method,
                path=operation.path,
                kind=kind,
                source=self.source,
                steps=steps,
            )

        scenarios = [scenario("valid request", ScenarioKind.POSITIVE, valid)]
        scenarios += [
            scenario(name, ScenarioKind.NEGATIVE, step) for name, step in _negatives(operation, valid)
        ]
        if operation.requires_auth:
            anonymous = replace(valid, auth=False, expect=Expect((401, 403)))
            scenarios.append(scenario("without credentials", ScenarioKind.UNAUTHENTICATED, anonymous))
        chain = _chain(operation, context, valid)
        if chain is not None:
            scenarios.append(chain)
        return scenarios

"""Spec intake: an OpenAPI 3.0 / 3.1 document (JSON or YAML text) → validated, local $refs
resolved, its operations and servers listed.

Nothing here touches the network: a $ref to another document is refused before the validator
sees the spec (the validator is also built without URL handlers), and the servers are only
returned, for the SSRF check that apps/qa_runs/net.py makes before anything is called.
No Django import: a pure function of the text, testable on its own.
"""

import hashlib
import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from jsonschema.exceptions import ValidationError
from jsonschema.validators import validator_for
from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator
from openapi_spec_validator.schemas import schema_v30, schema_v31
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 200  # nesting of the document itself; deeper is a bomb, not an API
MAX_ERRORS = 5
_BASE_URI = "urn:openspc:spec"
JSON_MEDIA_TYPES = ("application/json",)


class SpecError(ValueError):
    """The document is not a usable OpenAPI 3.0 / 3.1 spec; the message names the problem."""


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str  # path, query, header, cookie
    required: bool
    schema: dict[str, Any]


@dataclass(frozen=True)
class RequestBody:
    required: bool
    content_type: str
    schema: dict[str, Any]


@dataclass(frozen=True)
class Response:
    status: str  # "200", "4XX", "default"
    description: str
    content_type: str | None
    schema: dict[str, Any] | None


@dataclass(frozen=True)
class Operation:
    """One method on one path, with every $ref resolved (recursive schemas: see resolve)."""

    operation_id: str  # the spec's operationId, else "METHOD /path"
    method: str  # upper case
    path: str
    summary: str
    parameters: tuple[Parameter, ...]
    request_body: RequestBody | None
    responses: dict[str, Response]
    security: tuple[dict[str, tuple[str, ...]], ...]  # requirements: any one of them suffices
    tags: tuple[str, ...] = ()

    @property
    def requires_auth(self) -> bool:
        """Security is declared and none of its alternatives is the empty one (optional auth)."""
        return bool(self.security) and all(self.security)


@dataclass(frozen=True)
class Spec:
    version: str  # the document's `openapi` field
    title: str
    sha256: str  # of the text as given: QaPackageRun.spec_hash
    servers: tuple[str, ...]  # every servers[].url (root, path, operation), variables at defaults
    operations: tuple[Operation, ...]
    document: dict[str, Any] = field(repr=False)


def spec_hash(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def spec_parse(text: str | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Spec:
    """The spec in `text`, validated and listed; SpecError saying what is wrong otherwise."""
    raw = text.encode() if isinstance(text, str) else text
    if len(raw) > max_bytes:
        raise SpecError(f"The spec is {len(raw):,} bytes; the limit is {max_bytes:,}.")
    document = _load(raw)
    version = _version(document)
    _refuse_remote_refs(document)
    _validate(document, version)
    resolver = _Resolver(document)
    operations = tuple(_operations(document, resolver))
    info = document.get("info") or {}
    return Spec(
        version=version,
        title=str(info.get("title", "")),
        sha256=spec_hash(raw),
        servers=_servers(document),
        operations=operations,
        document=document,
    )


# --- Loading --------------------------------------------------------------------------------------


# libyaml where PyYAML was built with it (ten times faster on a large spec), else pure Python.
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _SpecLoader(_BaseLoader):
    """safe_load without timestamps: an `example: 2024-01-01` stays the string JSON would have."""


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml_screen(text: str) -> None:
    """Refuse aliases (the billion-laughs bomb is made of them, and OpenAPI reuses with $ref) and
    absurd nesting, from the parser's events, before anything is built."""
    depth = 0
    for event in yaml.parse(text, Loader=_BaseLoader):
        if isinstance(event, yaml.AliasEvent):
            raise SpecError(
                f"YAML aliases (*{event.anchor}) are not accepted in a spec "
                f"(line {event.start_mark.line + 1 if event.start_mark else '?'}); use $ref."
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecError(f"The spec is nested deeper than {MAX_DEPTH} levels.")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _load(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(f"The spec is not UTF-8 text (byte {exc.start}).") from None
    if not text.strip():
        raise SpecError("The spec is empty.")
    try:
        if text.lstrip().startswith("{"):
            data = json.loads(text)
        else:
            _yaml_screen(text)
            data = yaml.load(text, Loader=_SpecLoader)  # a SafeLoader: no Python objects from the text
    except json.JSONDecodeError as exc:
        raise SpecError(
            f"The spec is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"The spec is not valid YAML: {exc}") from None
    except RecursionError:
        raise SpecError(f"The spec is nested deeper than {MAX_DEPTH} levels.") from None
    if not isinstance(data, dict):
        raise SpecError("The spec must be a JSON object / YAML mapping at the top level.")
    try:
        return _string_keys(data, 0)
    except RecursionError:
        raise SpecError(f"The spec is nested deeper than {MAX_DEPTH} levels.") from None


def _string_keys(node: Any, depth: int) -> Any:
    """YAML reads `200:` as the integer 200; OpenAPI means the string, as JSON would have it."""
    if depth > MAX_DEPTH:
        raise SpecError(f"The spec is nested deeper than {MAX_DEPTH} levels.")
    if isinstance(node, dict):
        return {str(key): _string_keys(value, depth + 1) for key, value in node.items()}
    if isinstance(node, list):
        return [_string_keys(value, depth + 1) for value in node]
    return node


def _version(document: Mapping[str, Any]) -> str:
    version = document.get("openapi")
    if version is None:
        if "swagger" in document:
            raise SpecError("Swagger 2.0 specs are not supported; convert it to OpenAPI 3.")
        raise SpecError("The document has no `openapi` field: it is not an OpenAPI spec.")
    version = str(version)
    if not (version.startswith("3.0.") or version.startswith("3.1.")):
        raise SpecError(f"OpenAPI {version} is not supported; use 3.0 or 3.1.")
    return version


def _refs(node: Any, where: str = "#") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield where, value
            else:
                yield from _refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _refs(value, f"{where}/{index}")


def _refuse_remote_refs(document: Mapping[str, Any]) -> None:
    for where, ref in _refs(document):
        if not ref.startswith("#"):
            raise SpecError(
                f"$ref {ref!r} at {where} points outside the document; only local references (#/…) are "
                "accepted. Bundle the spec into one file."
            )


class _LocalV30(OpenAPIV30SpecValidator):
    resolver_handlers: Any = {}  # no http/https/file: nothing outside the document is read


class _LocalV31(OpenAPIV31SpecValidator):
    resolver_handlers: Any = {}


def _validate(document: dict[str, Any], version: str) -> None:
    validator = _LocalV30 if version.startswith("3.0.") else _LocalV31
    try:
        errors = list(itertools.islice(validator(document).iter_errors(), MAX_ERRORS))
    except Unresolvable as exc:
        ref = str(getattr(exc, "ref", ""))
        raise SpecError(f"$ref '#{ref.lstrip('#')}' does not resolve to anything in the document.") from None
    except RecursionError:
        raise SpecError("The spec's references or schemas nest too deeply to check.") from None
    if not errors:
        return
    # The validator's own errors lose the detail of a oneOf (Schema or Reference?); the
    # meta-schema's raw errors keep it, so they name the problem when there are any.
    problems = [_describe(error) for error in _structure_errors(document, version) or errors]
    raise SpecError(f"The spec is not valid OpenAPI {version}: " + "; ".join(problems))


def _structure_errors(document: dict[str, Any], version: str) -> list[ValidationError]:
    """The document against the OpenAPI meta-schema with the pure-Python jsonschema, whose errors
    keep each oneOf alternative's own errors (the validator's fast backend does not). Only run
    once the document is known to be invalid; nothing is fetched (no registry, no retrieval)."""
    schema = dict(schema_v30 if version.startswith("3.0.") else schema_v31)
    try:
        checker = validator_for(schema)(schema)
        return list(itertools.islice(checker.iter_errors(document), MAX_ERRORS))
    except (Unresolvable, RecursionError):  # a meta-schema that refers elsewhere: the short errors then
        return []


def _describe(error: ValidationError) -> str:
    """The innermost cause: among a oneOf's alternatives, the one that got deepest into the
    document, an inline schema rather than a {$ref} when they tie."""
    while error.context:
        error = max(error.context, key=lambda e: (len(e.absolute_path), "$ref" not in e.message))
    message = error.message.split("\n", 1)[0]
    if len(message) > 200:
        message = message[:200] + "…"
    where = " › ".join(str(part) for part in error.absolute_path)
    return f"{message} (at {where or 'the top level'})"


# --- Resolving --------------------------------------------------------------------------------------


class _Resolver:
    """Inlines local $refs. A schema that refers to itself (a tree, a linked list) is inlined
    once and then stands as {"x-recursive-ref": ref}: the generator treats it as anything."""

    def __init__(self, document: dict[str, Any]) -> None:
        resource: Resource[Any] = Resource.from_contents(document, default_specification=DRAFT202012)
        self._resolver = Registry().with_resource(_BASE_URI, resource).resolver(base_uri=_BASE_URI)

    def resolve(self, node: Any, seen: tuple[str, ...] = ()) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                if ref in seen:
                    return {"x-recursive-ref": ref}
                try:
                    target = self._resolver.lookup(ref).contents
                except Unresolvable:
                    raise SpecError(f"$ref {ref!r} does not resolve to anything in the document") from None
                siblings = {k: v for k, v in node.items() if k != "$ref"}  # 3.1 allows them
                resolved = self.resolve(target, (*seen, ref))
                return (
                    {**resolved, **self.resolve(siblings, seen)} if isinstance(resolved, dict) else resolved
                )
            return {key: self.resolve(value, seen) for key, value in node.items()}
        if isinstance(node, list):
            return [self.resolve(value, seen) for value in node]
        return node


# --- Listing -------------------------------------------------------------------------------------


def _json_content(content: Mapping[str, Any] | None) -> tuple[str | None, dict[str, Any] | None]:
    """The JSON media type of a content map (application/json, else any */*+json), with its schema."""
    if not content:
        return None, None
    names = sorted(content)
    chosen = next((n for n in names if n.split(";")[0].strip() in JSON_MEDIA_TYPES), None)
    chosen = chosen or next((n for n in names if n.split(";")[0].strip().endswith("+json")), None)
    if chosen is None:
        first = names[0]
        return first, (content[first] or {}).get("schema")
    return chosen, (content[chosen] or {}).get("schema") or {}


def _parameters(shared: list[Any], own: list[Any], resolver: _Resolver) -> tuple[Parameter, ...]:
    merged: dict[tuple[str, str], Parameter] = {}
    for raw in [*shared, *own]:  # the operation's override the path's (same name and location)
        item = resolver.resolve(raw)
        location = str(item.get("in", ""))
        schema = item.get("schema")
        if schema is None and item.get("content"):
            _, schema = _json_content(item["content"])
        merged[(item["name"], location)] = Parameter(
            name=str(item["name"]),
            location=location,
            required=bool(item.get("required", False)) or location == "path",
            schema=schema or {},
        )
    return tuple(merged.values())


def _operations(document: Mapping[str, Any], resolver: _Resolver) -> Iterator[Operation]:
    root_security = document.get("security") or []
    for path, raw_item in (document.get("paths") or {}).items():
        item = resolver.resolve(raw_item) or {}
        for method in HTTP_METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            body = None
            if op.get("requestBody"):
                raw_body = resolver.resolve(op["requestBody"])
                content_type, schema = _json_content(raw_body.get("content"))
                body = RequestBody(bool(raw_body.get("required", False)), content_type or "", schema or {})
            responses = {}
            for status, raw_response in (op.get("responses") or {}).items():
                response = resolver.resolve(raw_response)
                content_type, schema = _json_content(response.get("content"))
                responses[str(status)] = Response(
                    str(status), str(response.get("description", "")), content_type, schema
                )
            security = op.get("security", root_security)
            yield Operation(
                operation_id=str(op.get("operationId") or f"{method.upper()} {path}"),
                method=method.upper(),
                path=path,
                summary=str(op.get("summary") or ""),
                parameters=_parameters(item.get("parameters") or [], op.get("parameters") or [], resolver),
                request_body=body,
                responses=responses,
                security=tuple({name: tuple(scopes) for name, scopes in req.items()} for req in security),
                tags=tuple(str(tag) for tag in op.get("tags") or ()),
            )


def _server_urls(servers: Any) -> Iterator[str]:
    for server in servers or ():
        url = str(server.get("url", ""))
        for name, variable in (server.get("variables") or {}).items():
            url = url.replace("{" + name + "}", str(variable.get("default", "")))
        yield url


def _servers(document: Mapping[str, Any]) -> tuple[str, ...]:
    """Every server URL the document names, in order, once each. Relative ones ("/v1") are left
    relative: they are relative to where the spec came from, which the caller knows."""
    urls = list(_server_urls(document.get("servers")))
    for item in (document.get("paths") or {}).values():
        if not isinstance(item, dict):
            continue
        urls.extend(_server_urls(item.get("servers")))
        for method in HTTP_METHODS:
            if isinstance(item.get(method), dict):
                urls.extend(_server_urls(item[method].get("servers")))
    return tuple(dict.fromkeys(urls))

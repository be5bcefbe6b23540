"""Writes of QA package runs: packages and their credentials, the run's state machine, its events
(numbered, one terminal), scenarios and step results (secrets masked, bodies truncated).

Status changes go through qa_run_transition only; it publishes the status's event in the same
transaction. Pushing events to the channel layer (`qa_run.event`) is left to the pipeline, on commit.
"""

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from jsonschema import Draft202012Validator

from apps.qa_runs.choices import (
    EVENT_TERMINAL,
    RUN_TERMINAL,
    RUN_TRANSITIONS,
    STATUS_EVENT,
    AuthKind,
    EventType,
    RunStatus,
)
from apps.qa_runs.crypto import secret_decrypt, secret_encrypt
from apps.qa_runs.generate import GeneratedScenario
from apps.qa_runs.models import QaEvent, QaPackage, QaPackageRun, Scenario, StepResult
from apps.qa_runs.safety import target_self_refusal
from openspc.api import DomainConflict

BODY_LIMIT = 16 * 1024  # characters of a response body kept per step
MASK = "********"
# Headers whose values are credentials whatever the package says, masked in every stored result.
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 token
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OVERRIDES = Draft202012Validator(
    {
        "type": "object",
        "additionalProperties": {
            "type": "array",
            "minItems": 1,
            "items": {
                "oneOf": [
                    {"type": "integer", "minimum": 100, "maximum": 599},
                    {"type": "string", "pattern": "^[1-5]xx$"},
                ]
            },
        },
    }
)


class RunTransitionError(DomainConflict):
    """A status change the state machine does not allow, or one another worker made first."""


class RunFinished(Exception):
    """An event for a run that already has its terminal event."""


class CredentialMissing(Exception):
    """The package's credential cannot be had: its environment variable is unset, or not stored."""


# --- Packages -----------------------------------------------------------------------------------


def qa_package_overrides_validate(overrides: Any) -> None:
    """{operation_id: [200, 201, "2xx"]}; ValidationError on expected_status_overrides otherwise."""
    errors = [e.message for e in _OVERRIDES.iter_errors(overrides)]
    if errors:
        raise ValidationError({"expected_status_overrides": errors[:3]})


def qa_package_selection_validate(*, include_tags: Any, path_prefix: str) -> None:
    """include_tags a list of tag names, path_prefix empty or a path; ValidationError otherwise."""
    if not isinstance(include_tags, list) or not all(isinstance(t, str) and t.strip() for t in include_tags):
        raise ValidationError({"include_tags": 'A list of OpenAPI tag names, e.g. ["lots"].'})
    if path_prefix and not path_prefix.startswith("/"):
        raise ValidationError({"path_prefix": "A path starting with /, e.g. /things."})


def qa_package_target_validate(*, package: QaPackage, request_hosts: Iterable[str] = ()) -> None:
    """ValidationError on target_base_url when it is this system and that is not allowed."""
    refusal = target_self_refusal(package.target_base_url, request_hosts=request_hosts)
    if refusal:
        raise ValidationError({"target_base_url": f"Refused: {refusal}."})


def _package_validate(package: QaPackage, request_hosts: Iterable[str]) -> None:
    if not (package.spec_url or package.spec_text):
        raise ValidationError({"spec_url": "Give the spec's URL or upload the spec."})
    qa_package_overrides_validate(package.expected_status_overrides)
    qa_package_selection_validate(include_tags=package.include_tags, path_prefix=package.path_prefix)
    qa_package_target_validate(package=package, request_hosts=request_hosts)
    package.full_clean()


def _package_save(package: QaPackage, values: Mapping[str, Any], request_hosts: Iterable[str]) -> QaPackage:
    """Set the values, check the whole package (ValidationError: nothing saved), save it."""
    for key, value in values.items():
        setattr(package, key, value)
    _package_validate(package, request_hosts)
    package.save()
    return package


def qa_package_create(
    *,
    name: str,
    target_base_url: str,
    spec_url: str = "",
    spec_text: str = "",
    created_by: User | None = None,
    request_hosts: Iterable[str] = (),
    **limits: Any,
) -> QaPackage:
    """A package without credentials (qa_package_auth_set adds them); limits are the model's
    fields (max_scenarios, concurrency, expected_status_overrides, allow_unsafe_methods,
    include_tags…). request_hosts: the hosts the request creating it came through (this system's
    own names, for safety.target_self_refusal)."""
    package = QaPackage(
        name=name,
        target_base_url=target_base_url,
        spec_url=spec_url,
        spec_text=spec_text,
        created_by=created_by,
    )
    return _package_save(package, limits, request_hosts)


def qa_package_update(
    *, package: QaPackage, data: Mapping[str, Any], request_hosts: Iterable[str] = ()
) -> QaPackage:
    """Change a package's description, target, spec and limits (not its credential: that is
    qa_package_auth_set). Runs already made keep what they used (spec_hash)."""
    return _package_save(package, data, request_hosts)


def qa_package_auth_set(
    *, package: QaPackage, kind: str, header_name: str = "", value: str | None = None, env: str = ""
) -> QaPackage:
    """Set how the package authenticates against its target: none; a bearer token; or a header
    with a value. The value is given (stored encrypted) or named as an environment variable."""
    if kind not in AuthKind.values:
        raise ValidationError({"auth_kind": f"Unknown authentication kind '{kind}'."})
    if kind == AuthKind.NONE:
        header_name, value, env = "", None, ""
    else:
        if bool(value) == bool(env):
            raise ValidationError(
                {"auth_secret": "Give either the value or the environment variable holding it."}
            )
        if env and not _ENV_NAME.match(env):
            raise ValidationError({"auth_secret_env": f"'{env}' is not an environment variable name."})
        if kind == AuthKind.HEADER and not _HEADER_NAME.match(header_name or ""):
            raise ValidationError({"auth_header_name": "Give the header's name (letters, digits, '-')."})
        if kind == AuthKind.BEARER:
            header_name = ""
    package.auth_kind = kind
    package.auth_header_name = header_name
    package.auth_secret_encrypted = secret_encrypt(value) if value else ""
    package.auth_secret_env = env
    package.save(
        update_fields=[
            "auth_kind",
            "auth_header_name",
            "auth_secret_encrypted",
            "auth_secret_env",
            "updated_at",
        ]
    )
    return package


def qa_package_auth_change(*, package: QaPackage, auth: Mapping[str, Any], created: bool) -> QaPackage:
    """Apply the auth fields a request gave (auth_kind, auth_header_name, auth_secret,
    auth_secret_env); what it leaves out is kept, the stored credential too (an edit that changes
    only the header name must not make the user type the token again)."""
    if not created and not auth:
        return package
    kind = auth.get("auth_kind", package.auth_kind)
    header = auth.get("auth_header_name", package.auth_header_name)
    value: str | None = auth.get("auth_secret") or None
    env = auth.get("auth_secret_env", "" if value else package.auth_secret_env)
    if kind != AuthKind.NONE and value is None and not env and package.auth_secret_encrypted:
        value = qa_package_secret(package=package)  # unchanged: keep the stored one
    return qa_package_auth_set(package=package, kind=kind, header_name=header, value=value, env=env)


def qa_package_secret(*, package: QaPackage) -> str | None:
    """The credential's value (for the executor and for masking); None without authentication."""
    if package.auth_kind == AuthKind.NONE:
        return None
    if package.auth_secret_env:
        value = os.environ.get(package.auth_secret_env)
        if not value:
            raise CredentialMissing(f"The environment variable {package.auth_secret_env} is not set.")
        return value
    if not package.auth_secret_encrypted:
        raise CredentialMissing(f"Package {package.name} has no stored credential.")
    return secret_decrypt(package.auth_secret_encrypted)


def qa_package_auth_headers(*, package: QaPackage) -> dict[str, str]:
    """The headers that authenticate a request to the package's target."""
    value = qa_package_secret(package=package)
    if value is None:
        return {}
    if package.auth_kind == AuthKind.BEARER:
        return {"Authorization": f"Bearer {value}"}
    return {package.auth_header_name: value}


# --- Runs and events -------------------------------------------------------------------------------


def qa_run_request(
    *, package: QaPackage, requested_by: User | None, requested_host: str = ""
) -> QaPackageRun:
    """A new run, REQUESTED, with its REQUESTED event (sequence 1). requested_host: the host the
    request starting it came through (request.get_host()), which the run never targets unless
    QA_ALLOW_SELF_TARGET."""
    with transaction.atomic():
        run = QaPackageRun.objects.create(
            package=package, requested_by=requested_by, requested_host=requested_host[:255]
        )
        event_publish(
            run=run,
            type=EventType.REQUESTED,
            payload={"package": package.name, "read_only": not package.allow_unsafe_methods},
        )
    return run


def qa_run_transition(
    *, run: QaPackageRun, to: str, payload: Mapping[str, Any] | None = None, **fields: Any
) -> QaPackageRun:
    """Move the run to `to` if RUN_TRANSITIONS allows it from the status it has in the database,
    set `fields` (spec_hash, totals, verdict, error…) and publish the status's event, all in one
    transaction. The row is locked and the UPDATE is conditional on the status read, so of two
    workers making the same move one wins and the other gets RunTransitionError."""
    if to not in RunStatus.values:
        raise RunTransitionError(f"Unknown run status '{to}'.")
    if reserved := sorted({"status", "last_sequence", "plan_id", "package", "pk", "id"} & set(fields)):
        raise ValueError(f"qa_run_transition does not set {', '.join(reserved)}.")
    with transaction.atomic():
        current = QaPackageRun.objects.select_for_update().values_list("status", flat=True).get(pk=run.pk)
        if to not in RUN_TRANSITIONS[current]:
            raise RunTransitionError(f"Run {run.plan_id} cannot go from {current} to {to}.")
        now = timezone.now()
        changes: dict[str, Any] = {"status": to, "updated_at": now, **fields}
        if current == RunStatus.REQUESTED:
            changes.setdefault("started_at", now)
        if to in RUN_TERMINAL:
            changes.setdefault("finished_at", now)
        if not QaPackageRun.objects.filter(pk=run.pk, status=current).update(**changes):
            raise RunTransitionError(f"Run {run.plan_id} left {current} while moving to {to}.")
        if to in STATUS_EVENT:
            event_publish(run=run, type=STATUS_EVENT[to], payload=payload)
    run.refresh_from_db()
    return run


def event_publish(*, run: QaPackageRun, type: str, payload: Mapping[str, Any] | None = None) -> QaEvent:
    """Append an event to the run with the next sequence number.

    The UPDATE of the run's counter locks its row until the transaction ends, so concurrent
    publishers (PostgreSQL workers, threads) take numbers one after the other, never the same;
    on SQLite the UPDATE takes the database's write lock, to the same effect. After a terminal
    event (COMPLETE, FAILED, CANCELLED) nothing more is accepted: RunFinished."""
    if type not in EventType.values:
        raise ValueError(f"Unknown event type '{type}'.")
    payload = dict(payload or {})
    if type == EventType.AI_FAILED and not isinstance(payload.get("attempt"), int):
        raise ValueError("An AI_FAILED event names its attempt: payload {'attempt': 1, ...}.")
    with transaction.atomic():
        QaPackageRun.objects.filter(pk=run.pk).update(last_sequence=F("last_sequence") + 1)
        if QaEvent.objects.filter(run_id=run.pk, type__in=EVENT_TERMINAL).exists():
            raise RunFinished(f"Run {run.plan_id} has ended; no {type} event after that.")
        sequence = QaPackageRun.objects.values_list("last_sequence", flat=True).get(pk=run.pk)
        return QaEvent.objects.create(run_id=run.pk, sequence=sequence, type=type, payload=payload)


# --- Scenarios and results -------------------------------------------------------------------------


def scenario_store(
    *, run: QaPackageRun, scenario: GeneratedScenario, position: int, skipped_reason: str = ""
) -> Scenario:
    """The Scenario row for a generated scenario, and its SCENARIO_CREATED event; skipped_reason
    (safety.scenario_skip_reason) marks one the executor will not run."""
    with transaction.atomic():
        row = Scenario.objects.create(
            run=run,
            position=position,
            name=scenario.name[:300],
            operation_id=scenario.operation_id,
            method=scenario.method,
            path=scenario.path,
            kind=scenario.kind,
            source=scenario.source,
            steps=[step.to_dict() for step in scenario.steps],
            skipped_reason=skipped_reason[:500],
        )
        payload = {"scenario": row.pk, "name": row.name, "kind": row.kind, "source": row.source}
        if row.skipped_reason:
            payload["skipped"] = row.skipped_reason
        event_publish(run=run, type=EventType.SCENARIO_CREATED, payload=payload)
    return row


def mask(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret replaced by MASK."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def mask_headers(
    headers: Mapping[str, str], secrets: Iterable[str], extra: Iterable[str] = ()
) -> dict[str, str]:
    """Headers with credential headers (SENSITIVE_HEADERS and `extra` names) blanked and any
    secret value masked in the others."""
    hidden = SENSITIVE_HEADERS | {name.lower() for name in extra}
    secrets = list(secrets)
    return {name: MASK if name.lower() in hidden else mask(value, secrets) for name, value in headers.items()}


def step_result_record(
    *,
    scenario: Scenario,
    index: int,
    request: Mapping[str, Any],
    response_status: int | None,
    response_headers: Mapping[str, str],
    response_body: str,
    duration_ms: int,
    checks: list[dict[str, Any]],
    passed: bool,
    curl: str,
    error: str = "",
    secrets: Iterable[str] = (),
    secret_headers: Iterable[str] = (),
) -> StepResult:
    """Store what a step sent and got, masking `secrets` (the package's credential, values it
    extracted…) everywhere, credential headers wholesale, and keeping BODY_LIMIT characters of the
    body. The request's own headers are masked the same way."""
    secrets = [s for s in secrets if s]
    secret_headers = list(secret_headers)
    shown_request = dict(request)
    if isinstance(request.get("headers"), Mapping):
        shown_request["headers"] = mask_headers(request["headers"], secrets, secret_headers)
    for key in ("url", "body"):
        if isinstance(shown_request.get(key), str):
            shown_request[key] = mask(shown_request[key], secrets)
    body = mask(response_body, secrets)
    return StepResult.objects.create(
        scenario=scenario,
        index=index,
        request=shown_request,
        response_status=response_status,
        response_headers=mask_headers(response_headers, secrets, secret_headers),
        response_body=body[:BODY_LIMIT],
        body_truncated=len(body) > BODY_LIMIT,
        duration_ms=max(0, duration_ms),
        checks=checks,
        passed=passed,
        error=mask(error, secrets),
        curl=mask(curl, secrets),
    )

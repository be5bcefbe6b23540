"""Writing the audit trail. Every app records through audit_record; nothing else writes AuditEntry."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.http import HttpRequest

from apps.audit.choices import AuditAction
from apps.audit.models import AuditEntry


def _json(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Plain JSON (dates, decimals and UUIDs as text), so what is stored is what is shown."""
    if values is None:
        return None
    return json.loads(json.dumps(dict(values), cls=DjangoJSONEncoder))


def audit_fields(instance: models.Model, fields: list[str]) -> dict[str, Any]:
    """The named fields of an instance as the audit trail stores them (foreign keys by id)."""
    out = {}
    for name in fields:
        field = instance._meta.get_field(name)
        attname = getattr(field, "attname", name)
        out[name] = getattr(instance, attname)
    return _json(out) or {}


def audit_record(
    *,
    user: User | AnonymousUser | None,
    action: AuditAction | str,
    instance: models.Model,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str = "",
    source: str = "",
) -> AuditEntry:
    """Append one entry: who (None for the system), what action on which object, before and after."""
    actor = user if isinstance(user, User) else None
    return AuditEntry.objects.create(
        user=actor,
        action=str(action),
        content_type=ContentType.objects.get_for_model(instance, for_concrete_model=False),
        object_id=str(instance.pk),
        object_repr=str(instance)[:255],
        before=_json(before),
        after=_json(after),
        reason=reason,
        source=source,
    )


@dataclass(frozen=True)
class Actor:
    """Who makes a change and through what ('api', 'admin', 'system'): the audit trail's who and source.

    Services that change audited data take one; the API and the admin pass the signed-in user.
    """

    user: User | None = None
    source: str = "system"

    @classmethod
    def of(cls, request: HttpRequest, source: str) -> "Actor":
        user = getattr(request, "user", None)
        return cls(user if isinstance(user, User) else None, source)


SYSTEM = Actor()


def audit_change(
    *,
    actor: Actor,
    instance: models.Model,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    reason: str = "",
) -> AuditEntry | None:
    """Record a creation (no `before`), a deletion (no `after`) or a change. A change keeps only the
    fields that differ, and records nothing when none does. Call it before deleting (it needs the pk)."""
    if before is None and after is None:
        raise ValueError("A change has a before, an after, or both.")
    if before is None:
        action = AuditAction.CREATE
    elif after is None:
        action = AuditAction.DELETE
    else:
        old, new = _json(before) or {}, _json(after) or {}
        changed = [name for name in {**old, **new} if old.get(name) != new.get(name)]
        if not changed:
            return None
        before = {name: old.get(name) for name in changed}
        after = {name: new.get(name) for name in changed}
        action = AuditAction.UPDATE
    return audit_record(
        user=actor.user, action=action, instance=instance, before=before, after=after, reason=reason,
        source=actor.source,
    )  # fmt: skip

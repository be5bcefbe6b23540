"""The audit entry every configuration write appends."""

from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import models

from apps.audit.services import Actor, audit_change, audit_fields
from openspc.rows import model_update

M = TypeVar("M", bound=models.Model)

# Every write of this package takes `actor` (who, and through what: "api", "admin") and appends one
# audit entry with the audited fields before and after; a change that changes nothing records nothing.


def audited(
    instance: Any,
    fields: Sequence[str],
    before: dict[str, Any] | None,
    actor: Actor,
    deleted: bool = False,
    reason: str = "",
) -> None:
    after = None if deleted else audit_fields(instance, list(fields))
    audit_change(actor=actor, instance=instance, before=before, after=after, reason=reason)


def audited_update(*, instance: M, fields: Sequence[str], data: dict[str, Any], actor: Actor) -> M:
    """Set the fields present in `data` (openspc.rows.model_update) and record the change."""
    before = audit_fields(instance, list(fields))
    instance, _ = model_update(instance=instance, fields=fields, data=data)
    audited(instance, fields, before, actor)
    return instance


def audited_delete(*, instance: models.Model, fields: Sequence[str], actor: Actor) -> None:
    """Record the deletion with the fields as they were, then delete (ProtectedError when something
    still refers to the row: the caller's data stays as it was)."""
    audited(instance, fields, audit_fields(instance, list(fields)), actor, deleted=True)
    instance.delete()

"""The audit entry every configuration write appends."""

from collections.abc import Sequence
from typing import Any

from apps.audit.services import Actor, audit_change, audit_fields

# Every write of this package takes `actor` (who, and through what: "api", "admin") and appends one
# audit entry with the audited fields before and after; a change that changes nothing records nothing.


def audited(
    instance: Any, fields: Sequence[str], before: dict[str, Any] | None, actor: Actor, deleted: bool = False
) -> None:
    after = None if deleted else audit_fields(instance, list(fields))
    audit_change(actor=actor, instance=instance, before=before, after=after)

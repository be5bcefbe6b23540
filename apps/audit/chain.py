"""The audit trail's hash chain: what of an entry is hashed, and how.

hash = SHA-256(prev_hash + canonical JSON of the entry's content). The content is every field a
reader relies on: position, time, who, what action on which object, before, after, why, through
what. Canonical JSON sorts keys, has no spaces, and writes a whole-number float as an integer:
PostgreSQL's jsonb hands 1e20 back as 100000000000000000000, and the hash must not change with
the way the database spells a number.
"""

import datetime
import hashlib
import json
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType

from apps.audit.models import GENESIS_HASH, AuditEntry

__all__ = ["GENESIS_HASH", "entry_chained_content", "entry_content", "entry_hash"]


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        # From its shortest spelling, as the database keeps it: int(1.5e300) is not 15 and 299 zeros.
        return int(Decimal(repr(value)))
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def entry_content(
    *,
    seq: int,
    at: datetime.datetime,
    user_id: int | None,
    action: str,
    content_type: str,
    object_id: str,
    object_repr: str,
    before: Any,
    after: Any,
    reason: str,
    source: str,
) -> dict[str, Any]:
    """What of an entry the hash covers; `content_type` is 'app_label.model'."""
    return {
        "seq": seq, "at": at.astimezone(datetime.UTC).isoformat(), "user": user_id, "action": action,
        "content_type": content_type, "object_id": object_id, "object_repr": object_repr,
        "before": before, "after": after, "reason": reason, "source": source,
    }  # fmt: skip


def entry_hash(prev_hash: str, content: dict[str, Any]) -> str:
    canonical = json.dumps(_plain(content), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def entry_chained_content(entry: AuditEntry) -> dict[str, Any]:
    """What of a stored (or about to be stored) entry its hash covers."""
    content_type = ContentType.objects.get_for_id(entry.content_type_id)
    return entry_content(
        seq=entry.seq, at=entry.at, user_id=entry.user_id, action=entry.action,
        content_type=f"{content_type.app_label}.{content_type.model}", object_id=entry.object_id,
        object_repr=entry.object_repr, before=entry.before, after=entry.after, reason=entry.reason,
        source=entry.source,
    )  # fmt: skip

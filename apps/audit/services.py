"""Writing the audit trail. Every app records through audit_record; nothing else writes AuditEntry."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, models, router, transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.audit.chain import entry_chained_content, entry_hash
from apps.audit.choices import AuditAction
from apps.audit.models import GENESIS_HASH, AuditChainHead, AuditEntry

HEAD = 1  # the chain head's primary key


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


def _head_locked() -> AuditChainHead:
    """The chain's head, locked until the transaction ends. A missing head (a test database emptied
    between tests) is made again from the last entry; of two appenders that find none, the second
    waits for the first's insert and then locks the head it made."""
    head = AuditChainHead.objects.select_for_update().filter(pk=HEAD).first()
    if head is not None:
        return head
    last = AuditEntry.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, digest = last if last else (0, GENESIS_HASH)
    AuditChainHead.objects.bulk_create([AuditChainHead(pk=HEAD, seq=seq, hash=digest)], ignore_conflicts=True)
    return AuditChainHead.objects.select_for_update().get(pk=HEAD)


# The entry and the new head in one statement (PostgreSQL): with the head's lock, an append is
# two statements, whatever the transaction it ends.
_APPEND = """
    WITH entry AS (INSERT INTO {table} ({columns}) VALUES ({values}) RETURNING {pk})
    UPDATE {head} SET seq = %s, hash = %s FROM entry WHERE {head}.id = %s RETURNING entry.{pk}
"""


def _append(entry: AuditEntry) -> AuditEntry:
    """Insert the entry (its place in the chain set) and move the head to it."""
    connection = connections[router.db_for_write(AuditEntry)]
    if connection.vendor != "postgresql":
        entry.save(force_insert=True)
        AuditChainHead.objects.filter(pk=HEAD).update(seq=entry.seq, hash=entry.hash)
        return entry
    meta = AuditEntry._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    quote = connection.ops.quote_name
    sql = _APPEND.format(
        table=quote(meta.db_table), head=quote(AuditChainHead._meta.db_table), pk=quote(str(meta.pk.column)),
        columns=", ".join(quote(str(field.column)) for field in fields),
        values=", ".join(["%s"] * len(fields)),
    )  # fmt: skip
    params = [field.get_db_prep_save(field.pre_save(entry, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, entry.seq, entry.hash, HEAD])
        (entry.pk,) = cursor.fetchone()
    entry._state.adding, entry._state.db = False, connection.alias
    return entry


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
    """Append one entry: who (None for the system), what action on which object, before and after.

    It takes the next place in the hash chain: the chain's head is locked until the transaction
    commits, so a caller on a busy path appends last, just before it commits."""
    actor = user if isinstance(user, User) else None
    content_type = ContentType.objects.get_for_model(instance, for_concrete_model=False)
    entry = AuditEntry(
        user=actor, action=str(action), content_type=content_type,
        object_id=str(instance.pk), object_repr=str(instance)[:255], before=_json(before),
        after=_json(after), reason=reason, source=source,
    )  # fmt: skip
    # No savepoint: nothing to undo here apart from the caller's transaction.
    with transaction.atomic(savepoint=False):
        head = _head_locked()
        # The time is taken under the lock, so that times follow the chain's order.
        entry.at, entry.seq, entry.prev_hash = timezone.now(), head.seq + 1, head.hash
        entry.hash = entry_hash(entry.prev_hash, entry_chained_content(entry))
        return _append(entry)


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

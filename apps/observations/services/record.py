"""Recording observations: a batch stored as `received` rows in one transaction, idempotently, and
queued for the observations.in worker on commit."""

import datetime
import hashlib
import json
import math
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone

from apps.audit.choices import AuditAction
from apps.audit.services import audit_record
from apps.config.models import Device, Test
from apps.observations.choices import ObservationSource, ObservationStatus
from apps.observations.idempotency import Body, body_differences, body_stored
from apps.observations.models import Item, Lot, Observation
from openspc.api import Conflict

# Ids per observations.process message: small enough that several workers share a big batch.
PROCESS_CHUNK = 500
# Rows per INSERT: keeps a 5,000-entry batch within every backend's limit on query parameters.
INSERT_BATCH = 1000


@dataclass(frozen=True)
class ObservationEntry:
    """One observation as the edge resolved it: what was measured, where, and the values as posted."""

    lot: Lot
    test: Test
    values: Sequence[Any]
    item: Item | None = None
    observed_at: datetime.datetime | None = None
    idempotency_key: str | None = None
    retest_of: Observation | None = None  # the invalidated result this one retests or amends
    historical: bool = False  # sent as historical by its source (Sparkplug store and forward)


@dataclass(frozen=True)
class RecordResult:
    """The stored observation id of each entry, in order; which of them existed already (stored by
    an earlier request); and the positions of entries that repeat an earlier entry of the same
    request under the same key (answered with that entry's id, nothing more stored)."""

    ids: list[int]
    duplicates: list[int] = field(default_factory=list)
    repeated: list[int] = field(default_factory=list)


def _json_safe(values: Sequence[Any]) -> list[Any]:
    """JSON has no NaN or infinity (PostgreSQL's jsonb refuses them): keep them as text, to be rejected."""
    safe: list[Any] = []
    for value in values:
        if isinstance(value, float) and not math.isfinite(value):
            value = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        safe.append(value)
    return safe


def _key(entry: ObservationEntry, values: list[Any], user: User) -> str:
    """The client's key, scoped to the poster (keys of different clients never collide), or a hash
    of what was posted: a retry without a key (same item or lot, test, values, time) is recognised."""
    if entry.idempotency_key:
        return f"{user.pk}:{entry.idempotency_key}"
    if entry.item is None and entry.observed_at is None:
        # Lot-level values with neither key nor time (a gauge streaming, a subgroup posted to
        # /samples): the same value measured twice is two observations, and nothing tells a retry
        # from a repeat, so each is kept. Hashing the content would silently drop the repeat.
        return f"uuid:{uuid.uuid4().hex}"
    observed = entry.observed_at.isoformat() if entry.observed_at else None
    what = [user.pk, entry.item.pk if entry.item else None, entry.lot.pk, entry.test.pk, values, observed]
    return "sha256:" + hashlib.sha256(json.dumps(what, separators=(",", ":")).encode()).hexdigest()


def observations_queue(*, ids: Sequence[int]) -> None:
    """Queue ids for the observations.in worker, in chunks."""
    from apps.observations.tasks import observations_process_task

    for start in range(0, len(ids), PROCESS_CHUNK):
        chunk = list(ids[start : start + PROCESS_CHUNK])
        summary = f"{{'ids': <{len(chunk)} ids, {chunk[0]} to {chunk[-1]}>}}"  # not each id in the logs
        observations_process_task.apply_async(kwargs={"ids": chunk}, kwargsrepr=summary)


# A batch in one statement of column arrays (docs/adr/0009); a new column must be added here too.
_INSERT_UNNEST = """
    INSERT INTO observations_observation
        (item_id, lot_id, test_id, "values", observed_at, received_at, source, user_id, idempotency_key,
         status, reasons, historical)
    SELECT item_id, lot_id, test_id, entry_values::jsonb, observed_at, %s, %s, %s, idempotency_key, %s, '[]',
        historical
    FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[], %s::timestamptz[], %s::text[],
                %s::boolean[])
        AS entry (item_id, lot_id, test_id, entry_values, observed_at, idempotency_key, historical)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING idempotency_key, id
"""


# What a stored row's key stands for: its id and the body it was stored with.
STORED_BODY = (
    "idempotency_key",
    "pk",
    "item_id",
    "lot_id",
    "test_id",
    "values",
    "observed_at",
    "received_at",
)


def _stored(keys: Collection[str]) -> dict[str, tuple[int, Body]]:
    """The stored rows of these keys: {key: (id, body)}."""
    rows = Observation.objects.filter(idempotency_key__in=list(keys)).values_list(*STORED_BODY)
    return {
        key: (pk, body_stored(item_id=item_id, lot_id=lot_id, test_id=test_id, values=values,
                              observed_at=observed_at, received_at=received_at))
        for key, pk, item_id, lot_id, test_id, values, observed_at, received_at in rows
    }  # fmt: skip


def _insert_new(
    fresh: dict[str, tuple[ObservationEntry, list[Any]]], source: str, user: User, now: datetime.datetime
) -> tuple[dict[str, int], dict[str, tuple[int, Body]]]:
    """Insert the entries whose key is not stored yet: ({key: new id}, {key: (stored id, its body)})."""
    connection = connections[router.db_for_write(Observation)]
    if connection.vendor != "postgresql":
        existing = _stored(fresh)
        rows = [
            Observation(
                item=entry.item,
                lot=entry.lot,
                test=entry.test,
                values=entry_values,
                observed_at=entry.observed_at or now,
                received_at=now,
                source=source,
                user=user,
                idempotency_key=key,
                historical=entry.historical,
            )
            for key, (entry, entry_values) in fresh.items()
            if key not in existing
        ]
        Observation.objects.bulk_create(rows, batch_size=INSERT_BATCH)
        return {row.idempotency_key: row.pk for row in rows}, existing
    # ON CONFLICT DO NOTHING waits for a concurrent insert of the same key and then skips it, so a
    # retry racing the original never fails; the keys it skipped are read back as duplicates.
    entries = [entry for entry, _ in fresh.values()]
    params: list[Any] = [
        now, source, user.pk, ObservationStatus.RECEIVED,
        [entry.item.pk if entry.item else None for entry in entries],
        [entry.lot.pk for entry in entries],
        [entry.test.pk for entry in entries],
        [json.dumps(entry_values) for _, entry_values in fresh.values()],
        [entry.observed_at or now for entry in entries],
        list(fresh),
        [entry.historical for entry in entries],
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_UNNEST, params)
        created = dict(cursor.fetchall())
    # Only the keys that conflicted are read back, with their bodies to compare: a batch of new
    # keys costs no query more.
    skipped = [key for key in fresh if key not in created]
    return created, (_stored(skipped) if skipped else {})


def _body(entry: ObservationEntry, values: list[Any]) -> Body:
    item_id = entry.item.pk if entry.item is not None else None
    return Body(item_id, entry.lot.pk, entry.test.pk, values, entry.observed_at)


def _label(index: int, entries: Sequence[ObservationEntry]) -> str:
    """How an entry is named in an error: `[3] ` in a batch, nothing for a single one."""
    return f"[{index}] " if len(entries) > 1 else ""


def first_ten(labels: Sequence[str], separator: str = ", ") -> str:
    """Enough of a list of refused entries to fix the client; a 5,000-entry message is not."""
    shown = separator.join(labels[:10])
    return shown + (f"{separator}and {len(labels) - 10} more" if len(labels) > 10 else "")


def _repeats_check(
    entries: Sequence[ObservationEntry], keys: list[str], values: list[list[Any]], check: bool
) -> tuple[dict[str, tuple[ObservationEntry, list[Any]]], list[int]]:
    """The first entry of each key, and the positions of later entries with the same key and body.
    The same key with another body within one request is a ValidationError naming both entries:
    which of the two the client meant cannot be told, so neither is stored."""
    fresh: dict[str, tuple[ObservationEntry, list[Any]]] = {}
    first: dict[str, int] = {}
    repeated: list[int] = []
    errors: dict[str, str] = {}
    for index, (entry, key, entry_values) in enumerate(zip(entries, keys, values, strict=True)):
        if key not in fresh:
            fresh[key], first[key] = (entry, entry_values), index
            continue
        earlier = fresh[key]
        differ = body_differences(_body(*earlier), _body(entry, entry_values)) if check else []
        if differ:
            errors[f"[{index}].idempotency_key"] = (
                f"Entry [{first[key]}] has the same idempotency key '{entry.idempotency_key}' with "
                f"another {', '.join(differ)}: give each observation its own key."
            )
        repeated.append(index)
    if errors:
        raise ValidationError(errors)
    return fresh, repeated


def _reuse_check(
    entries: Sequence[ObservationEntry],
    keys: list[str],
    values: list[list[Any]],
    existing: dict[str, tuple[int, Body]],
) -> None:
    """Conflict (409) naming each entry whose key was stored with another body; only the keys that
    conflicted are compared."""
    refused = []
    for index, (entry, key, entry_values) in enumerate(zip(entries, keys, values, strict=True)):
        if key not in existing:
            continue
        stored_id, stored_body = existing[key]
        differ = body_differences(stored_body, _body(entry, entry_values))
        if differ:
            refused.append(
                f"{_label(index, entries)}key '{entry.idempotency_key}' was used for observation "
                f"{stored_id} with another {', '.join(differ)}"
            )
    if refused:
        raise Conflict(
            f"Idempotency key reused with a different body: {first_ten(refused, '; ')}. Nothing was stored; "
            "send a key again only to retry the same observation.",
            code="idempotency_key_reused",
        )


def _results_audited(entries: list[ObservationEntry], ids: list[int], source: str, user: User) -> None:
    """One audit entry for the request's new observations, on the lot of the first: how many, the
    lots and tests (numbers and codes, in the order met), the ids. No query but the entry's own."""
    lots = list(dict.fromkeys(entry.lot for entry in entries))
    tests = list(dict.fromkeys(entry.test.code for entry in entries))
    after = {
        "count": len(ids), "lots": [lot.number for lot in lots], "tests": tests, "observations": ids,
    }  # fmt: skip
    audit_record(user=user, action=AuditAction.RESULTS, instance=lots[0], after=after, source=source)


def _retests_link(fresh: dict[str, tuple[ObservationEntry, list[Any]]], created: dict[str, int]) -> None:
    """Point new retests at the results they replace. An UPDATE of the few rows that are retests
    (corrections are one at a time) keeps the column-array insert of ingestion as it is."""
    for key, (entry, _) in fresh.items():
        if entry.retest_of is not None and key in created:
            Observation.objects.filter(pk=created[key]).update(retest_of=entry.retest_of)


def _record_once(
    entries: Sequence[ObservationEntry],
    keys: list[str],
    values: list[list[Any]],
    source: str,
    user: User,
    queue: bool,
) -> RecordResult:
    # An MQTT key is the message's own hash (topic and payload): the same key is the same message
    # delivered again, even if its lot resolved otherwise since (a new current lot); the first stored
    # wins. Every other key is the client's, or a hash of the body itself.
    check = source != ObservationSource.MQTT
    with transaction.atomic():
        fresh, repeated = _repeats_check(entries, keys, values, check)
        created, existing = _insert_new(fresh, source, user, timezone.now())
        if check and existing:
            _reuse_check(entries, keys, values, existing)  # raising rolls back what was inserted
        _retests_link(fresh, created)
        new_ids = sorted(created.values())
        if new_ids:
            # Last in the transaction: the audit chain's head stays locked until the commit.
            _results_audited([fresh[key][0] for key in created], new_ids, source, user)
        if new_ids and queue:
            # robust: a broker that is down must not turn a stored batch into a 500; the sweep
            # (observations_requeue_stale) queues the rows later.
            transaction.on_commit(lambda: observations_queue(ids=new_ids), robust=True)
    ids = [existing[key][0] if key in existing else created[key] for key in keys]
    return RecordResult(
        ids=ids, duplicates=[existing[key][0] for key in keys if key in existing], repeated=repeated
    )


def observations_record(
    *,
    entries: Sequence[ObservationEntry],
    source: str,
    user: User,
    device: Device | None = None,
    queue: bool = True,
) -> RecordResult:
    """Store every entry as a `received` observation in one transaction and queue it on commit.

    queue=False: the caller processes the ids itself (POST /samples); if it dies before,
    the stale sweep queues them.

    Idempotent: an entry whose key is stored already with the same body creates nothing and
    answers the original id (so does a repeat within the batch, listed in `repeated`). A key
    stored with another body is a Conflict (409, code idempotency_key_reused); the same key with
    two bodies in one batch a ValidationError; either way nothing of the batch is stored. The
    edge has checked the shape, the lot and item, and that the poster may post for them.
    """
    if source not in ObservationSource.values:
        raise ValidationError({"source": f"Unknown source '{source}'."})
    if device is not None and device.user_id != user.pk:
        raise ValidationError({"device": "The device does not post as this user."})
    if not entries:
        raise ValidationError("No observations were given.", code="empty")
    values = [_json_safe(entry.values) for entry in entries]
    keys = [_key(entry, entry_values, user) for entry, entry_values in zip(entries, values, strict=True)]
    try:
        return _record_once(entries, keys, values, source, user, queue)
    except IntegrityError:
        # A concurrent retry stored one of the keys between our read and our insert: read again,
        # the keys it stored are now duplicates. A second conflict is a real error.
        return _record_once(entries, keys, values, source, user, queue)

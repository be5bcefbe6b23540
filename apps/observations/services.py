"""Writes of the observation domain: lots, items, and the observation pipeline.

Every function validates what the database cannot express in plain words and
raises django.core.exceptions.ValidationError keyed by field before anything is
written. Work for the `observations.in` queue is queued with
transaction.on_commit, never before the rows it names are committed.
"""

import datetime
import hashlib
import json
import math
import uuid
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone

from apps.audit.models import AuditAction
from apps.audit.services import Actor, audit_fields, audit_record
from apps.config.choices import PlanStatus
from apps.config.models import Characteristic, Device, PlanAssignment, Product, Test, TestPlan
from apps.config.roles import Role, has_role
from apps.config.selectors import ProductConfig, product_config_load
from apps.config.services import observation_confirm
from apps.observations.choices import (
    LOT_TRANSITIONS,
    LOT_WORKING,
    LotStatus,
    ObservationRejection,
    ObservationSource,
    ObservationStatus,
)
from apps.observations.idempotency import Body, body_differences, body_stored
from apps.observations.models import Item, Lot, Observation, Sample
from apps.observations.subgroups import calculations_queue_on_commit, subgroups_close_lot, subgroups_fold
from openspc.api import Conflict
from openspc.events import event, events_send_on_commit
from openspc.services import rows_update

MAX_ITEMS_PER_REQUEST = 5000
EXCLUSION_FIELDS = ["excluded", "exclusion_reason"]
# Ids per observations.process message: small enough that several workers share a big batch.
PROCESS_CHUNK = 500
# What observations_process reads and writes back of a row and its lot (a deferred field would cost a
# query on first use).
PROCESS_FIELDS = (
    "item_id", "lot_id", "test_id", "values", "observed_at", "received_at", "source", "status",
    "position", "hash", "lot_checksum", "sample_id",
    "lot__product_id", "lot__number", "lot__status",
)  # fmt: skip
# Rows per INSERT: keeps a 5,000-entry batch within every backend's limit on query parameters.
INSERT_BATCH = 1000

# --- Lots ----------------------------------------------------------------------------


def lot_validate(*, product: Product, number: str) -> str:
    """The lot number to store (trimmed), or a ValidationError saying why no such lot can open."""
    number = number.strip()
    if not number:
        raise ValidationError({"number": "Give the lot number."})
    if not product.active:
        raise ValidationError({"product": f"Product {product.code} is inactive and takes no new lots."})
    if Lot.objects.filter(product=product, number=number).exists():
        raise ValidationError({"number": f"Lot {number} of {product.code} exists."})
    return number


def lot_create(*, product: Product, number: str, user: User) -> Lot:
    number = lot_validate(product=product, number=number)
    return Lot.objects.create(product=product, number=number, created_by=user)


def lot_status_validate(*, lot: Lot, status: str) -> None:
    if status not in LotStatus.values:
        raise ValidationError({"status": f"Unknown status '{status}'."})
    allowed = LOT_TRANSITIONS[lot.status]
    if status not in allowed:
        targets = ", ".join(sorted(allowed)) or "nothing (it is final)"
        raise ValidationError(
            {"status": f"Lot {lot.number} is {lot.status}; it can move to {targets}, not to {status}."}
        )


@transaction.atomic
def lot_status_set(*, lot: Lot, status: str, user: User | None = None) -> Lot:
    """Move a lot to another status along the allowed transitions (see choices.LOT_TRANSITIONS).
    A released or rejected lot is announced as `lot.disposition` after commit."""
    lot = Lot.objects.select_for_update(of=("self",)).select_related("product").get(pk=lot.pk)
    lot_status_validate(lot=lot, status=status)
    lot.status = status
    lot.save(update_fields=["status", "updated_at"])
    if status not in LOT_WORKING:
        calculations_queue_on_commit(subgroups_close_lot(lot=lot))
        by_name = (user.get_full_name() or user.get_username()) if user is not None else None
        data = {
            "lot": lot.pk, "product": lot.product_id, "product_code": lot.product.code, "number": lot.number,
            "status": status, "by": user.pk if user is not None else None, "by_name": by_name,
        }  # fmt: skip
        events_send_on_commit(
            [event("lot.disposition", (f"lot.{lot.pk}", f"product.{lot.product_id}"), **data)]
        )
    return lot


def _lot_require_working(lot: Lot, field_name: str = "lot") -> None:
    if lot.status not in LOT_WORKING:
        raise ValidationError(
            {field_name: f"Lot {lot.number} is {lot.get_status_display().lower()}; its items cannot change."}
        )


# --- Items ---------------------------------------------------------------------------


def _serials_numbered(count: int, taken: set[str]) -> list[str]:
    """`count` serials 0001, 0002, … skipping those the lot already has."""
    width = max(4, len(str(len(taken) + count)))
    serials: list[str] = []
    number = 0
    while len(serials) < count:
        number += 1
        serial = f"{number:0{width}d}"
        if serial not in taken:
            serials.append(serial)
    return serials


def _serials_clean(serials: Sequence[str], taken: set[str]) -> list[str]:
    cleaned = [serial.strip() for serial in serials]
    if any(not serial for serial in cleaned):
        raise ValidationError({"serials": "A serial is empty."})
    repeated = sorted(serial for serial, times in Counter(cleaned).items() if times > 1)
    if repeated:
        raise ValidationError({"serials": f"Listed more than once: {', '.join(repeated[:10])}."})
    existing = sorted(set(cleaned) & taken)
    if existing:
        raise ValidationError({"serials": f"The lot already has: {', '.join(existing[:10])}."})
    return cleaned


@transaction.atomic
def items_create(*, lot: Lot, count: int | None = None, serials: Sequence[str] | None = None) -> list[Item]:
    """Add items to a lot in bulk: `count` auto-numbered ones, or the given serials."""
    if (count is None) == (serials is None):
        raise ValidationError("Give either count or serials, not both.", code="count_or_serials")
    # The lot row lock serialises additions to one lot, so auto-numbering cannot collide.
    lot = Lot.objects.select_for_update().get(pk=lot.pk)
    _lot_require_working(lot)
    taken = set(lot.items.values_list("serial", flat=True))
    if count is not None:
        if not 1 <= count <= MAX_ITEMS_PER_REQUEST:
            raise ValidationError({"count": f"Between 1 and {MAX_ITEMS_PER_REQUEST} items at a time."})
        chosen = _serials_numbered(count, taken)
    else:
        assert serials is not None
        if not 1 <= len(serials) <= MAX_ITEMS_PER_REQUEST:
            raise ValidationError({"serials": f"Between 1 and {MAX_ITEMS_PER_REQUEST} serials at a time."})
        chosen = _serials_clean(serials, taken)
    return Item.objects.bulk_create(Item(lot=lot, serial=serial) for serial in chosen)


def _items_require_working(items: Sequence[Item]) -> None:
    if not items:
        raise ValidationError({"items": "Name at least one item."})
    for item in items:
        if item.lot.status not in LOT_WORKING:
            raise ValidationError(
                {
                    "items": f"Item {item.serial}: lot {item.lot.number} is {item.lot.status}; "
                    "its items cannot change."
                }
            )


def _plan_check(*, plan: TestPlan, product_ids: set[int], day: datetime.date) -> None:
    label = f"{plan.code} v{plan.version}"
    if plan.status != PlanStatus.RELEASED:
        raise ValidationError({"plans": f"Test plan {label} is {plan.status}; only released plans apply."})
    effective = set(
        PlanAssignment.objects.effective_on(day)
        .filter(plan=plan, product_id__in=product_ids)
        .values_list("product_id", flat=True)
    )
    missing = product_ids - effective
    if missing:
        codes = ", ".join(sorted(Product.objects.filter(pk__in=missing).values_list("code", flat=True)))
        raise ValidationError({"plans": f"Test plan {label} is not assigned to {codes} on {day}."})


@transaction.atomic
def items_select_plans(*, items: Sequence[Item], plans: Sequence[TestPlan]) -> list[Item]:
    """Set which test plans apply to the items (replacing earlier choices).

    Only released plans assigned to each item's product and in effect today.
    """
    _items_require_working(items)
    if not plans:
        raise ValidationError({"plans": "Name at least one test plan."})
    product_ids = {item.lot.product_id for item in items}
    today = timezone.localdate()
    for plan in plans:
        _plan_check(plan=plan, product_ids=product_ids, day=today)
    through = Item.plans.through
    item_ids = [item.pk for item in items]
    through.objects.filter(item_id__in=item_ids).delete()
    through.objects.bulk_create(
        through(item_id=item_id, testplan_id=plan.pk) for item_id in item_ids for plan in plans
    )
    return list(items)


def items_assign(*, items: Sequence[Item], tester: User | None) -> list[Item]:
    """Hand items to a tester (or take them back with tester=None)."""
    _items_require_working(items)
    if tester is not None and not (tester.is_active and has_role(tester, Role.TESTER)):
        raise ValidationError(
            {"tester": f"{tester.get_username()} is not an active user with the Tester role."}
        )
    assigned_at = timezone.now() if tester is not None else None
    Item.objects.filter(pk__in=[item.pk for item in items]).update(tester=tester, assigned_at=assigned_at)
    for item in items:
        item.tester, item.assigned_at = tester, assigned_at
    return list(items)


def lot_open(
    *,
    product: Product,
    number: str,
    plans: Sequence[TestPlan],
    user: User,
    count: int | None = None,
    serials: Sequence[str] | None = None,
) -> Lot:
    """Open a lot with its items on the chosen test plans, all or nothing (the lots page's form).

    A ValidationError keyed by product, number, count, serials or plans leaves no row behind. Two
    leads opening the same lot number at once: the second gets the same words as the first check.
    """
    try:
        with transaction.atomic():
            lot = lot_create(product=product, number=number, user=user)
            items = items_create(lot=lot, count=count, serials=serials)
            items_select_plans(items=items, plans=plans)
    except IntegrityError:
        if Lot.objects.filter(product=product, number=number.strip()).exists():
            raise ValidationError({"number": f"Lot {number.strip()} of {product.code} exists."}) from None
        raise
    return lot


# --- Recording observations ------------------------------------------------------------


@dataclass(frozen=True)
class ObservationEntry:
    """One observation as the edge resolved it: what was measured, where, and the values as posted."""

    lot: Lot
    test: Test
    values: Sequence[Any]
    item: Item | None = None
    observed_at: datetime.datetime | None = None
    idempotency_key: str | None = None


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


# A batch in one statement of seven array parameters: an ORM bulk_create of 100 rows costs about four
# times the CPU (each field of each row prepared and quoted), and the device batch is the hot path.
_INSERT_UNNEST = """
    INSERT INTO observations_observation
        (item_id, lot_id, test_id, "values", observed_at, received_at, source, user_id, idempotency_key,
         status, reasons)
    SELECT item_id, lot_id, test_id, entry_values::jsonb, observed_at, %s, %s, %s, idempotency_key, %s, '[]'
    FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[], %s::timestamptz[], %s::text[])
        AS entry (item_id, lot_id, test_id, entry_values, observed_at, idempotency_key)
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


def _first_ten(labels: Sequence[str], separator: str = ", ") -> str:
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
            f"Idempotency key reused with a different body: {_first_ten(refused, '; ')}. Nothing was stored; "
            "send a key again only to retry the same observation.",
            code="idempotency_key_reused",
        )


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
        new_ids = sorted(created.values())
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


# --- Processing (the observations.in worker) ---------------------------------------------


@dataclass(frozen=True)
class ProcessResult:
    confirmed: int = 0
    rejected: int = 0


def _item_plan_ids(rows: Iterable[Observation]) -> dict[int, set[int]]:
    item_ids = {row.item_id for row in rows if row.item_id is not None}
    plans: dict[int, set[int]] = {item_id: set() for item_id in item_ids}
    pairs = Item.plans.through.objects.filter(item_id__in=item_ids).values_list("item_id", "testplan_id")
    for item_id, plan_id in pairs:
        plans[item_id].add(plan_id)
    return plans


def _verdict(
    row: Observation, config: ProductConfig, plan_ids: set[int] | None
) -> tuple[list[dict[str, str]], int | None, tuple[float, ...]]:
    """The rejection reasons (none: confirmed), the characteristic and the values of one observation."""
    result = observation_confirm(
        config=config,
        test_id=row.test_id,
        values=row.values if isinstance(row.values, list) else [row.values],
        plan_ids=plan_ids,
        observed_at=row.observed_at,
        received_at=row.received_at,
        # A tester records all replicates of a test on an item at once; a device streams values as
        # they come, and a lot-level subgroup (POST /samples) has the subgroup's size, not the plan's.
        check_replicates=row.source == ObservationSource.MANUAL and row.item_id is not None,
    )
    reasons = [{"code": str(r.code), "message": r.message} for r in result.reasons]
    if row.lot.status not in LOT_WORKING:
        message = f"lot {row.lot.number} was {row.lot.status} before this observation was processed"
        reasons.append({"code": str(ObservationRejection.LOT_CLOSED), "message": message})
    return reasons, (result.characteristic_id if not reasons else None), result.values


def observations_process(*, ids: Collection[int], more: int = 0) -> ProcessResult:
    """Confirm or reject the observations among `ids` that are still `received`, and with `more`,
    up to that many other `received` ones, oldest first.

    Safe to run twice and concurrently: rows already processed are not selected,
    and rows another worker holds are skipped (they are that worker's).

    `more` is what the observations.in task asks for: under a backlog one transaction then takes
    the rows of several queued messages, and those messages find nothing left to do. The
    product configuration, the feed locks and the writes are paid once for all of them instead
    of once per message (they were most of a 100-row message's cost). Rows another message
    brought in are not lost if this worker dies: its transaction rolls back, and they are
    processed by their own message or, if that has run already, by the stale sweep.
    """
    with transaction.atomic():
        # SELECT … FOR UPDATE SKIP LOCKED claims the rows for this transaction: a second worker
        # given the same ids (a redelivery, the stale sweep) skips them instead of waiting and
        # confirming them twice, and if this worker dies the rows stay `received` for the sweep.
        # A conditional update to a "processing" status would need a second sweep for rows
        # stuck in it. (SQLite has no row locks; its IMMEDIATE transactions serialise writers.)
        claim = (
            Observation.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=ObservationStatus.RECEIVED)
            .select_related("lot")
            .only(*PROCESS_FIELDS)
        )
        rows = list(claim.filter(pk__in=list(ids)).order_by("pk"))
        if more > 0:
            others = claim.exclude(pk__in=[row.pk for row in rows]).order_by("received_at", "pk")[:more]
            rows = sorted([*rows, *others], key=lambda row: row.pk)
        if not rows:
            return ProcessResult()
        plans = _item_plan_ids(rows)
        configs = {
            product_id: product_config_load(product_id=product_id)
            for product_id in {row.lot.product_id for row in rows}
        }
        now = timezone.now()
        values: dict[int, tuple[float, ...]] = {}
        for row in rows:
            plan_ids = plans.get(row.item_id) if row.item_id is not None else None
            row.reasons, row.characteristic_id, values[row.pk] = _verdict(
                row, configs[row.lot.product_id], plan_ids
            )
            row.status = ObservationStatus.REJECTED if row.reasons else ObservationStatus.CONFIRMED
            row.processed_at = now
        # A confirmed value of a test that has no characteristic (no SPC view) feeds no chart.
        confirmed = [row for row in rows if row.characteristic_id is not None]
        touched = subgroups_fold(rows=confirmed, values=values)
        fields = ["status", "reasons", "characteristic", "processed_at", "position", "hash", "lot_checksum"]
        rows_update(model=Observation, rows=rows, fields=[*fields, "sample"])
        calculations_queue_on_commit(touched)
    rejected = sum(1 for row in rows if row.status == ObservationStatus.REJECTED)
    return ProcessResult(confirmed=len(rows) - rejected, rejected=rejected)


def observations_requeue_stale(*, older_than: datetime.timedelta, limit: int = 50_000) -> int:
    """Queue again the observations left `received` longer than `older_than` (broker down, worker
    killed). Processing is idempotent, so queuing a row that is being processed is harmless."""
    cutoff = timezone.now() - older_than
    ids = list(
        Observation.objects.filter(status=ObservationStatus.RECEIVED, received_at__lt=cutoff)
        .order_by("received_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    observations_queue(ids=ids)
    return len(ids)


# --- The edge: posted entries resolved to lots, items and tests ---------------------------


def _where(index: int, name: str, batch: bool) -> str:
    """The error key of a field: `values`, or `[3].values` in a batch (the entry's index)."""
    return f"[{index}].{name}" if batch else name


def _lot_open_check(lot: Lot, key: str) -> None:
    if lot.status not in LOT_WORKING:
        raise ValidationError({key: f"Lot {lot.number} is {lot.status}; it takes no more observations."})


def item_entry_check(*, item: Item | None, user: User) -> None:
    """A tester enters data only for an item assigned to them (lot-level data comes from devices):
    PermissionDenied naming the item otherwise. Every tester endpoint checks each entry here."""
    if item is None:
        raise PermissionDenied("Testers enter data for an item assigned to them: name the item.")
    if item.tester_id != user.pk:
        raise PermissionDenied(
            f"Item {item.serial} of lot {item.lot.number} (id {item.pk}) is not assigned to you."
        )


def tester_entries_resolve(
    *, rows: Sequence[dict[str, Any]], user: User, batch: bool
) -> list[ObservationEntry]:
    """A tester's entries ({item, test, values, observed_at?, idempotency_key?}) with their objects.

    An unknown item or test is a ValidationError; an item not assigned to `user`
    is PermissionDenied naming the item; so is a closed lot (ValidationError).
    """
    items = Item.objects.select_related("lot").in_bulk({row["item"] for row in rows})
    tests = Test.objects.in_bulk({row["test"] for row in rows})
    entries = []
    for index, row in enumerate(rows):
        item, test = items.get(row["item"]), tests.get(row["test"])
        if item is None:
            raise ValidationError({_where(index, "item", batch): f"Item {row['item']} does not exist."})
        if test is None:
            raise ValidationError({_where(index, "test", batch): f"Test {row['test']} does not exist."})
        item_entry_check(item=item, user=user)
        _lot_open_check(item.lot, _where(index, "item", batch))
        entries.append(
            ObservationEntry(
                lot=item.lot,
                item=item,
                test=test,
                values=row["values"],
                observed_at=row.get("observed_at"),
                idempotency_key=row.get("idempotency_key"),
            )
        )
    return entries


# What device entries may name, looked up once per batch: characteristics by id, products and tests by code.
Targets = tuple[dict[int, Characteristic], dict[str, Product], dict[str, Test]]


def _device_targets(rows: Sequence[dict[str, Any]]) -> Targets:
    characteristics = Characteristic.objects.select_related("product", "test").in_bulk(
        {row["characteristic"] for row in rows if row.get("characteristic") is not None}
    )
    products = Product.objects.in_bulk(
        {row["product"] for row in rows if row.get("product")}, field_name="code"
    )
    tests = Test.objects.in_bulk({row["test"] for row in rows if row.get("test")}, field_name="code")
    return characteristics, products, tests


def _device_product_test(
    row: dict[str, Any], index: int, batch: bool, targets: Targets
) -> tuple[Product, Test]:
    characteristics, products, tests = targets
    if row.get("characteristic") is not None:
        characteristic = characteristics.get(row["characteristic"])
        if characteristic is None:
            key = _where(index, "characteristic", batch)
            raise ValidationError({key: f"Characteristic {row['characteristic']} does not exist."})
        return characteristic.product, characteristic.test
    product, test = products.get(row["product"]), tests.get(row["test"])
    if product is None:
        raise ValidationError({_where(index, "product", batch): f"Product {row['product']} does not exist."})
    if test is None:
        raise ValidationError({_where(index, "test", batch): f"Test {row['test']} does not exist."})
    return product, test


def _device_binding_check(device: Device, resolved: Sequence[tuple[Product, Test]], batch: bool) -> None:
    """PermissionDenied naming every entry outside what the device is bound to (its characteristics
    and every test of its products), before anything about lots is looked up or stored."""
    products = set(device.products.values_list("pk", flat=True))
    pairs = set(device.characteristics.values_list("product_id", "test_id"))
    labels = [
        f"{f'[{index}] ' if batch else ''}{product.code} / {test.code}"
        for index, (product, test) in enumerate(resolved)
        if product.pk not in products and (product.pk, test.pk) not in pairs
    ]
    if labels:
        raise PermissionDenied(
            f"Device {device.name} is not bound to {_first_ten(labels)}; nothing was stored. A quality "
            "specialist binds a device to characteristics or products at /api/v1/devices/ or in the admin."
        )


def _tester_items_check(entries: Sequence[ObservationEntry], batch: bool) -> None:
    """A tester's item takes the tester's results only: a device posting onto it would put a result
    on the tester's item (counted on their worklist and in the lot's results) that they never took.
    The device posts to the lot instead, or the item is taken back from the tester first."""
    labels = [
        f"{f'[{index}] ' if batch else ''}item {entry.item.serial} of lot {entry.lot.number}"
        for index, entry in enumerate(entries)
        if entry.item is not None and entry.item.tester_id is not None
    ]
    if labels:
        raise PermissionDenied(
            f"Assigned to a tester: {_first_ten(labels)}; devices do not post onto a tester's items, "
            "nothing was stored. Post without the item (to the lot), or take the item back from the tester."
        )


def device_entries_resolve(
    *, rows: Sequence[dict[str, Any]], batch: bool, device: Device
) -> list[ObservationEntry]:
    """A device's entries ({characteristic | product + test, lot, item?, values, …}) with their objects.

    Codes are looked up in a few queries for the whole batch. Every entry must be within what
    `device` is bound to and name no item assigned to a tester (PermissionDenied naming each
    refused entry). The lot must exist (devices do not open lots) and be open or in testing;
    an item serial must exist in it.
    """
    targets = _device_targets(rows)
    resolved = [_device_product_test(row, index, batch, targets) for index, row in enumerate(rows)]
    _device_binding_check(device, resolved, batch)
    product_ids = {product.pk for product, _ in resolved}
    lots = {
        (lot.product_id, lot.number): lot
        for lot in Lot.objects.filter(product_id__in=product_ids, number__in={row["lot"] for row in rows})
    }
    serials = {row["item"] for row in rows if row.get("item")}
    items = {
        (item.lot_id, item.serial): item
        for item in Item.objects.filter(lot__in=list(lots.values()), serial__in=serials)
    }
    entries = []
    for index, (row, (product, test)) in enumerate(zip(rows, resolved, strict=True)):
        lot = lots.get((product.pk, row["lot"]))
        if lot is None:
            message = f"Lot {row['lot']} of product {product.code} does not exist."
            raise ValidationError({_where(index, "lot", batch): message})
        _lot_open_check(lot, _where(index, "lot", batch))
        item = None
        if row.get("item"):
            item = items.get((lot.pk, row["item"]))
            if item is None:
                message = f"Item {row['item']} does not exist in lot {lot.number}."
                raise ValidationError({_where(index, "item", batch): message})
        entries.append(
            ObservationEntry(
                lot=lot,
                item=item,
                test=test,
                values=row["values"],
                observed_at=row.get("observed_at"),
                idempotency_key=row.get("idempotency_key"),
            )
        )
    _tester_items_check(entries, batch)
    return entries


# --- Samples left out of control limits -------------------------------------------------------


@transaction.atomic
def sample_exclude(*, sample: Sample, excluded: bool, reason: str, actor: Actor) -> Sample:
    """Leave a sample out of control-limit calculations (an assignable cause, a bad run), or take it
    back in. Excluding needs a reason; both are audited. The chart still shows the sample and its
    violations; the next recalculation of the limits leaves it out (or uses it again)."""
    reason = reason.strip()
    if excluded and not reason:
        raise ValidationError({"reason": "Say why the sample is left out of the limits."})
    locked = Sample.objects.select_for_update().get(pk=sample.pk)
    if locked.excluded == excluded:
        state = "excluded already" if excluded else "not excluded"
        raise ValidationError({"excluded": f"Sample {locked.sequence} is {state}."})
    before = audit_fields(locked, EXCLUSION_FIELDS)
    locked.excluded = excluded
    locked.exclusion_reason = reason if excluded else ""
    locked.save(update_fields=EXCLUSION_FIELDS)
    audit_record(
        user=actor.user, action=AuditAction.EXCLUDE if excluded else AuditAction.INCLUDE, instance=locked,
        before=before, after=audit_fields(locked, EXCLUSION_FIELDS), reason=reason, source=actor.source,
    )  # fmt: skip
    return locked

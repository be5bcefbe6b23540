"""Processing (the observations.in worker): received observations confirmed or rejected, and the
confirmed ones grouped into subgroups."""

import datetime
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from apps.config.confirmation import observation_confirm
from apps.config.selectors import ProductConfig, product_config
from apps.config.spec import any_outside_spec, near_spec, outside_spec
from apps.observations.choices import LOT_WORKING, ObservationRejection, ObservationSource, ObservationStatus
from apps.observations.handoff import calculations_queue_on_commit, oos_investigations_queue_on_commit
from apps.observations.models import Item, Observation, Sample
from apps.observations.services.plant import plant_messages_store
from apps.observations.services.record import observations_queue
from apps.observations.subgroups import subgroups_fold
from openspc.events import Event, EventType, event, events_send_on_commit
from openspc.rows import RowsUpdate, rows_update_together

# What observations_process reads and writes back of a row and its lot (a deferred field would cost a
# query on first use).
PROCESS_FIELDS = (
    "item_id", "lot_id", "test_id", "values", "observed_at", "received_at", "source", "status",
    "position", "hash", "lot_checksum", "sample_id", "historical", "late",
    "lot__product_id", "lot__number", "lot__status",
)  # fmt: skip


# Rows one observations.in transaction takes under a backlog (its message's, then the oldest others):
# as many as a calculation takes in one. Each transaction pays the configuration, the feed locks and
# a statement per table once, and a Sparkplug message touches every characteristic of its node.
PROCESS_TAKE = 2000


@dataclass(frozen=True)
class ProcessResult:
    confirmed: int = 0
    rejected: int = 0
    # The rows processed, as written (only PROCESS_FIELDS read), and the samples they made: a
    # hand-over to the calculation that follows (POST /samples), not part of the outcome.
    rows: tuple[Observation, ...] = field(default=(), compare=False, repr=False)
    samples: tuple[Sample, ...] = field(default=(), compare=False, repr=False)


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


def _out_of_spec(
    confirmed: Iterable[Observation], values: dict[int, tuple[float, ...]], configs: dict[int, ProductConfig]
) -> list[tuple[Observation, float | None, float | None]]:
    """The confirmed results with a value outside the specification limits (those of the
    configuration the rows were confirmed with), with those limits."""
    outside = []
    for row in confirmed:
        assert row.characteristic_id is not None
        limits = configs[row.lot.product_id].spec_limits.get(row.characteristic_id)
        if limits is not None and any_outside_spec(values[row.pk], *limits):
            outside.append((row, *limits))
    return outside


def _near_spec(
    confirmed: Iterable[Observation], values: dict[int, tuple[float, ...]], configs: dict[int, ProductConfig]
) -> list[Event]:
    """`spec.warning` for each result (not historical, not out of spec) with a value in its
    characteristic's warning band, inside a spec limit (docs/alarms.md, "Spec alarms")."""
    warnings = []
    for row in confirmed:
        config = configs[row.lot.product_id]
        margin = config.spec_warnings.get(row.characteristic_id or 0)
        if margin is None or row.historical:
            continue
        lsl, usl = config.spec_limits[row.characteristic_id or 0]
        near = [v for v in values[row.pk] if near_spec(float(v), lsl, usl, margin)]
        if near and not any_outside_spec(values[row.pk], lsl, usl):
            alarm = _spec_alarm(row, lsl, usl, values[row.pk], name=EventType.SPEC_WARNING)
            alarm[1].update(near=near, margin=margin)
            warnings.append(alarm)
    return warnings


def _manual(outside: Iterable[tuple[Observation, float | None, float | None]]) -> list[int]:
    """Of the results out of spec, those a tester entered on an item: each opens an out-of-spec
    investigation (apps.records). Device and MQTT data never do."""
    return [
        row.pk for row, _, _ in outside if row.source == ObservationSource.MANUAL and row.item_id is not None
    ]


def _spec_alarm(
    row: Observation,
    lsl: float | None,
    usl: float | None,
    values: tuple[float, ...],
    *,
    name: EventType = EventType.SPEC_VIOLATED,
) -> Event:
    groups = (f"characteristic.{row.characteristic_id}", f"product.{row.lot.product_id}", f"lot.{row.lot_id}")
    data = {
        "id": row.pk, "characteristic": row.characteristic_id, "product": row.lot.product_id,
        "lot": row.lot_id, "lot_number": row.lot.number, "item": row.item_id, "values": list(values),
        "lsl": lsl, "usl": usl,
        "outside": [v for v in values if outside_spec(float(v), lsl, usl)], "source": row.source,
    }  # fmt: skip
    return event(name, groups, **data)


def _spec_alarms(
    outside: Iterable[tuple[Observation, float | None, float | None]], values: dict[int, tuple[float, ...]]
) -> list[Event]:
    """`spec.violated` for each result out of spec, whatever its source (docs/alarms.md, "Spec
    alarms"): an alarm of its own, apart from the control chart's rules. History being loaded
    (historical results) raises none: it is not happening now."""
    return [_spec_alarm(row, lsl, usl, values[row.pk]) for row, lsl, usl in outside if not row.historical]


def observations_process(*, ids: Collection[int], up_to: int = 0, calculate: bool = True) -> ProcessResult:
    """Confirm or reject the observations among `ids` that are still `received`, and with `up_to`,
    other `received` ones, oldest first, until the transaction holds that many rows.

    calculate=False: the caller runs the calculation of what this folds itself, right after
    (POST /samples), so none is queued for it: a queued one was a second run per sample, on a
    worker, taking the same chart state lock the next request waits for. If the caller dies
    between the two, the calculation sweep (characteristics_behind) takes the sample in.

    Safe to run twice and concurrently: rows already processed are not selected,
    and rows another worker holds are skipped (they are that worker's).

    `up_to` is what the observations.in task asks for: under a backlog one transaction then takes
    the rows of several queued messages, and those messages find nothing left to do. The
    product configuration, the feed locks and the writes are paid once for all of them instead
    of once per message (they were most of a 100-row message's cost). It counts the rows found,
    not the ids given. A message none of whose rows are left (another transaction took or holds
    them) takes no others: each waiting row has a message of its own, and the many messages a
    backlog leaves behind then cost one statement each instead of claiming newer rows only to
    wait for the feeds the other transaction holds. Rows another message brought in are not lost
    if this worker dies: its transaction rolls back, and they are processed by their own message
    or, if that has run already, by the stale sweep.
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
        if rows and up_to > len(rows):
            others = claim.exclude(pk__in=[row.pk for row in rows]).order_by("received_at", "pk")
            rows = sorted([*rows, *others[: up_to - len(rows)]], key=lambda row: row.pk)
        if not rows:
            return ProcessResult()
        plans = _item_plan_ids(rows)
        configs = {
            product_id: product_config(product_id=product_id)
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
        folded = subgroups_fold(rows=confirmed, values=values)
        fields = ["status", "reasons", "characteristic", "processed_at", "position", "hash", "lot_checksum"]
        # The rows and the feeds they moved: one statement.
        observations = RowsUpdate(model=Observation, rows=rows, fields=[*fields, "sample", "late"])
        rows_update_together([observations, *([folded.feeds] if folded.feeds else [])])
        if calculate:
            calculations_queue_on_commit(folded.characteristic_ids)
        outside = _out_of_spec(confirmed, values, configs)
        oos_investigations_queue_on_commit(_manual(outside))
        alarms = [*_spec_alarms(outside, values), *_near_spec(confirmed, values, configs)]
        plant_messages_store(alarms)
        events_send_on_commit(alarms)
    rejected = sum(1 for row in rows if row.status == ObservationStatus.REJECTED)
    return ProcessResult(
        confirmed=len(rows) - rejected, rejected=rejected, rows=tuple(rows), samples=tuple(folded.samples)
    )


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

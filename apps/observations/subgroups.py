"""Services that fold confirmed observations into subgroups (samples) and keep the lot checksum.

Both run while the characteristic's SubgroupFeed row is locked, inside the
transaction that confirms the observations, so a characteristic's values are
numbered, hashed and grouped in one order however many workers run.

Subgroup formation (DESIGN.md "Data flow", step 3; why here: docs/adr/0011):

* Values of one characteristic and one lot form subgroups in arrival order; a
  subgroup never mixes lots.
* Historical values (Sparkplug store and forward) confirmed together are folded in
  the order they were measured (then id), in the places the batch's historical
  values take. One measured before the chart's last point is late: it stays
  confirmed, numbered and hashed, on no sample (docs/adr/0016).
* An observation that carries exactly `subgroup_size` values (a tester's replicates
  of one item, a POST /samples) is a subgroup by itself and is never split.
* Smaller observations (a device streaming single values) fill the lot's pending
  buffer until it holds `subgroup_size` values.
* Attribute tests (defectives, defects): every value is the count found in one
  inspection of `subgroup_size` units, so every value is a sample by itself with
  n = subgroup_size.
* When a lot is closed its pending values become an undersized sample.
* A characteristic with a `subgroup_timeout` does not wait for ever: a buffer whose
  first value was folded longer ago than that is flushed (an undersized sample) or
  discarded (its observations stay confirmed, on no sample), by a periodic sweep.

Lot checksum (DESIGN.md "Lot checksum"): every confirmed observation gets a 64-bit
hash of (id, values); `lot_checksum` on an observation is the sum mod 2^64 of the
hashes of its lot's confirmed observations of the same test, up to and including
it. The calculation worker compares it with the checksum its lot statistics hold.
"""

import datetime
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from apps.config.choices import SubgroupTimeoutPolicy, TestKind
from apps.config.models import Characteristic
from apps.config.selectors import characteristics_kept
from apps.observations.checksum import checksum_add, observation_hash
from apps.observations.choices import LOT_WORKING, ObservationStatus
from apps.observations.handoff import calculations_queue_on_commit
from apps.observations.models import Lot, Observation, Sample, SubgroupFeed
from openspc.rows import RowsUpdate, rows_insert, rows_locked, rows_update, rows_update_together

logger = logging.getLogger(__name__)


@dataclass
class _Buffer:
    values: list[float] = field(default_factory=list)
    observations: list[int] = field(default_factory=list)
    since: str | None = None  # ISO 8601 UTC: when its first value was folded (None: not yet known)


def _sd(values: Sequence[float], mean: float) -> float:
    """The sample standard deviation, two-pass as the SPC engine computes it (statistics.stdev is
    exact, in fractions, and took a tenth of the observations.in worker's time)."""
    return math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (len(values) - 1))


def _sample(
    characteristic: Characteristic, sequence: int, lot_id: int, buffer: _Buffer, *, undersized: bool = False
) -> Sample:
    values = buffer.values
    attribute = characteristic.test.kind != TestKind.VARIABLE
    n = characteristic.subgroup_size if attribute else len(values)
    several = len(values) > 1
    mean = math.fsum(values) / len(values)
    return Sample(
        characteristic=characteristic, sequence=sequence, lot_id=lot_id, values=list(values),
        observation_ids=list(dict.fromkeys(buffer.observations)), n=n, mean=mean,
        range=max(values) - min(values) if several else None,
        sd=_sd(values, mean) if several else None, undersized=undersized,
    )  # fmt: skip


class _Folder:
    """Folds one characteristic's newly confirmed observations into samples (feed row locked).

    `now` is the time of the transaction: a buffer that starts in it is stamped with it."""

    def __init__(self, feed: SubgroupFeed, characteristic: Characteristic, *, now: datetime.datetime) -> None:
        self.feed = feed
        self.characteristic = characteristic
        self.now = now
        attribute = characteristic.test.kind != TestKind.VARIABLE
        self.size = 1 if attribute else characteristic.subgroup_size
        self.samples: list[Sample] = []
        self.completes: dict[int, int] = {}  # observation id -> index in self.samples of its last value
        # When the chart's last point was measured; read only once a historical value asks.
        self.last_point_at: datetime.datetime | None = None
        self.last_point_known = False

    def buffer(self, lot_id: int) -> _Buffer:
        raw = self.feed.pending.get(str(lot_id)) or {}
        return _Buffer(list(raw.get("values", [])), list(raw.get("observations", [])), raw.get("since"))

    def emit(self, lot_id: int, buffer: _Buffer, *, undersized: bool = False) -> None:
        self.feed.last_sequence += 1
        self.samples.append(_sample(self.characteristic, self.feed.last_sequence, lot_id, buffer,
                                    undersized=undersized))  # fmt: skip
        for observation_id in buffer.observations:
            self.completes[observation_id] = len(self.samples) - 1

    def add(self, row: Observation, values: Sequence[float]) -> None:
        if len(values) == self.size:  # a whole subgroup: never split, never mixed with a buffer
            self.emit(row.lot_id, _Buffer(list(values), [row.pk] * len(values)))
        else:
            buffer = self.buffer(row.lot_id)
            for value in values:
                buffer.values.append(value)
                buffer.observations.append(row.pk)
                if len(buffer.values) == self.size:
                    self.emit(row.lot_id, buffer)
                    buffer = _Buffer()
            self.keep(row.lot_id, buffer)
        if row.pk in self.completes:  # it completed a sample: the chart's newest point
            self.last_point_at, self.last_point_known = row.observed_at, True

    def late(self, row: Observation) -> bool:
        """Whether a historical value was measured before the chart's last point (the newest
        observation folded into a sample); an ordinary value never is, and costs no query."""
        if not row.historical:
            return False
        if not self.last_point_known:
            self.last_point_at = (
                Observation.objects.filter(
                    characteristic_id=self.characteristic.pk,
                    status=ObservationStatus.CONFIRMED,
                    sample__isnull=False,
                )
                .order_by("-position")
                .values_list("observed_at", flat=True)
                .first()
            )
            self.last_point_known = True
        return self.last_point_at is not None and row.observed_at < self.last_point_at

    def flush(self, lot_id: int) -> None:
        """The lot's unfinished subgroup becomes an undersized sample; the lot goes on taking values."""
        buffer = self.buffer(lot_id)
        if buffer.values:
            self.emit(lot_id, buffer, undersized=True)
        self.feed.pending.pop(str(lot_id), None)

    def close(self, lot_id: int) -> None:
        """The lot takes no more values: its unfinished subgroup becomes an undersized sample."""
        self.flush(lot_id)
        self.feed.checksums.pop(str(lot_id), None)  # it takes no more values

    def discard(self, lot_id: int) -> _Buffer:
        """Drop the lot's unfinished subgroup: its observations stay confirmed, on no new sample."""
        buffer = self.buffer(lot_id)
        self.feed.pending.pop(str(lot_id), None)
        return buffer

    def keep(self, lot_id: int, buffer: _Buffer) -> None:
        if buffer.values:
            self.feed.pending[str(lot_id)] = {
                "values": buffer.values, "observations": buffer.observations,
                "since": buffer.since or self.now.isoformat(),
            }  # fmt: skip
        else:
            self.feed.pending.pop(str(lot_id), None)


def _folders_save(folders: Sequence[_Folder], rows: dict[int, Observation]) -> RowsUpdate:
    """Store the folders' samples (one statement for all characteristics), and point each
    observation at the sample that holds its last value; the feeds' update is returned, for the
    caller to run with its own (rows_update_together)."""
    rows_insert(model=Sample, rows=[sample for folder in folders for sample in folder.samples])
    elsewhere: list[Observation] = []
    for folder in folders:
        for observation_id, index in folder.completes.items():
            sample_id = folder.samples[index].pk
            if observation_id in rows:
                rows[observation_id].sample_id = sample_id
            else:  # confirmed in an earlier batch, waiting in the buffer
                elsewhere.append(Observation(pk=observation_id, sample_id=sample_id))
    # One statement for all of them: a device streaming single values completes most samples with
    # values confirmed in earlier batches, so this is about one row per characteristic per batch.
    rows_update(model=Observation, rows=elsewhere, fields=["sample"])
    feeds = [folder.feed for folder in folders]
    return RowsUpdate(
        model=SubgroupFeed, rows=feeds, fields=["last_position", "last_sequence", "pending", "checksums"]
    )


def _feeds_locked(characteristic_ids: Iterable[int]) -> list[SubgroupFeed]:
    """The feed rows of these characteristics, created if missing, locked in id order (no deadlock)."""
    return rows_locked(model=SubgroupFeed, ids=characteristic_ids)


def _lot_checksum(feed: SubgroupFeed, characteristic: Characteristic, lot_id: int) -> int:
    """The lot's checksum for the characteristic's test so far (0 for none yet): kept on the feed,
    else read from the lot's newest numbered observation."""
    kept = feed.checksums.get(str(lot_id))
    if kept is not None:
        return int(kept)
    latest = (
        Observation.objects.filter(lot_id=lot_id, test_id=characteristic.test_id, position__isnull=False)
        .exclude(status=ObservationStatus.INVALIDATED)  # its running checksum still counts itself
        .order_by("-position")
        .values_list("lot_checksum", flat=True)
        .first()
    )
    return latest or 0


def _fold_order(rows: Sequence[Observation]) -> list[Observation]:
    """The order one characteristic's rows are folded in: as given, except that the historical rows
    fill the places of the historical rows in the order they were measured (then id), so a store
    and forward flush sent out of order is charted by its times."""
    historical = [row for row in rows if row.historical]
    if len(historical) < 2:
        return list(rows)
    by_time = iter(sorted(historical, key=lambda row: (row.observed_at, row.pk)))
    return [next(by_time) if row.historical else row for row in rows]


@dataclass(frozen=True)
class Folded:
    characteristic_ids: list[int]  # those that got new samples or observations
    samples: list[Sample]  # the new samples, as stored
    feeds: RowsUpdate | None = None  # for the caller to run, with its update of the rows


def subgroups_fold(*, rows: Sequence[Observation], values: Mapping[int, Sequence[float]]) -> Folded:
    """Number, hash and group newly confirmed observations (in the order given, historical ones by
    their time). A late row is numbered and hashed but on no sample. The caller saves `rows`
    (position, hash, lot_checksum, sample, late) and the feeds (`feeds`), and must be in a
    transaction."""
    by_characteristic: dict[int, list[Observation]] = defaultdict(list)
    for row in rows:
        assert row.characteristic_id is not None
        by_characteristic[row.characteristic_id].append(row)
    if not by_characteristic:
        return Folded([], [])
    characteristics = characteristics_kept(list(by_characteristic))
    in_batch = {row.pk: row for row in rows}
    feeds = list(_feeds_locked(by_characteristic))
    now = timezone.now()
    # Read after the feed locks are held: a lot closed since these rows were claimed has flushed
    # its buffers already (subgroups_close_lot takes the same locks), so its values close here.
    closed = set(
        Lot.objects.filter(pk__in={row.lot_id for row in rows})
        .exclude(status__in=LOT_WORKING)
        .values_list("pk", flat=True)
    )
    folders = []
    for feed in feeds:
        characteristic = characteristics[feed.pk]
        folder = _Folder(feed, characteristic, now=now)
        mine = by_characteristic[feed.pk]
        lot_ids = {row.lot_id for row in mine}
        checksums = {lot_id: _lot_checksum(feed, characteristic, lot_id) for lot_id in lot_ids}
        for row in _fold_order(mine):
            feed.last_position += 1
            row.position = feed.last_position
            row.hash = observation_hash(observation_id=row.pk, values=values[row.pk])
            row.lot_checksum = checksums[row.lot_id] = checksum_add(checksums[row.lot_id], row.hash)
            if folder.late(row):
                row.late = True  # in the lot's statistics and checksum, as a discarded subgroup's values
            else:
                folder.add(row, values[row.pk])
        for lot_id in lot_ids:
            if lot_id in closed:
                folder.close(lot_id)
            else:
                feed.checksums[str(lot_id)] = checksums[lot_id]
        folders.append(folder)
    feeds_update = _folders_save(folders, in_batch)
    samples = [sample for folder in folders for sample in folder.samples]
    return Folded(sorted(by_characteristic), samples, feeds_update)


def subgroups_close_lot(*, lot: Lot) -> list[int]:
    """Turn the lot's unfinished subgroups into undersized samples (the lot takes no more values).
    Returns the characteristics that got one. Call inside the transaction that closes the lot."""
    key = str(lot.pk)
    candidates = SubgroupFeed.objects.filter(characteristic__product_id=lot.product_id).values_list(
        "pk", flat=True
    )
    feeds = [feed for feed in _feeds_locked(candidates) if key in feed.pending or key in feed.checksums]
    characteristics = Characteristic.objects.select_related("test").in_bulk([feed.pk for feed in feeds])
    now = timezone.now()
    folders = [_Folder(feed, characteristics[feed.pk], now=now) for feed in feeds]
    for folder in folders:
        folder.close(lot.pk)
    rows_update_together([_folders_save(folders, {})])
    return [folder.feed.pk for folder in folders if folder.samples]


def _waited(since: str, *, timeout: int | None, now: datetime.datetime) -> bool:
    """Whether a buffer whose first value was folded at `since` has waited `timeout` seconds
    (None: no limit)."""
    if timeout is None:
        return False
    return now - datetime.datetime.fromisoformat(since) >= datetime.timedelta(seconds=timeout)


def _feeds_to_sweep(now: datetime.datetime) -> list[int]:
    """The characteristics with a timeout whose feed has a buffer to stamp or to end (read unlocked:
    the sweep looks again under the lock)."""
    feeds = (
        SubgroupFeed.objects.filter(characteristic__subgroup_timeout__isnull=False)
        .exclude(pending={})
        .values_list("pk", "pending", "characteristic__subgroup_timeout")
    )
    return [
        pk
        for pk, pending, timeout in feeds
        if any(
            "since" not in entry or _waited(entry["since"], timeout=timeout, now=now)
            for entry in pending.values()
        )
    ]


@dataclass
class _Discarded:
    characteristic_id: int
    lot_id: int
    buffer: _Buffer


def _feed_sweep(folder: _Folder, discarded: list[_Discarded]) -> bool:
    """End the feed's buffers that waited the characteristic's timeout, by its policy; stamp those
    written before buffers had a start time (they count from now). Whether the feed changed."""
    timeout = folder.characteristic.subgroup_timeout
    if timeout is None:  # unset since the unlocked read
        return False
    changed = False
    for key, entry in list(folder.feed.pending.items()):
        if "since" not in entry:
            entry["since"] = folder.now.isoformat()
        elif not _waited(entry["since"], timeout=timeout, now=folder.now):
            continue
        elif folder.characteristic.subgroup_timeout_policy == SubgroupTimeoutPolicy.DISCARD:
            discarded.append(_Discarded(folder.characteristic.pk, int(key), folder.discard(int(key))))
        else:
            folder.flush(int(key))
        changed = True
    return changed


def subgroups_timeout_sweep(*, now: datetime.datetime | None = None) -> list[int]:
    """End the unfinished subgroups that waited longer than their characteristic's
    `subgroup_timeout`: flushed as undersized samples (numbered like any other; the lot goes on
    taking values) or discarded (the observations stay confirmed, on no sample), by the
    characteristic's `subgroup_timeout_policy`. Returns the characteristics that got a sample
    and queues their calculation. Runs in its own transaction, under the feed locks that
    folding takes, so it may run at any time, as often as wanted."""
    now = now or timezone.now()
    due = _feeds_to_sweep(now)
    if not due:
        return []
    discarded: list[_Discarded] = []
    with transaction.atomic():
        feeds = list(_feeds_locked(due))
        characteristics = Characteristic.objects.select_related("test").in_bulk([feed.pk for feed in feeds])
        folders = [_Folder(feed, characteristics[feed.pk], now=now) for feed in feeds]
        changed = [folder for folder in folders if _feed_sweep(folder, discarded)]
        rows_update_together([_folders_save(changed, {})])
        flushed = [folder.feed.pk for folder in changed if folder.samples]
        calculations_queue_on_commit(flushed)
    for item in discarded:  # once committed
        logger.info(
            "Subgroup timeout: discarded %d value(s) of characteristic %d, lot %d, waiting since %s "
            "(observations %s stay confirmed, on no sample)",
            len(item.buffer.values), item.characteristic_id, item.lot_id, item.buffer.since,
            sorted(set(item.buffer.observations)),
        )  # fmt: skip
    return flushed

"""Services that fold confirmed observations into subgroups (samples) and keep the lot checksum.

Both run while the characteristic's SubgroupFeed row is locked, inside the
transaction that confirms the observations, so a characteristic's values are
numbered, hashed and grouped in one order however many workers run.

Subgroup formation (DESIGN.md "Data flow", step 3):

* Values of one characteristic and one lot form subgroups in arrival order; a
  subgroup never mixes lots.
* An observation that carries exactly `subgroup_size` values (a tester's replicates
  of one item, a POST /samples) is a subgroup by itself and is never split.
* Smaller observations (a device streaming single values) fill the lot's pending
  buffer until it holds `subgroup_size` values.
* Attribute tests (defectives, defects): every value is the count found in one
  inspection of `subgroup_size` units, so every value is a sample by itself with
  n = subgroup_size.
* When a lot is closed its pending values become an undersized sample.

Lot checksum (DESIGN.md "Lot checksum"): every confirmed observation gets a 64-bit
hash of (id, values); `lot_checksum` on an observation is the sum mod 2^64 of the
hashes of its lot's confirmed observations of the same test, up to and including
it. The calculation worker compares it with the checksum its lot statistics hold.
"""

import contextlib
import hashlib
import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from celery import current_app
from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet

from apps.config.choices import TestKind
from apps.config.models import Characteristic
from apps.observations.choices import LOT_WORKING
from apps.observations.models import Lot, Observation, Sample, SubgroupFeed
from openspc.services import rows_update

_MOD = 1 << 64
_SIGN = 1 << 63
# The calculation worker's task, by name: apps.calculations sits above this app (DESIGN.md).
CALCULATION_TASK = "calculations.apply"


def _signed(value: int) -> int:
    """An unsigned 64-bit number as the signed one a BIGINT column holds (same bits)."""
    value %= _MOD
    return value - _MOD if value >= _SIGN else value


def observation_hash(*, observation_id: int, values: Sequence[float]) -> int:
    """The 64-bit hash of (id, values), as a signed integer."""
    payload = json.dumps([observation_id, [float(v) for v in values]], separators=(",", ":"))
    digest = hashlib.blake2b(payload.encode(), digest_size=8).digest()
    return _signed(int.from_bytes(digest, "big"))


def checksum_add(checksum: int, *hashes: int) -> int:
    """checksum + hashes mod 2^64 (order does not matter), as a signed integer."""
    return _signed(checksum + sum(hashes))


def checksum_of(hashes: Iterable[int]) -> int:
    return checksum_add(0, *hashes)


@dataclass
class _Buffer:
    values: list[float] = field(default_factory=list)
    observations: list[int] = field(default_factory=list)


def _sample(
    characteristic: Characteristic, sequence: int, lot_id: int, buffer: _Buffer, *, undersized: bool = False
) -> Sample:
    values = buffer.values
    attribute = characteristic.test.kind != TestKind.VARIABLE
    n = characteristic.subgroup_size if attribute else len(values)
    several = len(values) > 1
    return Sample(
        characteristic=characteristic, sequence=sequence, lot_id=lot_id, values=list(values),
        observation_ids=list(dict.fromkeys(buffer.observations)), n=n, mean=math.fsum(values) / len(values),
        range=max(values) - min(values) if several else None,
        sd=statistics.stdev(values) if several else None, undersized=undersized,
    )  # fmt: skip


class _Folder:
    """Folds one characteristic's newly confirmed observations into samples (feed row locked)."""

    def __init__(self, feed: SubgroupFeed, characteristic: Characteristic) -> None:
        self.feed = feed
        self.characteristic = characteristic
        attribute = characteristic.test.kind != TestKind.VARIABLE
        self.size = 1 if attribute else characteristic.subgroup_size
        self.samples: list[Sample] = []
        self.completes: dict[int, int] = {}  # observation id -> index in self.samples of its last value

    def buffer(self, lot_id: int) -> _Buffer:
        raw = self.feed.pending.get(str(lot_id)) or {}
        return _Buffer(list(raw.get("values", [])), list(raw.get("observations", [])))

    def emit(self, lot_id: int, buffer: _Buffer, *, undersized: bool = False) -> None:
        self.feed.last_sequence += 1
        self.samples.append(_sample(self.characteristic, self.feed.last_sequence, lot_id, buffer,
                                    undersized=undersized))  # fmt: skip
        for observation_id in buffer.observations:
            self.completes[observation_id] = len(self.samples) - 1

    def add(self, row: Observation, values: Sequence[float]) -> None:
        if len(values) == self.size:  # a whole subgroup: never split, never mixed with a buffer
            self.emit(row.lot_id, _Buffer(list(values), [row.pk] * len(values)))
            return
        buffer = self.buffer(row.lot_id)
        for value in values:
            buffer.values.append(value)
            buffer.observations.append(row.pk)
            if len(buffer.values) == self.size:
                self.emit(row.lot_id, buffer)
                buffer = _Buffer()
        self.keep(row.lot_id, buffer)

    def close(self, lot_id: int) -> None:
        """The lot takes no more values: its unfinished subgroup becomes an undersized sample."""
        buffer = self.buffer(lot_id)
        if buffer.values:
            self.emit(lot_id, buffer, undersized=True)
        self.feed.pending.pop(str(lot_id), None)
        self.feed.checksums.pop(str(lot_id), None)  # it takes no more values

    def keep(self, lot_id: int, buffer: _Buffer) -> None:
        if buffer.values:
            self.feed.pending[str(lot_id)] = {"values": buffer.values, "observations": buffer.observations}
        else:
            self.feed.pending.pop(str(lot_id), None)


def _folders_save(folders: Sequence[_Folder], rows: dict[int, Observation]) -> None:
    """Store the folders' samples and feeds (one statement each for all characteristics), and point
    each observation at the sample that holds its last value."""
    Sample.objects.bulk_create([sample for folder in folders for sample in folder.samples])
    elsewhere: dict[int, list[int]] = defaultdict(list)
    for folder in folders:
        for observation_id, index in folder.completes.items():
            sample_id = folder.samples[index].pk
            if observation_id in rows:
                rows[observation_id].sample_id = sample_id
            else:  # confirmed in an earlier batch, waiting in the buffer
                elsewhere[sample_id].append(observation_id)
    for sample_id, observation_ids in elsewhere.items():
        Observation.objects.filter(pk__in=observation_ids).update(sample_id=sample_id)
    feeds = [folder.feed for folder in folders]
    rows_update(
        model=SubgroupFeed, rows=feeds, fields=["last_position", "last_sequence", "pending", "checksums"]
    )


def _feeds_locked(characteristic_ids: Iterable[int]) -> QuerySet[SubgroupFeed]:
    """The feed rows of these characteristics, created if missing, locked in id order (no deadlock)."""
    ids = sorted(set(characteristic_ids))
    SubgroupFeed.objects.bulk_create(
        [SubgroupFeed(characteristic_id=pk) for pk in ids], ignore_conflicts=True
    )
    return SubgroupFeed.objects.select_for_update().filter(pk__in=ids).order_by("pk")


def _lot_checksum(feed: SubgroupFeed, characteristic: Characteristic, lot_id: int) -> int:
    """The lot's checksum for the characteristic's test so far (0 for none yet): kept on the feed,
    else read from the lot's newest numbered observation."""
    kept = feed.checksums.get(str(lot_id))
    if kept is not None:
        return int(kept)
    latest = (
        Observation.objects.filter(lot_id=lot_id, test_id=characteristic.test_id, position__isnull=False)
        .order_by("-position")
        .values_list("lot_checksum", flat=True)
        .first()
    )
    return latest or 0


def subgroups_fold(*, rows: Sequence[Observation], values: Mapping[int, Sequence[float]]) -> list[int]:
    """Number, hash and group newly confirmed observations (in the order given); return the
    characteristics that got new samples or observations. The caller saves `rows`
    (position, hash, lot_checksum, sample) and must be in a transaction."""
    by_characteristic: dict[int, list[Observation]] = defaultdict(list)
    for row in rows:
        assert row.characteristic_id is not None
        by_characteristic[row.characteristic_id].append(row)
    if not by_characteristic:
        return []
    characteristics = Characteristic.objects.select_related("test").in_bulk(list(by_characteristic))
    in_batch = {row.pk: row for row in rows}
    feeds = list(_feeds_locked(by_characteristic))
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
        folder = _Folder(feed, characteristic)
        mine = by_characteristic[feed.pk]
        lot_ids = {row.lot_id for row in mine}
        checksums = {lot_id: _lot_checksum(feed, characteristic, lot_id) for lot_id in lot_ids}
        for row in mine:
            feed.last_position += 1
            row.position = feed.last_position
            row.hash = observation_hash(observation_id=row.pk, values=values[row.pk])
            row.lot_checksum = checksums[row.lot_id] = checksum_add(checksums[row.lot_id], row.hash)
            folder.add(row, values[row.pk])
        for lot_id in lot_ids:
            if lot_id in closed:
                folder.close(lot_id)
            else:
                feed.checksums[str(lot_id)] = checksums[lot_id]
        folders.append(folder)
    _folders_save(folders, in_batch)
    return sorted(by_characteristic)


def subgroups_close_lot(*, lot: Lot) -> list[int]:
    """Turn the lot's unfinished subgroups into undersized samples (the lot takes no more values).
    Returns the characteristics that got one. Call inside the transaction that closes the lot."""
    key = str(lot.pk)
    candidates = SubgroupFeed.objects.filter(characteristic__product_id=lot.product_id).values_list(
        "pk", flat=True
    )
    feeds = [feed for feed in _feeds_locked(candidates) if key in feed.pending or key in feed.checksums]
    characteristics = Characteristic.objects.select_related("test").in_bulk([feed.pk for feed in feeds])
    folders = [_Folder(feed, characteristics[feed.pk]) for feed in feeds]
    for folder in folders:
        folder.close(lot.pk)
    _folders_save(folders, {})
    return [folder.feed.pk for folder in folders if folder.samples]


# How long a queued calculation counts as pending. If its message is lost, the characteristic is
# queued again by the next batch after this, or by the catch-up sweep.
CALCULATION_PENDING_SECONDS = 30


def calculation_pending_key(characteristic_id: int) -> str:
    """Set while a calculation of the characteristic is queued and has not started."""
    return f"calculations:pending:{characteristic_id}"


def calculation_pending_clear(*, characteristic_id: int) -> None:
    with contextlib.suppress(Exception):  # no cache: the mark expires by itself
        cache.delete(calculation_pending_key(characteristic_id))


def calculations_queue(*, characteristic_ids: Sequence[int]) -> None:
    """Ask the calculation worker to bring these characteristics up to date (after commit).

    One queued calculation per characteristic is enough: it takes everything committed by
    the time it starts. So a characteristic goes into the message only if none is pending
    for it (an atomic add in Redis); the task clears the marks when it starts. Under load
    this turns one calculation per batch and characteristic into one per characteristic per
    worker turn, which is where a busy pipeline spent most of its time. The characteristics
    of one batch go in one message (one transaction for all of them). If Redis cannot tell,
    the characteristic is sent.
    """
    ids = []
    for characteristic_id in characteristic_ids:
        try:
            first = cache.add(calculation_pending_key(characteristic_id), 1, CALCULATION_PENDING_SECONDS)
        except Exception:  # no cache: send; a duplicate calculation is harmless
            first = True
        if first:
            ids.append(characteristic_id)
    if ids:
        current_app.send_task(CALCULATION_TASK, kwargs={"characteristic_ids": ids})


def calculations_queue_on_commit(characteristic_ids: Sequence[int]) -> None:
    if characteristic_ids:
        ids = list(characteristic_ids)
        # robust: a broker outage must not undo committed work; the calculation sweep catches up.
        transaction.on_commit(lambda: calculations_queue(characteristic_ids=ids), robust=True)

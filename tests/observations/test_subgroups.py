"""Subgroup formation and the lot checksum (apps/observations/subgroups.py), called in process.

Observations are posted as a device would (lot-level, no replicate check), so one
observation may carry any number of values, and processed by observations_process.
"""

import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.config.choices import TestKind
from apps.observations import handoff, services
from apps.observations.checksum import checksum_of, observation_hash
from apps.observations.choices import LotStatus, ObservationStatus
from apps.observations.models import Lot, Observation, SubgroupFeed
from tests.factories import TestFactory, characteristic_for
from tests.support.lines import Line

pytestmark = pytest.mark.django_db


def _observation(pk: int) -> Observation:
    return Observation.objects.get(pk=pk)


def _sequence_of(pk: int) -> int | None:
    sample = _observation(pk).sample
    return None if sample is None else sample.sequence


class SubgroupFormationTests:
    def test_values_of_one_lot_form_subgroups_of_n_in_arrival_order(self):
        line = Line(size=3)
        ids = line.post(*[("A", [float(v)]) for v in (5, 1, 4, 2, 3, 6, 7)])
        assert line.shape() == [("A", [5.0, 1.0, 4.0], ids[0:3]), ("A", [2.0, 3.0, 6.0], ids[3:6])]
        first, second = line.samples()
        assert (first.sequence, first.n, first.mean, first.range) == (1, 3, 10 / 3, 4.0)
        assert first.sd == pytest.approx(math.sqrt(13 / 3), rel=1e-15)
        assert (second.sequence, second.mean, second.range, second.undersized) == (2, 11 / 3, 4.0, False)
        assert line.pending() == {str(line.lots["A"].pk): {"values": [7.0], "observations": [ids[6]]}}
        assert [_sequence_of(pk) for pk in ids] == [1, 1, 1, 2, 2, 2, None]

    def test_interleaved_lots_never_share_a_subgroup(self):
        line = Line(size=2)
        ids = line.post(("A", [1.0]), ("B", [10.0]), ("A", [2.0]), ("C", [100.0]), ("B", [20.0]))
        assert line.shape() == [("A", [1.0, 2.0], [ids[0], ids[2]]), ("B", [10.0, 20.0], [ids[1], ids[4]])]
        assert line.pending() == {str(line.lots["C"].pk): {"values": [100.0], "observations": [ids[3]]}}
        assert [s.lot for s in line.samples()] == [line.lots["A"], line.lots["B"]]

    def test_pending_values_carry_over_to_the_next_batch_per_lot(self):
        line = Line(size=3)
        a1, b1 = line.post(("A", [1.0]), ("B", [10.0]))
        a2, b2, a3 = line.post(("A", [2.0]), ("B", [20.0]), ("A", [3.0]))
        assert line.shape() == [("A", [1.0, 2.0, 3.0], [a1, a2, a3])]
        assert line.pending() == {str(line.lots["B"].pk): {"values": [10.0, 20.0], "observations": [b1, b2]}}

    def test_an_observation_of_exactly_n_values_is_its_own_sample(self):
        line = Line(size=3)
        partial, whole = line.post(("A", [1.0]), ("A", [10.0, 11.0, 12.0]))
        # The whole subgroup does not take the pending value, nor lend it one.
        assert line.shape() == [("A", [10.0, 11.0, 12.0], [whole])]
        assert line.pending() == {str(line.lots["A"].pk): {"values": [1.0], "observations": [partial]}}
        two, three = line.post(("A", [2.0]), ("A", [3.0]))
        assert line.shape()[1] == ("A", [1.0, 2.0, 3.0], [partial, two, three])
        assert [_sequence_of(pk) for pk in (partial, whole, two, three)] == [2, 1, 2, 2]

    def test_a_smaller_observation_that_straddles_a_boundary_is_split(self):
        line = Line(size=3)
        first, straddling = line.post(("A", [1.0, 2.0]), ("A", [3.0, 4.0]))
        assert line.shape() == [("A", [1.0, 2.0, 3.0], [first, straddling])]
        assert line.pending()[str(line.lots["A"].pk)] == {"values": [4.0], "observations": [straddling]}
        assert _sequence_of(first) == 1
        # Its last value waits in the buffer; it points at the sample that has its other value so far.
        assert _sequence_of(straddling) == 1
        (last,) = line.post(("A", [5.0, 6.0]))
        assert line.shape()[1] == ("A", [4.0, 5.0, 6.0], [straddling, last])
        # Confirmed in the earlier batch, it now points at the sample holding its last value.
        assert _sequence_of(straddling) == 2
        assert _sequence_of(last) == 2
        assert line.pending() == {}

    def test_a_straddling_observation_completed_in_the_same_batch_points_at_its_last_sample(self):
        line = Line(size=3)
        ids = line.post(("A", [1.0, 2.0]), ("A", [3.0, 4.0]), ("A", [5.0, 6.0]))
        assert line.shape() == [("A", [1.0, 2.0, 3.0], ids[0:2]), ("A", [4.0, 5.0, 6.0], ids[1:3])]
        assert [_sequence_of(pk) for pk in ids] == [1, 2, 2]

    def test_a_long_observation_fills_several_subgroups(self):
        line = Line(size=3)
        (pk,) = line.post(("A", [float(v) for v in range(1, 8)]))
        assert line.shape() == [("A", [1.0, 2.0, 3.0], [pk]), ("A", [4.0, 5.0, 6.0], [pk])]
        assert line.pending()[str(line.lots["A"].pk)] == {"values": [7.0], "observations": [pk]}

    def test_subgroup_size_one_makes_every_value_a_sample(self):
        line = Line(size=1)
        ids = line.post(("A", [1.5]), ("B", [2.5]), ("A", [3.5, 4.5]))
        assert line.shape() == [
            ("A", [1.5], [ids[0]]), ("B", [2.5], [ids[1]]), ("A", [3.5], [ids[2]]), ("A", [4.5], [ids[2]]),
        ]  # fmt: skip
        assert [(s.n, s.range, s.sd) for s in line.samples()] == [(1, None, None)] * 4
        assert line.pending() == {}

    @pytest.mark.parametrize("kind", [TestKind.DEFECTIVES, TestKind.DEFECTS])
    def test_attribute_values_are_samples_of_n_units_each(self, kind):
        line = Line(size=20, kind=kind)
        ids = line.post(("A", [2]), ("B", [0, 3]), ("A", [1]))
        assert line.shape() == [("A", [2.0], [ids[0]]), ("B", [0.0], [ids[1]]), ("B", [3.0], [ids[1]]),
                                ("A", [1.0], [ids[2]])]  # fmt: skip
        assert [(s.sequence, s.n, s.mean, s.range, s.sd) for s in line.samples()] == [
            (1, 20, 2.0, None, None), (2, 20, 0.0, None, None), (3, 20, 3.0, None, None),
            (4, 20, 1.0, None, None),
        ]  # fmt: skip
        assert line.pending() == {}
        assert [_sequence_of(pk) for pk in ids] == [1, 3, 4]

    def test_rejected_observations_get_no_position_hash_or_sample(self):
        line = Line(size=3)
        ids = line.post(("A", [1.0]), ("A", ["x"]), ("A", [2000.0]), ("A", [2.0]), ("A", [3.0]))
        assert [_observation(pk).status for pk in ids] == [
            ObservationStatus.CONFIRMED, ObservationStatus.REJECTED, ObservationStatus.REJECTED,
            ObservationStatus.CONFIRMED, ObservationStatus.CONFIRMED,
        ]  # fmt: skip
        assert line.shape() == [("A", [1.0, 2.0, 3.0], [ids[0], ids[3], ids[4]])]
        for pk in ids[1:3]:
            row = _observation(pk)
            assert (row.position, row.hash, row.lot_checksum, row.sample) == (None, None, None, None)
        assert [_observation(pk).position for pk in ids] == [1, None, None, 2, 3]

    def test_random_streams_equal_the_reference(self):
        """Several lots, observations of 1 … n + 1 values, split into random batches."""
        for seed in range(6):
            rng = random.Random(seed)
            size = rng.randint(2, 5)
            line = Line(size=size)
            posts = [
                (rng.choice("ABC"), [round(rng.uniform(0, 100), 3) for _ in range(rng.randint(1, size + 1))])
                for _ in range(60)
            ]
            ids = line.record(*posts)
            cuts = sorted(rng.sample(range(1, len(ids)), 5))
            for start, end in zip([0, *cuts], [*cuts, len(ids)], strict=True):
                services.observations_process(ids=ids[start:end])
            expected = _reference(
                list(zip([p[0] for p in posts], ids, [p[1] for p in posts], strict=True)), size
            )
            assert line.shape() == expected.samples, f"seed {seed}"
            names = {str(lot.pk): name for name, lot in line.lots.items()}
            assert {names[key]: value for key, value in line.pending().items()} == expected.pending
            assert {pk: _sequence_of(pk) for pk in ids} == expected.pointers, f"seed {seed}"


@dataclass
class _Expected:
    samples: list[tuple[str, list[float], list[int]]] = field(default_factory=list)
    pending: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    pointers: dict[int, int | None] = field(default_factory=dict)


def _reference(posts: list[tuple[str, int, list[float]]], size: int) -> _Expected:
    """The rules of DESIGN.md step 3 written plainly: per lot buffers, whole subgroups kept whole,
    an observation points at the last sample that holds one of its values."""
    out = _Expected()
    buffers: dict[str, list[tuple[float, int]]] = defaultdict(list)

    def emit(lot: str, members: list[tuple[float, int]]) -> None:
        observations = list(dict.fromkeys(pk for _, pk in members))
        out.samples.append((lot, [v for v, _ in members], observations))
        for pk in observations:
            out.pointers[pk] = len(out.samples)

    for lot, pk, values in posts:
        out.pointers.setdefault(pk, None)
        if len(values) == size:
            emit(lot, [(v, pk) for v in values])
            continue
        for value in values:
            buffers[lot].append((value, pk))
            if len(buffers[lot]) == size:
                emit(lot, buffers.pop(lot))
    out.pending = {
        lot: {"values": [v for v, _ in members], "observations": [pk for _, pk in members]}
        for lot, members in buffers.items()
        if members
    }
    return out


class PositionAndChecksumTests:
    def test_positions_count_one_to_n_per_characteristic(self):
        line = Line(size=2)
        other_test = TestFactory(plausible_min=0.0, plausible_max=1000.0)
        other = characteristic_for(line.product, other_test)
        first = line.post(("A", [1.0]), ("B", [2.0]))
        mixed = line.record(("A", [3.0]), ("A", [4.0]), ("B", [5.0])) + line.record(
            ("A", [6.0]), ("B", [7.0]), test=other_test
        )
        services.observations_process(ids=mixed)
        last = line.post(("C", [8.0]))
        mine = Observation.objects.filter(characteristic=line.characteristic).order_by("pk")
        assert [row.position for row in mine] == [1, 2, 3, 4, 5, 6]
        assert [row.pk for row in mine] == [*first, *mixed[:3], *last]
        theirs = Observation.objects.filter(characteristic=other).order_by("pk")
        assert [row.position for row in theirs] == [1, 2]
        feeds = {feed.pk: feed.last_position for feed in SubgroupFeed.objects.all()}
        assert feeds == {line.characteristic.pk: 6, other.pk: 2}

    def test_hash_is_of_id_and_values_and_the_lot_checksum_is_a_running_sum(self):
        line = Line(size=3)
        ids = line.post(("A", [1.25]), ("B", [2.0, 3.0]), ("A", [4, 5]), ("B", [6.5]))
        ids += line.post(("A", [7.0]), ("B", [8.0]))
        rows = {row.pk: row for row in Observation.objects.filter(pk__in=ids)}
        for pk, row in rows.items():
            assert row.hash == observation_hash(observation_id=pk, values=row.values)
        assert rows[ids[2]].hash == observation_hash(observation_id=ids[2], values=[4.0, 5.0])
        for lot in line.lots.values():
            mine = sorted((row for row in rows.values() if row.lot_id == lot.pk), key=lambda r: r.position)
            hashes = [row.hash for row in mine]
            assert [row.lot_checksum for row in mine] == [
                checksum_of(hashes[: i + 1]) for i in range(len(mine))
            ]
        a_hashes = [rows[pk].hash for pk in (ids[0], ids[2], ids[4])]
        # A signed 64-bit value holding the unsigned sum mod 2^64.
        unsigned = sum(h % 2**64 for h in a_hashes) % 2**64
        assert rows[ids[4]].lot_checksum % 2**64 == unsigned
        assert -(2**63) <= rows[ids[4]].lot_checksum < 2**63

    def test_the_lot_checksum_does_not_depend_on_processing_order(self):
        line = Line(size=2)
        ids = line.record(*[("A", [float(v)]) for v in range(1, 9)])
        for chunk in (ids[6:], ids[2:6], ids[:2]):  # newest first
            services.observations_process(ids=chunk)
        rows = list(Observation.objects.filter(pk__in=ids).order_by("position"))
        assert [row.pk for row in rows] == [*ids[6:], *ids[2:6], *ids[:2]]
        hashes = [
            observation_hash(observation_id=pk, values=[float(v)])
            for pk, v in zip(ids, range(1, 9), strict=True)
        ]
        assert rows[-1].lot_checksum == checksum_of(hashes) == checksum_of(reversed(hashes))

    def test_the_lot_checksum_is_per_lot_and_test(self):
        line = Line(size=1)
        other_test = TestFactory(plausible_min=0.0, plausible_max=1000.0)
        characteristic_for(line.product, other_test)
        a_one, b_one = line.post(("A", [1.0]), ("B", [1.0]))
        (a_other,) = line.post(("A", [1.0]), test=other_test)
        for pk in (a_one, b_one, a_other):
            row = _observation(pk)
            assert row.lot_checksum == row.hash  # the first of its (lot, test)
        (a_two,) = line.post(("A", [2.0]))
        assert _observation(a_two).lot_checksum == checksum_of(
            [_observation(a_one).hash, _observation(a_two).hash]
        )

    def test_the_feed_keeps_each_working_lots_checksum_and_forgets_a_closed_one(self):
        line = Line(size=3)
        line.post(("A", [1.0]), ("B", [2.0]), ("A", [3.0]))
        feed = SubgroupFeed.objects.get(pk=line.characteristic.pk)

        def newest(lot: str) -> int:
            rows = Observation.objects.filter(lot=line.lots[lot], test=line.test, position__isnull=False)
            return rows.latest("position").lot_checksum

        assert feed.checksums == {str(line.lots[name].pk): newest(name) for name in "AB"}
        # A feed without the lot (data from before, a lot reopened) reads it from the observations.
        feed.checksums = {}
        feed.save()
        late_a, late_b = line.post(("A", [4.0]), ("B", [5.0]))
        for lot, late in (("A", late_a), ("B", late_b)):
            rows = Observation.objects.filter(lot=line.lots[lot])
            assert _observation(late).lot_checksum == checksum_of([row.hash for row in rows])
        feed.refresh_from_db()
        assert feed.checksums == {str(line.lots[name].pk): newest(name) for name in "AB"}
        services.lot_status_set(lot=line.lots["A"], status=LotStatus.REJECTED)  # takes no more values
        feed.refresh_from_db()
        assert feed.checksums == {str(line.lots["B"].pk): newest("B")}


class LotCloseTests:
    @pytest.fixture
    def queued(self, monkeypatch):
        """Characteristic ids sent to the calculation worker (nothing reaches the broker)."""
        sent: list[list[int]] = []
        monkeypatch.setattr(handoff, "calculations_queue", lambda *, characteristic_ids: sent.append(
            list(characteristic_ids)))  # fmt: skip
        return sent

    @pytest.mark.parametrize("path", [[LotStatus.IN_TESTING, LotStatus.RELEASED], [LotStatus.REJECTED]])
    def test_closing_a_lot_makes_its_pending_values_an_undersized_sample(
        self, path, queued, django_capture_on_commit_callbacks
    ):
        line = Line(size=4)
        a1, b1, a2 = line.post(("A", [1.0]), ("B", [10.0]), ("A", [2.0, 4.0]))
        queued.clear()
        with django_capture_on_commit_callbacks(execute=True):
            for status in path:
                services.lot_status_set(lot=line.lots["A"], status=status)
        [undersized] = line.samples()
        assert (undersized.lot_id, undersized.values, undersized.observation_ids) == (
            line.lots["A"].pk, [1.0, 2.0, 4.0], [a1, a2],
        )  # fmt: skip
        assert (undersized.sequence, undersized.n, undersized.undersized) == (1, 3, True)
        assert (undersized.mean, undersized.range) == (7 / 3, 3.0)
        assert [_sequence_of(pk) for pk in (a1, a2, b1)] == [1, 1, None]
        # Lot B's buffer is untouched; it goes on filling.
        assert line.pending() == {str(line.lots["B"].pk): {"values": [10.0], "observations": [b1]}}
        assert queued == [[line.characteristic.pk]]

    def test_every_characteristic_of_the_product_is_closed_and_queued(
        self, queued, django_capture_on_commit_callbacks
    ):
        line = Line(size=3)
        other_test = TestFactory(plausible_min=0.0, plausible_max=1000.0)
        other = characteristic_for(line.product, other_test, subgroup_size=2)
        line.post(("A", [1.0]))
        line.post(("A", [5.0]), test=other_test)
        line.post(("B", [7.0]), test=other_test)
        with django_capture_on_commit_callbacks(execute=True):
            services.lot_status_set(lot=line.lots["A"], status=LotStatus.REJECTED)
        assert [(s.values, s.undersized) for s in line.samples()] == [([1.0], True)]
        assert [(s.values, s.undersized) for s in line.samples(other)] == [([5.0], True)]
        assert queued[-1] == sorted([line.characteristic.pk, other.pk])
        assert list(SubgroupFeed.objects.get(pk=other.pk).pending) == [str(line.lots["B"].pk)]

    def test_closing_a_lot_without_pending_values_adds_nothing(
        self, queued, django_capture_on_commit_callbacks
    ):
        line = Line(size=2)
        line.post(("A", [1.0, 2.0]), ("B", [3.0]))
        queued.clear()
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            services.lot_status_set(lot=line.lots["A"], status=LotStatus.REJECTED)
        assert len(line.samples()) == 1
        assert queued == []
        # Only the lot.disposition event goes out after commit: no calculation.
        assert [c.__qualname__.split(".")[0] for c in callbacks] == ["events_send_on_commit"]
        assert Lot.objects.get(pk=line.lots["A"].pk).status == LotStatus.REJECTED

    def test_the_undersized_sample_continues_the_sequence(self, django_capture_on_commit_callbacks):
        line = Line(size=2)
        line.post(("A", [1.0, 2.0]), ("B", [3.0]), ("A", [4.0]))
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            services.lot_status_set(lot=line.lots["B"], status=LotStatus.REJECTED)
        # The calculation and the lot.disposition event, sent after commit.
        assert sorted(c.__qualname__.split(".")[0] for c in callbacks) == [
            "calculations_queue_on_commit", "events_send_on_commit",
        ]  # fmt: skip
        line.post(("A", [5.0]))
        assert [(s.sequence, s.values, s.undersized) for s in line.samples()] == [
            (1, [1.0, 2.0], False), (2, [3.0], True), (3, [4.0, 5.0], False),
        ]  # fmt: skip

    def test_processing_queues_the_calculation_of_touched_characteristics(
        self, queued, django_capture_on_commit_callbacks
    ):
        line = Line(size=3)
        ids = line.record(("A", [1.0]), ("A", ["bad"]))
        with django_capture_on_commit_callbacks(execute=True):
            services.observations_process(ids=ids)
        # Pending values too: the statistics take every confirmed observation.
        assert queued == [[line.characteristic.pk]]
        queued.clear()
        ids = line.record(("A", ["bad"]))
        with django_capture_on_commit_callbacks(execute=True):
            services.observations_process(ids=ids)
        assert queued == []


# A batch's statements (see below): the rows and the feed are written in one on PostgreSQL.
FEW = 8 if connection.vendor == "postgresql" else 9


class QueryCountTests:
    def _count(self, line: Line, rows: int) -> int:
        ids = line.record(*[(("A", "B")[i % 2], [float(i)]) for i in range(rows)])
        with CaptureQueriesContext(connection) as queries:
            services.observations_process(ids=ids)
        assert Observation.objects.filter(pk__in=ids, status=ObservationStatus.CONFIRMED).count() == rows
        return len(queries)

    def test_processing_does_not_query_per_row(self):
        line = Line(size=3)
        self._count(line, 1)  # lot A has a value waiting from an earlier batch in each call below
        # Lot B is new to the feed: its checksum is read from the observations, once.
        first = self._count(line, 7)  # A: 1 + 4 values, a sample and 2 waiting; B: a sample
        few, many = self._count(line, 6), self._count(line, 90)  # A: 2 + 3 and 2 + 45, B: 3 and 45
        # Savepoint and release, the claim, the item plans, the feed lock (it exists: no insert), the
        # lots closed meanwhile, the samples, the carried-over observation of lot A, the rows and
        # the feed (one statement). The lot checksums are on the feed. Never per row. The product's
        # configuration and the characteristics are kept between batches (apps.config.cached, #20).
        assert (first, few, many) == (FEW + 1, FEW, FEW)

    def test_samples_completed_with_values_of_earlier_batches_are_written_in_one_statement(self):
        """A device streaming single values completes most samples with values confirmed in earlier
        batches (a Sparkplug message holds one value of each of 50 characteristics): pointing those
        observations at their samples is one statement, however many samples."""
        line = Line(size=3)
        self._count(line, 2)  # A and B: a value each waiting
        # Each lot: 1 waiting + 2 new, a sample holding a value of the earlier batch. The same
        # statements as `few` above, which had one such sample.
        assert self._count(line, 4) == FEW
        samples = {sample.lot.number: sample for sample in line.samples()}
        assert {number: len(sample.observation_ids) for number, sample in samples.items()} == {"A": 3, "B": 3}
        pointed = Observation.objects.filter(sample__isnull=False).values_list(
            "sample__lot__number", flat=True
        )
        assert sorted(pointed) == ["A"] * 3 + ["B"] * 3

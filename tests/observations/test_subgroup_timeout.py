"""The subgroup timeout (subgroups_timeout_sweep): an unfinished subgroup of a characteristic with a
`subgroup_timeout` is flushed as an undersized sample or discarded once it has waited that long.

Observations are posted as a device would, one value each, and processed by observations_process
(the `Line` of tests/support/lines.py). The sweep takes `now`, so no clock is frozen: times are counted
from the "since" the buffer holds.
"""

import datetime
import logging
import threading
import time
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, transaction

from apps.config import services as config_services
from apps.config.choices import SubgroupTimeoutPolicy
from apps.observations import handoff, services, tasks
from apps.observations.checksum import checksum_add, checksum_of
from apps.observations.choices import ObservationStatus
from apps.observations.models import Observation, Sample, SubgroupFeed
from apps.observations.subgroups import subgroups_timeout_sweep
from openspc.celery import app
from tests.support.lines import Line

pytestmark = pytest.mark.django_db

SECOND = datetime.timedelta(seconds=1)


def _line(timeout: int | None = 60, policy: str = SubgroupTimeoutPolicy.FLUSH) -> Line:
    """n = 5, with the timeout and policy given."""
    line = Line(size=5)
    line.characteristic = config_services.characteristic_update(
        characteristic=line.characteristic,
        data={"subgroup_timeout": timeout, "subgroup_timeout_policy": policy},
    )
    return line


def _feed(line: Line) -> SubgroupFeed:
    return SubgroupFeed.objects.get(pk=line.characteristic.pk)


def _since(line: Line, lot: str = "A") -> datetime.datetime:
    return datetime.datetime.fromisoformat(_feed(line).pending[str(line.lots[lot].pk)]["since"])


def _since_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _three_pending(line: Line) -> list[int]:
    ids = line.post(("A", [1.5]), ("A", [2.5]), ("A", [0.5]))
    assert line.pending() == {str(line.lots["A"].pk): {"values": [1.5, 2.5, 0.5], "observations": ids}}
    return ids


def _five(line: Line) -> list[int]:
    return line.post(*[("A", [float(v)]) for v in (10, 11, 12, 13, 14)])


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """Characteristic ids sent to the calculation worker (nothing reaches the broker)."""
    sent: list[list[int]] = []
    monkeypatch.setattr(handoff, "calculations_queue", lambda *, characteristic_ids: sent.append(
        list(characteristic_ids)))  # fmt: skip
    return sent


class BufferStartTests:
    def test_a_buffer_holds_the_utc_time_its_first_value_was_folded(self):
        line = _line()
        before = datetime.datetime.now(datetime.UTC)
        line.post(("A", [1.0]))
        after = datetime.datetime.now(datetime.UTC)
        raw = _feed(line).pending[str(line.lots["A"].pk)]["since"]
        assert raw.endswith("+00:00")
        first = _since(line)
        assert before <= first <= after
        # More values join the buffer: it started when it started.
        line.post(("A", [2.0]), ("A", [3.0]))
        assert _since(line) == first
        # A full subgroup ends it; the value after starts a new buffer, with its own time.
        line.post(("A", [4.0]), ("A", [5.0]), ("A", [6.0]))
        assert [s.values for s in line.samples()] == [[1.0, 2.0, 3.0, 4.0, 5.0]]
        assert _since(line) > first

    def test_each_lot_has_its_own_start(self):
        line = _line()
        line.post(("A", [1.0]))
        line.post(("B", [2.0]))
        assert _since(line, "A") < _since(line, "B")


class FlushTests:
    def test_nothing_happens_before_the_timeout(self, queued, django_capture_on_commit_callbacks):
        line = _line()
        _three_pending(line)
        before = _feed(line)
        with django_capture_on_commit_callbacks(execute=True):
            assert subgroups_timeout_sweep(now=_since(line) + 30 * SECOND) == []
        after = _feed(line)
        assert (after.pending, after.last_sequence, after.checksums) == (
            before.pending, before.last_sequence, before.checksums,
        )  # fmt: skip
        assert line.samples() == []
        assert queued == []

    def test_after_the_timeout_the_pending_values_become_an_undersized_sample(
        self, queued, django_capture_on_commit_callbacks
    ):
        line = _line()
        ids = _three_pending(line)
        queued.clear()
        with django_capture_on_commit_callbacks(execute=True):
            assert subgroups_timeout_sweep(now=_since(line) + 61 * SECOND) == [line.characteristic.pk]
        [sample] = line.samples()
        assert (sample.lot_id, sample.values, sample.observation_ids) == (
            line.lots["A"].pk,
            [1.5, 2.5, 0.5],
            ids,
        )
        assert (sample.sequence, sample.n, sample.undersized) == (1, 3, True)
        assert (sample.mean, sample.range, sample.sd) == (1.5, 2.0, 1.0)
        assert [Observation.objects.get(pk=pk).sample_id for pk in ids] == [sample.pk] * 3
        assert line.pending() == {}
        assert queued == [[line.characteristic.pk]]
        # The lot is still open: the next values form a full subgroup, numbered next.
        later = _five(line)
        assert [(s.sequence, s.values, s.n, s.undersized, s.observation_ids) for s in line.samples()] == [
            (1, [1.5, 2.5, 0.5], 3, True, ids),
            (2, [10.0, 11.0, 12.0, 13.0, 14.0], 5, False, later),
        ]  # fmt: skip
        assert _feed(line).last_sequence == 2

    def test_the_lot_checksum_continues_after_a_flush(self):
        line = _line()
        ids = _three_pending(line)
        lot_key = str(line.lots["A"].pk)
        checksum = Observation.objects.get(pk=ids[-1]).lot_checksum
        subgroups_timeout_sweep(now=_since(line) + 61 * SECOND)
        assert _feed(line).checksums == {lot_key: checksum}  # kept: the lot takes more values
        (next_id,) = line.post(("A", [7.0]))
        following = Observation.objects.get(pk=next_id)
        assert following.lot_checksum == checksum_add(checksum, following.hash)
        assert following.position == 4

    def test_only_buffers_that_waited_long_enough_are_flushed(self):
        line = _line()
        (a,) = line.post(("A", [1.0]))
        (b,) = line.post(("B", [2.0]))
        feed = _feed(line)
        start = _since(line, "A")
        feed.pending[str(line.lots["B"].pk)]["since"] = (start + 40 * SECOND).isoformat()
        feed.save()
        assert subgroups_timeout_sweep(now=start + 61 * SECOND) == [line.characteristic.pk]
        assert line.shape() == [("A", [1.0], [a])]
        assert line.pending() == {str(line.lots["B"].pk): {"values": [2.0], "observations": [b]}}
        assert subgroups_timeout_sweep(now=start + 101 * SECOND) == [line.characteristic.pk]
        assert line.shape() == [("A", [1.0], [a]), ("B", [2.0], [b])]

    def test_running_the_sweep_twice_flushes_once(self, queued, django_capture_on_commit_callbacks):
        line = _line()
        _three_pending(line)
        queued.clear()
        now = _since(line) + 61 * SECOND
        with django_capture_on_commit_callbacks(execute=True):
            assert subgroups_timeout_sweep(now=now) == [line.characteristic.pk]
            assert subgroups_timeout_sweep(now=now) == []
            assert subgroups_timeout_sweep(now=now + 3600 * SECOND) == []
        assert [(s.sequence, s.values) for s in line.samples()] == [(1, [1.5, 2.5, 0.5])]
        assert _feed(line).last_sequence == 1
        assert queued == [[line.characteristic.pk]]


class DiscardTests:
    def test_after_the_timeout_the_pending_values_are_dropped_and_stay_confirmed(
        self, queued, caplog, django_capture_on_commit_callbacks
    ):
        line = _line(policy=SubgroupTimeoutPolicy.DISCARD)
        ids = _three_pending(line)
        queued.clear()
        since = _feed(line).pending[str(line.lots["A"].pk)]["since"]
        with (
            caplog.at_level(logging.INFO, logger="apps.observations.subgroups"),
            django_capture_on_commit_callbacks(execute=True),
        ):
            assert subgroups_timeout_sweep(now=_since(line) + 61 * SECOND) == []
        assert line.samples() == []
        assert line.pending() == {}
        assert _feed(line).last_sequence == 0
        rows = Observation.objects.filter(pk__in=ids).order_by("pk")
        assert [(row.status, row.sample_id, row.values) for row in rows] == [
            (ObservationStatus.CONFIRMED, None, [1.5]), (ObservationStatus.CONFIRMED, None, [2.5]),
            (ObservationStatus.CONFIRMED, None, [0.5]),
        ]  # fmt: skip
        assert queued == []
        [record] = [r for r in caplog.records if r.name == "apps.observations.subgroups"]
        assert record.levelno == logging.INFO
        assert record.getMessage() == (
            f"Subgroup timeout: discarded 3 value(s) of characteristic {line.characteristic.pk}, "
            f"lot {line.lots['A'].pk}, waiting since {since} "
            f"(observations {ids} stay confirmed, on no sample)"
        )
        # The next values start a fresh subgroup, numbered from 1.
        later = _five(line)
        assert [(s.sequence, s.values, s.n, s.undersized, s.observation_ids) for s in line.samples()] == [
            (1, [10.0, 11.0, 12.0, 13.0, 14.0], 5, False, later),
        ]  # fmt: skip
        # The lot checksum still counts the discarded observations.
        rows = Observation.objects.filter(lot=line.lots["A"]).order_by("position")
        assert rows.last().lot_checksum == checksum_of(row.hash for row in rows)


class WithoutTimeoutTests:
    def test_no_timeout_configured_leaves_buffers_however_old(
        self, queued, django_capture_on_commit_callbacks
    ):
        line = _line(timeout=None)
        _three_pending(line)
        before = _feed(line).pending
        with django_capture_on_commit_callbacks(execute=True):
            assert subgroups_timeout_sweep(now=_since(line) + datetime.timedelta(days=365)) == []
        assert _feed(line).pending == before
        assert line.samples() == []
        assert queued == []

    def test_a_buffer_from_before_the_timeout_counts_from_when_the_sweep_first_sees_it(self):
        line = _line()
        ids = _three_pending(line)
        feed = _feed(line)
        key = str(line.lots["A"].pk)
        feed.pending = {key: {"values": [1.5, 2.5, 0.5], "observations": ids}}  # as written before "since"
        feed.save()
        first_sight = _since_now() + datetime.timedelta(days=30)
        assert subgroups_timeout_sweep(now=first_sight) == []
        assert line.samples() == []
        assert _feed(line).pending == {
            key: {"values": [1.5, 2.5, 0.5], "observations": ids, "since": first_sight.isoformat()}
        }
        assert subgroups_timeout_sweep(now=first_sight + 59 * SECOND) == []
        assert subgroups_timeout_sweep(now=first_sight + 61 * SECOND) == [line.characteristic.pk]
        assert line.shape() == [("A", [1.5, 2.5, 0.5], ids)]

    def test_a_buffer_from_before_the_timeout_goes_on_filling(self):
        line = _line()
        (first,) = line.post(("A", [1.0]))
        feed = _feed(line)
        feed.pending = {str(line.lots["A"].pk): {"values": [1.0], "observations": [first]}}
        feed.save()
        rest = line.post(*[("A", [float(v)]) for v in (2, 3, 4, 5)])
        assert line.shape() == [("A", [1.0, 2.0, 3.0, 4.0, 5.0], [first, *rest])]
        assert line.pending() == {}


class TaskTests:
    def test_the_task_is_in_the_beat_schedule_on_the_default_queue(self):
        entry = settings.CELERY_BEAT_SCHEDULE["observations-subgroups-timeout"]
        assert (entry["task"], entry["schedule"]) == ("observations.subgroups_timeout", 5.0)
        assert settings.SUBGROUP_TIMEOUT_SWEEP_SECONDS == 5
        assert tasks.observations_subgroups_timeout_task.name == "observations.subgroups_timeout"
        route = app.amqp.router.route({}, "observations.subgroups_timeout", args=(), kwargs={})
        assert route["queue"].name == "celery"

    def test_the_task_runs_the_sweep_now(self, queued):
        line = _line()
        ids = _three_pending(line)
        assert tasks.observations_subgroups_timeout_task.run() == []  # not yet waited 60 s
        feed = _feed(line)
        feed.pending[str(line.lots["A"].pk)]["since"] = (_since_now() - 61 * SECOND).isoformat()
        feed.save()
        assert tasks.observations_subgroups_timeout_task.run() == [line.characteristic.pk]
        assert line.shape() == [("A", [1.5, 2.5, 0.5], ids)]


def _waiting_for_a_lock() -> bool:
    """Whether a session waits for a lock (pg_locks: pg_stat_activity is a snapshot in a transaction)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class ConcurrencyTests:
    def test_a_sweep_waiting_for_the_feed_sees_the_subgroup_folding_completed(self, queued):
        """The sweep read the buffer as due, then waited for the feed lock while folding completed
        the subgroup: under the lock it finds nothing left to flush."""
        if connection.vendor != "postgresql":
            pytest.skip("row locks need PostgreSQL")
        line = _line()
        ids = _three_pending(line)
        now = _since(line) + 61 * SECOND
        rest = line.record(("A", [4.5]), ("A", [5.5]))
        result: dict[str, Any] = {}

        def sweep() -> None:
            try:
                result["flushed"] = subgroups_timeout_sweep(now=now)
            finally:
                connection.close()

        sweeper = threading.Thread(target=sweep)
        with transaction.atomic():
            SubgroupFeed.objects.select_for_update().get(pk=line.characteristic.pk)
            sweeper.start()
            deadline = time.monotonic() + 10
            while not _waiting_for_a_lock():
                assert time.monotonic() < deadline, "the sweep never waited for the feed lock"
                time.sleep(0.02)
            services.observations_process(ids=rest)
        sweeper.join(timeout=10)
        assert result == {"flushed": []}
        assert [(s.values, s.undersized) for s in line.samples()] == [([1.5, 2.5, 0.5, 4.5, 5.5], False)]
        assert line.shape()[0][2] == [*ids, *rest]
        assert Sample.objects.filter(undersized=True).count() == 0

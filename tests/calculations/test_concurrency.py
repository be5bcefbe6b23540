"""3,000 observations, 8 concurrent clients, 4 worker processes: the same results as one sequential run.

Five characteristics (n = 1, 5, 1, 5, 1) of one product, three open lots. The device batch
endpoint takes 3,000 observations in shuffled batches from 8 threads (each its own device
token and API client, so its own database connection) while 4 `celery worker` processes
confirm, group and calculate. Single values, partial subgroups (2 or 3 values) and whole
subgroups (5 values) interleave on the n = 5 characteristics; a few implausible values are
rejected; a shift on lot G-2 makes violations and out-of-spec values.

"The same commit order": the confirmed observations of a characteristic are numbered
(`position`) under the characteristic's feed lock, in the order their transactions
committed. A sequential run taking them in that order must give exactly what the workers
stored. The test checks that twice: against a reference computed here from the stored
observations (the grouping rules written out again, the engine's evaluate_batch, numpy,
process_capability), and by replaying the same values in the same order through the real
services, in this process, one step at a time, into a twin product, and comparing row by row
(for two of the characteristics, to keep the test under a minute).

That run rarely has two workers calculate one characteristic at the same moment (the
calculation is quick next to confirming), so the ChartState lock that orders calculations
is also shown deterministically: a second calculation waits for the first, then finds the
work done.
"""

import random
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.db import close_old_connections, connection
from rest_framework.test import APIClient

from apps.calculations import services as calc_services
from apps.calculations.models import ChartState, LotStatistics, ProductStatistics, Violation
from apps.config import services as config_services
from apps.config.models import Characteristic, ControlLimits, Product
from apps.observations import services as obs_services
from apps.observations.checksum import checksum_add, checksum_of, observation_hash
from apps.observations.choices import ObservationSource, ObservationStatus
from apps.observations.models import Lot, Observation, Sample, SubgroupFeed
from spc import RuleSet
from tests.factories import LotFactory, TestFactory, UserFactory, released_plan
from tests.support.pausing import first_calculation_paused
from tests.support.signing import limits_signer
from tests.support.workers import (
    CeleryWorkers,
    disposition_expected,
    pipeline_idle,
    subgroups_expected,
    summary_expected,
    violations_expected,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
ON_POSTGRESQL = connection.vendor == "postgresql"

OBSERVATIONS = 3000
CLIENTS = 8
WORKERS = 4
SIZES = (1, 5, 1, 5, 1)  # subgroup size of each characteristic
LOTS = ("G-1", "G-2", "G-3")
CENTRE, SIGMA, LSL, USL = 10.0, 1.0, 7.0, 13.0
SHIFTED_LOT, SHIFT = "G-2", 1.5  # in σ
IMPLAUSIBLE = 99.0  # outside every test's plausible range: rejected by the worker
DEVICE_URL = "/api/v1/device/observations/"
# The characteristics replayed through the services after the concurrent run: one n = 1, one n = 5.
# Not all five: the services take several ms an observation here (most of it in Django's
# bulk_update), and the reference check covers all five already.
REPLAYED = (0, 1)


@dataclass
class Plant:
    """The product, its characteristics (in SIZES order) and lots."""

    product: Product
    characteristics: list[Characteristic]
    lots: dict[str, Lot] = field(default_factory=dict)


def plant_build(*, code: str, tests: list[Any] | None = None) -> Plant:
    """A product with five characteristics (spec LSL–USL, historical limits CENTRE ± 3 SIGMA) and
    the lots LOTS. `tests`: the tests of an existing plant (a twin shares them)."""
    product = Product.objects.create(code=code, name=code)
    if tests is None:
        tests = [TestFactory(code=f"C{i}", plausible_min=0.0, plausible_max=20.0) for i in range(len(SIZES))]
    config_services.plan_assign(product=product, plan=released_plan(*tests, code=f"{code}-PLAN"))
    characteristics = []
    for test, size in zip(tests, SIZES, strict=True):
        characteristic = config_services.characteristic_update(
            characteristic=Characteristic.objects.get(product=product, test=test),
            data={"subgroup_size": size, "lsl": LSL, "usl": USL},
            reason="specification",
        )
        calc_services.limits_set_historical(
            signer=limits_signer(),
            characteristic=characteristic,
            center=CENTRE,
            sigma=SIGMA,
            reason="historical",
        )
        characteristics.append(characteristic)
    lots = {number: LotFactory(product=product, number=number) for number in LOTS}
    return Plant(product, characteristics, lots)


def entries_drawn(plant: Plant) -> list[dict[str, Any]]:
    """OBSERVATIONS device entries, shuffled (seeded): single values on n = 1; single values,
    partial (2, 3) and whole (5) subgroups on n = 5; about 1 % implausible."""
    rng = np.random.default_rng(4)
    entries = []
    for index in range(OBSERVATIONS):
        which = index % len(SIZES)
        size = SIZES[which]
        count = 1 if size == 1 else int(rng.choice([1, 2, 3, 5], p=[0.4, 0.2, 0.2, 0.2]))
        lot = LOTS[int(rng.integers(len(LOTS)))]
        mean = CENTRE + (SHIFT * SIGMA if lot == SHIFTED_LOT else 0.0)
        values = [round(float(v), 4) for v in mean + SIGMA * rng.standard_normal(count)]
        if rng.random() < 0.01:
            values[0] = IMPLAUSIBLE
        entries.append(
            {"characteristic": plant.characteristics[which].pk, "lot": lot, "values": values,
             "idempotency_key": f"obs-{index}"}
        )  # fmt: skip
    random.Random(8).shuffle(entries)
    return entries


def batches_dealt(entries: list[dict[str, Any]]) -> list[list[list[dict[str, Any]]]]:
    """The entries cut into batches of 10–90 and dealt to CLIENTS clients in turn."""
    rng = random.Random(16)
    batches, start = [], 0
    while start < len(entries):
        size = rng.randint(10, 90)
        batches.append(entries[start : start + size])
        start += size
    return [batches[client::CLIENTS] for client in range(CLIENTS)]


def clients_post(tokens: list[str], dealt: list[list[list[dict[str, Any]]]]) -> list[tuple[list, dict]]:
    """Each client (a thread with its own API client and database connection) posts its batches,
    then its first batch again (a retry). Returns (batch, answer) for every post."""
    answers: list[tuple[list, dict]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def post(token: str, batches: list[list[dict[str, Any]]]) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Device {token}")
        try:
            for batch in [*batches, batches[0]]:
                response = client.post(DEVICE_URL, batch, format="json")
                assert response.status_code == 202, (response.status_code, response.content[:500])
                with lock:
                    answers.append((batch, response.json()))
        except BaseException as exc:
            failures.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=post, args=pair) for pair in zip(tokens, dealt, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert not any(thread.is_alive() for thread in threads)
    return answers


def check_posts(answers: list[tuple[list, dict]]) -> None:
    """One id per entry, every entry stored once: a retry answers the original ids as duplicates."""
    by_key: dict[str, set[int]] = defaultdict(set)
    for batch, answer in answers:
        assert len(answer["ids"]) == len(batch)
        for entry, pk in zip(batch, answer["ids"], strict=True):
            by_key[entry["idempotency_key"]].add(pk)
    assert len(by_key) == OBSERVATIONS
    assert all(len(ids) == 1 for ids in by_key.values())
    retries = [answer for _, answer in answers if answer["duplicates"]]
    assert len(retries) == CLIENTS
    assert all(answer["duplicates"] == answer["ids"] for answer in retries)
    assert Observation.objects.count() == OBSERVATIONS


# --- What a sequential run in commit order gives ---------------------------------------------------


def confirmed_in_order(characteristic: Characteristic) -> list[Observation]:
    return list(
        Observation.objects.filter(characteristic=characteristic, status=ObservationStatus.CONFIRMED)
        .order_by("position")
        .only("id", "lot_id", "values", "position", "hash", "lot_checksum", "sample_id")
    )


def check_observations(plant: Plant) -> None:
    """None left `received`; exactly the implausible ones rejected (with the reason); positions
    1..N per characteristic; hashes and running lot checksums as DESIGN.md defines them."""
    rows = Observation.objects.filter(lot__product=plant.product)
    assert not rows.filter(status=ObservationStatus.RECEIVED).exists()
    for row in rows.filter(status=ObservationStatus.REJECTED):
        assert IMPLAUSIBLE in row.values
        assert [reason["code"] for reason in row.reasons] == ["out_of_range"]
        assert (row.position, row.sample_id) == (None, None)
    implausible = sum(IMPLAUSIBLE in row.values for row in rows.only("values"))
    assert implausible > 0
    assert rows.filter(status=ObservationStatus.REJECTED).count() == implausible
    for characteristic in plant.characteristics:
        ordered = confirmed_in_order(characteristic)
        assert [row.position for row in ordered] == list(range(1, len(ordered) + 1))
        running: dict[int, int] = defaultdict(int)
        for row in ordered:
            assert row.hash == observation_hash(observation_id=row.pk, values=row.values)
            running[row.lot_id] = checksum_add(running[row.lot_id], row.hash)
            assert row.lot_checksum == running[row.lot_id]


def check_against_reference(characteristic: Characteristic) -> None:
    """Samples, pending buffers, violations, statistics and cursors equal the reference computed
    from the confirmed observations in position order."""
    size = characteristic.subgroup_size
    ordered = confirmed_in_order(characteristic)
    reference = subgroups_expected(((row.pk, row.lot_id, row.values) for row in ordered), size)

    samples = list(Sample.objects.filter(characteristic=characteristic).order_by("sequence"))
    assert [s.sequence for s in samples] == list(range(1, len(reference.samples) + 1))
    assert [(s.lot_id, s.values, s.observation_ids) for s in samples] == reference.samples
    assert {(s.n, s.undersized) for s in samples} == {(size, False)}
    assert [s.mean for s in samples] == pytest.approx(
        [np.mean(v) for _, v, _ in reference.samples], rel=1e-12
    )
    if size > 1:
        sds = [np.std(v, ddof=1) for _, v, _ in reference.samples]
        assert [s.sd for s in samples] == pytest.approx(sds, rel=1e-9)
    feed = SubgroupFeed.objects.get(pk=characteristic.pk)
    pending = {int(lot): (b["values"], b["observations"]) for lot, b in feed.pending.items()}
    assert pending == reference.pending
    # Every confirmed observation is in the sample that holds its last value, or only pending.
    last = reference.last_sample_of()
    sequence_of = {s.pk: s.sequence for s in samples}
    assert {row.pk: sequence_of.get(row.sample_id) for row in ordered} == {
        row.pk: last.get(row.pk) for row in ordered
    }
    values_in_samples = sum(len(v) for _, v, _ in reference.samples)
    values_pending = sum(len(v) for v, _ in reference.pending.values())
    assert values_in_samples + values_pending == sum(len(row.values) for row in ordered)

    limits = ControlLimits.objects.filter(characteristic=characteristic).latest("version")
    expected = violations_expected(
        [v for _, v, _ in reference.samples], size=size, rules=RuleSet.from_dict(characteristic.rules),
        limits=limits,
    )  # fmt: skip
    stored = Violation.objects.filter(characteristic=characteristic).select_related("sample")
    got = [(v.rule, v.chart, v.sample.sequence, tuple(v.points)) for v in stored]
    assert len(got) == len(set(got))
    assert set(got) == expected
    flagged = {sequence for _, _, sequence, _ in expected}
    assert [s.in_control for s in samples] == [s.sequence not in flagged for s in samples]

    by_lot: dict[int, list[float]] = defaultdict(list)
    for row in ordered:
        by_lot[row.lot_id] += row.values
    for lot_id, values in by_lot.items():
        stats = LotStatistics.objects.get(lot_id=lot_id, test_id=characteristic.test_id)
        check_summary(stats, summary_expected(values, lsl=LSL, usl=USL), ("mean", "sd", "cpk"))
        assert stats.disposition == disposition_expected(summary_expected(values, lsl=LSL, usl=USL))
        hashes = [row.hash for row in ordered if row.lot_id == lot_id]
        assert (stats.observations, stats.checksum) == (len(hashes), checksum_of(hashes))
    everything = [value for row in ordered for value in row.values]
    product = ProductStatistics.objects.get(characteristic=characteristic)
    expected_product = summary_expected(everything, lsl=LSL, usl=USL, sigma_within=limits.sigma)
    check_summary(product, expected_product, ("mean", "sd", "cp", "cpk", "pp", "ppk"))

    state = ChartState.objects.get(pk=characteristic.pk)
    assert (state.last_sequence, state.last_position) == (len(samples), len(ordered))
    assert (feed.last_sequence, feed.last_position) == (len(samples), len(ordered))


def check_summary(stats: Any, expected: Any, indices: tuple[str, ...]) -> None:
    """Welford's running statistics against numpy and the engine (rel 1e-9); counts exactly."""
    assert (stats.n, stats.out_of_spec) == (expected.n, expected.out_of_spec)
    assert (stats.minimum, stats.maximum) == (expected.minimum, expected.maximum)
    for name in indices:
        assert getattr(stats, name) == pytest.approx(getattr(expected, name), rel=1e-9), name


# --- The same values replayed sequentially through the real services -------------------------------


def replay(plant: Plant, twin: Plant, user: Any) -> None:
    """Record the plant's confirmed observations of the REPLAYED characteristics, in position
    order, for the twin's lots; process them in that order, 500 at a time; then calculate."""
    lot_numbers = {lot.pk: number for number, lot in plant.lots.items()}
    for which in REPLAYED:
        original, copy = plant.characteristics[which], twin.characteristics[which]
        entries = [
            obs_services.ObservationEntry(
                lot=twin.lots[lot_numbers[row.lot_id]], test=copy.test, values=row.values,
                idempotency_key=f"replay-{row.pk}",
            )
            for row in confirmed_in_order(original)
        ]  # fmt: skip
        ids = obs_services.observations_record(
            entries=entries, source=ObservationSource.DEVICE, user=user, queue=False
        ).ids
        for start in range(0, len(ids), 500):
            obs_services.observations_process(ids=ids[start : start + 500])
        calc_services.characteristic_calculate(characteristic_id=copy.pk)


def results_of(characteristic: Characteristic) -> dict[str, Any]:
    """Everything the pipeline stored for a characteristic, with lots by number (comparable across
    plants). Floats exactly: the same values in the same order give the same bits."""
    samples = Sample.objects.filter(characteristic=characteristic).select_related("lot").order_by("sequence")
    moments = ("n", "mean", "sd", "minimum", "maximum", "out_of_spec")
    return {
        "samples": [
            (s.sequence, s.lot.number, s.values, s.n, s.mean, s.range, s.sd, s.in_control) for s in samples
        ],
        "violations": sorted(
            (v.rule, v.chart, v.sample.sequence, tuple(v.points), v.severity)
            for v in Violation.objects.filter(characteristic=characteristic).select_related("sample")
        ),
        "lots": {
            stats.lot.number: tuple(getattr(stats, name) for name in (*moments, "cpk", "disposition"))
            for stats in LotStatistics.objects.filter(characteristic=characteristic).select_related("lot")
        },
        "product": tuple(
            getattr(ProductStatistics.objects.get(characteristic=characteristic), name)
            for name in (*moments, "sigma_within", "cp", "cpk", "pp", "ppk")
        ),
        "pending": sorted(
            (Lot.objects.get(pk=lot).number, buffer["values"])
            for lot, buffer in SubgroupFeed.objects.get(pk=characteristic.pk).pending.items()
        ),
    }


@pytest.mark.skipif(
    not ON_POSTGRESQL,
    reason="SQLite serialises writers: 4 workers on one file test no concurrency (CI runs PostgreSQL)",
)
@pytest.mark.timeout(240)
@pytest.mark.slow
def test_concurrent_clients_and_workers_give_the_sequential_results(tmp_path: Path) -> None:
    plant = plant_build(code="GEAR-5")
    tokens = [
        config_services.device_create(name=f"gauge-{n}", products=[plant.product])[1] for n in range(CLIENTS)
    ]
    dealt = batches_dealt(entries_drawn(plant))

    with CeleryWorkers(count=WORKERS, log_dir=tmp_path) as workers:
        answers = clients_post(tokens, dealt)
        workers.wait_for(pipeline_idle, timeout=150, what="4 workers to drain 3,000 observations")
        check_posts(answers)
        check_observations(plant)
        for characteristic in plant.characteristics:
            check_against_reference(characteristic)
        # Every worker took part, and no task failed (a deadlock or a duplicate would show here).
        for index, log in enumerate(workers.logs):
            assert " succeeded in " in log.read_text(), f"worker {index} did no work"
        assert " raised unexpected" not in workers.all_logs()
    assert Violation.objects.filter(characteristic__product=plant.product).exists()

    # Workers stopped: replay the same values, in the same order, through the services, one step
    # at a time, and compare every stored row with the concurrent run's.
    twin = plant_build(code="GEAR-5-SEQ", tests=[c.test for c in plant.characteristics])
    replay(plant, twin, user=UserFactory(username="replayer"))
    for which in REPLAYED:
        original, copy = plant.characteristics[which], twin.characteristics[which]
        assert results_of(copy) == results_of(original), original.test.code


@pytest.mark.skipif(not ON_POSTGRESQL, reason="the ChartState row lock is PostgreSQL's (SQLite has none)")
def test_a_second_calculation_waits_for_the_first_then_finds_the_work_done(
    plant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
    calc_services.limits_set_historical(
        signer=limits_signer(), characteristic=dia, center=74.0, sigma=0.01, reason="historical"
    )
    values = [74.0 + 0.01 * step for step in (0, 1, -1, 4, 0, 1, 2, 3, 4, 5)]
    ids = plant.record(
        *[{"item": plant.items[i % 3], "test": plant.dia, "values": [v]} for i, v in enumerate(values)]
    )
    # Calculated once before: its ChartState row exists (a first calculation's INSERT of the row
    # would make the second wait on the unique key instead of the row lock).
    assert (
        calc_services.characteristic_calculate(characteristic_id=dia.pk) == calc_services.CalculationResult()
    )
    obs_services.observations_process(ids=ids)
    limits = dia.limits.latest("version")
    expected = violations_expected(
        [[v] for v in values], size=1, rules=RuleSet.from_dict(dia.rules), limits=limits
    )
    assert expected  # rule 1 at the fourth value, rule 3 at the last

    # The first calculation stops inside its transaction (ChartState row locked) until released.
    paused, release = first_calculation_paused(monkeypatch)
    results: dict[str, Any] = {}

    def calculate_in_thread(name: str) -> threading.Thread:
        def run() -> None:
            try:
                results[name] = calc_services.characteristic_calculate(characteristic_id=dia.pk)
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    first = calculate_in_thread("first")
    try:
        assert paused.wait(timeout=30)
        second = calculate_in_thread("second")
        second.join(timeout=1.0)
        waited = second.is_alive()
    finally:
        release.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert waited, "the second calculation did not wait for the first one's lock"

    assert results == {
        "first": calc_services.CalculationResult(samples=10, observations=10, violations=len(expected)),
        "second": calc_services.CalculationResult(),  # nothing left: judged and counted once
    }
    stored = Violation.objects.filter(characteristic=dia).select_related("sample")
    assert {(v.rule, v.chart, v.sample.sequence, tuple(v.points)) for v in stored} == expected
    assert LotStatistics.objects.get(lot=plant.lot, test=plant.dia).n == len(values)
    assert ProductStatistics.objects.get(characteristic=dia).n == len(values)

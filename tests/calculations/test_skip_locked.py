"""Two calculation workers on the same characteristics (PostgreSQL: real row locks): the second
leaves a characteristic the first holds to it and asks for it again, and nothing is judged twice
or left out."""

import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from apps.calculations import services as calc_services
from apps.calculations import tasks as calc_tasks
from apps.calculations.models import ChartState, LotStatistics, ProductStatistics, Violation
from apps.config import services as config_services
from apps.config.models import Characteristic, Product
from apps.observations import handoff
from apps.observations import services as obs_services
from apps.observations.choices import ObservationSource
from apps.observations.models import Sample
from spc import RuleSet
from tests.factories import LotFactory, TestFactory, UserFactory, released_plan
from tests.support.pausing import first_calculation_paused
from tests.support.signing import limits_signer
from tests.support.workers import CeleryWorkers, pipeline_idle, violations_expected

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locking needs PostgreSQL"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

# Rule 1 at the fourth value, rule 3 at the last (as in test_concurrency's lock test).
VALUES = [74.0 + 0.01 * step for step in (0, 1, -1, 4, 0, 1, 2, 3, 4, 5)]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What the hand-off queues, instead of the broker."""
    messages: list[dict[str, Any]] = []

    def send_task(name: str, kwargs: dict[str, Any], countdown: float | None = None) -> None:
        messages.append({"name": name, "countdown": countdown, **kwargs})

    monkeypatch.setattr(handoff.current_app, "send_task", send_task)
    return messages


def _in_thread(results: dict[str, Any], name: str, work: Any) -> threading.Thread:
    def run() -> None:
        try:
            results[name] = work()
        except Exception as exc:  # shown by the assertion on results
            results[name] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("holder", ["busy", "nearly_done"])
def test_a_held_characteristic_is_left_to_its_holder_and_asked_for_again(
    plant: Any, sent: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, holder: str
) -> None:
    """busy: the first run holds the chart state longer than the task waits (LOCK_WAIT_SECONDS), so
    the second leaves it and asks again; nearly_done: it is released within the wait (played with a
    long one), so the second waits and takes the rest itself."""
    if holder == "nearly_done":
        monkeypatch.setattr(calc_tasks, "LOCK_WAIT_SECONDS", 30.0)
    dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
    calc_services.limits_set_historical(
        signer=limits_signer(), characteristic=dia, center=74.0, sigma=0.01, reason="historical"
    )
    calc_services.characteristic_calculate(characteristic_id=dia.pk)  # its ChartState row exists
    rules, limits = RuleSet.from_dict(dia.rules), dia.limits.latest("version")
    expected = violations_expected([[v] for v in VALUES], size=1, rules=rules, limits=limits)
    in_first_half = violations_expected([[v] for v in VALUES[:5]], size=1, rules=rules, limits=limits)
    assert in_first_half
    assert len(expected) > len(in_first_half)
    items = [plant.items[i % 3] for i in range(len(VALUES))]
    first_half = plant.record(
        *[{"item": i, "test": plant.dia, "values": [v]} for i, v in zip(items[:5], VALUES[:5], strict=True)]
    )
    obs_services.observations_process(ids=first_half)

    paused, release = first_calculation_paused(monkeypatch)
    results: dict[str, Any] = {}
    first = _in_thread(
        results, "first", lambda: calc_services.characteristic_calculate(characteristic_id=dia.pk)
    )
    try:
        assert paused.wait(timeout=30)
        # Committed while the first run holds the lock and has read its work already.
        second_half = plant.record(
            *[
                {"item": i, "test": plant.dia, "values": [v]}
                for i, v in zip(items[5:], VALUES[5:], strict=True)
            ]
        )
        obs_services.observations_process(ids=second_half)
        sent.clear()  # the calculation the processing queued: this is its run, in another worker
        second = _in_thread(
            results, "second", lambda: calc_tasks.calculations_apply_task.run(characteristic_ids=[dia.pk])
        )
        second.join(timeout=10 if holder == "busy" else 1)
        waited = second.is_alive()
    finally:
        release.set()
    first.join(timeout=30)
    second.join(timeout=30)
    first_run = calc_services.CalculationResult(samples=5, observations=5, violations=len(in_first_half))
    second_half_run = {"samples": 5, "observations": 5, "violations": len(expected) - len(in_first_half)}
    if holder == "busy":
        assert not waited, "the second calculation waited for the first one's lock"
        assert results == {
            "first": first_run,
            "second": {"samples": 0, "observations": 0, "violations": 0, "skipped": 1},
        }
        # Asked for again, a little later: the run that message makes takes the second half.
        assert sent == [
            {
                "name": "calculations.apply",
                "countdown": calc_tasks.SKIPPED_RETRY_SECONDS,
                "characteristic_ids": [dia.pk],
            }
        ]
        again = calc_tasks.calculations_apply_task.run(characteristic_ids=sent[0]["characteristic_ids"])
        assert again == {**second_half_run, "skipped": 0}
    else:
        assert waited, "the second calculation did not wait for the first one's lock"
        assert results == {"first": first_run, "second": {**second_half_run, "skipped": 0}}
        assert sent == []  # nothing asked for again

    stored = Violation.objects.filter(characteristic=dia).select_related("sample")
    assert sorted((v.rule, v.chart, v.sample.sequence, tuple(v.points)) for v in stored) == sorted(expected)
    samples = Sample.objects.filter(characteristic=dia).order_by("sequence")
    assert [s.sequence for s in samples] == list(range(1, 11))
    assert all(s.evaluated_at is not None for s in samples)
    state = ChartState.objects.get(pk=dia.pk)
    assert (state.last_sequence, state.last_position) == (10, 10)
    assert LotStatistics.objects.get(lot=plant.lot, test=plant.dia).n == len(VALUES)
    assert ProductStatistics.objects.get(characteristic=dia).n == len(VALUES)


CHARACTERISTICS = 10  # every batch holds one value of each, as a Sparkplug message of a node does
BATCHES = 60  # values per characteristic: 12 subgroups of 5


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_two_workers_fed_the_same_characteristics_finish_everything_once(tmp_path: Path) -> None:
    """Two worker processes take batches that each touch all ten characteristics (they contend for
    the same feeds and chart states): both take part, nothing is left received or unjudged, every
    sample is judged once and every value counted once."""
    product = Product.objects.create(code="NODE-1", name="NODE-1")
    tests = [TestFactory(code=f"M{i}", plausible_min=0.0, plausible_max=20.0) for i in range(CHARACTERISTICS)]
    config_services.plan_assign(product=product, plan=released_plan(*tests, code="NODE"))
    characteristics = []
    for test in tests:
        characteristic = config_services.characteristic_update(
            characteristic=Characteristic.objects.get(product=product, test=test),
            data={"subgroup_size": 5},
            reason="specification",
        )
        calc_services.limits_set_historical(
            signer=limits_signer(), characteristic=characteristic, center=10.0, sigma=1.0, reason="historical"
        )
        characteristics.append(characteristic)
    lot = LotFactory(product=product, number="N-1")
    user = UserFactory(username="node")
    rng = random.Random(3)
    recorded: dict[int, list[float]] = {test.pk: [] for test in tests}
    with CeleryWorkers(count=2, log_dir=tmp_path) as workers:
        for batch in range(BATCHES):
            # A special cause now and then (+5 sigma): violations to be judged once.
            values = [15.0 if batch % 17 == 3 else round(rng.gauss(10.0, 1.0), 3) for _ in tests]
            entries = [
                obs_services.ObservationEntry(lot=lot, test=test, values=[value])
                for test, value in zip(tests, values, strict=True)
            ]
            obs_services.observations_record(entries=entries, source=ObservationSource.DEVICE, user=user)
            for test, value in zip(tests, values, strict=True):
                recorded[test.pk].append(value)
            time.sleep(0.01)
        workers.wait_for(pipeline_idle, timeout=150, what="2 workers to drain the batches")
        for index, log in enumerate(workers.logs):
            assert " succeeded in " in log.read_text(), f"worker {index} did no work"
        assert " raised unexpected" not in workers.all_logs()

    for characteristic in characteristics:
        samples = list(Sample.objects.filter(characteristic=characteristic).order_by("sequence"))
        assert [s.sequence for s in samples] == list(range(1, BATCHES // 5 + 1))
        assert all(s.evaluated_at is not None and s.in_control is not None for s in samples)
        assert sorted(v for s in samples for v in s.values) == sorted(recorded[characteristic.test_id])
        limits = characteristic.limits.latest("version")
        expected = violations_expected(
            [s.values for s in samples], size=5, rules=RuleSet.from_dict(characteristic.rules), limits=limits
        )
        assert expected
        stored = Violation.objects.filter(characteristic=characteristic).select_related("sample")
        got = [(v.rule, v.chart, v.sample.sequence, tuple(v.points)) for v in stored]
        assert sorted(got) == sorted(expected)  # each once
        state = ChartState.objects.get(pk=characteristic.pk)
        assert (state.last_sequence, state.last_position) == (BATCHES // 5, BATCHES)
        assert LotStatistics.objects.get(lot=lot, test_id=characteristic.test_id).n == BATCHES
        assert ProductStatistics.objects.get(characteristic=characteristic).n == BATCHES

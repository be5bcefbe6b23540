"""POST /api/v1/samples/ takes the requests that arrive while others are being stored and judged
together (group commit, ADR 0019): one transaction of each kind for the group, each request its
own answer, and an error only for the request that caused it.

Real threads, each with its own API client and database connection, as daphne runs requests. The
first request is held in its group's first stage (storing and processing) while the others
arrive; they wait for it, and are then taken as one group."""

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection, transaction
from rest_framework.response import Response

from apps.calculations.models import Violation
from apps.calculations.services import submit as submit_module
from apps.observations.choices import ObservationStatus
from apps.observations.models import Observation, Sample
from apps.observations.services import process as process_module
from tests.calculations.api_helpers import assigned_item, dia_of, historical, submit

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

LATER = 5  # requests that arrive while the first is being calculated


def in_thread(call: Callable[[], Response], answers: dict[str, Response], name: str) -> threading.Thread:
    def run() -> None:
        try:
            answers[name] = call()
        finally:
            connection.close()  # this thread's

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread


def waiting() -> int:
    with submit_module._groups._changed:
        return len(submit_module._groups._waiting)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture
def dia(plant: Any) -> Any:
    characteristic = dia_of(plant)
    historical(characteristic, center=74.0, sigma=0.01)
    assigned_item(plant)
    return characteristic


@dataclass
class Processing:
    """The number of observations each observations_process call of the submissions was given;
    the first call waits, once it has processed, until `release` is set (`paused` says it does)."""

    sizes: list[int] = field(default_factory=list)
    paused: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def processing(monkeypatch: pytest.MonkeyPatch) -> Iterator[Processing]:
    seen = Processing()
    real = process_module.observations_process

    def counted(*, ids: Any, **kwargs: Any) -> Any:
        seen.sizes.append(len(ids))
        result = real(ids=ids, **kwargs)
        if not seen.paused.is_set():
            seen.paused.set()
            assert seen.release.wait(timeout=30)
        return result

    monkeypatch.setattr(submit_module, "observations_process", counted)
    yield seen
    seen.release.set()


def post(api: Any, plant: Any, dia: Any, value: float, key: str) -> Callable[[], Response]:
    client = api(plant.tester)
    client.raise_request_exception = False  # a server error is an answer (500), as daphne gives it
    return lambda: submit(client, dia, [value], lot=plant.lot, item=plant.items[0].pk, idempotency_key=key)


def test_requests_that_arrive_meanwhile_are_stored_processed_and_judged_as_one_group(
    api, plant, dia, processing
):
    paused, release = processing.paused, processing.release
    answers: dict[str, Response] = {}
    threads = [in_thread(post(api, plant, dia, 74.0, "first"), answers, "first")]
    assert paused.wait(timeout=20)
    values = {f"later-{k}": 74.001 + k / 1000 for k in range(LATER - 1)} | {"out": 74.2}  # 74.2: rule 1
    threads += [in_thread(post(api, plant, dia, value, key), answers, key) for key, value in values.items()]
    try:
        wait_for(lambda: waiting() == LATER, "the later requests to wait for the group running")
    finally:
        release.set()
    for thread in threads:
        thread.join(timeout=30)

    assert {name: answer.status_code for name, answer in answers.items()} == dict.fromkeys(
        ["first", *values], 201
    )
    assert processing.sizes == [1, LATER]  # the first alone, then the rest together
    samples = {name: answer.json()["sample"] for name, answer in answers.items()}
    assert sorted(sample["sequence"] for sample in samples.values()) == list(range(1, LATER + 2))
    for name, value in values.items():  # each request answered with its own sample and observation
        assert samples[name]["values"] == [value]
        observation = Observation.objects.get(pk=answers[name].json()["observation"])
        assert (observation.values, observation.sample_id, observation.status) == (
            [value], samples[name]["id"], ObservationStatus.CONFIRMED,
        )  # fmt: skip
    # 74.2 is beyond the individuals' limits; the moving ranges into and out of it may be too.
    location = {
        name: [(v["rule"], v["chart"]) for v in answer.json()["violations"] if v["chart"] == "location"]
        for name, answer in answers.items()
    }
    assert location == {name: [(1, "location")] if name == "out" else [] for name in answers}
    stored = set(Violation.objects.filter(chart="location").values_list("sample_id", flat=True))
    assert stored == {samples["out"]["id"]}


def test_in_a_group_only_the_request_whose_key_was_reused_gets_the_conflict(api, plant, dia, processing):
    processing.paused.set()  # this one is not held
    assert submit(api(plant.tester), dia, [74.001], lot=plant.lot, item=plant.items[0].pk,
                  idempotency_key="taken").status_code == 201  # fmt: skip
    processing.paused.clear()
    paused, release = processing.paused, processing.release
    answers: dict[str, Response] = {}
    threads = [in_thread(post(api, plant, dia, 74.0, "first"), answers, "first")]
    assert paused.wait(timeout=20)
    threads += [
        in_thread(post(api, plant, dia, 74.002, "fine-1"), answers, "fine-1"),
        in_thread(post(api, plant, dia, 74.009, "taken"), answers, "reused"),  # another body
        in_thread(post(api, plant, dia, 74.003, "fine-2"), answers, "fine-2"),
    ]
    try:
        wait_for(lambda: waiting() == 3, "the later requests to wait")
    finally:
        release.set()
    for thread in threads:
        thread.join(timeout=30)

    assert {name: answer.status_code for name, answer in answers.items()} == {
        "first": 201, "fine-1": 201, "reused": 409, "fine-2": 201
    }  # fmt: skip
    assert answers["reused"].json()["error"]["code"] == "idempotency_key_reused"
    assert processing.sizes == [1, 1, 2]  # the two others, stored one by one once the group's store failed
    assert sorted(Sample.objects.values_list("values", flat=True)) == [[74.0], [74.001], [74.002], [74.003]]


def test_a_failure_of_the_group_reaches_every_request_in_it_and_leaves_their_values_stored(
    api, plant, dia, monkeypatch, processing
):
    real = submit_module.characteristics_calculate
    calls: list[int] = []

    def broken_after_the_first(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("the database went away")
        return real(**kwargs)

    monkeypatch.setattr(submit_module, "characteristics_calculate", broken_after_the_first)
    paused, release = processing.paused, processing.release
    answers: dict[str, Response] = {}
    threads = [in_thread(post(api, plant, dia, 74.0, "first"), answers, "first")]
    assert paused.wait(timeout=20)
    threads += [
        in_thread(post(api, plant, dia, 74.001 + k / 1000, f"k{k}"), answers, f"k{k}") for k in range(3)
    ]
    try:
        wait_for(lambda: waiting() == 3, "the later requests to wait")
    finally:
        release.set()
    for thread in threads:
        thread.join(timeout=30)

    assert {name: answer.status_code for name, answer in answers.items()} == {
        "first": 201, "k0": 500, "k1": 500, "k2": 500
    }  # fmt: skip
    assert processing.sizes == [1, 3]
    # Stored and confirmed before the calculation failed: the calculation sweep takes them in.
    assert Observation.objects.filter(status=ObservationStatus.CONFIRMED).count() == 4
    assert Sample.objects.count() == 4


def test_a_leader_waits_for_a_request_still_checking_its_context_to_join_its_group(
    api, plant, dia, monkeypatch, processing
):
    processing.paused.set()  # nothing held in processing
    monkeypatch.setattr(submit_module, "JOIN_WAIT_SECONDS", 20)
    checking, go_on = threading.Event(), threading.Event()
    real_context = submit_module._context

    def slow_context(characteristic: Any, context: dict[str, Any], user: Any) -> Any:
        if context.get("idempotency_key") == "slow":
            checking.set()
            assert go_on.wait(timeout=20)
        return real_context(characteristic, context, user)

    monkeypatch.setattr(submit_module, "_context", slow_context)
    answers: dict[str, Response] = {}
    threads = [in_thread(post(api, plant, dia, 74.0, "slow"), answers, "slow")]
    assert checking.wait(timeout=20)
    threads.append(in_thread(post(api, plant, dia, 74.001, "quick"), answers, "quick"))
    wait_for(lambda: waiting() == 1, "the quick request to join and lead")
    time.sleep(0.2)
    assert processing.sizes == []  # the leader waits for the request that is arriving
    go_on.set()
    for thread in threads:
        thread.join(timeout=30)

    assert {name: answer.status_code for name, answer in answers.items()} == {"slow": 201, "quick": 201}
    assert processing.sizes == [2]


def test_a_submission_inside_a_transaction_of_its_caller_is_never_grouped(api, plant, dia, processing):
    """The caller's transaction could roll back what other requests were answered for."""
    paused, release = processing.paused, processing.release
    answers: dict[str, Response] = {}
    threads = [in_thread(post(api, plant, dia, 74.0, "first"), answers, "first")]
    assert paused.wait(timeout=20)
    try:
        with transaction.atomic():  # a group is running: a request outside a transaction would wait
            result = submit_module.sample_submit(
                characteristic=dia, measurements=[74.002],
                context={"lot": plant.lot.pk, "item": plant.items[0].pk, "idempotency_key": "inside"},
                user=plant.tester,
            )  # fmt: skip
        assert waiting() == 0
    finally:
        release.set()
    for thread in threads:
        thread.join(timeout=30)

    assert (result.sample.values, result.observation.status) == ([74.002], ObservationStatus.CONFIRMED)
    assert answers["first"].status_code == 201
    assert processing.sizes == [1, 1]

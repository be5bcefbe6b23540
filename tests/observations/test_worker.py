"""A real Celery worker process (not eager mode) consuming observations.in."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.observations.choices import ObservationStatus
from apps.observations.models import Observation
from tests.support.plant import Plant
from tests.support.workers import CeleryWorkers

pytestmark = pytest.mark.slow


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[CeleryWorkers]:
    """`celery -A openspc worker -Q observations.in` on the test database; stopped after the test."""
    with CeleryWorkers(count=1, log_dir=tmp_path, queues=["observations.in"]) as workers:
        yield workers


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_confirms_and_rejects_what_the_api_accepted(api, tester, worker):
    plant = Plant(tester)
    batch = [
        {"item": plant.items[0].pk, "test": plant.dia.pk, "values": [74.02]},
        {"item": plant.items[1].pk, "test": plant.wall.pk, "values": [1.1, 1.2, 1.3]},
        {"item": plant.items[2].pk, "test": plant.dia.pk, "values": [99.0]},  # implausible
        {"item": plant.items[2].pk, "test": plant.surf.pk, "values": [2]},  # in no plan of the product
    ]
    response = api(tester).post("/api/v1/observations/", batch)
    assert response.status_code == 202, response.content
    ids = response.json()["ids"]

    worker.wait_for(
        lambda: not Observation.objects.filter(pk__in=ids, status=ObservationStatus.RECEIVED).exists(),
        timeout=60,
        what="the worker to process the batch",
    )

    stored = Observation.objects.in_bulk(ids)
    assert [stored[pk].status for pk in ids] == ["confirmed", "confirmed", "rejected", "rejected"]
    assert [r["code"] for r in stored[ids[2]].reasons] == ["out_of_range"]
    assert [r["code"] for r in stored[ids[3]].reasons] == ["test_not_in_plan"]
    assert stored[ids[0]].characteristic.test == plant.dia
    # The status URL shows the worker's verdict.
    listed = api(tester).get(response.json()["status_url"]).json()["results"]
    assert sorted(row["status"] for row in listed) == ["confirmed", "confirmed", "rejected", "rejected"]
    assert "observations.process" in worker.all_logs()

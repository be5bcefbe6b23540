"""A real Celery worker process (not eager mode) consuming observations.in."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from apps.observations.choices import ObservationStatus
from apps.observations.models import Observation
from tests.observations.conftest import Plant

BASE_DIR = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).parent / "celery"


def _test_database_url() -> str:
    """The URL of the database this test runs on (the test database), for another process."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(tmp_path):
    """`celery -A openspc worker -Q observations.in` on the test database; stopped after the test."""
    if connection.vendor == "sqlite" and "memory" in str(connection.settings_dict["NAME"]):
        pytest.skip("the SQLite test database is in memory; another process cannot open it")
    log = tmp_path / "worker.log"
    env = {**os.environ, "DATABASE_URL": _test_database_url()}
    command = [
        str(CELERY), "-A", "openspc", "worker", "-Q", "observations.in", "--pool", "solo",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
        "--hostname", f"test-{uuid.uuid4().hex[:8]}@%h",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=BASE_DIR, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_confirms_and_rejects_what_the_api_accepted(api, tester, worker):
    process, log = worker
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

    deadline = time.monotonic() + 60
    while Observation.objects.filter(pk__in=ids, status=ObservationStatus.RECEIVED).exists():
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "worker did not process in 60 s:\n" + log.read_text()[-3000:]
        time.sleep(0.2)

    stored = Observation.objects.in_bulk(ids)
    assert [stored[pk].status for pk in ids] == ["confirmed", "confirmed", "rejected", "rejected"]
    assert [r["code"] for r in stored[ids[2]].reasons] == ["out_of_range"]
    assert [r["code"] for r in stored[ids[3]].reasons] == ["test_not_in_plan"]
    assert stored[ids[0]].characteristic.test == plant.dia
    # The status URL shows the worker's verdict.
    listed = api(tester).get(response.json()["status_url"]).json()["results"]
    assert sorted(row["status"] for row in listed) == ["confirmed", "confirmed", "rejected", "rejected"]
    assert "observations.process" in log.read_text()

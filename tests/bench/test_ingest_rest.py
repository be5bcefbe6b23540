"""bench/ingest_rest.py: its figures follow the definitions in its docstring, and a tiny run works
end to end on real PostgreSQL and Redis (skipped without them: it measures the production setup)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from bench.ingest_common import BATCH, Stored, bench_database_url, database_recreate
from bench.ingest_rest import Batch, Tracker, parse_args, summarise
from tests.support.bench import database_names, postgres_url

ROOT = Path(__file__).resolve().parents[2]


def batch(index: int, sent: float, accepted: float, stored: float) -> Batch:
    return Batch(index, list(range(index * BATCH, (index + 1) * BATCH)), sent, accepted, stored)


def test_rates_and_latencies_follow_the_definitions() -> None:
    batches = [batch(0, 0.0, 0.05, 0.5), batch(1, 0.1, 0.15, 0.6), batch(2, 0.2, 0.3, 0.9),
               batch(3, 0.3, 0.4, 1.3)]  # fmt: skip
    run = summarise(2, batches, Stored(observations=400, samples=80, violations=1), {"web": 0.5})

    assert run.observations == 400
    assert run.observations_per_s == round(400 / 1.3, 1)  # first POST sent -> last batch stored
    assert run.accepted_per_s == 1000.0  # first POST sent -> last 202
    assert run.p50_ms == 600.0  # latencies 500, 500, 700, 1000 ms
    assert run.p99_ms == 991.0  # linear between the two largest
    assert run.max_ms == 1000.0
    assert (run.workers, run.samples, run.violations, run.cores) == (2, 80, 1, {"web": 0.5})


def test_a_batch_is_stored_when_its_last_observation_is() -> None:
    tracker = Tracker([1, 2], poll_s=0.01, max_in_flight=2)
    first, second = batch(0, 0.0, 0.1, 0.0), batch(1, 0.0, 0.1, 0.0)
    for item in (first, second):
        assert tracker.slots.acquire(blocking=False)
        item.stored = None
        tracker.register(item)
    tracker.stored_at = {pk: 1.0 + pk / 1000 for pk in first.ids} | dict.fromkeys(second.ids[:-1], 9.0)

    with tracker.lock:
        tracker._complete()

    assert first.stored == 1.0 + first.ids[-1] / 1000
    assert second.stored is None
    assert tracker.unfinished() == 1
    assert tracker.slots.acquire(blocking=False)  # the stored batch gave its slot back
    assert not tracker.slots.acquire(blocking=False)


def test_the_configured_database_is_never_the_bench_database() -> None:
    url = "postgres://postgres@127.0.0.1:5432/openspc"
    assert bench_database_url(url, "openspc_bench") == "postgres://postgres@127.0.0.1:5432/openspc_bench"
    with pytest.raises(SystemExit, match="the benchmark drops it"):
        bench_database_url(url, "openspc")


def test_options_are_checked() -> None:
    assert parse_args(["--workers", "1,4"]).worker_counts == [1, 4]
    for bad in (["--workers", "0"], ["--workers", "two"], ["--observations", "50"],
                ["--seconds", "5", "--observations", "500"]):  # fmt: skip
        with pytest.raises(SystemExit):
            parse_args(bad)


@pytest.mark.services
def test_a_database_the_benchmark_did_not_create_is_left_alone() -> None:
    database_url = postgres_url()
    name = "openspc_ingest_pytest_foreign"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    try:
        for drop_only in (False, True):
            with pytest.raises(SystemExit, match="the benchmark did not create"):
                database_recreate(database_url, name, drop_only=drop_only)
            assert database_names(database_url, name) == [name]
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.mark.services
@pytest.mark.slow
def test_a_tiny_run_end_to_end() -> None:
    """One worker, 300 observations: about 10 s on two cores."""
    database_url = postgres_url()
    command = [sys.executable, "bench/ingest_rest.py", "--workers", "1", "--target-workers", "1",
               "--observations", "300", "--clients", "2", "--database", "openspc_ingest_pytest",
               "--purge-queues"]  # fmt: skip
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)

    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    lines = completed.stdout.strip().splitlines()
    assert any(line.split()[:2] == ["1", "300"] for line in lines)  # the table row of the run
    summary = json.loads(lines[-1])
    assert summary["workers"] == 1
    assert summary["runs"][0]["observations"] == 300
    assert summary["runs"][0]["samples"] > 0  # the warm-up's and the run's values, in subgroups of 5
    assert summary["observations_per_s"] > 0
    assert 0 < summary["p50_ms"] <= summary["p99_ms"]
    assert database_names(database_url, "openspc_ingest_pytest") == []  # dropped again

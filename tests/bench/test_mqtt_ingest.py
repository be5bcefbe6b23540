"""bench/mqtt_ingest.py: its figures follow the definitions in its docstring, and a short run works
end to end on real PostgreSQL, Redis, Celery workers and a private Mosquitto (skipped without them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench.mqtt_ingest import Row, mosquitto_binary, summarise

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "sparkplug_measurements_per_s", "json_measurements_per_s", "p50_ms", "p99_ms", "p99_ws_ms",
    "ceiling_messages_per_s", "ceiling_ratio", "first_after_restart_ms", "rest_p99_ms_at_2000", "lost",
}  # fmt: skip


def test_figures_follow_the_definitions() -> None:
    # Sample 1: five values published 0.0 .. 0.4, judged at 0.5, one seeded, its violation out at 0.6;
    # sample 2: seeded, judged at 1.0, no violation; one value stored in no sample yet; 1 acked, never stored.
    rows = [Row(0.1 * i, 0.1 * i + 0.05, 1, 0.5, i == 2) for i in range(5)]
    rows += [Row(0.5 + 0.1 * i, 0.6 + 0.1 * i, 2, 1.0, i == 0) for i in range(5)]
    rows.append(Row(1.0, 1.1, None, None, False))
    run = summarise("sparkplug", 2000, 12, 12, 0.0, rows, {1: 0.6}, 1, {}, ws={1: 0.7, 2: 1.2})

    assert (run.stored, run.calculated, run.lost, run.uncalculated) == (11, 10, 1, 0)
    assert run.calc_p50_ms == pytest.approx(100.0)  # 0.5 - 0.4 and 1.0 - 0.9
    assert run.violation_p99_ms == pytest.approx(200.0)  # 0.6 - 0.4
    assert (run.seeded_samples, run.missing_violations) == (2, 1)
    assert (run.ws_p50_ms, run.missing_ws) == (pytest.approx(300.0), 0)  # 0.7 - 0.4 and 1.2 - 0.9
    assert run.measurements_per_s == 10.0  # 10 values judged / (0.0 -> 1.0)
    assert run.stored_p50_ms == pytest.approx(100.0)  # five at 50 ms, six at 100 ms
    assert run.label == "sparkplug_2000"


@pytest.mark.services
@pytest.mark.slow
def test_a_short_run_end_to_end() -> None:
    """A few seconds per run, a database migrated once: about a minute."""
    database_url = os.environ.get("DATABASE_URL", "")
    if urlsplit(database_url).scheme not in {"postgres", "postgresql"} or not os.environ.get("REDIS_URL"):
        pytest.skip("needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)")
    if mosquitto_binary() is None:
        pytest.skip("needs Mosquitto: the benchmark starts a private one with settings of its own")
    command = [sys.executable, "bench/mqtt_ingest.py", "--rates", "500", "--json-rates", "200",
               "--seconds", "2", "--rest-seconds", "1", "--ceiling-seconds", "1", "--stall", "10",
               "--database", "openspc_mqtt_ingest_pytest", "--purge-queues"]  # fmt: skip
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)

    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    assert set(summary) >= KEYS
    assert summary["lost"] == 0
    assert [(r["kind"], r["acked"], r["stored"]) for r in summary["runs"]] == [
        ("sparkplug", 1000, 1000),
        ("json", 400, 400),
    ]
    assert summary["sparkplug_measurements_per_s"] > 0
    assert summary["ceiling_messages_per_s"] > 0
    assert summary["first_after_restart_ms"] > 0
    assert summary["rest_p99_ms_at_2000"] > 0

"""bench/mqtt_listen.py: its figures follow the definitions in its docstring, and a tiny run works
end to end on real PostgreSQL, Redis and a private Mosquitto (skipped without them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench.mqtt_listen import Published, mosquitto_binary, parse_args, plan, summarise

ROOT = Path(__file__).resolve().parents[2]


def test_figures_follow_the_definitions() -> None:
    published = Published(rate=100, count=4, first=1000.0, last=1000.03, acked=4, backlog=2)
    times = [(1000.05, 0.05), (1000.06, 0.05), (1000.08, 0.06), (1000.2, 0.17)]  # (received_at, latency)
    run = summarise("3.1.1", published, times, 0, {"listener": 0.1})

    assert run.stored == 4
    assert run.stored_per_s == round(4 / 0.2, 1)  # first publish -> last received_at
    assert run.published_per_s == round(4 / 0.03, 1)
    assert run.p50_ms == 55.0
    assert run.max_ms == 170.0
    assert run.drain_s == 0.17  # last publish -> last received_at
    assert (run.backlog, run.lost, run.kept_up, run.label) == (2, 0, True, "100")


def test_loss_and_a_slow_drain_are_not_keeping_up() -> None:
    published = Published(rate=2000, count=5, first=0.0, last=1.0, acked=5, backlog=3)
    lost = summarise("5", published, [(1.1, 0.1)] * 4, 0, {})
    slow = summarise("5", published, [(2.5, 1.5)] * 5, 0, {})

    assert (lost.lost, lost.kept_up, lost.label) == (1, False, "2000_mqtt5")
    assert (slow.lost, slow.drain_s, slow.kept_up) == (0, 1.5, False)


def test_mqtt_5_runs_the_highest_rate_only() -> None:
    args = parse_args(["--rates", "500,2000,1000", "--protocols", "3.1.1,5"])
    assert plan(args) == [(500, "3.1.1"), (2000, "3.1.1"), (1000, "3.1.1"), (2000, "5")]
    for bad in (["--rates", "0"], ["--rates", "fast"], ["--protocols", "4"], ["--seconds", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


@pytest.mark.services
@pytest.mark.slow
def test_a_tiny_run_end_to_end() -> None:
    """100 messages/s for 2 s with each protocol: about 40 s (a database migrated per run)."""
    database_url = os.environ.get("DATABASE_URL", "")
    if urlsplit(database_url).scheme not in {"postgres", "postgresql"} or not os.environ.get("REDIS_URL"):
        pytest.skip("needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)")
    if mosquitto_binary() is None:
        pytest.skip("needs Mosquitto: the benchmark starts a private one with settings of its own")
    command = [sys.executable, "bench/mqtt_listen.py", "--rates", "100", "--seconds", "2",
               "--database", "openspc_mqtt_pytest", "--purge-queues"]  # fmt: skip
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)

    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    lines = completed.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert [(r["protocol"], r["acked"], r["stored"], r["lost"]) for r in summary["runs"]] == [
        ("3.1.1", 200, 200, 0),
        ("5", 200, 200, 0),
    ]
    assert summary["lost"] == 0
    assert 0 < summary["p50_ms_100"] <= summary["p99_ms_100"]

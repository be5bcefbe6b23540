"""bench/alarm_rate.py: floods are counted once each, and a short run end to end detects every
cause it injects and ends with its JSON line (real PostgreSQL and Redis)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.alarm_rate import floods
from tests.support.bench import database_names, postgres_url

ROOT = Path(__file__).resolve().parents[2]


def test_a_flood_is_more_than_ten_events_in_ten_minutes_counted_once() -> None:
    assert floods([0] * 10) == 0
    assert floods([0] * 11) == 1
    assert floods([*range(11), *range(12, 23)]) == 0  # 11 in 11 minutes: never more than 10 in 10
    burst = [5] * 11
    assert floods([*burst, 30, *([60] * 11)]) == 2  # two bursts, apart
    assert floods([0] * 30) == 1  # one long flood


@pytest.mark.services
@pytest.mark.slow
def test_a_short_run_end_to_end() -> None:
    """Two plant hours, a cause every 30 minutes per characteristic: a few seconds."""
    database_url = postgres_url()
    command = [sys.executable, "bench/alarm_rate.py", "--hours", "2", "--calm", "30",
               "--database", "openspc_alarms_pytest"]  # fmt: skip
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)

    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    lines = completed.stdout.strip().splitlines()
    assert any(line.split()[:2] == ["Line", "1"] for line in lines)  # a table row
    result = json.loads(lines[-1])
    assert result.keys() >= {"causes_injected", "causes_detected", "events_per_hour", "floods",
                             "notifications_per_hour"}  # fmt: skip
    assert result["causes_injected"] > 0
    assert result["causes_detected"] == result["causes_injected"]
    assert 0 < result["events"] < result["violations"]  # gathered: fewer events than violations
    # The hourly budget (12 new alarms) on plant time, and the one "N more alarms" that folds the rest.
    assert 0 < result["notifications_per_hour"] <= 12 + 1 / 2
    assert result["notifications_per_hour"] < result["events"] / 2
    assert database_names(database_url, "openspc_alarms_pytest") == []  # dropped again

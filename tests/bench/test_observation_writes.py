"""bench/observation_writes.py: a small run measures both index sets and drops its database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.bench import database_names, postgres_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.services
@pytest.mark.slow
def test_a_small_run_end_to_end() -> None:
    database_url = postgres_url()
    name = "openspc_writes_pytest"
    command = [
        sys.executable,
        "bench/observation_writes.py",
        "--rows",
        "2000",
        "--rounds",
        "1",
        "--database",
        name,
    ]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)

    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    assert summary["rows"] == 2000
    # The index set of before has the three indexes the migration dropped.
    assert summary["before"]["indexes"] == summary["now"]["indexes"] + 3
    assert all(summary[s]["store_ms"] > 0 and summary[s]["process_ms"] > 0 for s in ("before", "now"))
    assert database_names(database_url, name) == []

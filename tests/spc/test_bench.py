"""The benchmark runs end to end on a small size and ends with a JSON summary line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .reference import repo_root

KEYS = (
    "incremental_points_per_s",
    "batch_1m_seconds",
    "limits_1m_seconds",
    "baseline_incremental_points_per_s",
)


@pytest.mark.slow
def test_bench_runs_and_prints_json_last() -> None:
    env = {**os.environ, "SPC_BENCH_N": "20000", "SPC_BENCH_REPEAT": "1"}
    completed = subprocess.run(
        [sys.executable, "bench/spc_engine.py"],
        cwd=repo_root(), env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.strip().splitlines()
    assert any(line.startswith("incremental, 8 rules") for line in lines)
    summary = json.loads(lines[-1])
    for key in KEYS:
        assert isinstance(summary[key], int | float), key
        assert summary[key] > 0, key

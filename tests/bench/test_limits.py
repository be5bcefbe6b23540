"""bench/limits.py: its options are checked, and a small run refuses every upload within bounds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.limits import Upload, parse_args, table

ROOT = Path(__file__).resolve().parents[2]


def test_options_are_checked() -> None:
    assert parse_args([]).megabytes == 200
    for bad in (
        ["--uploads", "0"],
        ["--limit-bytes", "1000"],
        ["--megabytes", "4", "--limit-bytes", str(4 << 20)],
    ):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_an_upload_that_was_not_refused_shows_no_time() -> None:
    rows = table([Upload(status=413, sent_mb=1.5, to_413_ms=12.3), Upload(status=401, sent_mb=8.0)])
    assert rows[1].split() == ["1", "413", "1.50", "12.3"]
    assert rows[2].split() == ["2", "401", "8.00", "-"]


@pytest.mark.slow
def test_a_small_run_end_to_end() -> None:
    """Two 16 MiB uploads against a 1 MiB limit: a few seconds."""
    command = [sys.executable, "bench/limits.py", "--uploads", "2", "--megabytes", "16",
               "--limit-bytes", str(1 << 20)]  # fmt: skip
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)

    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    assert [run["status"] for run in summary["runs"]] == [413, 413]
    assert all(run["sent_mb"] < 16 for run in summary["runs"])
    assert summary["all_413"] is True
    assert summary["within_limits"] is True
    assert summary["tmp_growth_mb"] < 20
    assert summary["rss_growth_mb"] < 20

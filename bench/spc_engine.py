"""Benchmark of the SPC engine against a straightforward pure-Python implementation.

Run from the repository root:  python bench/spc_engine.py
Environment: SPC_BENCH_N (points, default 1,000,000), SPC_BENCH_REPEAT (best of, default 5).

Prints a table for people; the LAST line is one line of JSON for machines.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from spc import (  # noqa: E402
    PRESETS,
    IncrementalEvaluator,
    evaluate_batch,
    individuals_chart,
    xbar_r_chart,
)

N = int(os.environ.get("SPC_BENCH_N", "1000000"))
REPEAT = int(os.environ.get("SPC_BENCH_REPEAT", "5"))
SUBGROUP = 5
INCREMENTAL_POINTS = min(N, 200_000)  # enough for a stable rate, keeps the run short
BASELINE_POINTS = min(N, 100_000)  # the pure-Python baseline is slow; its rate is linear
TARGETS = {"incremental": 250_000, "batch": 0.4, "limits": 0.05}


def best_of(repeat: int, run: Callable[[], object]) -> float:
    """Fastest of ``repeat`` timed runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


# -- the baseline: the rules as one would first write them -------------------------------


def naive_rules(values: Sequence[float], center: float, sigma: float) -> list[tuple[int, int]]:
    """Nelson rules 1-8 (Nelson parameters) by looking back over each trailing window."""
    found: list[tuple[int, int]] = []
    seen: list[float] = []
    for value in values:
        seen.append(value)
        found.extend((len(seen) - 1, rule) for rule in naive_point(seen, center, sigma))
    return found


def naive_point(seen: list[float], c: float, s: float) -> list[int]:
    """Rules that fire at the newest point of ``seen``."""
    x = seen[-1]
    fired = []
    if x > c + 3 * s or x < c - 3 * s:
        fired.append(1)
    last9 = seen[-9:]
    if len(last9) == 9 and (all(v > c for v in last9) or all(v < c for v in last9)):
        fired.append(2)
    last6 = seen[-6:]
    steps = [b - a for a, b in itertools.pairwise(last6)]
    if len(last6) == 6 and (all(d > 0 for d in steps) or all(d < 0 for d in steps)):
        fired.append(3)
    last14 = seen[-14:]
    diffs = [b - a for a, b in itertools.pairwise(last14)]
    if len(last14) == 14 and all(d1 * d2 < 0 for d1, d2 in itertools.pairwise(diffs)):
        fired.append(4)
    for rule, m, n, k in ((5, 2, 3, 2), (6, 4, 5, 1)):
        window = seen[-n:]
        above = x > c + k * s and sum(v > c + k * s for v in window) >= m
        below = x < c - k * s and sum(v < c - k * s for v in window) >= m
        if above or below:
            fired.append(rule)
    last15 = seen[-15:]
    if len(last15) == 15 and all(c - s <= v <= c + s for v in last15):
        fired.append(7)
    last8 = seen[-8:]
    if len(last8) == 8 and all(v > c + s or v < c - s for v in last8):
        fired.append(8)
    return fired


def naive_imr_limits(values: Sequence[float]) -> tuple[float, float, float]:
    """Centre, LCL, UCL of an individuals chart with a plain loop."""
    total = 0.0
    ranges = 0.0
    previous = values[0]
    for value in values:
        total += value
        ranges += abs(value - previous)
        previous = value
    center = total / len(values)
    sigma = ranges / (len(values) - 1) / 1.1283791670955126
    return center, center - 3 * sigma, center + 3 * sigma


def naive_xbar_r_limits(groups: Sequence[Sequence[float]]) -> tuple[float, float, float]:
    """Centre, LCL, UCL of an X-bar chart (equal n) with plain loops."""
    means = []
    ranges = []
    for group in groups:
        means.append(sum(group) / len(group))
        ranges.append(max(group) - min(group))
    center = sum(means) / len(means)
    sigma = sum(ranges) / len(ranges) / 2.3259289472810400
    half = 3 * sigma / len(groups[0]) ** 0.5
    return center, center - half, center + half


# -- measurements ----------------------------------------------------------------------


def measure(values: np.ndarray) -> dict[str, float]:
    """All timings, in seconds or points per second."""
    as_list = values.tolist()
    groups = values[: values.size // SUBGROUP * SUBGROUP].reshape(-1, SUBGROUP)
    group_lists = groups.tolist()
    head = as_list[:INCREMENTAL_POINTS]

    def incremental() -> None:
        update = IncrementalEvaluator(PRESETS["nelson"], center=0.0, sigma=1.0).update
        for value in head:
            update(value)

    core = best_of(REPEAT, lambda: evaluate_batch(values, center=0.0, sigma=1.0))
    full = best_of(REPEAT, lambda: evaluate_batch(values, center=0.0, sigma=1.0).violations())
    base_slice = as_list[:BASELINE_POINTS]
    baseline_rules = best_of(1, lambda: naive_rules(base_slice, 0.0, 1.0))
    return {
        "incremental_points_per_s": len(head) / best_of(REPEAT, incremental),
        "batch_1m_seconds": full,
        "batch_core_1m_seconds": core,
        "imr_limits_1m_seconds": best_of(REPEAT, lambda: individuals_chart(values)),
        "xbar_r_limits_1m_seconds": best_of(REPEAT, lambda: xbar_r_chart(groups)),
        "baseline_incremental_points_per_s": BASELINE_POINTS / baseline_rules,
        "baseline_batch_1m_seconds": baseline_rules * values.size / BASELINE_POINTS,
        "baseline_imr_limits_1m_seconds": best_of(min(REPEAT, 3), lambda: naive_imr_limits(as_list)),
        "baseline_xbar_r_limits_1m_seconds": best_of(
            min(REPEAT, 3), lambda: naive_xbar_r_limits(group_lists)
        ),
    }


def check_agreement(values: np.ndarray) -> int:
    """The baseline and the engine must flag the same points (else the ratio is unfair)."""
    sample = values[:20_000]
    engine = [(v.index, v.rule) for v in evaluate_batch(sample, center=0.0, sigma=1.0).violations()]
    baseline = naive_rules(sample.tolist(), 0.0, 1.0)
    if engine != baseline:
        raise SystemExit("baseline and engine disagree; the benchmark would be meaningless")
    return len(engine)


def per_million(results: dict[str, float]) -> dict[str, float]:
    """Scale the ``*_1m_seconds`` timings to one million points (all linear algorithms)."""
    scale = 1_000_000 / N
    return {k: v * scale if k.endswith("_1m_seconds") else v for k, v in results.items()}


ROWS = (  # label, engine key, baseline key, target, higher is better
    ("incremental, 8 rules (points/s)", "incremental_points_per_s",
     "baseline_incremental_points_per_s", f">= {TARGETS['incremental']:,}", True),
    ("batch, 8 rules, 1M points (s)", "batch_1m_seconds", "baseline_batch_1m_seconds",
     f"<= {TARGETS['batch']}", False),
    ("  of which flags only (s)", "batch_core_1m_seconds", None, "", False),
    ("I-MR limits, 1M values (s)", "imr_limits_1m_seconds", "baseline_imr_limits_1m_seconds",
     f"<= {TARGETS['limits']}", False),
    ("X-bar-R limits, 1M values (s)", "xbar_r_limits_1m_seconds",
     "baseline_xbar_r_limits_1m_seconds", f"<= {TARGETS['limits']}", False),
)  # fmt: skip


def _number(value: float, rate: bool) -> str:
    return f"{value:,.0f}" if rate else f"{value:.4f}"


def table(results: dict[str, float]) -> list[str]:
    """The human-readable table (timings per million points)."""
    lines = [f"{'measure':<34}{'engine':>14}{'pure Python':>14}{'ratio':>9}  target"]
    for label, key, baseline_key, target, rate in ROWS:
        engine = results[key]
        baseline_text = ratio = ""
        if baseline_key is not None:
            baseline = results[baseline_key]
            baseline_text = _number(baseline, rate)
            ratio = f"{(engine / baseline if rate else baseline / engine):.1f}x"
        lines.append(f"{label:<34}{_number(engine, rate):>14}{baseline_text:>14}{ratio:>9}  {target}")
    return lines


def main() -> None:
    rng = np.random.default_rng(20240601)
    values = rng.normal(0.0, 1.0, N)
    agreeing = check_agreement(values)
    results = per_million(measure(values))
    extrapolated = "" if BASELINE_POINTS == N else f", extrapolated from {BASELINE_POINTS:,}"
    print(
        f"SPC engine benchmark: N = {N:,}, best of {REPEAT}; Python {platform.python_version()},"
        f" numpy {np.__version__}, {os.cpu_count()} CPUs"
    )
    print(
        f"(timings per 1M points, scaled when N differs; baseline rules: one run{extrapolated};"
        f" engine and baseline agree on {agreeing} violations in the first 20,000 points)"
    )
    for line in table(results):
        print(line)
    results["limits_1m_seconds"] = max(results["imr_limits_1m_seconds"], results["xbar_r_limits_1m_seconds"])
    results["n"] = N
    results["repeat"] = REPEAT
    summary: dict[str, Any] = {
        key: round(value, 6) if isinstance(value, float) else value for key, value in results.items()
    }
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    main()

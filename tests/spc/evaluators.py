"""Test helpers: run both rule evaluators, and a brute-force oracle of the rule text."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence

from spc import (
    BeyondLimits,
    IncrementalEvaluator,
    MofN,
    RuleSet,
    Run,
    Violation,
    ZoneRun,
    evaluate_batch,
)


def incremental(
    values: Sequence[float], center: float, sigma: float, rules: RuleSet, *, resume_at: int = -1
) -> list[Violation]:
    """Point by point; at ``resume_at`` the state goes through JSON into a new evaluator."""
    evaluator = IncrementalEvaluator(rules, center=center, sigma=sigma)
    found: list[Violation] = []
    for i, value in enumerate(values):
        if i == resume_at:
            evaluator = IncrementalEvaluator.from_state(json.loads(json.dumps(evaluator.to_state())))
        found.extend(evaluator.update(value))
    return found


def both(values: Sequence[float], center: float, sigma: float, rules: RuleSet) -> list[Violation]:
    """Violations from the batch evaluator, after checking the incremental one agrees."""
    batch = evaluate_batch(values, center=center, sigma=sigma, rules=rules).violations()
    assert incremental(values, center, sigma, rules) == batch
    return batch


def flagged(violations: list[Violation], rule: int) -> list[int]:
    return [v.index for v in violations if v.rule == rule]


def oracle(values: Sequence[float], center: float, sigma: float, rules: RuleSet) -> list[Violation]:
    """The rules read literally: look back over the trailing window of every point."""
    found = []
    for i in range(len(values)):
        for number in rules.enabled:
            points = _pattern(values, i, center, sigma, number, rules.get(number))
            if points is not None:
                found.append(Violation(number, i, tuple(points)))
    return found


def _pattern(x: Sequence[float], i: int, c: float, s: float, number: int, params: object) -> list[int] | None:
    if isinstance(params, BeyondLimits):
        return [i] if x[i] > c + params.k * s or x[i] < c - params.k * s else None
    if isinstance(params, MofN):
        return _m_of_n(x, i, c, s, params)
    assert isinstance(params, Run | ZoneRun)
    start = i - params.length + 1
    if start < 0:
        return None
    window = list(range(start, i + 1))
    if _run_holds(x, window, c, s, number, params):
        return window
    return None


def _m_of_n(x: Sequence[float], i: int, c: float, s: float, p: MofN) -> list[int] | None:
    window = range(max(0, i - p.n + 1), i + 1)
    high, low = c + p.k * s, c - p.k * s
    for beyond in (lambda v: v > high, lambda v: v < low):
        if beyond(x[i]):
            points = [j for j in window if beyond(x[j])]
            return points if len(points) >= p.m else None
    return None


def _run_holds(
    x: Sequence[float], window: list[int], c: float, s: float, number: int, p: Run | ZoneRun
) -> bool:
    values = [x[j] for j in window]
    steps = [b - a for a, b in itertools.pairwise(values)]
    if number == 2:
        return all(v > c for v in values) or all(v < c for v in values)
    if number == 3:
        return all(d > 0 for d in steps) or all(d < 0 for d in steps)
    if number == 4:
        return all(a * b < 0 for a, b in itertools.pairwise(steps)) and 0 not in steps
    assert isinstance(p, ZoneRun)
    high, low = c + p.k * s, c - p.k * s
    if number == 7:
        return all(low <= v <= high for v in values)
    return all(v > high or v < low for v in values)

"""Property tests: batch, incremental and a literal oracle agree on random series.

Values are drawn mostly from the grid CL + j * sigma / 2, so points exactly on the centre
line, on zone boundaries and on the control limits, and ties between neighbours, are
frequent; rule parameters are drawn small so that every rule fires often.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spc import (
    PRESETS,
    BeyondLimits,
    IncrementalEvaluator,
    MofN,
    RuleSet,
    Run,
    Violation,
    ZoneRun,
    evaluate_batch,
)

from .evaluators import incremental, oracle

LINES = [(10.0, 2.0), (0.0, 1.0), (-3.25, 0.5), (74.001, 0.0123)]
KS = [0.5, 1.0, 1.5, 2.0, 3.0]


@st.composite
def series(draw: st.DrawFn, max_size: int = 120) -> tuple[list[float], float, float]:
    center, sigma = draw(st.sampled_from(LINES))
    on_grid = st.integers(-8, 8).map(lambda j: center + j * sigma / 2)
    anywhere = st.floats(center - 5 * sigma, center + 5 * sigma, allow_nan=False)
    values = draw(st.lists(st.one_of(on_grid, on_grid, on_grid, anywhere), max_size=max_size))
    return values, center, sigma


def _maybe(draw: st.DrawFn, strategy: st.SearchStrategy[object]) -> object:
    return draw(st.one_of(st.none(), strategy))


@st.composite
def rule_sets(draw: st.DrawFn) -> RuleSet:
    if draw(st.booleans()):
        return draw(st.sampled_from(list(PRESETS.values())))
    length, k = st.integers(2, 10), st.sampled_from(KS)
    window = st.integers(1, 6).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n)))
    m_of_n = st.tuples(window, k).map(lambda w: MofN(w[0][0], w[0][1], w[1]))
    return RuleSet(
        rule1=_maybe(draw, k.map(BeyondLimits)),  # type: ignore[arg-type]
        rule2=_maybe(draw, length.map(Run)),  # type: ignore[arg-type]
        rule3=_maybe(draw, length.map(Run)),  # type: ignore[arg-type]
        rule4=_maybe(draw, length.map(Run)),  # type: ignore[arg-type]
        rule5=_maybe(draw, m_of_n),  # type: ignore[arg-type]
        rule6=_maybe(draw, m_of_n),  # type: ignore[arg-type]
        rule7=_maybe(draw, st.builds(ZoneRun, length, k)),  # type: ignore[arg-type]
        rule8=_maybe(draw, st.builds(ZoneRun, length, k)),  # type: ignore[arg-type]
    )


@settings(max_examples=400, deadline=None)
@given(data=series(), rules=rule_sets())
def test_batch_incremental_and_oracle_agree(data: tuple[list[float], float, float], rules: RuleSet) -> None:
    values, center, sigma = data
    batch = evaluate_batch(values, center=center, sigma=sigma, rules=rules).violations()
    assert incremental(values, center, sigma, rules) == batch
    assert oracle(values, center, sigma, rules) == batch


@settings(max_examples=200, deadline=None)
@given(data=series(), rules=rule_sets(), cut=st.floats(0, 1))
def test_state_survives_a_json_round_trip_mid_series(
    data: tuple[list[float], float, float], rules: RuleSet, cut: float
) -> None:
    values, center, sigma = data
    resume_at = int(cut * len(values))
    straight = incremental(values, center, sigma, rules)
    assert incremental(values, center, sigma, rules, resume_at=resume_at) == straight


@settings(max_examples=200, deadline=None)
@given(data=series(), rules=rule_sets())
def test_flag_and_pattern_summaries_match_the_violations(
    data: tuple[list[float], float, float], rules: RuleSet
) -> None:
    values, center, sigma = data
    result = evaluate_batch(values, center=center, sigma=sigma, rules=rules)
    violations = result.violations()
    for rule in rules.enabled:
        mine = [v for v in violations if v.rule == rule]
        assert result.flagged[rule].tolist() == [v.index for v in mine]
        assert result.pattern_points[rule].tolist() == sorted({p for v in mine for p in v.points})
        assert all(v.index == v.points[-1] for v in mine)


@settings(max_examples=150, deadline=None)
@given(data=series(max_size=60), position=st.floats(0, 1), bad=st.sampled_from(
    [math.nan, math.inf, -math.inf]))  # fmt: skip
def test_non_finite_values_are_rejected_and_leave_state_intact(
    data: tuple[list[float], float, float], position: float, bad: float
) -> None:
    values, center, sigma = data
    at = int(position * len(values))
    poisoned = [*values[:at], bad, *values[at:]]
    with pytest.raises(ValueError, match=f"index {at} is"):
        evaluate_batch(poisoned, center=center, sigma=sigma)
    evaluator = IncrementalEvaluator(PRESETS["nelson"], center=center, sigma=sigma)
    found: list[Violation] = []
    for index, value in enumerate(poisoned):
        if index == at:
            with pytest.raises(ValueError, match="finite"):
                evaluator.update(value)
        else:
            found.extend(evaluator.update(value))
    clean = evaluate_batch(values, center=center, sigma=sigma).violations()
    assert found == clean


@settings(max_examples=150, deadline=None)
@given(data=series(), rules=rule_sets(), seed=st.integers(0, 2**32 - 1))
def test_per_point_lines_agree(data: tuple[list[float], float, float], rules: RuleSet, seed: int) -> None:
    values, center, sigma = data
    rng = np.random.default_rng(seed)
    centers = center + sigma * rng.integers(-1, 2, len(values)) / 2
    sigmas = sigma * rng.choice([0.5, 1.0, 2.0], len(values))
    batch = evaluate_batch(values, center=centers, sigma=sigmas, rules=rules).violations()
    evaluator = IncrementalEvaluator(rules, center=center, sigma=sigma)
    found: list[Violation] = []
    for value, line, spread in zip(values, centers, sigmas, strict=True):
        evaluator.set_limits(center=float(line), sigma=float(spread))
        found.extend(evaluator.update(value))
    assert found == batch


def test_state_is_small_and_json_serialisable() -> None:
    evaluator = IncrementalEvaluator(PRESETS["nelson"], center=0.0, sigma=1.0)
    evaluator.update_many(np.random.default_rng(1).normal(size=10_000).tolist())
    text = json.dumps(evaluator.to_state())
    assert len(text) < 600

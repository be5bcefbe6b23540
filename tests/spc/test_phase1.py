"""Phase I estimation with iterative exclusion of out-of-control points."""

from __future__ import annotations

import numpy as np
import pytest

from spc import (
    AttributeChart,
    BeyondLimits,
    Exclusion,
    RuleSet,
    VariablesChart,
    estimate_phase1,
    individuals_chart,
    p_chart,
    xbar_r_chart,
)

from .reference import load

RULE1 = RuleSet(rule1=BeyondLimits(3.0))


def _sigma(chart: VariablesChart | AttributeChart) -> float:
    assert isinstance(chart, VariablesChart)
    return chart.sigma


def _series() -> np.ndarray:
    values = np.random.default_rng(3).normal(size=100)
    values[40], values[70] = 8.0, -5.0
    return values


def test_without_exclusion_signals_are_only_reported() -> None:
    result = estimate_phase1("imr", _series(), rules=RULE1)
    assert result.passes == 1
    assert result.excluded == ()
    assert not result.stable
    assert {v.index for v in result.violations} >= {40, 70}
    assert _sigma(result.chart) == individuals_chart(_series()).sigma


def test_outliers_are_excluded_and_limits_recomputed_until_stable() -> None:
    result = estimate_phase1("imr", _series(), rules=RULE1, exclude_out_of_control=True)
    first_pass = [e for e in result.excluded if e.pass_number == 1]
    assert Exclusion(40, 1, (1,), ()) in first_pass
    assert Exclusion(70, 1, (1,), ()) in first_pass
    assert 41 not in {e.index for e in first_pass}  # the MR 40->41 is explained by 40
    assert result.stable
    assert result.violations == ()
    excluded = [e.index for e in result.excluded]
    assert _sigma(result.chart) == pytest.approx(individuals_chart(_series(), exclude=excluded).sigma)
    assert _sigma(result.chart) < individuals_chart(_series()).sigma


def test_max_passes_limits_the_iterations() -> None:
    result = estimate_phase1("imr", _series(), rules=RULE1, exclude_out_of_control=True,
                             max_passes=1)  # fmt: skip
    assert result.passes == 1
    assert result.excluded == ()
    assert not result.stable


def test_manual_exclusions_are_reported_as_pass_zero() -> None:
    result = estimate_phase1("imr", _series(), rules=RULE1, exclude=[40, 70])
    assert result.excluded[:2] == (Exclusion(40, 0, (), ()), Exclusion(70, 0, (), ()))


def test_range_chart_signals_exclude_their_subgroup() -> None:
    rng = np.random.default_rng(5)
    groups = rng.normal(size=(30, 5))
    groups[12] = [-6.0, 6.0, 0.0, 0.1, -0.1]  # huge range, ordinary mean
    result = estimate_phase1("xbar_r", groups, rules=RULE1, exclude_out_of_control=True)
    assert Exclusion(12, 1, (), (1,)) in result.excluded
    sigma = xbar_r_chart(groups, exclude=[e.index for e in result.excluded]).sigma
    assert _sigma(result.chart) == pytest.approx(sigma)


def test_p_chart_orange_juice_trial_samples() -> None:
    data = load("qcc_p_np_orangejuice")["input"]
    result = estimate_phase1("p", data["defectives"][:30], sizes=data["sizes"][:30],
                             rules=RULE1, exclude_out_of_control=True)  # fmt: skip
    passes = {(e.index, e.pass_number) for e in result.excluded}
    assert {(14, 1), (22, 1)} <= passes  # Montgomery's samples 15 and 23
    excluded = [e.index for e in result.excluded]
    expected = p_chart(data["defectives"][:30], data["sizes"][:30], exclude=excluded).parameter
    assert isinstance(result.chart, AttributeChart)
    assert result.chart.parameter == pytest.approx(expected)
    assert result.stable


def test_all_enabled_rules_are_used_and_patterns_can_be_excluded() -> None:
    values = [0.1, -0.2, 0.3, -0.1] * 5 + [1.0] * 9 + [-0.2, 0.3, -0.1, 0.2] * 5
    run_only = RuleSet.from_dict({"2": {"length": 9}})
    flagged = estimate_phase1("imr", values, rules=run_only, exclude_out_of_control=True,
                              max_passes=2)  # fmt: skip
    assert [(e.index, e.location_rules) for e in flagged.excluded if e.pass_number == 1] == [(28, (2,))]
    whole = estimate_phase1("imr", values, rules=run_only, exclude_out_of_control=True,
                            exclude_patterns=True)  # fmt: skip
    assert [e.index for e in whole.excluded] == list(range(20, 29))
    assert whole.to_dict()["excluded"][0]["location_rules"] == [2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "xyz", "data": [1, 2]}, "unknown chart kind"),
        ({"kind": "p", "data": [1, 2]}, "needs sizes"),
        ({"kind": "imr", "data": [1, 2], "max_passes": 0}, "max_passes"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        estimate_phase1(**kwargs)  # type: ignore[arg-type]

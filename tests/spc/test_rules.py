"""Each rule's edge conventions (both evaluators), rule parameters and presets."""

from __future__ import annotations

import json

import numpy as np
import pytest

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

from .evaluators import both, flagged

# CL 10, sigma 2: lines at 4, 6, 8, 12, 14, 16 are exact doubles (README convention 8)
CL, SIGMA = 10.0, 2.0
NEUTRAL = [11.0, 9.0]  # within 1 sigma, alternating sides


def only(rule: int, **params: float) -> RuleSet:
    return RuleSet.from_dict({str(rule): params})


# -- rule 1 -----------------------------------------------------------------------------


def test_rule1_point_on_a_control_limit_is_inside() -> None:
    found = both([16.0, 4.0, 16.000001, 3.999999, 10.0], CL, SIGMA, only(1))
    assert flagged(found, 1) == [2, 3]
    assert found[0] == Violation(1, 2, (2,))


def test_rule1_k_parameter() -> None:
    assert flagged(both([14.5, 13.9], CL, SIGMA, only(1, k=2)), 1) == [0]


# -- rule 2 -----------------------------------------------------------------------------


def test_rule2_flags_the_completing_point_and_every_further_one() -> None:
    values = [11.0] * 11
    found = both(values, CL, SIGMA, only(2))
    assert flagged(found, 2) == [8, 9, 10]
    assert found[0].points == tuple(range(9))
    assert found[2].points == tuple(range(2, 11))


def test_rule2_point_on_centre_line_breaks_the_run() -> None:
    values = [11.0] * 8 + [10.0] + [11.0] * 8
    assert flagged(both(values, CL, SIGMA, only(2)), 2) == []
    below = [9.0] * 8 + [10.0] + [9.0] * 9
    assert flagged(both(below, CL, SIGMA, only(2)), 2) == [17]


def test_rule2_length_parameter() -> None:
    assert flagged(both([9.0] * 8, CL, SIGMA, only(2, length=8)), 2) == [7]


# -- rule 3 -----------------------------------------------------------------------------


def test_rule3_six_points_five_strict_steps() -> None:
    found = both([1.0, 2, 3, 4, 5, 6], CL, SIGMA, only(3))
    assert flagged(found, 3) == [5]
    assert found[0].points == (0, 1, 2, 3, 4, 5)
    assert flagged(both([1.0, 2, 3, 4, 5], CL, SIGMA, only(3)), 3) == []


def test_rule3_tie_breaks_the_trend() -> None:
    assert flagged(both([1.0, 2, 3, 3, 4, 5, 6], CL, SIGMA, only(3)), 3) == []
    assert flagged(both([1.0, 2, 3, 3, 4, 5, 6, 7, 8], CL, SIGMA, only(3)), 3) == [8]


def test_rule3_trend_continues_and_decreases() -> None:
    assert flagged(both([7.0, 6, 5, 4, 3, 2, 1], CL, SIGMA, only(3)), 3) == [5, 6]


# -- rule 4 -----------------------------------------------------------------------------

ZIGZAG = [10.0 + (1 if i % 2 else -1) * (1 + i / 10) for i in range(14)]


def test_rule4_fourteen_alternating_points() -> None:
    found = both(ZIGZAG, CL, SIGMA, only(4))
    assert flagged(found, 4) == [13]
    assert found[0].points == tuple(range(14))
    assert flagged(both(ZIGZAG[:13], CL, SIGMA, only(4)), 4) == []


def test_rule4_tie_breaks_the_alternation() -> None:
    tied = [*ZIGZAG[:7], ZIGZAG[6], *ZIGZAG[7:]]
    assert flagged(both(tied, CL, SIGMA, only(4)), 4) == []


def test_rule4_two_steps_in_the_same_direction_restart_it() -> None:
    signs = [1, -1, 1, -1, 1, 1] + [(-1) ** i for i in range(1, 14)]  # steps 4, 5 both up
    values = np.cumsum([10.0] + [sign * (1 + i / 100) for i, sign in enumerate(signs)])
    # the alternation restarts at step 5; its 13th alternating step ends at point 18
    assert flagged(both(values.tolist(), CL, SIGMA, only(4)), 4) == [18, 19]


# -- rules 5 and 6 --------------------------------------------------------------------


def test_rule5_flagged_point_must_itself_be_beyond() -> None:
    found = both([0.0, 2.5, 2.3, 0.4], 0.0, 1.0, only(5, m=2, n=3, k=2))
    assert flagged(found, 5) == [2]
    assert found[0].points == (1, 2)


def test_rule5_window_truncated_at_series_start() -> None:
    assert flagged(both([2.5, 2.4, 0.0], 0.0, 1.0, PRESETS["nelson"]), 5) == [1]


def test_rule5_sides_do_not_mix_and_boundary_is_inside() -> None:
    assert flagged(both([14.5, 5.5, 9.0], CL, SIGMA, only(5, m=2, n=3, k=2)), 5) == []
    assert flagged(both([14.0, 14.5, 14.0], CL, SIGMA, only(5, m=2, n=3, k=2)), 5) == []
    assert flagged(both([14.5, 9.0, 14.5], CL, SIGMA, only(5, m=2, n=3, k=2)), 5) == [2]


def test_rule6_four_of_five_and_continuation() -> None:
    found = both([7.0, 7.5, 9.0, 7.2, 7.9], CL, SIGMA, only(6, m=4, n=5, k=1))
    assert flagged(found, 6) == [4]
    assert found[0].points == (0, 1, 3, 4)
    five = both([12.5] * 5, CL, SIGMA, only(6, m=4, n=5, k=1))
    assert flagged(five, 6) == [3, 4]  # 4th and 5th of five consecutive


def test_rule6_point_on_one_sigma_is_not_beyond() -> None:
    assert flagged(both([12.0, 12.5, 12.5, 12.5, 12.5], CL, SIGMA, only(6)), 6) == [4]
    assert flagged(both([12.1, 12.5, 12.5, 12.5, 12.0], CL, SIGMA, only(6)), 6) == [3]


# -- rules 7 and 8 --------------------------------------------------------------------


def test_rule7_boundaries_and_centre_count_as_within() -> None:
    values = [12.0, 8.0, 10.0] * 5 + [12.0000001]
    found = both(values, CL, SIGMA, only(7))
    assert flagged(found, 7) == [14]
    assert found[0].points == tuple(range(15))


def test_rule7_either_side_no_both_sides_required() -> None:
    assert flagged(both([10.5] * 15, CL, SIGMA, only(7)), 7) == [14]


def test_rule8_beyond_one_sigma_either_side() -> None:
    mixed = [13.0, 7.0] * 4
    assert flagged(both(mixed, CL, SIGMA, only(8)), 8) == [7]
    same_side = [13.0] * 8
    assert flagged(both(same_side, CL, SIGMA, only(8)), 8) == [7]
    on_line = [13.0, 7.0, 13.0, 12.0, 7.0, 13.0, 7.0, 13.0]
    assert flagged(both(on_line, CL, SIGMA, only(8)), 8) == []


# -- evaluator behaviour --------------------------------------------------------------


def test_violations_are_ordered_by_index_then_rule() -> None:
    found = both([0.0, 2.5, 3.5], 0.0, 1.0, PRESETS["nelson"])
    assert [(v.index, v.rule) for v in found] == [(2, 1), (2, 5)]
    assert found[1].points == (1, 2)


def test_disabled_rules_never_fire() -> None:
    values = [11.0] * 20 + [30.0]
    assert [v.rule for v in both(values, CL, SIGMA, only(1))] == [1]


def test_nan_and_infinity_are_rejected_by_both() -> None:
    with pytest.raises(ValueError, match="index 2"):
        evaluate_batch([1.0, 2.0, float("nan")], center=0.0, sigma=1.0)
    evaluator = IncrementalEvaluator(center=0.0, sigma=1.0)
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="finite"):
            evaluator.update(bad)
    assert evaluator.count == 0  # a rejected point leaves the state untouched


def test_invalid_limits_are_rejected() -> None:
    with pytest.raises(ValueError, match="sigma"):
        evaluate_batch([1.0], center=0.0, sigma=0.0)
    with pytest.raises(ValueError, match="sigma"):
        IncrementalEvaluator(center=0.0, sigma=-1.0)
    with pytest.raises(ValueError, match="center"):
        IncrementalEvaluator(center=float("nan"), sigma=1.0)


def test_per_point_lines_match_incremental_set_limits() -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(size=300)
    centers = np.repeat([0.0, 0.5, -0.25], 100)
    sigmas = np.repeat([1.0, 0.5, 2.0], 100)
    batch = evaluate_batch(values, center=centers, sigma=sigmas).violations()
    evaluator = IncrementalEvaluator(center=0.0, sigma=1.0)
    found: list[Violation] = []
    for value, center, sigma in zip(values, centers, sigmas, strict=True):
        evaluator.set_limits(center=center, sigma=sigma)
        found.extend(evaluator.update(value))
    assert found == batch
    assert len(batch) > 0


def test_batch_result_views() -> None:
    result = evaluate_batch([0.0, 2.5, 2.4, 4.0], center=0.0, sigma=1.0)
    assert result.flagged[1].tolist() == [3]
    assert result.flagged[5].tolist() == [2, 3]
    assert result.pattern_points[5].tolist() == [1, 2, 3]
    assert result.any_rule().tolist() == [2, 3]


def test_state_round_trip_and_validation() -> None:
    evaluator = IncrementalEvaluator(center=0.0, sigma=1.0)
    evaluator.update_many([0.5, 1.5, -0.3, 2.5])
    state = json.loads(json.dumps(evaluator.to_state()))
    assert state["count"] == 4
    restored = IncrementalEvaluator.from_state(state)
    assert restored.to_state() == evaluator.to_state()
    assert restored.update(2.6) == evaluator.update(2.6)
    with pytest.raises(ValueError, match="version"):
        IncrementalEvaluator.from_state({**state, "version": 99})
    with pytest.raises(ValueError, match="missing"):
        IncrementalEvaluator.from_state({"version": 1})
    with pytest.raises(ValueError, match="integer"):
        IncrementalEvaluator.from_state({**state, "up": "3"})


# -- parameters and presets -----------------------------------------------------------

NELSON = {
    "1": {"k": 3}, "2": {"length": 9}, "3": {"length": 6}, "4": {"length": 14},
    "5": {"m": 2, "n": 3, "k": 2}, "6": {"m": 4, "n": 5, "k": 1},
    "7": {"length": 15, "k": 1}, "8": {"length": 8, "k": 1},
}  # fmt: skip


def test_presets() -> None:
    assert PRESETS["nelson"].to_dict() == NELSON
    assert PRESETS["western_electric"].to_dict() == {
        "1": {"k": 3}, "2": {"length": 8}, "5": {"m": 2, "n": 3, "k": 2},
        "6": {"m": 4, "n": 5, "k": 1},
    }  # fmt: skip
    assert PRESETS["western_electric"].enabled == (1, 2, 5, 6)


def test_round_trip_and_defaults() -> None:
    assert RuleSet.from_dict(NELSON) == PRESETS["nelson"]
    assert RuleSet.from_dict(json.loads(json.dumps(NELSON))).to_dict() == NELSON
    assert RuleSet.from_dict({"2": {}}).rule2 == Run(9, rule=2)
    assert RuleSet.from_dict({}).enabled == ()


def test_custom_sets() -> None:
    custom = RuleSet.custom("nelson", rule2={"length": 7}, rule4=None)
    assert custom.rule2 is not None
    assert custom.rule2.length == 7
    assert custom.rule4 is None
    direct = RuleSet(rule1=BeyondLimits(2.5), rule6=MofN(3, 4, 1.5), rule8=ZoneRun(6, 1))
    assert direct.to_dict() == {"1": {"k": 2.5}, "6": {"m": 3, "n": 4, "k": 1.5},
                                "8": {"length": 6, "k": 1}}  # fmt: skip


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "object keyed by rule number"),
        ({"9": {}}, "unknown rule '9'"),
        ({"one": {}}, "unknown rule 'one'"),
        ({"2": 9}, r"rule 2: parameters must be an object"),
        ({"2": {"len": 9}}, r"rule 2: unknown parameter\(s\) \['len'\]"),
        ({"2": {"length": 1}}, "rule 2: 'length' must be an integer from 2"),
        ({"3": {"length": 6.5}}, "rule 3: 'length' must be an integer"),
        ({"7": {"length": True}}, "rule 7: 'length' must be an integer"),
        ({"1": {"k": 0}}, "rule 1: 'k' must be a positive number"),
        ({"1": {"k": "3"}}, "rule 1: 'k' must be a positive number"),
        ({"5": {"m": 4, "n": 3}}, "rule 5: 'm' must not exceed 'n'"),
        ({"6": {"n": 100}}, "rule 6: 'n' must be an integer from 1 to 64"),
    ],
)
def test_from_dict_errors_are_clear(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RuleSet.from_dict(data)  # type: ignore[arg-type]


def test_wrong_parameter_type_for_a_rule() -> None:
    with pytest.raises(ValueError, match="rule 2 takes Run parameters"):
        RuleSet(rule2=BeyondLimits())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown rule 'rule9'"):
        RuleSet.custom("nelson", rule9={"k": 1})

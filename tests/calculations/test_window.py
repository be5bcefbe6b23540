"""The rolling window (apps/calculations/window.py) against the SPC engine's batch results.

The window judges one sample at a time from a small state; the engine's batch functions
see the whole series. Every test here feeds both the same series and asks for the same
signals, down to the samples each pattern names.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.calculations.window import Lines, Point, RollingWindow, Signal, memory
from spc import (
    PRESETS,
    BeyondLimits,
    MofN,
    RuleSet,
    Run,
    ZoneRun,
    c_chart,
    cusum_chart,
    evaluate_batch,
    ewma_chart,
    np_chart,
    p_chart,
    u_chart,
)

SHEWHART = ("imr", "xbar_r", "xbar_s")
SIZES = {"imr": (1, 1), "xbar_r": (2, 10), "xbar_s": (11, 25)}
KS = [0.5, 1.0, 1.5, 2.0, 3.0]
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def lines_for(kind: str, size: int, center: float = 10.0, sigma: float = 2.0, **extra: Any) -> Lines:
    values: dict[str, Any] = {
        "version": 1, "kind": kind, "center": center, "sigma": sigma, "dispersion_lcl": None,
        "dispersion_ucl": None, "subgroup_size": size, "params": {},
    }  # fmt: skip
    values.update(extra)
    return Lines(**values)


def sequences(count: int) -> list[int]:
    """Sample sequences with gaps, so a pattern is mapped to samples, not counted back from the end."""
    return [100 + 3 * index for index in range(count)]


def judge_all(window: RollingWindow, points: list[Point]) -> list[list[Signal]]:
    return [window.judge(point) for point in points]


def location(signals: list[list[Signal]]) -> list[tuple[int, int, tuple[int, ...]]]:
    """(rule, sequence of the flagged sample, pattern sequences), in series order."""
    return [
        (signal.rule, signal.points[-1], signal.points)
        for at_point in signals
        for signal in at_point
        if signal.chart == "location"
    ]


def batch_location(
    statistics: list[float], center: float, sigma: Any, rules: RuleSet, seqs: list[int]
) -> list[tuple[int, int, tuple[int, ...]]]:
    found = evaluate_batch(statistics, center=center, sigma=sigma, rules=rules).violations()
    return [(v.rule, seqs[v.index], tuple(seqs[p] for p in v.points)) for v in found]


# --- Strategies ----------------------------------------------------------------------------


def _maybe(draw: st.DrawFn, strategy: st.SearchStrategy[Any]) -> Any:
    return draw(st.one_of(st.none(), strategy))


@st.composite
def rule_sets(draw: st.DrawFn) -> RuleSet:
    """The presets, or any custom set with small parameters (so every rule fires often)."""
    if draw(st.booleans()):
        return draw(st.sampled_from(list(PRESETS.values())))
    length, k = st.integers(2, 12), st.sampled_from(KS)
    window = st.integers(1, 8).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n)))
    m_of_n = st.tuples(window, k).map(lambda w: MofN(w[0][0], w[0][1], w[1]))
    return RuleSet(
        rule1=_maybe(draw, k.map(BeyondLimits)),
        rule2=_maybe(draw, length.map(Run)),
        rule3=_maybe(draw, length.map(Run)),
        rule4=_maybe(draw, length.map(Run)),
        rule5=_maybe(draw, m_of_n),
        rule6=_maybe(draw, m_of_n),
        rule7=_maybe(draw, st.builds(ZoneRun, length, k)),
        rule8=_maybe(draw, st.builds(ZoneRun, length, k)),
    )


@st.composite
def shewhart_series(draw: st.DrawFn, kinds: tuple[str, ...] = SHEWHART, max_size: int = 120) -> tuple[
    Lines, list[Point]
]:  # fmt: skip
    """A chart and its samples: means mostly on the half-sigma grid of their own n (points on the
    centre line, zone boundaries and limits, ties), in segments shifted by whole sigmas, with a
    few undersized samples (an X̄ chart's sigma / √n changes for them)."""
    kind = draw(st.sampled_from(kinds))
    low, high = SIZES[kind]
    size = draw(st.integers(low, high))
    center, sigma = draw(st.sampled_from([(10.0, 2.0), (0.0, 1.0), (-3.25, 0.5), (74.001, 0.0123)]))
    lines = lines_for(kind, size, center, sigma)
    count = draw(st.integers(0, max_size))
    shift = 0.0
    points: list[Point] = []
    for sequence in sequences(count):
        if draw(st.integers(0, 14)) == 0:
            shift = draw(st.sampled_from([-2.0, -1.0, 0.0, 1.0, 2.0]))
        n = size if size == 1 or draw(st.integers(0, 9)) else draw(st.integers(1, size))
        plotted = sigma / math.sqrt(n)
        if draw(st.integers(0, 3)):
            mean = center + (draw(st.integers(-8, 8)) / 2 + shift) * plotted
        else:
            mean = draw(st.floats(center - 5 * plotted, center + 5 * plotted, allow_nan=False))
        if points and draw(st.integers(0, 9)) == 0:
            mean = points[-1].mean  # a tie
        spread = draw(st.floats(0, 6 * sigma)) if n > 1 else None
        points.append(Point(sequence, mean, n, spread, None if spread is None else spread / 2))
    return lines, points


# --- Location chart: equal to the engine's batch evaluation ----------------------------------


class LocationTests:
    @PROPERTY
    @given(data=shewhart_series(), rules=rule_sets())
    def test_signals_equal_evaluate_batch_with_sigma_over_root_n(
        self, data: tuple[Lines, list[Point]], rules: RuleSet
    ) -> None:
        lines, points = data
        window = RollingWindow(lines, rules)
        got = location(judge_all(window, points))
        means = [p.mean for p in points]
        sigmas = [lines.sigma / np.sqrt(p.n) for p in points]
        seqs = [p.sequence for p in points]
        assert got == batch_location(means, lines.center, sigmas or lines.sigma, rules, seqs)

    def test_a_shift_is_flagged_with_the_samples_of_the_pattern(self) -> None:
        lines = lines_for("xbar_r", 4, center=10.0, sigma=2.0)  # sigma of X̄ = 1
        means = [10.0] * 3 + [11.5] * 9
        points = [Point(s, m, 4, 1.0, 0.5) for s, m in zip(sequences(12), means, strict=True)]
        signals = judge_all(RollingWindow(lines, PRESETS["nelson"]), points)
        assert [s for s in signals[-1] if s.rule == 2] == [Signal(2, "location", tuple(sequences(12)[3:]))]
        # 2 of 3 beyond 2 sigma never happens at 1.5 sigma; 4 of 5 and 8 in a row beyond 1 sigma do.
        assert {s.rule for at in signals for s in at} == {2, 6, 8}

    def test_a_point_on_the_limit_is_inside_and_an_undersized_sample_has_wider_limits(self) -> None:
        lines = lines_for("xbar_r", 4, center=10.0, sigma=2.0)
        rules = RuleSet(rule1=BeyondLimits(3.0))
        window = RollingWindow(lines, rules)
        on_limit = Point(1, 13.0, 4, 1.0, 0.5)  # UCL of n = 4: 10 + 3 · 2 / 2
        undersized = Point(2, 14.0, 1, None, None)  # beyond 13, inside 10 + 3 · 2 / 1
        beyond = Point(3, 13.0000001, 4, 1.0, 0.5)
        assert judge_all(window, [on_limit, undersized, beyond]) == [[], [], [Signal(1, "location", (3,))]]


# --- Persistence and rebuild -----------------------------------------------------------------


def _round_trip(document: dict[str, Any]) -> Any:
    return json.loads(json.dumps(document))


class PersistenceTests:
    @PROPERTY
    @given(data=shewhart_series(), rules=rule_sets(), cut=st.floats(0, 1))
    def test_a_restored_window_continues_identically(
        self, data: tuple[Lines, list[Point]], rules: RuleSet, cut: float
    ) -> None:
        lines, points = data
        at = int(cut * len(points))
        full = RollingWindow(lines, rules)
        judge_all(full, points[:at])
        last = points[at - 1].sequence if at else 0
        restored = RollingWindow.from_json(_round_trip(full.to_json(last)), lines, rules, last)
        assert restored is not None
        assert judge_all(restored, points[at:]) == judge_all(full, points[at:])
        assert restored.to_json(0) == full.to_json(0)

    @PROPERTY
    @given(data=shewhart_series(max_size=200), rules=rule_sets(), cut=st.floats(0, 1))
    def test_replaying_the_last_memory_points_rebuilds_the_window(
        self, data: tuple[Lines, list[Point]], rules: RuleSet, cut: float
    ) -> None:
        """services/calculate.py window_rebuild: for Nelson rules the last `memory(rules)` samples
        determine every later signal (run counters past their threshold are equivalent)."""
        lines, points = data
        at = int(cut * len(points))
        full = RollingWindow(lines, rules)
        judge_all(full, points[:at])
        rebuilt = RollingWindow(lines, rules)
        judge_all(rebuilt, points[max(0, at - memory(rules)) : at])
        assert rebuilt.previous == full.previous
        assert judge_all(rebuilt, points[at:]) == judge_all(full, points[at:])

    def test_memory_is_the_longest_pattern_plus_one(self) -> None:
        assert memory(PRESETS["nelson"]) == 16  # rule 7: 15 points
        assert memory(PRESETS["western_electric"]) == 9  # rule 2: 8 points
        assert memory(RuleSet(rule1=BeyondLimits(3.0))) == 2
        assert memory(RuleSet(rule5=MofN(2, 30, 2.0), rule2=Run(9))) == 31
        assert memory(RuleSet()) == 2

    def test_a_replay_shorter_than_the_pattern_loses_it(self) -> None:
        """What the property above guards: replaying too few points caps the run counters."""
        rules = RuleSet(rule2=Run(5))
        lines = lines_for("imr", 1, center=0.0, sigma=1.0)
        points = [Point(s, 1.0, 1, None, None) for s in sequences(7)]
        full, enough, short = (RollingWindow(lines, rules) for _ in range(3))
        judge_all(full, points[:6])
        judge_all(enough, points[6 - memory(rules) : 6])
        judge_all(short, points[3:6])
        expected = [[Signal(2, "location", tuple(sequences(7)[2:]))]]
        assert judge_all(full, points[6:]) == judge_all(enough, points[6:]) == expected
        assert judge_all(short, points[6:]) == [[]]

    @pytest.mark.parametrize(
        "change",
        [{"version": 2}, {"kind": "xbar_s"}, {"center": 10.5}, {"sigma": 2.5}, {"dispersion_ucl": 9.0},
         {"subgroup_size": 5}, {"params": {"lambda": 0.3}}],
    )  # fmt: skip
    def test_a_window_for_other_lines_is_refused(self, change: dict[str, Any]) -> None:
        lines = lines_for("xbar_r", 4)
        window = RollingWindow(lines, PRESETS["nelson"])
        judge_all(window, [Point(1, 10.0, 4, 1.0, 0.5)])
        document = _round_trip(window.to_json(1))
        assert RollingWindow.from_json(document, lines, PRESETS["nelson"], 1) is not None
        assert RollingWindow.from_json(document, replace(lines, **change), PRESETS["nelson"], 1) is None

    def test_a_window_for_other_rules_or_another_sequence_is_refused(self) -> None:
        lines = lines_for("imr", 1)
        window = RollingWindow(lines, PRESETS["nelson"])
        judge_all(window, [Point(7, 10.0, 1, None, None)])
        document = _round_trip(window.to_json(7))
        other_rules = RuleSet.custom("nelson", rule2={"length": 8})
        assert RollingWindow.from_json(document, lines, other_rules, 7) is None
        assert RollingWindow.from_json(document, lines, PRESETS["western_electric"], 7) is None
        assert RollingWindow.from_json(document, lines, PRESETS["nelson"], 6) is None
        assert RollingWindow.from_json(document, lines, PRESETS["nelson"], 8) is None

    @pytest.mark.parametrize(
        "spoil",
        [
            lambda d: None,
            lambda d: "garbage",
            lambda d: [d],
            lambda d: {},
            lambda d: {**d, "fingerprint": None},
            lambda d: {k: v for k, v in d.items() if k != "evaluator"},
            lambda d: {k: v for k, v in d.items() if k != "smooth"},
            lambda d: {**d, "evaluator": "x"},
            lambda d: {**d, "evaluator": {**d["evaluator"], "version": 99}},
            lambda d: {**d, "evaluator": {**d["evaluator"], "count": "many"}},
            lambda d: {**d, "evaluator": {**d["evaluator"], "sigma": -1.0}},
            lambda d: {**d, "points": 5},
            lambda d: {**d, "points": [["a", 1.0]]},
            lambda d: {**d, "points": [[1]]},
            lambda d: {**d, "previous": "x"},
            lambda d: {**d, "smooth": []},
            lambda d: {**d, "smooth": {"z": "x"}},
            lambda d: {**d, "smooth": None},
            lambda d: {**d, "smooth": {}},
            lambda d: {**d, "smooth": {"z": 10.0, "high": 0.0, "low": 0.0}},
        ],
    )
    @pytest.mark.parametrize("kind", ["imr", "ewma"])
    def test_garbage_is_refused_not_raised(self, spoil: Any, kind: str) -> None:
        """Regression: a `smooth` that was no dict raised AttributeError (the calculation failed
        instead of rebuilding), and one without a sum failed later, in judge()."""
        lines = lines_for(kind, 1)
        window = RollingWindow(lines, PRESETS["nelson"])
        judge_all(window, [Point(1, 10.0, 1, None, None), Point(2, 11.0, 1, None, None)])
        document = _round_trip(window.to_json(2))
        assert RollingWindow.from_json(spoil(document), lines, PRESETS["nelson"], 2) is None


# --- Dispersion chart --------------------------------------------------------------------------


def _dispersion_reference(lines: Lines, points: list[Point]) -> list[tuple[int, ...]]:
    low = -math.inf if lines.dispersion_lcl is None else lines.dispersion_lcl
    high = math.inf if lines.dispersion_ucl is None else lines.dispersion_ucl
    found = []
    for index, point in enumerate(points):
        if lines.kind == "imr":
            if index == 0:
                continue
            value: float | None = abs(point.mean - points[index - 1].mean)
            pattern: tuple[int, ...] = (points[index - 1].sequence, point.sequence)
        else:
            if point.n != lines.subgroup_size:
                continue
            value = point.range if lines.kind == "xbar_r" else point.sd
            pattern = (point.sequence,)
        if value is not None and not low <= value <= high:
            found.append(pattern)
    return found


class DispersionTests:
    @PROPERTY
    @given(data=shewhart_series(), low=st.floats(0, 1), high=st.floats(1, 8), rules=rule_sets())
    def test_rule_1_on_mr_r_s_against_the_dispersion_limits_for_full_samples_only(
        self, data: tuple[Lines, list[Point]], low: float, high: float, rules: RuleSet
    ) -> None:
        lines, points = data
        lines = replace(lines, dispersion_lcl=low, dispersion_ucl=high)
        signals = judge_all(RollingWindow(lines, rules), points)
        got = [s.points for at in signals for s in at if s.chart == "dispersion"]
        assert all(s.rule == 1 for at in signals for s in at if s.chart == "dispersion")
        expected = _dispersion_reference(lines, points) if rules.rule1 is not None else []
        assert got == expected

    def test_moving_range_names_both_samples_and_a_range_on_the_limit_is_inside(self) -> None:
        lines = lines_for("imr", 1, center=0.0, sigma=10.0, dispersion_lcl=0.0, dispersion_ucl=5.0)
        points = [
            Point(s, m, 1, None, None) for s, m in zip(sequences(4), [0.0, 5.0, 10.5, 10.5], strict=True)
        ]
        signals = judge_all(RollingWindow(lines, PRESETS["nelson"]), points)
        assert [[s for s in at if s.chart == "dispersion"] for at in signals] == [
            [], [], [Signal(1, "dispersion", (103, 106))], [],
        ]  # fmt: skip

    def test_an_undersized_subgroup_is_not_judged_on_the_range_chart(self) -> None:
        lines = lines_for("xbar_r", 5, dispersion_lcl=0.0, dispersion_ucl=4.0)
        full = Point(1, 10.0, 5, 4.5, 2.0)
        undersized = Point(2, 10.0, 3, 9.0, 4.0)
        signals = judge_all(RollingWindow(lines, PRESETS["nelson"]), [full, undersized])
        assert signals == [[Signal(1, "dispersion", (1,))], []]

    def test_the_s_chart_reads_the_sd(self) -> None:
        lines = lines_for("xbar_s", 12, dispersion_lcl=1.0, dispersion_ucl=3.0)
        points = [Point(1, 10.0, 12, 100.0, 2.0), Point(2, 10.0, 12, 1.0, 0.5), Point(3, 10.0, 12, 5.0, 3.5)]
        signals = judge_all(RollingWindow(lines, PRESETS["nelson"]), points)
        assert signals == [[], [Signal(1, "dispersion", (2,))], [Signal(1, "dispersion", (3,))]]


# --- Attribute charts ---------------------------------------------------------------------------


class AttributeTests:
    @pytest.mark.parametrize(
        ("kind", "chart"),
        [("p", lambda c, n, p0: p_chart(c, n, center=p0)), ("np", lambda c, n, p0: np_chart(c, n, center=p0)),
         ("u", lambda c, n, p0: u_chart(c, n, center=p0)), ("c", None)],
    )  # fmt: skip
    def test_statistic_and_sigma_equal_the_engines_chart(self, kind: str, chart: Any) -> None:
        rng = np.random.default_rng(11)
        n, p0 = 20, 0.15
        counts = rng.binomial(n, p0, 80).astype(float)
        counts[40:50] += 3  # a shift
        counts[70] = 14  # a spike
        made = c_chart(counts, center=p0 * n) if kind == "c" else chart(counts, n, p0)
        center, sigma = made.chart.center[0], made.chart.sigma[0]
        lines = lines_for(kind, n, center=float(center), sigma=float(sigma))
        points = [Point(s, c, n, None, None) for s, c in zip(sequences(80), counts.tolist(), strict=True)]
        window = RollingWindow(lines, PRESETS["nelson"])
        signals = judge_all(window, points)
        statistics = [value for _, value in window.points]
        expected_statistics = counts / n if kind in ("p", "u") else counts
        assert statistics == expected_statistics[-len(statistics) :].tolist()
        assert made.chart.statistics.tolist()[-len(statistics) :] == statistics
        seqs = sequences(80)
        expected = batch_location(
            expected_statistics.tolist(), float(center), float(sigma), PRESETS["nelson"], seqs
        )
        assert location(signals) == expected
        assert (1, seqs[70], (seqs[70],)) in expected  # the spike
        assert [seqs[i] for i in made.chart.beyond_limits()] == [v[1] for v in expected if v[0] == 1]
        assert all(s.chart == "location" for at in signals for s in at)


# --- EWMA and CUSUM -----------------------------------------------------------------------------


@st.composite
def smoothed_series(draw: st.DrawFn) -> tuple[Lines, list[Point]]:
    kind = draw(st.sampled_from(["ewma", "cusum"]))
    size = draw(st.integers(1, 8))
    center, sigma = draw(st.sampled_from([(10.0, 2.0), (0.0, 1.0), (74.001, 0.0123)]))
    if kind == "ewma":
        params = {"lambda": draw(st.sampled_from([0.05, 0.1, 0.2, 0.4, 1.0])), "L": draw(st.sampled_from(KS))}
    else:
        params = {
            "k": draw(st.sampled_from([0.0, 0.25, 0.5, 1.0])),
            "h": draw(st.sampled_from([1.0, 4.0, 5.0])),
        }
    lines = lines_for(kind, size, center, sigma, params=params)
    count = draw(st.integers(0, 120))
    shift, points = 0.0, []
    for sequence in sequences(count):
        if draw(st.integers(0, 19)) == 0:
            shift = draw(st.sampled_from([-1.5, -0.5, 0.0, 0.5, 1.5]))
        n = size if size == 1 or draw(st.integers(0, 9)) else draw(st.integers(1, size))
        noise = draw(st.floats(-3, 3, allow_nan=False))
        points.append(Point(sequence, center + (noise + shift) * sigma / math.sqrt(n), n, None, None))
    return lines, points


class SmoothedTests:
    @PROPERTY
    @given(data=smoothed_series(), rules=rule_sets(), cut=st.floats(0, 1))
    def test_signals_equal_the_engines_ewma_and_cusum(
        self, data: tuple[Lines, list[Point]], rules: RuleSet, cut: float
    ) -> None:
        lines, points = data
        window = RollingWindow(lines, rules)
        at = int(cut * len(points))
        signals = judge_all(window, points[:at])
        # ... through Redis and back halfway: the sums survive.
        last = points[at - 1].sequence if at else 0
        window = RollingWindow.from_json(_round_trip(window.to_json(last)), lines, rules, last)  # type: ignore[assignment]
        assert window is not None
        signals += judge_all(window, points[at:])
        got = [s.points for at_point in signals for s in at_point]
        assert all((s.rule, s.chart) == (1, "location") for at_point in signals for s in at_point)
        seqs = [p.sequence for p in points]
        if not points:
            assert got == []
            return
        stats, sizes = [p.mean for p in points], [p.n for p in points]
        if lines.kind == "ewma":
            result = ewma_chart(
                stats, center=lines.center, sigma=lines.sigma, sizes=sizes,
                lam=lines.params["lambda"], nsigmas=lines.params["L"],
            )  # fmt: skip
            flagged = set(result.violations.tolist())
            gaps = np.minimum(np.abs(result.ewma - result.ucl), np.abs(result.ewma - result.lcl))
        else:
            cusum = cusum_chart(
                stats,
                center=lines.center,
                sigma=lines.sigma,
                sizes=sizes,
                k=lines.params["k"],
                h=lines.params["h"],
            )
            flagged = set(cusum.violations_upper.tolist()) | set(cusum.violations_lower.tolist())
            gaps = np.minimum(np.abs(cusum.upper - cusum.h), np.abs(cusum.lower + cusum.h))
        # A statistic within rounding of a limit may fall either side: numpy's vectorised power
        # (the engine's (1 − λ)^2i) is not always correctly rounded, Python's is. Those points are
        # mathematically on the limit; everywhere else the two must agree.
        scale = max(abs(lines.center), lines.sigma, 1.0)
        tie = {index for index, gap in enumerate(gaps.tolist()) if gap <= 1e-12 * scale}
        mine = {seqs.index(pattern[0]) for pattern in got}
        assert len(got) == len(mine)  # one signal per flagged sample, naming only it
        assert mine - tie == flagged - tie

    def test_an_ewma_point_on_its_plotted_limit_is_inside(self) -> None:
        """Regression: the window compared |z − centre| with L·σ_z, whose rounding differs from the
        engine's lines centre ± L·σ_z; a point drawn exactly on a limit was flagged."""
        lines = lines_for("ewma", 4, center=10.0, sigma=2.0, params={"lambda": 1.0, "L": 0.5})
        engine = ewma_chart([10.0], center=10.0, sigma=2.0, sizes=[2], lam=1.0, nsigmas=0.5)
        on_limits = [float(engine.lcl[0]), float(engine.ucl[0])]
        points = [Point(s, z, 2, None, None) for s, z in zip(sequences(2), on_limits, strict=True)]
        assert judge_all(RollingWindow(lines, PRESETS["nelson"]), points) == [[], []]
        again = ewma_chart(on_limits, center=10.0, sigma=2.0, sizes=[2, 2], lam=1.0, nsigmas=0.5)
        assert again.violations.tolist() == []

    def test_default_parameters_are_the_engines_defaults(self) -> None:
        rng = np.random.default_rng(5)
        stats = (rng.standard_normal(60) + np.r_[np.zeros(30), np.full(30, 1.2)]).tolist()
        points = [Point(s, v, 1, None, None) for s, v in zip(sequences(60), stats, strict=True)]
        for kind, engine in (
            ("ewma", ewma_chart(stats, center=0.0, sigma=1.0).violations.tolist()),
            ("cusum", cusum_chart(stats, center=0.0, sigma=1.0).violations_upper.tolist()),
        ):
            signals = judge_all(RollingWindow(lines_for(kind, 1, 0.0, 1.0), PRESETS["nelson"]), points)
            flagged = [index for index, at in enumerate(signals) if at]
            assert flagged == engine
            assert flagged  # the shift is seen

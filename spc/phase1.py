"""Phase I limit estimation, optionally dropping out-of-control points until stable.

Each pass computes the chart from the points still included, evaluates the enabled rules
on the location chart (I, X-bar, p, np, c, u) over the included points in order, and
rule 1 (with its k) on the dispersion chart (MR, R, S) as DESIGN.md prescribes. With
``exclude_out_of_control`` the flagged points are excluded and the limits recomputed,
until a pass flags nothing or ``max_passes`` limit computations have been made.

What is excluded: the flagged points (the points completing a pattern), or with
``exclude_patterns=True`` every point of the flagged patterns. An R or S signal excludes
its subgroup; a moving-range signal excludes the later of its two observations (moving
ranges touching an excluded observation no longer enter sigma). Every exclusion records
the pass, the chart and the rules that caused it; points excluded by the caller are
reported with pass 0 and chart "manual".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ._arrays import BoolArray
from .attributes import AttributeChart, c_chart, np_chart, p_chart, u_chart
from .chart import ChartLimits
from .rules import PRESETS, RuleSet, Violation, evaluate_batch
from .variables import VariablesChart, individuals_chart, xbar_r_chart, xbar_s_chart

__all__ = ["ChartKind", "Exclusion", "Phase1Result", "estimate_phase1"]

ChartKind = Literal["imr", "xbar_r", "xbar_s", "p", "np", "c", "u"]
Chart = VariablesChart | AttributeChart


@dataclass(frozen=True)
class Exclusion:
    """A phase I point left out of the limits: in which pass and which rules flagged it.

    ``location_rules`` fired on the I / X-bar / attribute chart, ``dispersion_rules`` on the
    MR / R / S chart. Points the caller excluded have pass 0 and no rules.
    """

    index: int
    pass_number: int
    location_rules: tuple[int, ...]
    dispersion_rules: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Phase1Result:
    """Final limits, what was excluded, and what the final limits still flag.

    ``stable`` is True when the final limits flag no included point; ``violations`` are
    those remaining signals (indices into the phase I data).
    """

    chart: Chart
    excluded: tuple[Exclusion, ...]
    passes: int
    stable: bool
    violations: tuple[Violation, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "chart": self.chart.to_dict(),
            "excluded": [
                {
                    **asdict(item),
                    "location_rules": list(item.location_rules),
                    "dispersion_rules": list(item.dispersion_rules),
                }
                for item in self.excluded
            ],
            "passes": self.passes,
            "stable": self.stable,
            "violations": [item.to_dict() for item in self.violations],
        }


def _build(kind: ChartKind, data: Any, sizes: Any, exclude: list[int], nsigmas: float, options: Any) -> Chart:
    if kind == "imr":
        return individuals_chart(data, exclude=exclude, nsigmas=nsigmas, **options)
    if kind in ("xbar_r", "xbar_s"):
        build = xbar_r_chart if kind == "xbar_r" else xbar_s_chart
        return build(data, exclude=exclude, nsigmas=nsigmas, **options)
    if kind == "c":
        return c_chart(data, exclude=exclude, nsigmas=nsigmas, **options)
    if kind in ("p", "np", "u"):
        if sizes is None:
            raise ValueError(f"a {kind} chart needs sizes")
        build_counts: Callable[..., AttributeChart] = {"p": p_chart, "np": np_chart}.get(kind, u_chart)
        return build_counts(data, sizes, exclude=exclude, nsigmas=nsigmas, **options)
    raise ValueError(f"unknown chart kind {kind!r}; use imr, xbar_r, xbar_s, p, np, c or u")


def _evaluate(chart: ChartLimits, positions: npt.NDArray[np.int64], rules: RuleSet) -> list[Violation]:
    """Rules on the chart's points at ``positions`` (in order), mapped back to those indices."""
    if positions.size == 0 or not rules.enabled:
        return []
    result = evaluate_batch(
        chart.statistics[positions],
        center=chart.center[positions],
        sigma=chart.sigma[positions],
        rules=rules,
    )
    return [
        Violation(v.rule, int(positions[v.index]), tuple(int(positions[p]) for p in v.points))
        for v in result.violations()
    ]


def _signals(chart: Chart, included: BoolArray, rules: RuleSet) -> _Signals:
    """Violations of the current pass on the location and the dispersion chart."""
    if isinstance(chart, AttributeChart):
        return _Signals(_evaluate(chart.chart, np.flatnonzero(included), rules), [])
    location = _evaluate(chart.location, np.flatnonzero(included), rules)
    if rules.rule1 is None:
        return _Signals(location, [])
    rule1_only = RuleSet(rule1=rules.rule1)
    if chart.kind != "imr":
        return _Signals(location, _evaluate(chart.dispersion, np.flatnonzero(included), rule1_only))
    # moving range j joins observations j and j + 1: a flagged observation explains it,
    # otherwise the jump is charged to the later observation
    usable = np.flatnonzero(included[1:] & included[:-1])
    explained = {v.index for v in location}
    dispersion = [
        Violation(1, v.index + 1, (v.index, v.index + 1))
        for v in _evaluate(chart.dispersion, usable, rule1_only)
        if not explained & {v.index, v.index + 1}
    ]
    return _Signals(location, dispersion)


@dataclass(frozen=True)
class _Signals:
    location: list[Violation]
    dispersion: list[Violation]

    def all(self) -> tuple[Violation, ...]:
        return tuple(sorted(self.location + self.dispersion, key=lambda v: (v.index, v.rule)))

    def exclusions(self, pass_number: int, patterns: bool) -> list[Exclusion]:
        """One Exclusion per point to drop (flagged points, or whole patterns)."""
        rules: dict[int, tuple[set[int], set[int]]] = {}
        for position, violations in enumerate((self.location, self.dispersion)):
            for violation in violations:
                for index in violation.points if patterns else (violation.index,):
                    rules.setdefault(index, (set(), set()))[position].add(violation.rule)
        return [
            Exclusion(index, pass_number, tuple(sorted(loc)), tuple(sorted(disp)))
            for index, (loc, disp) in sorted(rules.items())
        ]


def estimate_phase1(
    kind: ChartKind,
    data: Any,
    *,
    sizes: npt.ArrayLike | None = None,
    rules: RuleSet | None = None,
    exclude_out_of_control: bool = False,
    exclude_patterns: bool = False,
    max_passes: int = 10,
    exclude: Iterable[int] = (),
    nsigmas: float = 3.0,
    **options: Any,
) -> Phase1Result:
    """Estimate phase I limits for ``kind`` from ``data`` (values, subgroups or counts).

    ``sizes`` is required for p, np and u. ``options`` go to the chart function (e.g.
    ``sigma_method="sd_c4"`` for I-MR, or a given ``center``/``sigma``).
    """
    if max_passes < 1:
        raise ValueError(f"max_passes must be at least 1, got {max_passes!r}")
    rules = PRESETS["nelson"] if rules is None else rules
    excluded = [Exclusion(int(i), 0, (), ()) for i in sorted(set(exclude))]
    passes = 0
    while True:
        passes += 1
        indices = [item.index for item in excluded]
        chart = _build(kind, data, sizes, indices, nsigmas, options)
        included = np.ones(_phase1_length(chart), dtype=bool)
        included[indices] = False
        signals = _signals(chart, included, rules)
        remaining = signals.all()
        if not remaining or not exclude_out_of_control or passes >= max_passes:
            return Phase1Result(chart, tuple(excluded), passes, not remaining, remaining)
        excluded.extend(signals.exclusions(passes, exclude_patterns))
        if len(excluded) >= included.size:
            raise ValueError(f"pass {passes} would exclude every phase I point")


def _phase1_length(chart: Chart) -> int:
    limits = chart.chart if isinstance(chart, AttributeChart) else chart.location
    return limits.n_phase1

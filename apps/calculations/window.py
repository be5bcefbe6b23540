"""The rolling window of one characteristic: what judging the next sample needs.

It holds the SPC engine's IncrementalEvaluator state (Nelson rules on the location
chart), the recent points (sequence, plotted statistic) that map a pattern back to
its samples, the previous point (moving range) and the EWMA / CUSUM sums. It is a
plain JSON document: the calculation services keep it in Redis and rebuild it from
the samples when it is missing or stale. No Django here.

Which lines judge a sample (DESIGN.md "SPC conventions"):

* Location chart: centre = limits centre; sigma of the plotted statistic = process
  sigma / √n for I, X̄, EWMA and CUSUM, the stored sigma for p, np, c and u (their
  limits are computed for the characteristic's n, which attribute samples always have).
  All enabled rules run on it; rule 1 uses centre ± k σ, so a point on a limit is inside.
* Dispersion chart (MR, R, S): rule 1 only, against the stored dispersion limits, for
  samples of the full subgroup size.
* EWMA and CUSUM plot a smoothed statistic: rule 1 only, against its own (time-varying
  EWMA, decision interval h for CUSUM) limits, as the engine's ewma_chart / cusum_chart.

A new limits version starts a new evaluator: runs do not carry across limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from spc import IncrementalEvaluator, RuleSet

ATTRIBUTE_KINDS = frozenset({"p", "np", "c", "u"})
SMOOTHED_KINDS = frozenset({"ewma", "cusum"})
RECENT_POINTS = 50  # points kept at least (patterns reach back at most the longest rule)


@dataclass(frozen=True)
class Lines:
    """The control limits version a characteristic's samples are judged with."""

    version: int
    kind: str  # the effective chart type: imr, xbar_r, xbar_s, p, np, c, u, ewma, cusum
    center: float
    sigma: float
    dispersion_lcl: float | None
    dispersion_ucl: float | None
    subgroup_size: int
    params: dict[str, Any]
    # Which row the limits came from (id and creation time): a window left in Redis by another
    # database (a restore, a reset, a test run) never matches, even at the same version.
    stamp: str = ""


@dataclass(frozen=True)
class Signal:
    """A rule that fired at the newest sample, with the sequences of the pattern's samples."""

    rule: int
    chart: str  # "location" or "dispersion"
    points: tuple[int, ...]


@dataclass(frozen=True)
class Point:
    """What the window needs of a sample."""

    sequence: int
    mean: float
    n: int
    range: float | None
    sd: float | None


def plotted_statistic(kind: str, mean: float, n: int) -> float:
    """The location statistic drawn for a sample: a proportion / rate for p and u, else the mean
    (for attributes the sample's only value is the count found among its n units)."""
    return mean / n if kind in ("p", "u") else mean


def plotted_sigma(lines: Lines, n: int) -> float:
    if lines.kind in ATTRIBUTE_KINDS:
        return lines.sigma
    return lines.sigma / math.sqrt(n)


def dispersion_statistic(kind: str, point: Point, previous: float | None) -> float | None:
    if kind == "imr":
        return None if previous is None else abs(point.mean - previous)
    if kind == "xbar_r":
        return point.range
    if kind == "xbar_s":
        return point.sd
    return None


def memory(rules: RuleSet) -> int:
    """How many trailing points determine the evaluator's future: the longest pattern."""
    lengths = [1]
    for number in rules.enabled:
        params = rules.get(number)
        lengths.append(int(getattr(params, "length", 0) or getattr(params, "n", 0) or 1))
    return max(lengths) + 1


class RollingWindow:
    """Judges a characteristic's samples one by one under one limits version."""

    def __init__(self, lines: Lines, rules: RuleSet) -> None:
        self.lines = lines
        self.rules = rules
        self.evaluator = IncrementalEvaluator(rules, center=lines.center, sigma=plotted_sigma(lines, 1))
        self.points: list[tuple[int, float]] = []
        self.previous: float | None = None
        self.smooth: dict[str, float] = {"count": 0, "z": lines.center, "high": 0.0, "low": 0.0}
        self.keep = max(RECENT_POINTS, memory(rules))

    @property
    def fingerprint(self) -> dict[str, Any]:
        """What the window was built for; a different one means rebuild."""
        lines = self.lines
        return {
            "version": lines.version, "kind": lines.kind, "center": lines.center, "sigma": lines.sigma,
            "dispersion": [lines.dispersion_lcl, lines.dispersion_ucl], "n": lines.subgroup_size,
            "params": lines.params, "rules": self.rules.to_dict(), "stamp": lines.stamp,
        }  # fmt: skip

    def judge(self, point: Point) -> list[Signal]:
        """Add the next sample; the rules it completes."""
        lines = self.lines
        statistic = plotted_statistic(lines.kind, point.mean, point.n)
        self.points.append((point.sequence, statistic))
        del self.points[: -self.keep]
        if lines.kind in SMOOTHED_KINDS:
            return self._smoothed(point, statistic)
        signals = self._location(point, statistic)
        dispersion = self._dispersion(point, statistic)
        self.previous = statistic
        return signals + dispersion

    def _location(self, point: Point, statistic: float) -> list[Signal]:
        evaluator = self.evaluator
        sigma = plotted_sigma(self.lines, point.n)
        if sigma != evaluator.sigma:
            evaluator.set_limits(center=self.lines.center, sigma=sigma)
        count_after = evaluator.count + 1
        signals = []
        for violation in evaluator.update(statistic):
            back = [count_after - index for index in violation.points]  # 1 = newest point
            sequences = tuple(self.points[-step][0] for step in back if step <= len(self.points))
            signals.append(Signal(violation.rule, "location", sequences))
        return signals

    def _dispersion(self, point: Point, statistic: float) -> list[Signal]:
        lines = self.lines
        value = dispersion_statistic(lines.kind, point, self.previous)
        full = lines.kind == "imr" or point.n == lines.subgroup_size
        if value is None or not full or self.rules.rule1 is None:
            return []
        high = lines.dispersion_ucl if lines.dispersion_ucl is not None else math.inf
        low = lines.dispersion_lcl if lines.dispersion_lcl is not None else -math.inf
        if low <= value <= high:
            return []
        pattern = (self.points[-2][0], point.sequence) if lines.kind == "imr" else (point.sequence,)
        return [Signal(1, "dispersion", pattern)]

    def _smoothed(self, point: Point, statistic: float) -> list[Signal]:
        lines, smooth = self.lines, self.smooth
        standard_error = lines.sigma / math.sqrt(point.n)
        smooth["count"] += 1
        if lines.kind == "ewma":
            lam = float(lines.params.get("lambda", 0.2))
            width = float(lines.params.get("L", 3.0))
            smooth["z"] = lam * statistic + (1.0 - lam) * smooth["z"]
            spread = standard_error * math.sqrt(
                lam / (2.0 - lam) * (1.0 - (1.0 - lam) ** (2 * smooth["count"]))
            )
            # The engine's lines, in the same doubles: a point on a plotted limit is inside.
            beyond = not lines.center - width * spread <= smooth["z"] <= lines.center + width * spread
        else:
            k, h = float(lines.params.get("k", 0.5)), float(lines.params.get("h", 5.0))
            z = (statistic - lines.center) / standard_error
            smooth["high"] = max(0.0, smooth["high"] + z - k)
            smooth["low"] = max(0.0, smooth["low"] - z - k)
            beyond = smooth["high"] > h or smooth["low"] > h
        return [Signal(1, "location", (point.sequence,))] if beyond else []

    # -- persistence ------------------------------------------------------------------

    def to_json(self, last_sequence: int) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "last_sequence": last_sequence,
            "evaluator": self.evaluator.to_state(),
            "points": self.points,
            "previous": self.previous,
            "smooth": self.smooth,
        }

    @classmethod
    def from_json(cls, data: Any, lines: Lines, rules: RuleSet, last_sequence: int) -> RollingWindow | None:
        """The stored window if it was built for these lines and rules and is at `last_sequence`."""
        window = cls(lines, rules)
        if not isinstance(data, dict) or data.get("fingerprint") != window.fingerprint:
            return None
        if data.get("last_sequence") != last_sequence:
            return None
        try:
            window.evaluator = IncrementalEvaluator.from_state(data["evaluator"])
            window.points = [(int(sequence), float(value)) for sequence, value in data["points"]]
            window.previous = None if data["previous"] is None else float(data["previous"])
            # Read key by key: a list, None or a dict without a sum raises here, not in judge().
            window.smooth = {key: float(data["smooth"][key]) for key in window.smooth}
        except (KeyError, TypeError, ValueError):
            return None
        return window

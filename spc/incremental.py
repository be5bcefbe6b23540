"""Incremental Nelson-rule evaluation: one point at a time with O(1) state.

The state is a handful of ints and floats -- the point count, the last value, the sign
of the last step, run counters (same side, trend up/down, alternation, within / beyond
zone) and, for the m-of-n rules, bit masks of the last n points beyond the zone on each
side (bit 0 = newest point). ``to_state()`` returns it as a small JSON-able dict and
``from_state()`` resumes from it, so a worker can keep it in Redis across restarts.

It applies exactly the conventions of :mod:`.rules` (see that module's docstring) and
produces the same violations, with the same pattern points, as ``evaluate_batch``; the
property tests hold both to that. Disabled rules get thresholds that can never be met
(infinite lines, unreachable lengths), which keeps ``update`` free of per-rule switches:
speed matters here because every observation of every characteristic goes through it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from .rules import PRESETS, BeyondLimits, MofN, RuleSet, Run, Violation, ZoneRun

__all__ = ["STATE_VERSION", "IncrementalEvaluator"]

STATE_VERSION = 1
_NEVER = 1 << 62  # a run length no series reaches: used for disabled rules
_NO_VIOLATIONS: tuple[Violation, ...] = ()
# fmt: off
_COUNTERS = ("count", "sign", "up", "down", "alt", "above", "below", "within", "beyond",
             "mask5_above", "mask5_below", "mask6_above", "mask6_below")
# fmt: on


class IncrementalEvaluator:
    """Evaluate Nelson rules point by point.

    >>> evaluator = IncrementalEvaluator(PRESETS["nelson"], center=0.0, sigma=1.0)
    >>> evaluator.update(3.5)
    (Violation(rule=1, index=0, points=(0,)),)
    """

    # fmt: off
    __slots__ = (
        "_above", "_alt", "_below", "_beyond", "_center", "_count", "_down", "_hi1", "_hi5",
        "_hi6", "_hi7", "_hi8", "_last", "_len2", "_len7", "_len8", "_lo1", "_lo5", "_lo6",
        "_lo7", "_lo8", "_m5", "_m6", "_mask5", "_mask5_above", "_mask5_below", "_mask6",
        "_mask6_above", "_mask6_below", "_n5", "_n6", "_rules", "_sigma", "_sign", "_steps3",
        "_steps4", "_up", "_within",
    )
    # fmt: on

    def __init__(self, rules: RuleSet | None = None, *, center: float, sigma: float) -> None:
        self._rules = PRESETS["nelson"] if rules is None else rules
        self._configure_rules()
        self.set_limits(center=center, sigma=sigma)
        self._count = self._sign = self._up = self._down = self._alt = 0
        self._above = self._below = self._within = self._beyond = 0
        self._mask5_above = self._mask5_below = self._mask6_above = self._mask6_below = 0
        self._last = 0.0

    # -- configuration ------------------------------------------------------------------

    def _configure_rules(self) -> None:
        """Lengths and window sizes; unreachable values for disabled rules."""
        rules = self._rules
        self._len2 = rules.rule2.length if rules.rule2 else _NEVER
        self._steps3 = rules.rule3.length - 1 if rules.rule3 else _NEVER
        self._steps4 = rules.rule4.length - 1 if rules.rule4 else _NEVER
        self._len7 = rules.rule7.length if rules.rule7 else _NEVER
        self._len8 = rules.rule8.length if rules.rule8 else _NEVER
        self._n5 = rules.rule5.n if rules.rule5 else 1
        self._m5 = rules.rule5.m if rules.rule5 else 1
        self._n6 = rules.rule6.n if rules.rule6 else 1
        self._m6 = rules.rule6.m if rules.rule6 else 1
        self._mask5 = (1 << self._n5) - 1
        self._mask6 = (1 << self._n6) - 1

    @property
    def rules(self) -> RuleSet:
        """The rule set being evaluated."""
        return self._rules

    @property
    def count(self) -> int:
        """Number of points seen; the next point gets this index."""
        return self._count

    @property
    def center(self) -> float:
        """Current centre line."""
        return self._center

    @property
    def sigma(self) -> float:
        """Current sigma of the plotted statistic."""
        return self._sigma

    def set_limits(self, *, center: float, sigma: float) -> None:
        """Use a new centre/sigma for the points that follow (the run state is kept).

        Calling this before every point with that point's lines reproduces a batch
        evaluation with per-point centre and sigma arrays.
        """
        center, sigma = float(center), float(sigma)
        if not math.isfinite(center):
            raise ValueError(f"center must be finite, got {center!r}")
        if not (math.isfinite(sigma) and sigma > 0.0):
            raise ValueError(f"sigma must be a positive finite number, got {sigma!r}")
        self._center, self._sigma = center, sigma
        self._lo1, self._hi1 = self._lines(self._rules.rule1)
        self._lo5, self._hi5 = self._lines(self._rules.rule5)
        self._lo6, self._hi6 = self._lines(self._rules.rule6)
        self._lo7, self._hi7 = self._lines(self._rules.rule7)
        self._lo8, self._hi8 = self._lines(self._rules.rule8)

    def _lines(self, params: BeyondLimits | MofN | ZoneRun | None) -> tuple[float, float]:
        if params is None:
            return -math.inf, math.inf  # nothing is ever beyond: the rule cannot fire
        # same expression as the batch evaluator, so both get the same doubles
        return self._center - params.k * self._sigma, self._center + params.k * self._sigma

    # -- evaluation ---------------------------------------------------------------------

    def update(self, value: float) -> tuple[Violation, ...]:
        """Add the next point; return the violations it completes (usually none)."""
        x = float(value)
        if x - x != 0.0:  # true for NaN and +/-inf only
            raise ValueError(f"value must be a finite number, got {value!r}")
        i = self._count
        self._count = i + 1
        hits = 0  # bit r set = rule r fired at this point
        if x > self._hi1 or x < self._lo1:
            hits = 2
        center = self._center
        if x > center:
            run = self._above = self._above + 1
            self._below = 0
            if run >= self._len2:
                hits |= 4
        elif x < center:
            run = self._below = self._below + 1
            self._above = 0
            if run >= self._len2:
                hits |= 4
        else:
            self._above = self._below = 0
        if i:
            hits |= self._step(x - self._last)
        self._last = x
        hits |= self._zone_counts(x)
        if self._lo7 <= x <= self._hi7:
            run = self._within = self._within + 1
            if run >= self._len7:
                hits |= 128
        else:
            self._within = 0
        if x > self._hi8 or x < self._lo8:
            run = self._beyond = self._beyond + 1
            if run >= self._len8:
                hits |= 256
        else:
            self._beyond = 0
        return self._violations(i, hits) if hits else _NO_VIOLATIONS

    def _step(self, diff: float) -> int:
        """Rules 3 and 4 from the difference to the previous point."""
        hits = 0
        if diff > 0.0:
            up = self._up = self._up + 1
            self._down = 0
            alt = self._alt = self._alt + 1 if self._sign < 0 else 1
            self._sign = 1
        elif diff < 0.0:
            up = self._down = self._down + 1
            self._up = 0
            alt = self._alt = self._alt + 1 if self._sign > 0 else 1
            self._sign = -1
        else:  # a tie breaks trends and alternation
            self._up = self._down = self._alt = self._sign = 0
            return 0
        if up >= self._steps3:
            hits = 8
        if alt >= self._steps4:
            hits |= 16
        return hits

    def _zone_counts(self, x: float) -> int:
        """Rules 5 and 6: shift the per-side masks and count the newest window."""
        hits = 0
        mask = self._mask5
        above, below = (self._mask5_above << 1) & mask, (self._mask5_below << 1) & mask
        if x > self._hi5:
            above |= 1
            if above.bit_count() >= self._m5:
                hits = 32
        elif x < self._lo5:
            below |= 1
            if below.bit_count() >= self._m5:
                hits = 32
        self._mask5_above, self._mask5_below = above, below
        mask = self._mask6
        above, below = (self._mask6_above << 1) & mask, (self._mask6_below << 1) & mask
        if x > self._hi6:
            above |= 1
            if above.bit_count() >= self._m6:
                hits |= 64
        elif x < self._lo6:
            below |= 1
            if below.bit_count() >= self._m6:
                hits |= 64
        self._mask6_above, self._mask6_below = above, below
        return hits

    def _violations(self, index: int, hits: int) -> tuple[Violation, ...]:
        found = []
        for rule in range(1, 9):
            if hits >> rule & 1:
                found.append(Violation(rule, index, self._pattern(rule, index)))
        return tuple(found)

    def _pattern(self, rule: int, index: int) -> tuple[int, ...]:
        if rule == 1:
            return (index,)
        if rule in (5, 6):
            above = self._mask5_above if rule == 5 else self._mask6_above
            mask = above if above & 1 else (self._mask5_below if rule == 5 else self._mask6_below)
            width = self._n5 if rule == 5 else self._n6
            return tuple(index - bit for bit in range(width - 1, -1, -1) if mask >> bit & 1)
        params = self._rules.get(rule)
        assert isinstance(params, Run | ZoneRun)
        return tuple(range(index - params.length + 1, index + 1))

    def update_many(self, values: Iterable[float]) -> list[Violation]:
        """Feed several points in order; return all their violations."""
        found: list[Violation] = []
        update = self.update
        for value in values:
            hits = update(value)
            if hits:
                found.extend(hits)
        return found

    # -- persistence --------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Everything needed to resume, as a small JSON-able dict."""
        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "rules": self._rules.to_dict(),
            "center": self._center,
            "sigma": self._sigma,
            "last": self._last if self._count else None,
        }
        for name in _COUNTERS:
            state[name] = getattr(self, f"_{name}")
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> IncrementalEvaluator:
        """Resume from ``to_state()`` output (e.g. after a JSON round trip)."""
        if not isinstance(state, Mapping) or state.get("version") != STATE_VERSION:
            raise ValueError(f"not an incremental evaluator state of version {STATE_VERSION}")
        missing = sorted({"rules", "center", "sigma", "last", *_COUNTERS} - set(state))
        if missing:
            raise ValueError(f"incremental state is missing {missing}")
        evaluator = cls(RuleSet.from_dict(state["rules"]), center=state["center"], sigma=state["sigma"])
        for name in _COUNTERS:
            value = state[name]
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"incremental state: {name!r} must be an integer, got {value!r}")
            setattr(evaluator, f"_{name}", value)
        if evaluator._count:
            evaluator._last = float(state["last"])
        return evaluator

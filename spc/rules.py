"""Nelson rules 1-8: parameters, presets and the vectorised batch evaluator.

Rules (sigma = the sigma of the plotted statistic, CL = centre line):

1. one point beyond k sigma (default k = 3);
2. ``length`` points in a row on the same side of CL (9);
3. ``length`` points in a row steadily increasing or decreasing (6 points = 5 steps);
4. ``length`` points in a row alternating up and down (14 points = 13 differences);
5. ``m`` of ``n`` points in a row beyond k sigma on the same side (2 of 3 beyond 2 sigma);
6. ``m`` of ``n`` points in a row beyond k sigma on the same side (4 of 5 beyond 1 sigma);
7. ``length`` points in a row within k sigma, either side (15 within 1 sigma);
8. ``length`` points in a row beyond k sigma, either side (8 beyond 1 sigma).

Conventions (DESIGN.md "SPC conventions" and the reference README):

* Indices are 0-based. The flagged point is the one that *completes* the pattern (the
  trailing window ending there contains it); every further point that again completes a
  qualifying window is flagged too (a run of 11 on one side flags the 9th, 10th and 11th).
* Above means x > CL and below means x < CL: a point exactly on CL is on neither side and
  ends a rule 2 run (it is within 1 sigma for rule 7).
* Zone boundaries belong to the inner zone: beyond k sigma is x > CL + k sigma or
  x < CL - k sigma (strict); within k sigma is CL - k sigma <= x <= CL + k sigma. So a point
  exactly on a control limit is no rule 1 signal. Lines are computed as CL + k * sigma and
  CL - k * sigma in IEEE doubles by both evaluators, so they agree bit for bit.
* Ties (equal consecutive values) are neither up nor down: they break rule 3 trends and
  rule 4 alternations.
* Rules 5 and 6: the flagged point must itself be beyond the zone on the pattern's side;
  the window is truncated at the start of the series (2.5, 2.4 as the first two points
  flag point 1). The pattern points are the points beyond the zone on that side.
* Rules 7 and 8 read "either side": both sides of CL need not be represented.

Rule parameters travel as JSON (stored on a Characteristic): keys are rule numbers as
strings, presence means enabled, e.g. ``{"1": {"k": 3}, "2": {"length": 9}}``. A missing
parameter takes the Nelson default. ``RuleSet.from_dict`` validates with clear messages.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from ._arrays import BoolArray, FloatArray, IntArray, broadcast_line

__all__ = [
    "PRESETS",
    "BatchResult",
    "BeyondLimits",
    "MofN",
    "RuleSet",
    "Run",
    "Violation",
    "ZoneRun",
    "evaluate_batch",
]

MAX_LENGTH = 1000  # longest run/trend the parameters may ask for
MAX_WINDOW = 64  # widest m-of-n window (the incremental evaluator keeps it as a bit mask)


def _check_k(rule: int, k: object) -> None:
    if isinstance(k, bool) or not isinstance(k, int | float) or not math.isfinite(k) or k <= 0:
        raise ValueError(f"rule {rule}: 'k' must be a positive number (sigmas), got {k!r}")


def _check_int(rule: int, name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"rule {rule}: '{name}' must be an integer from {low} to {high}, got {value!r}")


@dataclass(frozen=True)
class BeyondLimits:
    """Rule 1: one point beyond k sigma."""

    k: float = 3.0
    rule: int = field(default=1, repr=False)

    def __post_init__(self) -> None:
        _check_k(self.rule, self.k)


@dataclass(frozen=True)
class Run:
    """Rules 2-4: ``length`` points in a row (same side / trend / alternating)."""

    length: int
    rule: int = field(default=2, repr=False)

    def __post_init__(self) -> None:
        _check_int(self.rule, "length", self.length, 2, MAX_LENGTH)


@dataclass(frozen=True)
class MofN:
    """Rules 5 and 6: m of n points in a row beyond k sigma on the same side."""

    m: int
    n: int
    k: float
    rule: int = field(default=5, repr=False)

    def __post_init__(self) -> None:
        _check_int(self.rule, "n", self.n, 1, MAX_WINDOW)
        _check_int(self.rule, "m", self.m, 1, MAX_WINDOW)
        if self.m > self.n:
            raise ValueError(f"rule {self.rule}: 'm' must not exceed 'n' (m={self.m}, n={self.n})")
        _check_k(self.rule, self.k)


@dataclass(frozen=True)
class ZoneRun:
    """Rules 7 and 8: ``length`` points in a row within (7) / beyond (8) k sigma."""

    length: int
    k: float
    rule: int = field(default=7, repr=False)

    def __post_init__(self) -> None:
        _check_int(self.rule, "length", self.length, 2, MAX_LENGTH)
        _check_k(self.rule, self.k)


RuleParams = BeyondLimits | Run | MofN | ZoneRun

_NELSON_DEFAULTS: dict[int, dict[str, float]] = {
    1: {"k": 3},
    2: {"length": 9},
    3: {"length": 6},
    4: {"length": 14},
    5: {"m": 2, "n": 3, "k": 2},
    6: {"m": 4, "n": 5, "k": 1},
    7: {"length": 15, "k": 1},
    8: {"length": 8, "k": 1},
}
_PARAM_TYPES: dict[int, type[RuleParams]] = {
    1: BeyondLimits,
    2: Run,
    3: Run,
    4: Run,
    5: MofN,
    6: MofN,
    7: ZoneRun,
    8: ZoneRun,
}


def _params_from_dict(rule: int, raw: object) -> RuleParams:
    if not isinstance(raw, Mapping):
        example = {key: int(v) for key, v in _NELSON_DEFAULTS[rule].items()}
        raise ValueError(f"rule {rule}: parameters must be an object such as {example}, got {raw!r}")
    allowed = _NELSON_DEFAULTS[rule]
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ValueError(f"rule {rule}: unknown parameter(s) {unknown}; allowed: {sorted(allowed)}")
    values = {**allowed, **raw}
    return _PARAM_TYPES[rule](**values, rule=rule)


def _params_to_dict(params: RuleParams) -> dict[str, float]:
    return {f.name: getattr(params, f.name) for f in fields(params) if f.name != "rule"}


@dataclass(frozen=True)
class RuleSet:
    """Which Nelson rules are enabled, with their parameters (None = disabled)."""

    rule1: BeyondLimits | None = None
    rule2: Run | None = None
    rule3: Run | None = None
    rule4: Run | None = None
    rule5: MofN | None = None
    rule6: MofN | None = None
    rule7: ZoneRun | None = None
    rule8: ZoneRun | None = None

    def __post_init__(self) -> None:
        for number in range(1, 9):
            params = self.get(number)
            if params is None:
                continue
            if not isinstance(params, _PARAM_TYPES[number]):
                expected = _PARAM_TYPES[number].__name__
                raise ValueError(f"rule {number} takes {expected} parameters, got {params!r}")
            if params.rule != number:  # keep error messages and to_dict honest
                object.__setattr__(self, f"rule{number}", replace(params, rule=number))

    def get(self, number: int) -> RuleParams | None:
        """Parameters of rule ``number`` (1-8), or None when it is disabled."""
        if number not in _PARAM_TYPES:
            raise ValueError(f"rule numbers are 1 to 8, got {number!r}")
        params: RuleParams | None = getattr(self, f"rule{number}")
        return params

    @property
    def enabled(self) -> tuple[int, ...]:
        """Numbers of the enabled rules, ascending."""
        return tuple(number for number in range(1, 9) if self.get(number) is not None)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleSet:
        """Build from the stored JSON form ``{"1": {"k": 3}, "2": {"length": 9}, ...}``."""
        if not isinstance(data, Mapping):
            raise ValueError(f"rule set must be an object keyed by rule number, got {data!r}")
        chosen: dict[str, RuleParams] = {}
        for key, raw in data.items():
            text = str(key)
            if isinstance(key, bool) or not text.isdigit() or int(text) not in _PARAM_TYPES:
                raise ValueError(f"unknown rule {key!r}: rule keys are '1' to '8'")
            chosen[f"rule{int(text)}"] = _params_from_dict(int(text), raw)
        return cls(**chosen)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, dict[str, float]]:
        """The stored JSON form (only enabled rules appear)."""
        result = {}
        for number in self.enabled:
            params = self.get(number)
            assert params is not None
            result[str(number)] = _params_to_dict(params)
        return result

    @classmethod
    def custom(cls, base: str | RuleSet = "nelson", **changes: Mapping[str, Any] | None) -> RuleSet:
        """A preset with some rules changed: ``RuleSet.custom("nelson", rule2={"length": 8},
        rule4=None)``; None disables a rule, a dict sets (missing keys take defaults)."""
        start = PRESETS[base] if isinstance(base, str) else base
        data: dict[str, Any] = dict(start.to_dict())
        for name, value in changes.items():
            number = name.removeprefix("rule")
            if not number.isdigit() or int(number) not in _PARAM_TYPES:
                raise ValueError(f"unknown rule {name!r}: use rule1 .. rule8")
            if value is None:
                data.pop(number, None)
            else:
                data[number] = value
        return cls.from_dict(data)


PRESETS: dict[str, RuleSet] = {
    "nelson": RuleSet.from_dict({str(rule): params for rule, params in _NELSON_DEFAULTS.items()}),
    "western_electric": RuleSet.from_dict(
        {
            "1": {"k": 3},
            "2": {"length": 8},
            "5": {"m": 2, "n": 3, "k": 2},
            "6": {"m": 4, "n": 5, "k": 1},
        }
    ),
}


@dataclass(frozen=True)
class Violation:
    """Rule ``rule`` fired at point ``index``; ``points`` formed the pattern (ascending)."""

    rule: int
    index: int
    points: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"rule": self.rule, "index": self.index, "points": list(self.points)}


# ---------------------------------------------------------------------------------------
# Batch evaluation: whole series at once, no Python loop over points.


def _run_lengths(flags: BoolArray) -> npt.NDArray[np.signedinteger[Any]]:
    """Length of the run of True values ending at each position (0 where False)."""
    # int32 halves the memory traffic; series longer than 2**31 points are not a use case
    kind: type[np.signedinteger[Any]] = np.int32 if flags.size < 2**31 - 1 else np.int64
    positions = np.arange(1, flags.size + 1, dtype=kind)
    last_false = np.maximum.accumulate(np.where(flags, 0, positions))
    return positions - last_false


def _window_count(flags: BoolArray, width: int) -> IntArray:
    """Number of True values in the trailing window of ``width`` ending at each position."""
    totals = np.cumsum(flags, dtype=np.int64)
    counts = totals.copy()
    counts[width:] -= totals[:-width]
    return counts


def _ahead_count(flags: BoolArray, width: int) -> IntArray:
    """Number of True values in the leading window [j, j + width - 1] (clipped at the end)."""
    return _window_count(flags[::-1], width)[::-1]


@dataclass(frozen=True, eq=False)
class _Zone:
    """Per-rule classification kept so per-violation pattern points can be listed."""

    above: BoolArray
    below: BoolArray
    width: int


@dataclass(frozen=True, eq=False)
class BatchResult:
    """Flags of every enabled rule for a whole series.

    ``flagged[rule]`` = indices where the rule fires; ``pattern_points[rule]`` = every point
    that belongs to at least one of those patterns. ``violations()`` lists one Violation per
    (point, rule) with the pattern of that window, ordered by index then rule -- the same
    list the incremental evaluator produces point by point.
    """

    length: int
    rules: RuleSet
    flagged: dict[int, IntArray]
    pattern_points: dict[int, IntArray]
    _zones: dict[int, _Zone] = field(repr=False)

    def any_rule(self) -> IntArray:
        """Indices flagged by at least one rule."""
        if not self.flagged:
            return np.empty(0, dtype=np.int64)
        return np.unique(np.concatenate(list(self.flagged.values())))

    def _points(self, rule: int, index: int) -> tuple[int, ...]:
        zone = self._zones.get(rule)
        if zone is None:
            params = self.rules.get(rule)
            width = params.length if isinstance(params, Run | ZoneRun) else 1
            return tuple(range(index - width + 1, index + 1))
        start = max(0, index - zone.width + 1)
        side = zone.above if zone.above[index] else zone.below
        return tuple((np.flatnonzero(side[start : index + 1]) + start).tolist())

    def violations(self) -> list[Violation]:
        """One Violation per flagged (index, rule), ordered by index then rule."""
        pairs = sorted((int(index), rule) for rule, indices in self.flagged.items() for index in indices)
        return [Violation(rule, index, self._points(rule, index)) for index, rule in pairs]


def _check_values(values: npt.ArrayLike) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {array.shape}")
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"values must be finite numbers; index {bad} is {array[bad]!r}")
    return array


Line = FloatArray | float


def _line(value: npt.ArrayLike, length: int, name: str) -> Line:
    """A scalar stays a float (comparisons against a scalar are faster); else per point."""
    if np.ndim(value) == 0:
        number = float(value)  # type: ignore[arg-type]
        if not math.isfinite(number):
            raise ValueError(f"{name} must be finite, got {value!r}")
        return number
    return broadcast_line(value, length, name)


def _lines(center: Line, sigma: Line, k: float) -> tuple[Line, Line]:
    return center - k * sigma, center + k * sigma


def _union_behind(flags: BoolArray, width: int) -> BoolArray:
    """Points covered by a window [i - width + 1, i] of some flagged i."""
    return _ahead_count(flags, width) > 0


def _m_of_n(x: FloatArray, center: Line, sigma: Line, params: MofN) -> tuple[BoolArray, BoolArray, _Zone]:
    low, high = _lines(center, sigma, params.k)
    above, below = x > high, x < low
    hit_above = above & (_window_count(above, params.n) >= params.m)
    hit_below = below & (_window_count(below, params.n) >= params.m)
    members = (above & _union_behind(hit_above, params.n)) | (below & _union_behind(hit_below, params.n))
    return hit_above | hit_below, members, _Zone(above, below, params.n)


def _steps(x: FloatArray, length: int, alternating: bool) -> BoolArray:
    """Points that end ``length - 1`` strict steps in one direction / alternating directions."""
    flags = np.zeros(x.size, dtype=bool)
    if x.size < 2:
        return flags
    signs = np.sign(np.diff(x)).astype(np.int8)
    if alternating:
        flips = np.zeros(signs.size, dtype=bool)
        flips[1:] = signs[1:] * signs[:-1] < 0  # non-zero and opposite to the step before
        count = np.where(signs != 0, _run_lengths(flips) + 1, 0)
    else:
        count = np.maximum(_run_lengths(signs > 0), _run_lengths(signs < 0))
    flags[1:] = count >= length - 1
    return flags


def _run_rule(number: int, params: RuleParams, x: FloatArray, center: Line, sigma: Line) -> BoolArray:
    if isinstance(params, BeyondLimits):
        low, high = _lines(center, sigma, params.k)
        return (x > high) | (x < low)
    if isinstance(params, ZoneRun):
        low, high = _lines(center, sigma, params.k)
        inside = (x >= low) & (x <= high) if number == 7 else (x > high) | (x < low)
        return _run_lengths(inside) >= params.length
    assert isinstance(params, Run)
    if number == 2:
        same_side = np.maximum(_run_lengths(x > center), _run_lengths(x < center))
        return np.asarray(same_side >= params.length, dtype=bool)
    return _steps(x, params.length, alternating=number == 4)


def evaluate_batch(
    values: npt.ArrayLike,
    *,
    center: npt.ArrayLike,
    sigma: npt.ArrayLike,
    rules: RuleSet | None = None,
) -> BatchResult:
    """Evaluate ``rules`` (default: Nelson) on a whole series.

    ``center`` and ``sigma`` (sigma of the plotted statistic) are scalars or one value per
    point. NaN or infinite values raise ValueError.
    """
    rules = PRESETS["nelson"] if rules is None else rules
    x = _check_values(values)
    center_line = _line(center, x.size, "center")
    sigma_line = _line(sigma, x.size, "sigma")
    if np.any(sigma_line <= 0):
        raise ValueError("sigma must be positive")
    flagged: dict[int, IntArray] = {}
    members: dict[int, IntArray] = {}
    zones: dict[int, _Zone] = {}
    for number in rules.enabled:
        params = rules.get(number)
        assert params is not None
        if isinstance(params, MofN):
            hits, in_pattern, zones[number] = _m_of_n(x, center_line, sigma_line, params)
        else:
            hits = _run_rule(number, params, x, center_line, sigma_line)
            width = params.length if isinstance(params, Run | ZoneRun) else 1
            in_pattern = _union_behind(hits, width)
        flagged[number] = np.flatnonzero(hits).astype(np.int64)
        members[number] = np.flatnonzero(in_pattern).astype(np.int64)
    return BatchResult(x.size, rules, flagged, members, zones)

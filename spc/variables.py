"""Shewhart charts for variables: I-MR, X-bar-R and X-bar-S.

Sigma estimators (``sigma_method`` in the result):

* ``mrbar_d2`` (I-MR): sigma = MR-bar / d2(2), moving ranges of span 2. Moving ranges
  that touch an excluded point are not used (a range across a gap is no moving range).
* ``sd_c4`` (I-MR alternative): sigma = S / c4(N) over the included individual values.
* ``rbar_d2`` (X-bar-R): sigma = mean over subgroups of R_i / d2(n_i). For equal n this is
  R-bar / d2; for unequal n it is the unweighted mean of per-subgroup estimates (qcc's
  UWAVE-R), not a pooled R-bar.
* ``sbar_c4`` (X-bar-S): sigma = mean of S_i / c4(n_i) (qcc's UWAVE-SD); S_i uses n_i - 1.
* ``given``: a historical sigma was supplied.

Centre lines: the X-bar centre is the grand mean of all included observations
(= mean of subgroup means for equal n). The R and S centres are the size-weighted means
sum(n_i R_i) / sum(n_i) of the included subgroups, with limits centre +/- k d3(n_i) sigma
(R) and centre +/- k sigma sqrt(1 - c4(n_i)^2) (S), LCL clipped at 0; for equal n these are
D3 R-bar, D4 R-bar and B3 S-bar, B4 S-bar. With a given sigma the dispersion centre is
d2(n_i) sigma (R, MR) or c4(n_i) sigma (S). The MR chart is the R chart of consecutive
pairs: its statistic j is |x[j + 1] - x[j]|.

Missing cells (NaN or None) in a subgroup reduce that subgroup's n; every subgroup needs at
least two values for R and S. Phase II data (``new_*``) are plotted against phase I limits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ._arrays import (
    BoolArray,
    FloatArray,
    IntArray,
    finite_scalar,
    finite_vector,
    index_mask,
    subgroup_matrix,
)
from .chart import ChartLimits, make_limits
from .constants import ConstantsTable, c4, c4_array, d2_array, d3_array

__all__ = [
    "IndividualsSigma",
    "VariablesChart",
    "individuals_chart",
    "xbar_r_chart",
    "xbar_s_chart",
]

IndividualsSigma = Literal["mrbar_d2", "sd_c4"]
Subgroups = npt.ArrayLike | Sequence[Sequence[float | None]]


@dataclass(frozen=True, eq=False)
class VariablesChart:
    """A location chart (I or X-bar) with its dispersion chart (MR, R or S).

    ``center`` and ``sigma`` are the process estimates (sigma of individual values);
    ``sigma_method`` names how sigma was obtained. ``excluded`` lists phase I points that
    were left out of the estimates (they are still plotted).
    """

    kind: str
    center: float
    sigma: float
    sigma_method: str
    nsigmas: float
    location: ChartLimits
    dispersion: ChartLimits
    excluded: tuple[int, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "kind": self.kind,
            "center": self.center,
            "sigma": self.sigma,
            "sigma_method": self.sigma_method,
            "nsigmas": self.nsigmas,
            "location": self.location.to_dict(),
            "dispersion": self.dispersion.to_dict(),
            "excluded": list(self.excluded),
        }


def _included(exclude: Iterable[int], length: int) -> tuple[BoolArray, tuple[int, ...]]:
    mask = index_mask(exclude, length, "exclude")
    if mask.all():
        raise ValueError("exclude leaves no phase I data to estimate from")
    return ~mask, tuple(int(i) for i in np.flatnonzero(mask))


def _d2_d3(sizes: npt.ArrayLike, table: ConstantsTable | None) -> tuple[FloatArray, FloatArray]:
    """d2 and d3 per size: exact, or from the given table."""
    if table is None:
        return d2_array(sizes), d3_array(sizes)
    return table.d2_array(sizes), table.d3_array(sizes)


def _individuals_sigma(
    values: FloatArray,
    moving: FloatArray,
    included: BoolArray | None,
    method: IndividualsSigma,
    d2_2: float,
) -> float:
    """Sigma of phase I individuals; ``moving`` = their moving ranges, ``included`` = None
    when every point is used (the common case, which needs no masking)."""
    if method == "sd_c4":
        kept = values if included is None else values[included]
        if kept.size < 2:
            raise ValueError("sd_c4 needs at least two included values")
        return float(np.std(kept, ddof=1)) / c4(int(kept.size))
    if method != "mrbar_d2":
        raise ValueError(f"sigma_method must be 'mrbar_d2' or 'sd_c4', got {method!r}")
    if included is not None:  # a moving range counts only when both its ends are included
        moving = moving[included[1:] & included[:-1]]
    if moving.size == 0:
        raise ValueError("mrbar_d2 needs two consecutive included values")
    return float(moving.mean()) / d2_2


def individuals_chart(
    values: npt.ArrayLike,
    *,
    new_values: npt.ArrayLike | None = None,
    nsigmas: float = 3.0,
    sigma_method: IndividualsSigma = "mrbar_d2",
    center: float | None = None,
    sigma: float | None = None,
    exclude: Iterable[int] = (),
    constants: ConstantsTable | None = None,
) -> VariablesChart:
    """I-MR chart. ``values`` are phase I individuals; ``new_values`` optional phase II.

    ``constants`` replaces the exact d2(2) / d3(2) by tabled ones (to reproduce qcc).
    """
    phase1 = finite_vector(values, "values")
    if phase1.size == 0:
        raise ValueError("values must not be empty")
    mask, excluded = _included(exclude, phase1.size)
    included = mask if excluded else None
    nsigmas = finite_scalar(nsigmas, "nsigmas", positive=True)
    d2_line, d3_line = _d2_d3([2], constants)
    d2_2, d3_2 = float(d2_line[0]), float(d3_line[0])
    series = _with_phase2(phase1, new_values)
    moving = np.abs(np.diff(series))
    method: str
    if sigma is None:
        phase1_moving = moving[: max(phase1.size - 1, 0)]
        sigma_hat = _individuals_sigma(phase1, phase1_moving, included, sigma_method, d2_2)
        method = sigma_method
    else:
        sigma_hat, method = finite_scalar(sigma, "sigma", positive=True), "given"
    if center is not None:
        mean = finite_scalar(center, "center")
    else:
        mean = float((phase1 if included is None else phase1[included]).mean())
    ones = np.broadcast_to(np.int64(1), series.shape)
    location = make_limits("individuals", series, ones, mean, sigma_hat, nsigmas, phase1.size)
    dispersion = make_limits(
        "moving_range",
        moving,
        np.broadcast_to(np.int64(2), moving.shape),
        d2_2 * sigma_hat,
        d3_2 * sigma_hat,
        nsigmas,
        max(phase1.size - 1, 0),
        floor=0.0,
    )
    return VariablesChart("imr", mean, sigma_hat, method, nsigmas, location, dispersion, excluded)


def _with_phase2(phase1: FloatArray, new_values: npt.ArrayLike | None) -> FloatArray:
    if new_values is None:
        return phase1
    return np.concatenate([phase1, finite_vector(new_values, "new_values")])


@dataclass(frozen=True, eq=False)
class _SubgroupStats:
    """Per-subgroup mean, range, standard deviation and size (missing cells dropped)."""

    means: FloatArray
    ranges: FloatArray
    stdevs: FloatArray
    sizes: IntArray
    totals: FloatArray


def _subgroup_stats(matrix: FloatArray, name: str, *, need_stdev: bool) -> _SubgroupStats:
    missing = np.isnan(matrix) if not np.isfinite(matrix).all() else None
    if missing is None:  # fast path: a full table, no nan-aware reductions needed
        sizes = np.full(matrix.shape[0], matrix.shape[1], dtype=np.int64)
        filled, maxima, minima = matrix, matrix.max(axis=1), matrix.min(axis=1)
    else:
        sizes = (~missing).sum(axis=1).astype(np.int64)
        filled = np.where(missing, 0.0, matrix)
        maxima = np.where(missing, -np.inf, matrix).max(axis=1)
        minima = np.where(missing, np.inf, matrix).min(axis=1)
    if (sizes < 2).any():
        row = int(np.flatnonzero(sizes < 2)[0])
        raise ValueError(f"{name}: subgroup {row} has fewer than 2 values (R and S need 2)")
    totals = filled.sum(axis=1)
    means = totals / sizes
    stdevs = np.empty(0)
    if need_stdev:
        deviations = matrix - means[:, None]
        if missing is not None:
            deviations[missing] = 0.0
        stdevs = np.sqrt((deviations**2).sum(axis=1) / (sizes - 1))
    return _SubgroupStats(means, maxima - minima, stdevs, sizes, totals)


def _concat_stats(first: _SubgroupStats, second: _SubgroupStats | None) -> _SubgroupStats:
    if second is None:
        return first
    return _SubgroupStats(
        *(
            np.concatenate([getattr(first, name), getattr(second, name)])
            for name in ("means", "ranges", "stdevs", "sizes", "totals")
        )
    )


@dataclass(frozen=True)
class _Spread:
    """How a subgroup spread statistic (R or S) relates to sigma for subgroup size n."""

    name: str
    unbias: Callable[[npt.ArrayLike], FloatArray]  # E[stat] / sigma: d2(n) or c4(n)
    scatter: Callable[[npt.ArrayLike], FloatArray]  # sd(stat) / sigma: d3(n), sqrt(1 - c4^2)
    method: str


def _range_spread(table: ConstantsTable | None) -> _Spread:
    return _Spread(
        "range",
        lambda n: _d2_d3(n, table)[0],
        lambda n: _d2_d3(n, table)[1],
        "rbar_d2",
    )


_STDEV_SPREAD = _Spread("stdev", c4_array, lambda n: np.sqrt(1.0 - c4_array(n) ** 2), "sbar_c4")


def _uniform(sizes: IntArray) -> IntArray | int:
    """The common size when all sizes are equal, else the sizes."""
    return int(sizes[0]) if sizes.size and sizes.min() == sizes.max() else sizes


def _scalar_if(n: IntArray | int, values: FloatArray) -> FloatArray | float:
    """Collapse a per-size lookup done for one size back to a number."""
    return float(values.reshape(-1)[0]) if isinstance(n, int) else values


def _load(subgroups: Subgroups, name: str, need_stdev: bool) -> _SubgroupStats:
    stats = _subgroup_stats(subgroup_matrix(subgroups, name), name, need_stdev=need_stdev)
    if stats.sizes.size == 0:
        raise ValueError(f"{name} must not be empty")
    return stats


@dataclass(frozen=True)
class _Estimate:
    """Phase I estimates of an X-bar chart and the data-based dispersion centre."""

    mean: float
    sigma: float
    method: str
    spread_center: float  # size-weighted mean of R_i or S_i (qcc's single centre line)


def _estimate(
    phase1: _SubgroupStats,
    keep: slice | BoolArray,
    spread: _Spread,
    center: float | None,
    sigma: float | None,
) -> _Estimate:
    n1 = phase1.sizes[keep]
    values = (phase1.stdevs if spread.name == "stdev" else phase1.ranges)[keep]
    grand_mean = float(phase1.totals[keep].sum() / n1.sum())
    mean = grand_mean if center is None else finite_scalar(center, "center")
    if sigma is None:
        sigma_hat, method = float(np.mean(values / spread.unbias(n1))), spread.method
    else:
        sigma_hat, method = finite_scalar(sigma, "sigma", positive=True), "given"
    return _Estimate(mean, sigma_hat, method, float((n1 * values).sum() / n1.sum()))


def _xbar_chart(
    subgroups: Subgroups,
    new_subgroups: Subgroups | None,
    spread: _Spread,
    *,
    nsigmas: float,
    center: float | None,
    sigma: float | None,
    exclude: Iterable[int],
) -> VariablesChart:
    use_stdev = spread.name == "stdev"
    phase1 = _load(subgroups, "subgroups", use_stdev)
    phase2 = None if new_subgroups is None else _load(new_subgroups, "new_subgroups", use_stdev)
    mask, excluded = _included(exclude, phase1.sizes.size)
    nsigmas = finite_scalar(nsigmas, "nsigmas", positive=True)
    keep = mask if excluded else slice(None)  # a slice avoids copies in the usual case
    est = _estimate(phase1, keep, spread, center, sigma)
    both, n_phase1 = _concat_stats(phase1, phase2), phase1.sizes.size
    n_all = _uniform(both.sizes)  # one number when all sizes are equal (the usual case)
    location = make_limits(
        "xbar", both.means, both.sizes, est.mean, est.sigma / np.sqrt(n_all), nsigmas, n_phase1
    )
    dispersion = make_limits(
        spread.name,
        both.stdevs if use_stdev else both.ranges,
        both.sizes,
        # a given sigma centres R / S at its expectation, else qcc's weighted mean
        _scalar_if(n_all, spread.unbias(n_all)) * est.sigma if est.method == "given" else est.spread_center,
        _scalar_if(n_all, spread.scatter(n_all)) * est.sigma,
        nsigmas,
        n_phase1,
        floor=0.0,
    )
    kind = "xbar_s" if use_stdev else "xbar_r"
    return VariablesChart(kind, est.mean, est.sigma, est.method, nsigmas, location, dispersion,
                          excluded)  # fmt: skip


def xbar_r_chart(
    subgroups: Subgroups,
    *,
    new_subgroups: Subgroups | None = None,
    nsigmas: float = 3.0,
    center: float | None = None,
    sigma: float | None = None,
    exclude: Iterable[int] = (),
    constants: ConstantsTable | None = None,
) -> VariablesChart:
    """X-bar and R chart; sigma = mean(R_i / d2(n_i)) unless given.

    ``constants`` replaces the exact d2 / d3 by tabled ones (to reproduce qcc).
    """
    return _xbar_chart(
        subgroups,
        new_subgroups,
        _range_spread(constants),
        nsigmas=nsigmas,
        center=center,
        sigma=sigma,
        exclude=exclude,
    )


def xbar_s_chart(
    subgroups: Subgroups,
    *,
    new_subgroups: Subgroups | None = None,
    nsigmas: float = 3.0,
    center: float | None = None,
    sigma: float | None = None,
    exclude: Iterable[int] = (),
) -> VariablesChart:
    """X-bar and S chart; sigma = mean(S_i / c4(n_i)) unless given."""
    return _xbar_chart(
        subgroups,
        new_subgroups,
        _STDEV_SPREAD,
        nsigmas=nsigmas,
        center=center,
        sigma=sigma,
        exclude=exclude,
    )

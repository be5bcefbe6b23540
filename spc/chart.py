"""The result type every Shewhart chart returns: plotted points and per-point lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ._arrays import FloatArray, IntArray

__all__ = ["ChartLimits", "make_limits"]


@dataclass(frozen=True, eq=False)
class ChartLimits:
    """One chart (I, MR, X-bar, R, S, p, np, c or u) for a series of points.

    Every line is given per point, because unequal subgroup sizes give each point its
    own limits. ``sigma`` is the standard deviation of the *plotted statistic* at that
    point (sigma / sqrt(n) on an X-bar chart); zones and the Nelson rules use it.
    Points ``0 .. n_phase1 - 1`` are phase I (they estimated the limits), the rest are
    phase II points plotted against those limits. The arrays are read-only (constant
    lines are broadcast views of one number).
    """

    name: str
    statistics: FloatArray
    sizes: IntArray
    center: FloatArray
    lcl: FloatArray
    ucl: FloatArray
    sigma: FloatArray
    nsigmas: float
    n_phase1: int

    def __len__(self) -> int:
        return int(self.statistics.shape[0])

    @property
    def is_constant(self) -> bool:
        """True when centre and limits are the same for every point."""
        return all(
            line.size == 0 or bool((line == line[0]).all()) for line in (self.center, self.lcl, self.ucl)
        )

    def zone(self, k: float) -> tuple[FloatArray, FloatArray]:
        """Lower and upper line at k sigma of the plotted statistic (e.g. k = 1, 2)."""
        return self.center - k * self.sigma, self.center + k * self.sigma

    def beyond_limits(self) -> IntArray:
        """Indices strictly above UCL or strictly below LCL (a point on a limit is inside)."""
        outside = (self.statistics > self.ucl) | (self.statistics < self.lcl)
        return np.flatnonzero(outside).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (lists of floats), e.g. for an API response or a task result."""
        return {
            "name": self.name,
            "statistics": self.statistics.tolist(),
            "sizes": self.sizes.tolist(),
            "center": self.center.tolist(),
            "lcl": self.lcl.tolist(),
            "ucl": self.ucl.tolist(),
            "sigma": self.sigma.tolist(),
            "nsigmas": self.nsigmas,
            "n_phase1": self.n_phase1,
        }


def _line(value: npt.ArrayLike, length: int) -> FloatArray:
    """Per-point line; a constant one is a zero-copy read-only broadcast view."""
    array = np.asarray(value, dtype=np.float64)
    return np.broadcast_to(array, (length,)) if array.ndim == 0 else array


def make_limits(
    name: str,
    statistics: FloatArray,
    sizes: IntArray,
    center: FloatArray | float,
    sigma: FloatArray | float,
    nsigmas: float,
    n_phase1: int,
    *,
    floor: float | None = None,
    ceiling: FloatArray | float | None = None,
) -> ChartLimits:
    """Build a chart with limits centre +/- nsigmas * sigma, clipped to [floor, ceiling].

    Scalar inputs stay scalars until the end, so a chart with equal subgroup sizes costs
    no per-point arithmetic (its lines are broadcast views).
    """
    length = statistics.shape[0]
    middle = np.asarray(center, dtype=np.float64)
    spread = np.asarray(sigma, dtype=np.float64)
    lcl = middle - nsigmas * spread
    ucl = middle + nsigmas * spread
    if floor is not None:
        lcl = np.maximum(lcl, floor)
    if ceiling is not None:
        ucl = np.minimum(ucl, ceiling)
    return ChartLimits(
        name=name,
        statistics=statistics,
        sizes=sizes,
        center=_line(middle, length),
        lcl=_line(lcl, length),
        ucl=_line(ucl, length),
        sigma=_line(spread, length),
        nsigmas=nsigmas,
        n_phase1=n_phase1,
    )

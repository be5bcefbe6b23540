"""Time-weighted charts: EWMA and the standardized tabular CUSUM.

Both take the plotted statistics (individual values or subgroup means), the in-control
centre and the process sigma (of individual values) with the subgroup sizes, so the
standard error of point i is sigma / sqrt(n_i).

EWMA: z_0 = centre, z_i = lam x_i + (1 - lam) z_{i-1}; exact time-varying limits
centre +/- L sigma / sqrt(n_i) sqrt(lam / (2 - lam) (1 - (1 - lam)^(2 i))), i = 1, 2, ...
A point signals when z_i is strictly outside its limits.

CUSUM (standardized, in standard-error units): z_i = (x_i - centre) / (sigma / sqrt(n_i)),
C+_i = max(0, C+_{i-1} + z_i - k), C-_i = max(0, C-_{i-1} - z_i - k), both starting at the
head start (fast initial response). The lower sum is *reported as a negative number*
(-C-_i), like qcc. Signals: C+_i > h or C-_i > h (strict).

The recursions are plain loops: they are inherently sequential and the series these
charts see are short; a worker can keep (z, C+, C-) to continue them point by point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ._arrays import FloatArray, IntArray, finite_scalar, finite_vector, sizes_vector

__all__ = ["CusumResult", "EwmaResult", "cusum_chart", "ewma_chart"]


@dataclass(frozen=True, eq=False)
class EwmaResult:
    """EWMA statistic with its per-point limits and the indices that signal."""

    statistics: FloatArray
    sizes: IntArray
    ewma: FloatArray
    sigma_ewma: FloatArray
    lcl: FloatArray
    ucl: FloatArray
    center: float
    sigma: float
    lam: float
    nsigmas: float
    violations: IntArray

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {name: _plain(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass(frozen=True, eq=False)
class CusumResult:
    """Upper and lower cumulative sums (lower <= 0) and the indices beyond +/- h."""

    statistics: FloatArray
    sizes: IntArray
    z: FloatArray
    upper: FloatArray
    lower: FloatArray
    center: float
    sigma: float
    k: float
    h: float
    head_start: float
    violations_upper: IntArray
    violations_lower: IntArray

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {name: _plain(getattr(self, name)) for name in self.__dataclass_fields__}


def _plain(value: object) -> object:
    return value.tolist() if isinstance(value, np.ndarray) else value


def ewma_chart(
    statistics: npt.ArrayLike,
    *,
    center: float,
    sigma: float,
    sizes: npt.ArrayLike = 1,
    lam: float = 0.2,
    nsigmas: float = 3.0,
) -> EwmaResult:
    """EWMA chart of ``statistics`` (lam = smoothing weight, nsigmas = L)."""
    x = finite_vector(statistics, "statistics")
    n = sizes_vector(sizes, x.size, "sizes")
    center = finite_scalar(center, "center")
    sigma = finite_scalar(sigma, "sigma", positive=True)
    lam = finite_scalar(lam, "lam", positive=True)
    if lam > 1.0:
        raise ValueError(f"lam must be in (0, 1], got {lam!r}")
    nsigmas = finite_scalar(nsigmas, "nsigmas", positive=True)
    z = np.empty_like(x)
    previous = center
    for i, value in enumerate(x.tolist()):
        previous = lam * value + (1.0 - lam) * previous
        z[i] = previous
    steps = np.arange(1, x.size + 1)
    sigma_ewma = sigma / np.sqrt(n) * np.sqrt(lam / (2.0 - lam) * (1.0 - (1.0 - lam) ** (2 * steps)))
    lcl = center - nsigmas * sigma_ewma
    ucl = center + nsigmas * sigma_ewma
    violations = np.flatnonzero((z < lcl) | (z > ucl)).astype(np.int64)
    return EwmaResult(x, n, z, sigma_ewma, lcl, ucl, center, sigma, lam, nsigmas, violations)


def cusum_chart(
    statistics: npt.ArrayLike,
    *,
    center: float,
    sigma: float,
    sizes: npt.ArrayLike = 1,
    k: float = 0.5,
    h: float = 5.0,
    head_start: float = 0.0,
) -> CusumResult:
    """Standardized tabular CUSUM (k, h and head_start in standard-error units)."""
    x = finite_vector(statistics, "statistics")
    n = sizes_vector(sizes, x.size, "sizes")
    center = finite_scalar(center, "center")
    sigma = finite_scalar(sigma, "sigma", positive=True)
    k = finite_scalar(k, "k")
    h = finite_scalar(h, "h", positive=True)
    head_start = finite_scalar(head_start, "head_start")
    if k < 0.0 or head_start < 0.0:
        raise ValueError("k and head_start must not be negative")
    z = (x - center) / (sigma / np.sqrt(n))
    upper = np.empty_like(z)
    lower = np.empty_like(z)
    high = low = head_start
    for i, value in enumerate(z.tolist()):
        high = max(0.0, high + value - k)
        low = max(0.0, low - value - k)
        upper[i] = high
        lower[i] = -low
    return CusumResult(
        x,
        n,
        z,
        upper,
        lower,
        center,
        sigma,
        k,
        h,
        head_start,
        np.flatnonzero(upper > h).astype(np.int64),
        np.flatnonzero(lower < -h).astype(np.int64),
    )

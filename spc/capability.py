"""Process capability and performance indices.

Within (short-term, sigma from the control chart, e.g. R-bar / d2):
  Cp = (USL - LSL) / (6 s_w), Cpu = (USL - centre) / (3 s_w), Cpl = (centre - LSL) / (3 s_w),
  Cpk = min(Cpl, Cpu), Cpm = Cp / sqrt(1 + ((centre - target) / s_w)^2).
Overall (long-term, s_o = sample standard deviation of all values, n - 1 denominator):
  Pp, Ppu, Ppl, Ppk with the same formulas.

One-sided specifications: LSL or USL may be None; every index that needs the missing side
(Cp, Pp, Cpm and the one-sided index of that side) is None, and Cpk/Ppk is the index of the
side that exists. The default target is the midpoint of two-sided specifications.

Expected parts per million out of specification assume a normal distribution with the
centre and the within (or overall) sigma; they are not rounded (qcc reports tail fractions
below 1e-4 as 0). Observed ppm counts values strictly outside the limits.

Confidence limits (level 1 - a, n individual values), as in qcc / Montgomery:
  Cp, Cpm: index * sqrt(chi2_q / df) at q = a/2 and 1 - a/2 (df = n - 1 for Cp,
  n (1 + d^2) / (1 + 2 d^2) with d = (centre - target) / s_w for Cpm);
  Cpl, Cpu: index (1 -/+ z sqrt(1 / (9 n index^2) + 1 / (2 (n - 1)))) with z = z_{1-a};
  Cpk: the same with z = z_{1-a/2}.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ._arrays import FloatArray, finite_scalar
from .distributions import chi2_ppf, norm_cdf, norm_ppf, norm_sf

__all__ = [
    "Capability",
    "Interval",
    "Ppm",
    "capability_indices",
    "index_intervals",
    "process_capability",
    "within_dof",
]


@dataclass(frozen=True)
class Ppm:
    """Parts per million below LSL, above USL and in total (None for a missing side)."""

    below: float | None
    above: float | None
    total: float


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval."""

    lower: float
    upper: float


@dataclass(frozen=True)
class Capability:
    """Capability (within sigma) and performance (overall sigma) indices with their inputs."""

    n: int
    center: float
    lsl: float | None
    usl: float | None
    target: float | None
    sigma_within: float
    sigma_overall: float
    sigma_method: str
    cp: float | None
    cpl: float | None
    cpu: float | None
    cpk: float | None
    cpm: float | None
    pp: float | None
    ppl: float | None
    ppu: float | None
    ppk: float | None
    expected_ppm_within: Ppm
    expected_ppm_overall: Ppm
    observed_ppm: Ppm
    confidence_level: float
    cp_interval: Interval | None
    cpl_interval: Interval | None
    cpu_interval: Interval | None
    cpk_interval: Interval | None
    cpm_interval: Interval | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


@dataclass(frozen=True)
class _Indices:
    two_sided: float | None
    lower: float | None
    upper: float | None
    k: float | None


def _indices(center: float, sigma: float, lsl: float | None, usl: float | None) -> _Indices:
    lower = None if lsl is None else (center - lsl) / (3.0 * sigma)
    upper = None if usl is None else (usl - center) / (3.0 * sigma)
    both = None if lsl is None or usl is None else (usl - lsl) / (6.0 * sigma)
    sides = [value for value in (lower, upper) if value is not None]
    return _Indices(both, lower, upper, min(sides))


def capability_indices(
    center: float, sigma: float, lsl: float | None, usl: float | None
) -> tuple[float | None, float | None]:
    """(Cp, Cpk) -- or (Pp, Ppk) with an overall sigma -- from a centre and a sigma alone, for
    running statistics that keep moments rather than values. Cp is None without both specs,
    Cpk None without any; sigma must be positive."""
    if lsl is None and usl is None:
        return None, None
    indices = _indices(center, finite_scalar(sigma, "sigma", positive=True), lsl, usl)
    return indices.two_sided, indices.k


def _expected_ppm(center: float, sigma: float, lsl: float | None, usl: float | None) -> Ppm:
    below = None if lsl is None else 1e6 * norm_cdf((lsl - center) / sigma)
    above = None if usl is None else 1e6 * norm_sf((usl - center) / sigma)
    return Ppm(below, above, (below or 0.0) + (above or 0.0))


def _observed_ppm(values: FloatArray, lsl: float | None, usl: float | None) -> Ppm:
    below = None if lsl is None else 1e6 * float(np.mean(values < lsl))
    above = None if usl is None else 1e6 * float(np.mean(values > usl))
    return Ppm(below, above, (below or 0.0) + (above or 0.0))


def _chi2_interval(index: float, df: float, alpha: float) -> Interval:
    return Interval(
        index * math.sqrt(chi2_ppf(alpha / 2.0, df) / df),
        index * math.sqrt(chi2_ppf(1.0 - alpha / 2.0, df) / df),
    )


def _normal_interval(index: float | None, n: int, z: float, df: float | None = None) -> Interval | None:
    if index is None:
        return None
    # Bissell (1990): index ± z √(1/(9n) + index²/(2ν)), ν = n − 1 unless given; written so that
    # an index of 0 works.
    half = z * math.sqrt(1.0 / (9.0 * n) + index**2 / (2.0 * (n - 1 if df is None else df)))
    return Interval(index - half, index + half)


# Minitab's f_n for the S-bar estimate's degrees of freedom, f_n k (n - 1): (largest n, f_n).
_SBAR_DOF_FACTORS = ((2, 0.88), (3, 0.92), (4, 0.94), (5, 0.95), (7, 0.96), (9, 0.97), (17, 0.98), (64, 0.99))


def within_dof(sigma_method: str, *, subgroups: int, size: float = 1.0) -> float | None:
    """Degrees of freedom of a within-subgroup sigma estimated from `subgroups` subgroups of
    (average) `size`, for the intervals of Cp and Cpk, as Minitab approximates them: MR-bar/d2
    (span 2) and S/c4 of individual values k − 1; R-bar/d2 0.9 k (n − 1); S-bar/c4 f_n k (n − 1);
    pooled SD k (n − 1). None for a given sigma, an unknown method, or no degree of freedom."""
    k, n = subgroups, size
    if sigma_method in ("mrbar_d2", "sd_c4"):
        dof = float(k - 1)
    elif sigma_method == "rbar_d2":
        dof = 0.9 * k * (n - 1)
    elif sigma_method == "sbar_c4":
        factor = next((f for largest, f in _SBAR_DOF_FACTORS if n <= largest), 1.0)
        dof = factor * k * (n - 1)
    elif sigma_method == "pooled":
        dof = k * (n - 1)
    else:
        return None
    return dof if dof > 0 else None


def index_intervals(
    *, n: int, cp: float | None = None, cpk: float | None = None, pp: float | None = None,
    ppk: float | None = None, confidence: float = 0.95, within_dof: float | None = None,
) -> dict[str, Interval | None]:  # fmt: skip
    """Two-sided confidence intervals of indices computed from `n` values: Cp and Pp by the
    chi-square distribution of the SD, Cpk and Ppk by Bissell's normal approximation, as Minitab
    and SAS print them. Pp and Ppk have n − 1 degrees of freedom; Cp and Cpk the within sigma's
    (`within_dof`, see `within_dof()`), n − 1 when not given. None for an index that is None, or
    below 2 values."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    alpha = 1.0 - confidence
    if n < 2:
        return dict.fromkeys(("cp", "cpk", "pp", "ppk"))
    z = norm_ppf(1.0 - alpha / 2.0)
    within = n - 1 if within_dof is None else within_dof
    return {
        "cp": None if cp is None else _chi2_interval(cp, within, alpha),
        "cpk": _normal_interval(cpk, n, z, within),
        "pp": None if pp is None else _chi2_interval(pp, n - 1, alpha),
        "ppk": _normal_interval(ppk, n, z),
    }


def _clean_values(values: npt.ArrayLike) -> FloatArray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if np.isinf(array).any():
        raise ValueError("values must not contain infinite numbers")
    array = array[~np.isnan(array)]  # NaN = missing cell of a subgroup table
    if array.size < 2:
        raise ValueError("capability needs at least two values")
    return array


def _check_specs(lsl: float | None, usl: float | None) -> tuple[float | None, float | None]:
    if lsl is None and usl is None:
        raise ValueError("give at least one specification limit (lsl or usl)")
    low = None if lsl is None else finite_scalar(lsl, "lsl")
    high = None if usl is None else finite_scalar(usl, "usl")
    if low is not None and high is not None and not low < high:
        raise ValueError(f"lsl must be below usl, got lsl={lsl!r}, usl={usl!r}")
    return low, high


def _cpm(
    cp: float | None, mean: float, sigma: float, target: float | None, n: int, alpha: float
) -> tuple[float | None, Interval | None]:
    """Taguchi's Cpm and its chi-square interval (None without two specs and a target)."""
    if cp is None or target is None:
        return None, None
    d_squared = ((mean - target) / sigma) ** 2
    cpm = cp / math.sqrt(1.0 + d_squared)
    df = n * (1.0 + d_squared) / (1.0 + 2.0 * d_squared)
    return cpm, _chi2_interval(cpm, df, alpha)


def process_capability(
    values: npt.ArrayLike,
    *,
    sigma_within: float,
    sigma_method: str = "given",
    lsl: float | None = None,
    usl: float | None = None,
    target: float | None = None,
    center: float | None = None,
    confidence: float = 0.95,
) -> Capability:
    """Capability of the individual ``values`` (any shape; NaN cells are ignored).

    ``sigma_within`` is the chart's estimate (pass ``chart.sigma`` and
    ``chart.sigma_method``); ``center`` defaults to the mean of the values.
    """
    data = _clean_values(values)
    low, high = _check_specs(lsl, usl)
    within = finite_scalar(sigma_within, "sigma_within", positive=True)
    mean = float(data.mean()) if center is None else finite_scalar(center, "center")
    overall = float(np.std(data, ddof=1))
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    if target is None and low is not None and high is not None:
        target = (low + high) / 2.0
    alpha, n = 1.0 - confidence, int(data.size)
    cap = _indices(mean, within, low, high)
    # identical values: no overall spread, so no Pp family; the data are all there is
    spread = overall > 0.0
    perf = _indices(mean, overall, low, high) if spread else _Indices(None, None, None, None)
    cpm, cpm_interval = _cpm(cap.two_sided, mean, within, target, n, alpha)
    return Capability(
        n=n, center=mean, lsl=low, usl=high, target=target,
        sigma_within=within, sigma_overall=overall, sigma_method=sigma_method,
        cp=cap.two_sided, cpl=cap.lower, cpu=cap.upper, cpk=cap.k, cpm=cpm,
        pp=perf.two_sided, ppl=perf.lower, ppu=perf.upper, ppk=perf.k,
        expected_ppm_within=_expected_ppm(mean, within, low, high),
        expected_ppm_overall=(
            _expected_ppm(mean, overall, low, high) if spread else _observed_ppm(data, low, high)
        ),
        observed_ppm=_observed_ppm(data, low, high),
        confidence_level=confidence,
        cp_interval=None if cap.two_sided is None else _chi2_interval(cap.two_sided, n - 1, alpha),
        cpl_interval=_normal_interval(cap.lower, n, norm_ppf(1.0 - alpha)),
        cpu_interval=_normal_interval(cap.upper, n, norm_ppf(1.0 - alpha)),
        cpk_interval=_normal_interval(cap.k, n, norm_ppf(1.0 - alpha / 2.0)),
        cpm_interval=cpm_interval,
    )  # fmt: skip

"""The few distribution functions the engine needs, written on the standard library.

scipy is deliberately not a runtime dependency, so the normal CDF/quantile and the
chi-square quantile (for confidence limits of capability indices) live here.

* Normal CDF and survival function use math.erfc so that both tails keep their digits.
* The normal quantile inverts the CDF with safeguarded Newton steps inside a bracket.
* The chi-square quantile inverts the regularized lower incomplete gamma function
  P(a, x), evaluated with its power series for x < a + 1 and with a continued fraction
  for the upper tail otherwise (modified Lentz). Accurate to about 1e-14 relative.
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["chi2_cdf", "chi2_ppf", "norm_cdf", "norm_ppf", "norm_sf"]

_EPS = 1e-16
_TINY = 1e-300
_MAX_ITER = 10_000


def norm_cdf(x: float) -> float:
    """Phi(x), the standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def norm_sf(x: float) -> float:
    """1 - Phi(x), computed without cancellation in the upper tail."""
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def _norm_pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _check_probability(p: float) -> None:
    if not 0.0 < p < 1.0:
        raise ValueError(f"probability must be strictly between 0 and 1, got {p!r}")


def _invert(
    cdf: Callable[[float], float],
    pdf: Callable[[float], float],
    p: float,
    lo: float,
    hi: float,
) -> float:
    """Solve cdf(x) = p for increasing cdf on [lo, hi]: Newton steps, bisection as a fallback."""
    x = 0.5 * (lo + hi)
    for _ in range(200):
        error = cdf(x) - p
        if error > 0.0:
            hi = x
        else:
            lo = x
        density = pdf(x)
        step = error / density if density > 0.0 else math.inf
        candidate = x - step
        if not lo < candidate < hi:
            candidate = 0.5 * (lo + hi)  # Newton left the bracket: bisect instead
        if abs(candidate - x) <= 1e-15 * max(1.0, abs(x)):
            return candidate
        x = candidate
    return x


def norm_ppf(p: float) -> float:
    """Quantile of the standard normal distribution."""
    _check_probability(p)
    return _invert(norm_cdf, _norm_pdf, p, -40.0, 40.0)


def _gamma_series(a: float, x: float) -> float:
    """Regularized lower incomplete gamma P(a, x) by its power series (x < a + 1)."""
    term = 1.0 / a
    total = term
    denominator = a
    for _ in range(_MAX_ITER):
        denominator += 1.0
        term *= x / denominator
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_continued_fraction(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x) by a continued fraction (x >= a + 1)."""
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITER):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def _lower_gamma_regularized(a: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x < a + 1.0:
        return _gamma_series(a, x)
    return 1.0 - _gamma_continued_fraction(a, x)


def chi2_cdf(x: float, df: float) -> float:
    """CDF of the chi-square distribution with df (> 0, not necessarily integer) degrees."""
    if df <= 0.0:
        raise ValueError(f"degrees of freedom must be positive, got {df!r}")
    return _lower_gamma_regularized(df / 2.0, x / 2.0)


def _chi2_pdf(x: float, df: float) -> float:
    if x <= 0.0:
        return 0.0
    half = df / 2.0
    return math.exp((half - 1.0) * math.log(x) - x / 2.0 - half * math.log(2.0) - math.lgamma(half))


def chi2_ppf(p: float, df: float) -> float:
    """Quantile of the chi-square distribution (df > 0)."""
    _check_probability(p)
    if df <= 0.0:
        raise ValueError(f"degrees of freedom must be positive, got {df!r}")
    hi = max(1.0, df)
    while chi2_cdf(hi, df) < p:
        hi *= 2.0
    return _invert(lambda x: chi2_cdf(x, df), lambda x: _chi2_pdf(x, df), p, 0.0, hi)

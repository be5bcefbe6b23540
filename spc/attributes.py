"""Shewhart charts for attributes: p and np (defectives), c and u (defects).

Formulas (k = nsigmas, per point i with sample size n_i):

* p:  p-bar = sum(d) / sum(n);  plot d_i / n_i;  sigma_i = sqrt(p-bar (1 - p-bar) / n_i);
      limits clipped to [0, 1].
* np: centre n_i p-bar;  plot d_i;  sigma_i = sqrt(n_i p-bar (1 - p-bar));  limits clipped
      to [0, n_i].
* c:  c-bar = mean(c);  plot c_i;  sigma = sqrt(c-bar);  LCL clipped at 0 (one inspection
      unit per sample, so the sample sizes do not enter).
* u:  u-bar = sum(c) / sum(n);  plot c_i / n_i;  sigma_i = sqrt(u-bar / n_i);  LCL clipped at 0.

Varying sample sizes give per-point limits. A given (historical) p, c or u replaces the
estimate. ``exclude`` drops phase I points from the estimate; phase II points
(``new_*``) are plotted against the phase I parameter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ._arrays import FloatArray, IntArray, finite_scalar, finite_vector, index_mask, sizes_vector
from .chart import ChartLimits, make_limits

__all__ = ["AttributeChart", "c_chart", "np_chart", "p_chart", "u_chart"]


@dataclass(frozen=True, eq=False)
class AttributeChart:
    """An attribute chart. ``parameter`` is p-bar (p, np), c-bar (c) or u-bar (u)."""

    kind: str
    parameter: float
    parameter_source: str
    nsigmas: float
    chart: ChartLimits
    excluded: tuple[int, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "kind": self.kind,
            "parameter": self.parameter,
            "parameter_source": self.parameter_source,
            "nsigmas": self.nsigmas,
            "chart": self.chart.to_dict(),
            "excluded": list(self.excluded),
        }


@dataclass(frozen=True)
class _Counts:
    counts: FloatArray
    sizes: IntArray
    n_phase1: int
    included: npt.NDArray[np.bool_]
    excluded: tuple[int, ...]


def _counts(
    counts: npt.ArrayLike,
    sizes: npt.ArrayLike,
    new_counts: npt.ArrayLike | None,
    new_sizes: npt.ArrayLike | None,
    exclude: Iterable[int],
) -> _Counts:
    phase1 = finite_vector(counts, "counts")
    if phase1.size == 0:
        raise ValueError("counts must not be empty")
    sizes1 = sizes_vector(sizes, phase1.size, "sizes")
    if new_counts is None:
        series, all_sizes = phase1, sizes1
    else:
        phase2 = finite_vector(new_counts, "new_counts")
        if new_sizes is None and np.ndim(sizes) != 0:
            raise ValueError("new_sizes is required when sizes are given per point")
        sizes2 = sizes_vector(sizes if new_sizes is None else new_sizes, phase2.size, "new_sizes")
        series, all_sizes = np.concatenate([phase1, phase2]), np.concatenate([sizes1, sizes2])
    if (series < 0).any():
        raise ValueError("counts must not be negative")
    mask = index_mask(exclude, phase1.size, "exclude")
    if mask.all():
        raise ValueError("exclude leaves no phase I data to estimate from")
    excluded = tuple(int(i) for i in np.flatnonzero(mask))
    return _Counts(series, all_sizes, phase1.size, ~mask, excluded)


def _rate(data: _Counts, given: float | None, per_size: bool) -> tuple[float, str]:
    if given is not None:
        return finite_scalar(given, "center"), "given"
    counts = data.counts[: data.n_phase1][data.included]
    if not per_size:
        return float(counts.mean()), "estimated"
    sizes = data.sizes[: data.n_phase1][data.included]
    return float(counts.sum() / sizes.sum()), "estimated"


def _defectives(
    kind: str,
    defectives: npt.ArrayLike,
    sizes: npt.ArrayLike,
    new_defectives: npt.ArrayLike | None,
    new_sizes: npt.ArrayLike | None,
    nsigmas: float,
    center: float | None,
    exclude: Iterable[int],
) -> AttributeChart:
    data = _counts(defectives, sizes, new_defectives, new_sizes, exclude)
    if (data.counts > data.sizes).any():
        raise ValueError("defectives must not exceed the sample size")
    nsigmas = finite_scalar(nsigmas, "nsigmas", positive=True)
    pbar, source = _rate(data, center, per_size=True)
    if not 0.0 <= pbar <= 1.0:
        raise ValueError(f"the fraction defective must lie in [0, 1], got {pbar!r}")
    n = data.sizes.astype(np.float64)
    if kind == "p":
        chart = make_limits(
            "p",
            data.counts / n,
            data.sizes,
            pbar,
            np.sqrt(pbar * (1.0 - pbar) / n),
            nsigmas,
            data.n_phase1,
            floor=0.0,
            ceiling=1.0,
        )
    else:
        chart = make_limits(
            "np",
            data.counts,
            data.sizes,
            n * pbar,
            np.sqrt(n * pbar * (1.0 - pbar)),
            nsigmas,
            data.n_phase1,
            floor=0.0,
            ceiling=n,
        )
    return AttributeChart(kind, pbar, source, nsigmas, chart, data.excluded)


def p_chart(
    defectives: npt.ArrayLike,
    sizes: npt.ArrayLike,
    *,
    new_defectives: npt.ArrayLike | None = None,
    new_sizes: npt.ArrayLike | None = None,
    nsigmas: float = 3.0,
    center: float | None = None,
    exclude: Iterable[int] = (),
) -> AttributeChart:
    """Fraction defective chart. ``center`` is a given p (``new_sizes`` may be omitted
    when ``sizes`` is one number for every sample)."""
    return _defectives("p", defectives, sizes, new_defectives, new_sizes, nsigmas, center, exclude)


def np_chart(
    defectives: npt.ArrayLike,
    sizes: npt.ArrayLike,
    *,
    new_defectives: npt.ArrayLike | None = None,
    new_sizes: npt.ArrayLike | None = None,
    nsigmas: float = 3.0,
    center: float | None = None,
    exclude: Iterable[int] = (),
) -> AttributeChart:
    """Number defective chart. ``center`` is a given p (the fraction, not n p)."""
    return _defectives("np", defectives, sizes, new_defectives, new_sizes, nsigmas, center, exclude)


def c_chart(
    counts: npt.ArrayLike,
    *,
    new_counts: npt.ArrayLike | None = None,
    nsigmas: float = 3.0,
    center: float | None = None,
    exclude: Iterable[int] = (),
) -> AttributeChart:
    """Defects per inspection unit (equal opportunity per sample). ``center`` is a given c."""
    data = _counts(counts, 1, new_counts, None, exclude)
    nsigmas = finite_scalar(nsigmas, "nsigmas", positive=True)
    cbar, source = _rate(data, center, per_size=False)
    chart = make_limits("c", data.counts, data.sizes, cbar, np.sqrt(cbar), nsigmas, data.n_phase1, floor=0.0)
    return AttributeChart("c", cbar, source, nsigmas, chart, data.excluded)


def u_chart(
    counts: npt.ArrayLike,
    sizes: npt.ArrayLike,
    *,
    new_counts: npt.ArrayLike | None = None,
    new_sizes: npt.ArrayLike | None = None,
    nsigmas: float = 3.0,
    center: float | None = None,
    exclude: Iterable[int] = (),
) -> AttributeChart:
    """Defects per unit with varying numbers of units. ``center`` is a given u."""
    data = _counts(counts, sizes, new_counts, new_sizes, exclude)
    nsigmas = finite_scalar(nsigmas, "nsigmas", positive=True)
    ubar, source = _rate(data, center, per_size=True)
    n = data.sizes.astype(np.float64)
    chart = make_limits(
        "u", data.counts / n, data.sizes, ubar, np.sqrt(ubar / n), nsigmas, data.n_phase1, floor=0.0
    )
    return AttributeChart("u", ubar, source, nsigmas, chart, data.excluded)

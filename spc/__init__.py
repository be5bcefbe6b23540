"""OpenSPC statistics engine: pure numpy, no Django.

Plain (frozen) dataclasses in and out, so Celery workers, the API and the benchmarks can
all call it directly:

* constants -- d2, d3 (numerical integration), c4 (gamma function) and the factors;
  a ``ConstantsTable`` can stand in for d2/d3 to reproduce software that uses tables;
* variables -- I-MR, X-bar-R, X-bar-S limits (estimated or from a given centre / sigma);
* attributes -- p, np, c, u charts with per-point limits for varying sample sizes;
* smoothing -- EWMA (exact time-varying limits) and the standardized tabular CUSUM;
* capability -- Cp, Cpk, Cpl, Cpu, Cpm (within sigma), Pp, Ppk (overall), ppm, intervals;
* rules / incremental -- Nelson rules 1-8, presets, a vectorised batch evaluator and an
  O(1)-state incremental one that agree exactly;
* phase1 -- phase I limits with iterative exclusion of out-of-control points.
"""

from .attributes import AttributeChart, c_chart, np_chart, p_chart, u_chart
from .capability import (
    Capability,
    Interval,
    Ppm,
    capability_indices,
    index_intervals,
    process_capability,
    within_dof,
)
from .chart import ChartLimits
from .constants import (
    MAX_RANGE_N,
    ChartConstants,
    ConstantsTable,
    c4,
    c4_array,
    chart_constants,
    d2,
    d2_array,
    d3,
    d3_array,
)
from .distributions import chi2_ppf, norm_cdf, norm_ppf, norm_sf
from .incremental import STATE_VERSION, IncrementalEvaluator
from .phase1 import ChartKind, Exclusion, Phase1Result, estimate_phase1
from .rules import (
    PRESETS,
    BatchResult,
    BeyondLimits,
    MofN,
    RuleSet,
    Run,
    Violation,
    ZoneRun,
    evaluate_batch,
)
from .smoothing import CusumResult, EwmaResult, cusum_chart, ewma_chart
from .variables import VariablesChart, individuals_chart, xbar_r_chart, xbar_s_chart

__all__ = [
    "MAX_RANGE_N",
    "PRESETS",
    "STATE_VERSION",
    "AttributeChart",
    "BatchResult",
    "BeyondLimits",
    "Capability",
    "ChartConstants",
    "ChartKind",
    "ChartLimits",
    "ConstantsTable",
    "CusumResult",
    "EwmaResult",
    "Exclusion",
    "IncrementalEvaluator",
    "Interval",
    "MofN",
    "Phase1Result",
    "Ppm",
    "RuleSet",
    "Run",
    "VariablesChart",
    "Violation",
    "ZoneRun",
    "c4",
    "c4_array",
    "c_chart",
    "capability_indices",
    "chart_constants",
    "chi2_ppf",
    "cusum_chart",
    "d2",
    "d2_array",
    "d3",
    "d3_array",
    "estimate_phase1",
    "evaluate_batch",
    "ewma_chart",
    "index_intervals",
    "individuals_chart",
    "norm_cdf",
    "norm_ppf",
    "norm_sf",
    "np_chart",
    "p_chart",
    "process_capability",
    "u_chart",
    "within_dof",
    "xbar_r_chart",
    "xbar_s_chart",
]

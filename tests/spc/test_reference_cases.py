"""Every number in every reference case, compared with the engine.

Each case file in ../shared/reference/spc/cases (or $OPENSPC_REFERENCE_DIR) is run
through the engine and every expected number becomes its own test id
``<case>/<variant>/<path>``. Variants:

* ``exact``: the engine as shipped (exact d2/d3) against ``expected_exact_constants``;
* ``qcc``: the engine given qcc's own d2/d3 table (``ConstantsTable``) against
  ``expected`` -- so results that exist only in qcc's variant are checked too;
* ``expected``: cases whose numbers do not depend on d2/d3 (c4 is exact in qcc);
* ``batch`` / ``incremental``: the Nelson cases through each rule evaluator.

Tolerance: relative 1e-9 (absolute 1e-12 near zero; 1e-9 absolute on CUSUM sums, which
accumulate standardised values), far tighter than the required 6 significant digits.
Index lists must match exactly. A missing case directory fails the run.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import pytest

from spc import (
    PRESETS,
    ChartConstants,
    ChartLimits,
    ConstantsTable,
    IncrementalEvaluator,
    RuleSet,
    Run,
    c4,
    c_chart,
    chart_constants,
    cusum_chart,
    evaluate_batch,
    ewma_chart,
    individuals_chart,
    np_chart,
    p_chart,
    process_capability,
    u_chart,
    xbar_r_chart,
    xbar_s_chart,
)

from .reference import case_files, cases_dir, leaves, load, lookup, qcc_table

INDEX_KEYS = {
    "beyond_limits", "violating_runs", "violating_runs_run_length_9", "violations",
    "violations_upper", "violations_lower", "expected_any_rule",
    *(f"rule{number}" for number in range(1, 9)),
}  # fmt: skip
QCC_SMALL_FRACTION = 1e-4  # qcc reports expected fractions below 0.01 % as 0


# -- Shewhart charts -------------------------------------------------------------------


def _line(values: np.ndarray) -> float | list[float]:
    """A scalar when the line is the same for every point (as qcc reports it)."""
    return float(values[0]) if (values == values[0]).all() else values.tolist()


def _runs(chart: ChartLimits, length: int) -> list[int]:
    """qcc's run rule = Nelson rule 2 with the given run length, over all points."""
    rules = RuleSet(rule2=Run(length))
    result = evaluate_batch(chart.statistics, center=chart.center, sigma=chart.sigma, rules=rules)
    return result.flagged[2].tolist()


def _shewhart(chart: ChartLimits, std_dev: float) -> dict[str, Any]:
    n1 = chart.n_phase1
    return {
        "center": _line(chart.center),
        "std_dev": std_dev,
        "nsigmas": chart.nsigmas,
        "limits": {"LCL": _line(chart.lcl), "UCL": _line(chart.ucl)},
        "statistics_phase1": chart.statistics[:n1].tolist(),
        "sizes_phase1": chart.sizes[:n1].tolist(),
        "statistics_phase2": chart.statistics[n1:].tolist(),
        "sizes_phase2": chart.sizes[n1:].tolist(),
        "beyond_limits": chart.beyond_limits().tolist(),
        "violating_runs": _runs(chart, 7),
        "violating_runs_run_length": 7,
        "violating_runs_run_length_9": _runs(chart, 9),
    }


def _xbar_case(case: dict[str, Any], table: ConstantsTable | None, spread: str) -> dict[str, Any]:
    data = case["input"]
    build: Callable[..., Any]
    if spread == "R":
        build = lambda groups, **kw: xbar_r_chart(groups, constants=table, **kw)  # noqa: E731
    else:
        build = xbar_s_chart
    full = build(data["phase1_subgroups"], new_subgroups=data["phase2_subgroups"])
    alone = build(data["phase1_subgroups"])
    return {
        "xbar": _shewhart(full.location, full.sigma),
        spread: _shewhart(full.dispersion, full.sigma),
        "phase1_only": {
            "xbar": _shewhart(alone.location, alone.sigma),
            spread: _shewhart(alone.dispersion, alone.sigma),
        },
    }


def _individuals_case(case: dict[str, Any], table: ConstantsTable | None) -> dict[str, Any]:
    data = case["input"]["data"]
    by_mr = individuals_chart(data, constants=table)
    by_sd = individuals_chart(data, sigma_method="sd_c4", constants=table)
    return {
        "individuals_MR": _shewhart(by_mr.location, by_mr.sigma),
        "individuals_SD": _shewhart(by_sd.location, by_sd.sigma),
        "moving_range": _shewhart(by_mr.dispersion, by_mr.sigma),
        "moving_ranges": by_mr.dispersion.statistics.tolist(),
        "MR_bar": float(by_mr.dispersion.center[0]),
    }


# -- attribute charts ------------------------------------------------------------------


def _attribute(chart: ChartLimits, kind: str) -> dict[str, Any]:
    # qcc's std.dev: per unit for p and u (sigma * sqrt(n)), per sample for np and c
    scale = np.sqrt(chart.sizes[0]) if kind in ("p", "u") else 1.0
    return _shewhart(chart, float(chart.sigma[0] * scale))


def _split(values: list[float], data: dict[str, Any]) -> tuple[list[float], list[float]]:
    phase1 = [values[i] for i in data["revised_phase1_rows_0based"]]
    phase2 = [values[i] for i in data["phase2_rows_0based"]]
    return phase1, phase2


def _p_np_case(case: dict[str, Any], table: ConstantsTable | None) -> dict[str, Any]:
    data = case["input"]
    trial = [i for i, flag in enumerate(data["trial"]) if flag]
    counts = [data["defectives"][i] for i in trial]
    sizes = [data["sizes"][i] for i in trial]
    d1, d2_ = _split(data["defectives"], data)
    n1, n2 = _split(data["sizes"], data)
    result = {}
    for kind, build in (("p", p_chart), ("np", np_chart)):
        result[f"trial_{kind}"] = _attribute(build(counts, sizes).chart, kind)
        revised = build(d1, n1, new_defectives=d2_, new_sizes=n2)
        result[f"revised_{kind}_with_phase2"] = _attribute(revised.chart, kind)
    return result


def _c_u_case(case: dict[str, Any], table: ConstantsTable | None) -> dict[str, Any]:
    data = case["input"]
    trial = [data["counts"][i] for i, flag in enumerate(data["trial"]) if flag]
    c1, c2 = _split(data["counts"], data)
    n1, n2 = _split(data["sizes"], data)
    revised_c = c_chart(c1, new_counts=c2)
    revised_u = u_chart(c1, n1, new_counts=c2, new_sizes=n2)
    trial_c = c_chart(trial)
    # qcc reports the sample sizes it was given; a c chart does not use them
    sizes = {"sizes_phase1": data["sizes"][: len(trial)]}
    revised_sizes = {"sizes_phase1": n1, "sizes_phase2": n2}
    return {
        "trial_c": _attribute(trial_c.chart, "c") | sizes,
        "revised_c_with_phase2": _attribute(revised_c.chart, "c") | revised_sizes,
        "revised_u_with_phase2": _attribute(revised_u.chart, "u"),
    }


# -- capability ------------------------------------------------------------------------

# the process.capability() calls of the case: (sigma from R or S, LSL, USL, target)
CAPABILITY_CALLS = {
    "two_sided_default_target": ("R", 73.95, 74.05, None),
    "two_sided_target_74_01": ("R", 73.95, 74.05, 74.01),
    "off_center_spec": ("R", 73.99, 74.03, None),
    "sigma_uwave_sd": ("S", 73.95, 74.05, None),
}


def _qcc_fraction(ppm: float | None) -> float | None:
    fraction = None if ppm is None else ppm / 1e6
    return 0.0 if fraction is not None and fraction < QCC_SMALL_FRACTION else fraction


def _capability_case(case: dict[str, Any], table: ConstantsTable | None) -> dict[str, Any]:
    groups = case["input"]["phase1_subgroups"]
    result = {}
    for name, (spread, lsl, usl, target) in CAPABILITY_CALLS.items():
        chart = xbar_r_chart(groups, constants=table) if spread == "R" else xbar_s_chart(groups)
        cap = process_capability(
            groups, sigma_within=chart.sigma, center=chart.center, lsl=lsl, usl=usl, target=target
        )
        intervals = {
            "Cp": cap.cp_interval,
            "Cp_l": cap.cpl_interval,
            "Cp_u": cap.cpu_interval,
            "Cp_k": cap.cpk_interval,
            "Cpm": cap.cpm_interval,
        }
        result[name] = {
            "nobs": cap.n, "center": cap.center, "std_dev": cap.sigma_within,
            "target": cap.target, "spec_limits": {"LSL": cap.lsl, "USL": cap.usl},
            "Cp": cap.cp, "Cp_l": cap.cpl, "Cp_u": cap.cpu, "Cp_k": cap.cpk, "Cpm": cap.cpm,
            "confidence_limits_95": {
                key: [value.lower, value.upper] for key, value in intervals.items() if value
            },
            "expected_fraction_below_LSL": _qcc_fraction(cap.expected_ppm_within.below),
            "expected_fraction_above_USL": _qcc_fraction(cap.expected_ppm_within.above),
            "observed_fraction_below_LSL": (cap.observed_ppm.below or 0.0) / 1e6,
            "observed_fraction_above_USL": (cap.observed_ppm.above or 0.0) / 1e6,
        }  # fmt: skip
    return result


# -- EWMA / CUSUM ----------------------------------------------------------------------


def _ewma_case(case: dict[str, Any], table: ConstantsTable | None) -> dict[str, Any]:
    data, params = case["input"], case["parameters"]
    pistons = data["pistonrings"]
    xbar = xbar_r_chart(
        pistons["phase1_subgroups"], new_subgroups=pistons["phase2_subgroups"], constants=table
    ).location
    pistons_sigma = xbar_r_chart(pistons["phase1_subgroups"], constants=table)
    viscosity = individuals_chart(data["viscosity"]["data"], constants=table)
    result = {}
    for name, chart, points in (
        ("pistonrings", pistons_sigma, xbar),
        ("viscosity", viscosity, viscosity.location),
    ):
        ewma = ewma_chart(
            points.statistics,
            center=chart.center,
            sigma=chart.sigma,
            sizes=points.sizes,
            lam=params[name]["lambda"],
            nsigmas=params[name]["nsigmas"],
        )
        result[name] = {
            "center": ewma.center, "std_dev": ewma.sigma, "lambda": ewma.lam,
            "nsigmas": ewma.nsigmas, "statistics": ewma.statistics.tolist(),
            "sizes": ewma.sizes.tolist(), "ewma": ewma.ewma.tolist(),
            "sigma_ewma": ewma.sigma_ewma.tolist(), "LCL": ewma.lcl.tolist(),
            "UCL": ewma.ucl.tolist(), "violations": ewma.violations.tolist(),
        }  # fmt: skip
    return result


# the cusum() calls of the case: (data set, with phase II, h, head start)
CUSUM_CALLS = {
    "pistonrings_default_phase2": ("pistonrings", True, 5.0, 0.0),
    "pistonrings_h4_phase1": ("pistonrings", False, 4.0, 0.0),
    "pistonrings_headstart_2_5_phase2": ("pistonrings", True, 5.0, 2.5),
    "viscosity_h4_phase2": ("viscosity", True, 4.0, 0.0),
}


def _cusum_series(case: dict[str, Any], table: ConstantsTable | None, name: str, phase2: bool):
    data = case["input"][name]
    if name == "pistonrings":
        new = data["phase2_subgroups"] if phase2 else None
        chart = xbar_r_chart(data["phase1_subgroups"], new_subgroups=new, constants=table)
    else:
        chart = individuals_chart(
            data["phase1"], new_values=data["phase2"] if phase2 else None, constants=table
        )
    return chart


def _cusum_case(case: dict[str, Any], table: ConstantsTable | None) -> dict[str, Any]:
    result = {}
    for key, (name, phase2, h, head_start) in CUSUM_CALLS.items():
        chart = _cusum_series(case, table, name, phase2)
        points = chart.location
        cusum = cusum_chart(
            points.statistics,
            center=chart.center,
            sigma=chart.sigma,
            sizes=points.sizes,
            k=0.5,
            h=h,
            head_start=head_start,
        )
        result[key] = {
            "center": cusum.center, "std_dev": cusum.sigma, "decision_interval": cusum.h,
            "se_shift": 2 * cusum.k, "head_start": cusum.head_start,
            "statistics": cusum.statistics.tolist(), "sizes": cusum.sizes.tolist(),
            "cusum_pos": cusum.upper.tolist(), "cusum_neg": cusum.lower.tolist(),
            "violations_upper": cusum.violations_upper.tolist(),
            "violations_lower": cusum.violations_lower.tolist(),
        }  # fmt: skip
    return result


# -- constants and Nelson rules --------------------------------------------------------


def _constants_case(case: dict[str, Any], table: ConstantsTable | None) -> dict[str, Any]:
    sizes = case["input"]["n"]
    if table is None:
        rows = [chart_constants(n) for n in sizes]
        names = case["expected"].keys()
    else:  # qcc's table with our formulas for the derived factors
        rows = [ChartConstants.from_values(n, table.d2[n], table.d3[n], c4(n)) for n in sizes]
        names = case["qcc_tables"].keys()
    return {name: [float(getattr(row, name)) for row in rows] for name in names}


def _nelson_case(case: dict[str, Any], evaluator: str) -> dict[str, Any]:
    data = case["input"]
    if evaluator == "batch":
        batch = evaluate_batch(data["data"], center=data["center"], sigma=data["sigma"])
        violations = batch.violations()
    else:
        incremental = IncrementalEvaluator(PRESETS["nelson"], center=data["center"], sigma=data["sigma"])
        violations = incremental.update_many(data["data"])
    flags = {f"rule{r}": [v.index for v in violations if v.rule == r] for r in range(1, 9)}
    points = {
        f"rule{r}": sorted({p for v in violations if v.rule == r for p in v.points}) for r in range(1, 9)
    }
    return {
        "expected": flags,
        "expected_any_rule": sorted({v.index for v in violations}),
        "expected_pattern_points": points,
    }


# -- the checks ------------------------------------------------------------------------

Handler = Callable[[dict[str, Any], ConstantsTable | None], dict[str, Any]]
HANDLERS: dict[str, Handler] = {
    "constants": _constants_case,
    "xbar_r": lambda case, table: _xbar_case(case, table, "R"),
    "xbar_s": lambda case, table: _xbar_case(case, table, "S"),
    "individuals": _individuals_case,
    "attribute_p_np": _p_np_case,
    "attribute_c_u": _c_u_case,
    "capability": _capability_case,
    "ewma": _ewma_case,
    "cusum": _cusum_case,
}


def _variants(case: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Expected trees per variant for one case."""
    if case["category"] == "nelson_rules":
        tree = {key: case[key] for key in ("expected", "expected_any_rule", "expected_pattern_points")}
        return {"batch": tree, "incremental": tree}
    if case["category"] == "constants":
        return {"exact": case["expected"], "qcc": case["qcc_tables"]}
    if "expected_exact_constants" in case:
        return {"exact": case["expected_exact_constants"], "qcc": case["expected"]}
    return {"expected": case["expected"]}


@cache
def _actual(name: str, variant: str) -> dict[str, Any]:
    case = load(name)
    if case["category"] == "nelson_rules":
        return _nelson_case(case, variant)
    handler = HANDLERS[case["category"]]
    return handler(case, qcc_table() if variant == "qcc" else None)


def _checks() -> list[Any]:
    files = case_files()
    if not files:  # a missing reference must fail the run, never skip it
        return [pytest.param(None, None, None, id="reference-cases-missing")]
    params = []
    for path in files:
        case = load(path.stem)
        for variant, tree in _variants(case).items():
            for leaf, _ in leaves(tree):
                params.append(pytest.param(path.stem, variant, leaf, id=f"{path.stem}/{variant}/{leaf}"))
    return params


def _tolerance(path: str) -> float:
    return 1e-9 if "cusum_" in path else 1e-12


@pytest.mark.parametrize(("name", "variant", "path"), _checks())
def test_reference_value(name: str | None, variant: str, path: str) -> None:
    assert name is not None, f"no reference cases found in {cases_dir()}"
    expected = lookup(_variants(load(name))[variant], path)
    actual = lookup(_actual(name, variant), path)
    if path.rsplit(".", 1)[-1] in INDEX_KEYS:
        assert actual == expected
        return
    assert (actual is None) == (expected is None)
    if expected is not None:
        assert np.shape(actual) == np.shape(expected), f"shape of {path}"
        np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=_tolerance(path))


def test_reference_directory_has_every_category() -> None:
    files = case_files()
    assert files, f"reference cases not found in {cases_dir()} (set OPENSPC_REFERENCE_DIR)"
    categories = {load(path.stem)["category"] for path in files}
    assert categories <= set(HANDLERS) | {"nelson_rules"}, "a case category has no handler"
    assert len(files) >= 19


def test_every_case_contributes_checks() -> None:
    checked = {param.values[0] for param in _checks()}
    assert checked == {path.stem for path in case_files()}

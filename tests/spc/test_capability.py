"""Capability indices, one-sided specifications, ppm and the distribution helpers."""

from __future__ import annotations

import math

import pytest

from spc import chi2_ppf, norm_cdf, norm_ppf, norm_sf, process_capability
from spc.distributions import chi2_cdf

PHI_MINUS_3 = 0.0013498980316300946


def test_centred_process_with_sigma_one() -> None:
    cap = process_capability([9.0, 10.0, 11.0], sigma_within=1.0, lsl=7.0, usl=13.0,
                             sigma_method="rbar_d2")  # fmt: skip
    assert cap.center == 10.0
    assert cap.target == 10.0  # midpoint by default
    assert (cap.cp, cap.cpl, cap.cpu, cap.cpk, cap.cpm) == pytest.approx((1, 1, 1, 1, 1))
    assert cap.sigma_overall == 1.0
    assert (cap.pp, cap.ppk) == pytest.approx((1.0, 1.0))
    assert cap.sigma_method == "rbar_d2"
    assert cap.expected_ppm_within.below == pytest.approx(1e6 * PHI_MINUS_3, rel=1e-12)
    assert cap.expected_ppm_within.total == pytest.approx(2e6 * PHI_MINUS_3, rel=1e-12)
    assert cap.observed_ppm.total == 0.0


def test_off_target_cpm_and_off_centre_cpk() -> None:
    cap = process_capability([11.0, 12.0, 13.0], sigma_within=1.0, lsl=7.0, usl=13.0,
                             target=11.0)  # fmt: skip
    assert cap.cpu == pytest.approx(1 / 3)
    assert cap.cpl == pytest.approx(5 / 3)
    assert cap.cpk == pytest.approx(1 / 3)
    assert cap.cpm == pytest.approx(1 / math.sqrt(2))
    assert cap.observed_ppm.above == 0.0  # 13 is on the USL, not beyond it


def test_upper_specification_only() -> None:
    cap = process_capability([9.0, 10.0, 11.0], sigma_within=1.0, usl=13.0)
    assert cap.cp is None
    assert cap.cpl is None
    assert cap.cpm is None
    assert cap.pp is None
    assert cap.cpu == pytest.approx(1.0)
    assert cap.cpk == cap.cpu
    assert cap.expected_ppm_within.below is None
    assert cap.expected_ppm_within.total == pytest.approx(1e6 * PHI_MINUS_3)
    assert cap.cp_interval is None
    assert cap.cpl_interval is None
    assert cap.cpu_interval is not None


def test_lower_specification_only_with_values_outside() -> None:
    cap = process_capability([5.0, 10.0, 11.0, 12.0], sigma_within=1.0, lsl=7.0)
    assert cap.cpu is None
    assert cap.cpk == cap.cpl
    assert cap.observed_ppm.below == 250_000.0
    assert cap.observed_ppm.above is None


def test_confidence_interval_formulas() -> None:
    values = [float(v) for v in range(30)]
    cap = process_capability(values, sigma_within=8.0, lsl=-20.0, usl=50.0)
    n = 30
    assert cap.cp is not None
    assert cap.cp_interval is not None
    assert cap.cp_interval.lower == pytest.approx(cap.cp * math.sqrt(chi2_ppf(0.025, n - 1) / 29))
    assert cap.cpk is not None
    assert cap.cpk_interval is not None
    half = 1.959963984540054 * math.sqrt(1 / (9 * n * cap.cpk**2) + 1 / (2 * (n - 1)))
    assert cap.cpk_interval.upper == pytest.approx(cap.cpk * (1 + half))


def test_nan_cells_are_ignored_and_inputs_validated() -> None:
    cap = process_capability([[9.0, 10.0], [11.0, float("nan")]], sigma_within=1.0, usl=13.0)
    assert cap.n == 3
    with pytest.raises(ValueError, match="at least one specification"):
        process_capability([1.0, 2.0], sigma_within=1.0)
    with pytest.raises(ValueError, match="lsl must be below usl"):
        process_capability([1.0, 2.0], sigma_within=1.0, lsl=3.0, usl=3.0)
    with pytest.raises(ValueError, match="sigma_within"):
        process_capability([1.0, 2.0], sigma_within=0.0, usl=3.0)


def test_distribution_helpers_against_known_values() -> None:
    assert norm_ppf(0.975) == pytest.approx(1.959963984540054, rel=1e-14)
    assert norm_ppf(0.95) == pytest.approx(1.6448536269514722, rel=1e-13)
    assert norm_cdf(norm_ppf(1e-9)) == pytest.approx(1e-9, rel=1e-10)
    assert norm_sf(3.0) == pytest.approx(PHI_MINUS_3, rel=1e-14)
    assert chi2_ppf(0.95, 1) == pytest.approx(3.841458820694124, rel=1e-12)
    assert chi2_ppf(0.5, 2) == pytest.approx(2 * math.log(2), rel=1e-13)
    assert chi2_ppf(0.05, 10) == pytest.approx(3.9402991361190605, rel=1e-12)
    assert chi2_cdf(chi2_ppf(0.3, 7.5), 7.5) == pytest.approx(0.3, rel=1e-13)
    with pytest.raises(ValueError, match="strictly between"):
        norm_ppf(1.0)


def test_index_intervals_reproduce_sas_and_minitab_on_the_wave2_cases() -> None:
    """capability_ci_plates_cans (computed two ways, SAS's printed limits reproduced): Pp by chi-square,
    Ppk by Bissell's normal approximation, at 95 % and 90 %."""
    import json

    from spc import index_intervals
    from tests.spc.reference import cases_dir

    case = json.loads((cases_dir().parent / "cases_wave2" / "capability_ci_plates_cans.json").read_text())
    checked = 0
    for data in case["expected"].values():
        for level, confidence in (("conf_95", 0.95), ("conf_90", 0.90)):
            expected = data[level]
            got = index_intervals(n=data["N"], pp=expected["Pp"], ppk=expected["Ppk"], confidence=confidence)
            for name, key in (("Pp", "pp"), ("Ppk", "ppk")):
                interval = got[key]
                assert interval is not None
                low, high = expected["ci_two_sided"][name]
                assert interval.lower == pytest.approx(low, rel=1e-9)
                assert interval.upper == pytest.approx(high, rel=1e-9)
                checked += 1
    assert checked == 8
    assert index_intervals(n=1, cp=1.0) == {"cp": None, "cpk": None, "pp": None, "ppk": None}
    zero = index_intervals(n=50, cpk=0.0)["cpk"]
    assert zero is not None
    assert zero.lower == pytest.approx(-zero.upper)


def test_within_dof_follows_the_sigma_estimator_and_sets_the_cp_and_cpk_intervals() -> None:
    """Minitab's degrees of freedom of the within sigma: 0.9 k (n − 1) for R-bar, f_n k (n − 1) for
    S-bar, k − 1 for moving ranges of k values, k (n − 1) pooled; none for a given sigma."""
    from spc import index_intervals, within_dof

    assert within_dof("rbar_d2", subgroups=25, size=5) == pytest.approx(90.0)
    assert within_dof("sbar_c4", subgroups=25, size=5) == pytest.approx(95.0)
    assert within_dof("sbar_c4", subgroups=10, size=12) == pytest.approx(0.98 * 110)
    assert within_dof("sbar_c4", subgroups=2, size=100) == pytest.approx(198.0)
    assert within_dof("mrbar_d2", subgroups=100) == 99.0
    assert within_dof("pooled", subgroups=4, size=3) == 8.0
    assert within_dof("given", subgroups=25, size=5) is None
    assert within_dof("mrbar_d2", subgroups=1) is None
    # Cp 1.2 with 90 degrees of freedom: chi-square quantiles 65.6466 and 118.1359 (tables).
    got = index_intervals(n=125, cp=1.2, cpk=1.0, within_dof=90.0)
    assert got["cp"] is not None
    assert got["cpk"] is not None
    assert got["cp"].lower == pytest.approx(1.2 * (65.6466 / 90) ** 0.5, rel=1e-5)
    assert got["cp"].upper == pytest.approx(1.2 * (118.1359 / 90) ** 0.5, rel=1e-5)
    half = 1.959964 * (1 / (9 * 125) + 1.0 / (2 * 90)) ** 0.5  # Bissell with N values and ν
    assert (got["cpk"].lower, got["cpk"].upper) == (
        pytest.approx(1 - half, rel=1e-6),
        pytest.approx(1 + half, rel=1e-6),
    )

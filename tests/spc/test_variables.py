"""I-MR, X-bar-R and X-bar-S formulas on small hand-checked inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spc import c4, d2, d3, individuals_chart, xbar_r_chart, xbar_s_chart


def test_individuals_moving_range_sigma_and_limits() -> None:
    chart = individuals_chart([1, 3, 2, 5, 4])
    # moving ranges 2, 1, 3, 1 -> MR-bar 1.75; sigma = 1.75 / (2 / sqrt(pi))
    sigma = 1.75 / d2(2)
    assert chart.sigma == pytest.approx(sigma, rel=1e-12)
    assert chart.sigma_method == "mrbar_d2"
    assert chart.center == 3.0
    assert chart.location.lcl[0] == pytest.approx(3 - 3 * sigma)
    assert chart.location.ucl[4] == pytest.approx(3 + 3 * sigma)
    assert chart.location.sigma[0] == pytest.approx(sigma)
    assert chart.dispersion.statistics.tolist() == [2, 1, 3, 1]
    assert chart.dispersion.center[0] == pytest.approx(1.75)
    assert chart.dispersion.ucl[0] == pytest.approx(1.75 * (1 + 3 * d3(2) / d2(2)))
    assert chart.dispersion.lcl[0] == 0.0


def test_individuals_standard_deviation_method() -> None:
    chart = individuals_chart([1, 3, 2, 5, 4], sigma_method="sd_c4")
    assert chart.sigma == pytest.approx(math.sqrt(2.5) / c4(5))
    assert chart.sigma_method == "sd_c4"


def test_individuals_exclusion_drops_moving_ranges_touching_the_point() -> None:
    chart = individuals_chart([1, 3, 2, 50, 4, 5], exclude=[3])
    # usable moving ranges: |3-1|, |2-3|, |5-4| -> 4/3
    assert chart.sigma == pytest.approx((4 / 3) / d2(2))
    assert chart.center == pytest.approx(3.0)
    assert chart.excluded == (3,)
    assert chart.location.statistics[3] == 50  # still plotted


def test_individuals_given_center_and_sigma_with_phase2() -> None:
    chart = individuals_chart([1, 2], new_values=[11, 12], center=5.0, sigma=2.0)
    assert chart.sigma_method == "given"
    assert chart.location.n_phase1 == 2
    assert chart.location.lcl.tolist() == [-1.0] * 4
    assert chart.location.ucl[2] == 11.0
    assert chart.location.beyond_limits().tolist() == [3]  # 11 is on the UCL: inside
    assert chart.dispersion.statistics.tolist() == [1, 9, 1]  # includes the phase boundary
    assert chart.dispersion.center[0] == pytest.approx(d2(2) * 2.0)


def test_zone_lines_use_sigma_of_the_plotted_statistic() -> None:
    chart = xbar_r_chart([[1, 2, 3], [2, 4, 6]])
    low, high = chart.location.zone(1)
    assert high[0] - chart.center == pytest.approx(chart.sigma / math.sqrt(3))
    assert chart.center - low[1] == pytest.approx(chart.sigma / math.sqrt(3))


def test_xbar_r_equal_sizes() -> None:
    chart = xbar_r_chart([[1, 2, 3], [2, 4, 6]])
    sigma = 3 / d2(3)  # mean of 2/d2 and 4/d2
    assert chart.sigma == pytest.approx(sigma)
    assert chart.sigma_method == "rbar_d2"
    assert chart.center == 3.0
    assert chart.location.statistics.tolist() == [2, 4]
    assert chart.location.ucl[0] == pytest.approx(3 + 3 * sigma / math.sqrt(3))
    assert chart.dispersion.statistics.tolist() == [2, 4]
    assert chart.dispersion.center[0] == 3.0
    d4 = 1 + 3 * d3(3) / d2(3)
    assert chart.dispersion.ucl[0] == pytest.approx(3 * d4)
    assert chart.dispersion.lcl[0] == 0.0
    assert chart.location.is_constant


def test_xbar_r_unequal_sizes_with_missing_cells() -> None:
    rows: list[list[float | None]] = [[1, 2, 3, None], [2, 4, 6, 8]]
    chart = xbar_r_chart(rows)
    sigma = (2 / d2(3) + 6 / d2(4)) / 2  # UWAVE-R: mean of per-subgroup estimates
    assert chart.location.sizes.tolist() == [3, 4]
    assert chart.sigma == pytest.approx(sigma)
    assert chart.center == pytest.approx(26 / 7)  # grand mean of all observations
    assert chart.location.lcl[0] == pytest.approx(26 / 7 - 3 * sigma / math.sqrt(3))
    assert chart.location.lcl[1] == pytest.approx(26 / 7 - 3 * sigma / 2)
    assert chart.dispersion.center[0] == pytest.approx(30 / 7)  # size-weighted R-bar
    assert chart.dispersion.ucl[1] == pytest.approx(30 / 7 + 3 * d3(4) * sigma)
    assert not chart.location.is_constant


def test_xbar_s() -> None:
    chart = xbar_s_chart([[1, 2, 3], [2, 4, 6]])
    sigma = 1.5 / c4(3)  # S = 1 and 2
    assert chart.sigma == pytest.approx(sigma)
    assert chart.sigma_method == "sbar_c4"
    assert chart.dispersion.statistics.tolist() == pytest.approx([1.0, 2.0])
    assert chart.dispersion.center[0] == pytest.approx(1.5)
    b4 = 1 + 3 * math.sqrt(1 - c4(3) ** 2) / c4(3)
    assert chart.dispersion.ucl[0] == pytest.approx(1.5 * b4)


def test_given_sigma_centres_dispersion_at_its_expectation() -> None:
    r_chart = xbar_r_chart([[1, 2, 3]], sigma=2.0, center=0.0)
    assert r_chart.dispersion.center[0] == pytest.approx(d2(3) * 2.0)
    s_chart = xbar_s_chart([[1, 2, 3]], sigma=2.0)
    assert s_chart.dispersion.center[0] == pytest.approx(c4(3) * 2.0)


def test_phase2_subgroups_use_phase1_limits() -> None:
    chart = xbar_r_chart([[1, 2, 3], [2, 4, 6]], new_subgroups=[[30, 31, 32]])
    assert chart.location.n_phase1 == 2
    assert chart.location.beyond_limits().tolist() == [2]
    assert chart.sigma == pytest.approx(3 / d2(3))


def test_ragged_rows_are_accepted() -> None:
    rows: list[list[float]] = [[1, 2, 3], [2, 4, 6, 8]]
    ragged = xbar_r_chart(rows)
    padded = xbar_r_chart(np.array([[1, 2, 3, np.nan], [2, 4, 6, 8]]))
    assert ragged.sigma == padded.sigma


def test_to_dict_is_json_ready() -> None:
    data = individuals_chart([1, 3, 2]).to_dict()
    assert data["location"]["lcl"] == [data["location"]["lcl"][0]] * 3
    assert data["sigma_method"] == "mrbar_d2"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: individuals_chart([1, float("nan"), 3]), "index 1"),
        (lambda: individuals_chart([1, float("inf")]), "finite"),
        (lambda: individuals_chart([]), "empty"),
        (lambda: individuals_chart([1.0]), "two consecutive"),
        (lambda: individuals_chart([1, 2], exclude=[0, 1]), "no phase I data"),
        (lambda: individuals_chart([1, 2], exclude=[5]), "outside"),
        (lambda: individuals_chart([1, 2], sigma=0.0), "positive"),
        (lambda: individuals_chart([1, 2], sigma_method="range"), "sigma_method"),  # type: ignore[arg-type]
        (lambda: xbar_r_chart([[1.0, 2.0], [3.0, math.nan]]), "subgroup 1 has fewer than 2"),
        (lambda: xbar_r_chart([[1.0, 2.0], [3.0, float("inf")]]), "infinite"),
        (lambda: xbar_s_chart([[1, 2]], nsigmas=-1), "nsigmas"),
    ],
)
def test_bad_input_is_rejected_clearly(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]

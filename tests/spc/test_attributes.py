"""p, np, c and u charts on small hand-checked inputs."""

from __future__ import annotations

import math

import pytest

from spc import c_chart, np_chart, p_chart, u_chart


def test_p_chart_varying_sizes_and_lcl_clipping() -> None:
    chart = p_chart([1, 2, 3], [10, 20, 30])
    assert chart.parameter == pytest.approx(0.1)  # 6 / 60
    assert chart.parameter_source == "estimated"
    limits = chart.chart
    assert limits.statistics.tolist() == pytest.approx([0.1, 0.1, 0.1])
    for i, n in enumerate((10, 20, 30)):
        sigma = math.sqrt(0.09 / n)
        assert limits.sigma[i] == pytest.approx(sigma)
        assert limits.ucl[i] == pytest.approx(0.1 + 3 * sigma)
        assert limits.lcl[i] == max(0.0, 0.1 - 3 * sigma)
    assert limits.lcl[0] == 0.0


def test_p_chart_ucl_is_clipped_at_one() -> None:
    chart = p_chart([4, 5], 5)
    assert chart.parameter == pytest.approx(0.9)
    assert chart.chart.ucl.tolist() == [1.0, 1.0]
    assert chart.chart.lcl[0] == pytest.approx(0.9 - 3 * math.sqrt(0.09 / 5))


def test_np_chart_is_clipped_to_zero_and_n() -> None:
    chart = np_chart([4, 5], [5, 5])
    assert chart.chart.center[0] == pytest.approx(4.5)
    assert chart.chart.ucl.tolist() == [5.0, 5.0]  # 4.5 + 3 sqrt(0.45) > 5
    low = np_chart([0, 1], [10, 10])
    assert low.chart.lcl.tolist() == [0.0, 0.0]


def test_c_chart() -> None:
    chart = c_chart([2, 4, 6])
    assert chart.parameter == 4.0
    assert chart.chart.lcl.tolist() == [0.0] * 3  # 4 - 6 clipped
    assert chart.chart.ucl.tolist() == [10.0] * 3
    assert chart.chart.sigma[0] == 2.0


def test_u_chart_varying_sizes() -> None:
    chart = u_chart([2, 3], [1, 2])
    ubar = 5 / 3
    assert chart.parameter == pytest.approx(ubar)
    assert chart.chart.statistics.tolist() == [2.0, 1.5]
    assert chart.chart.sigma[1] == pytest.approx(math.sqrt(ubar / 2))
    assert chart.chart.ucl[0] == pytest.approx(ubar + 3 * math.sqrt(ubar))


def test_given_parameter_and_phase2() -> None:
    chart = p_chart([1, 1], 10, new_defectives=[9], center=0.05)
    assert chart.parameter == 0.05
    assert chart.parameter_source == "given"
    assert chart.chart.n_phase1 == 2
    assert chart.chart.beyond_limits().tolist() == [2]


def test_exclusion_changes_the_estimate_only() -> None:
    chart = c_chart([2, 4, 30], exclude=[2])
    assert chart.parameter == 3.0
    assert chart.excluded == (2,)
    assert chart.chart.beyond_limits().tolist() == [2]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: p_chart([6], [5]), "exceed"),
        (lambda: c_chart([-1, 2]), "negative"),
        (lambda: u_chart([1, float("nan")], [1, 1]), "index 1"),
        (lambda: p_chart([1], [0]), "positive whole"),
        (lambda: p_chart([1, 2], [5, 5, 5]), "one entry per point"),
        (lambda: u_chart([1], [2, 3][:1], new_counts=[1, 2]), "new_sizes is required"),
    ],
)
def test_bad_input_is_rejected_clearly(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]

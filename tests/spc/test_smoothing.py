"""EWMA and CUSUM recursions on hand-checked inputs."""

from __future__ import annotations

import math

import pytest

from spc import cusum_chart, ewma_chart


def test_ewma_recursion_and_exact_limits() -> None:
    result = ewma_chart([1.0, 0.0, 2.0], center=0.0, sigma=1.0, lam=0.5, nsigmas=3.0)
    assert result.ewma.tolist() == [0.5, 0.25, 1.125]
    expected = [math.sqrt(0.5 / 1.5 * (1 - 0.5 ** (2 * i))) for i in (1, 2, 3)]
    assert result.sigma_ewma.tolist() == pytest.approx(expected, rel=1e-15)
    assert result.ucl.tolist() == pytest.approx([3 * s for s in expected])
    assert result.violations.tolist() == []


def test_ewma_point_on_a_limit_is_no_signal() -> None:
    # z_1 = 0.5 and UCL_1 = 1 * sqrt(1/3 * 0.75) = 0.5: on the line, not beyond it
    result = ewma_chart([1.0, 4.0], center=0.0, sigma=1.0, lam=0.5, nsigmas=1.0)
    assert result.ucl[0] == 0.5
    assert result.violations.tolist() == [1]


def test_ewma_standard_error_uses_subgroup_size() -> None:
    one = ewma_chart([1.0], center=0.0, sigma=2.0, sizes=1)
    four = ewma_chart([1.0], center=0.0, sigma=2.0, sizes=4)
    assert four.sigma_ewma[0] == pytest.approx(one.sigma_ewma[0] / 2)


def test_cusum_sums_are_reported_upper_positive_lower_negative() -> None:
    result = cusum_chart([1.0, 2.0, -1.0], center=0.0, sigma=1.0, k=0.5, h=1.0)
    assert result.upper.tolist() == [0.5, 2.0, 0.5]
    assert result.lower.tolist() == [0.0, 0.0, -0.5]
    assert result.violations_upper.tolist() == [1]
    on_h = cusum_chart([1.0, 2.0], center=0.0, sigma=1.0, k=0.5, h=2.0)
    assert on_h.violations_upper.tolist() == []  # strictly beyond h


def test_cusum_head_start_and_standardisation() -> None:
    result = cusum_chart([1.0, -3.0], center=0.0, sigma=2.0, sizes=4, head_start=1.0)
    # z = (x - 0) / (2 / 2) = x
    assert result.z.tolist() == [1.0, -3.0]
    assert result.upper.tolist() == [1.5, 0.0]
    assert result.lower.tolist() == [0.0, -2.5]
    assert result.violations_lower.tolist() == []
    assert cusum_chart([-7.0], center=0, sigma=1).violations_lower.tolist() == [0]


def test_to_dict() -> None:
    data = cusum_chart([1.0], center=0.0, sigma=1.0).to_dict()
    assert data["upper"] == [0.5]
    assert ewma_chart([1.0], center=0.0, sigma=1.0).to_dict()["lam"] == 0.2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ewma_chart([1.0], center=0, sigma=1, lam=0), "lam"),
        (lambda: ewma_chart([1.0], center=0, sigma=1, lam=1.5), "lam"),
        (lambda: ewma_chart([float("nan")], center=0, sigma=1), "finite"),
        (lambda: cusum_chart([1.0], center=0, sigma=0), "sigma"),
        (lambda: cusum_chart([1.0], center=0, sigma=1, k=-1), "negative"),
    ],
)
def test_bad_parameters_are_rejected(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]

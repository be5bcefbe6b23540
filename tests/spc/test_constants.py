"""Control chart constants: closed forms, the published table, validation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from spc import (
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

from .reference import load

SIZES = range(2, 26)


def test_closed_forms_for_n_2_and_3() -> None:
    assert d2(2) == pytest.approx(2 / math.sqrt(math.pi), rel=1e-13)
    assert d3(2) == pytest.approx(math.sqrt(2 - 4 / math.pi), rel=1e-12)
    assert d2(3) == pytest.approx(3 / math.sqrt(math.pi), rel=1e-13)
    assert c4(2) == pytest.approx(math.sqrt(2 / math.pi), rel=1e-15)
    assert c4(3) == pytest.approx(math.sqrt(math.pi) / 2, rel=1e-15)


def test_spot_values_from_the_reference_readme() -> None:
    assert d2(5) == pytest.approx(2.3259289473, abs=1e-10)
    assert c4(5) == pytest.approx(0.9399856030, abs=1e-10)
    five = chart_constants(5)
    assert round(five.A2, 5) == 0.57682
    assert round(five.D4, 5) == 2.11450
    assert round(five.B4, 5) == 2.08900


@pytest.mark.parametrize("n", SIZES)
def test_published_table_to_its_decimals(n: int) -> None:
    """qcc's tables = the published ones: d2 to 3 decimals, the rest to 4 (or 3 when
    they are derived from the 3-decimal d2)."""
    table = load("constants_table_n2_25")["qcc_tables"]
    row = table["n"].index(n)
    ours = chart_constants(n)
    assert round(ours.d2, 3) == pytest.approx(table["d2"][row], abs=1e-12)
    for name in ("d3", "c4", "A3", "B3", "B4"):
        assert abs(getattr(ours, name) - table[name][row]) < 5e-5, name
    for name in ("A2", "D3", "D4"):  # the table divides by the rounded d2
        assert abs(getattr(ours, name) - table[name][row]) < 1e-3, name


def test_d2_grows_and_d3_shrinks_beyond_the_table() -> None:
    d2_values = [d2(n) for n in range(2, MAX_RANGE_N + 1)]
    d3_values = [d3(n) for n in range(3, MAX_RANGE_N + 1)]
    assert all(b > a for a, b in itertools.pairwise(d2_values))
    assert all(b < a for a, b in itertools.pairwise(d3_values))
    assert d2(50) == pytest.approx(4.498, abs=5e-4)  # published value for n = 50


def test_derived_factors_follow_their_definitions() -> None:
    row = chart_constants(7)
    assert math.isclose(row.A2, 3 / (row.d2 * math.sqrt(7)), rel_tol=1e-14)
    assert math.isclose(row.D3, 1 - 3 * row.d3 / row.d2, rel_tol=1e-14)
    assert math.isclose(row.E2, 3 / row.d2, rel_tol=1e-14)
    assert math.isclose(row.D1, row.d2 - 3 * row.d3, rel_tol=1e-14)
    assert chart_constants(2).D3 == 0.0
    assert chart_constants(5).B3 == 0.0
    tabled = ChartConstants.from_values(5, 2.326, 0.864, c4(5))
    assert math.isclose(tabled.A2, 3 / (2.326 * math.sqrt(5)), rel_tol=1e-14)


def test_vectorised_lookups_match_scalars() -> None:
    sizes = np.array([5, 2, 5, 9, 2])
    assert d2_array(sizes).tolist() == [d2(int(n)) for n in sizes]
    assert d3_array(sizes).tolist() == [d3(int(n)) for n in sizes]
    assert c4_array(sizes).tolist() == [c4(int(n)) for n in sizes]
    assert d2_array([4, 4, 4]).tolist() == [d2(4)] * 3


@pytest.mark.parametrize("bad", [1, 0, MAX_RANGE_N + 1])
def test_range_constants_reject_sizes_outside_their_domain(bad: int) -> None:
    with pytest.raises(ValueError, match="range constants need"):
        d2(bad)
    with pytest.raises(ValueError, match="range constants need"):
        d3(bad)


def test_non_integer_sizes_are_rejected() -> None:
    with pytest.raises(TypeError):
        d2(2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="c4 needs"):
        c4(1)
    with pytest.raises(ValueError, match="whole numbers"):
        d2_array([2.5, 3])


def test_constants_table_lookup() -> None:
    table = ConstantsTable({2: 1.128}, {2: 0.853})
    assert table.d2_array([2, 2]).tolist() == [1.128, 1.128]
    with pytest.raises(ValueError, match="no d2 for n=3"):
        table.d2_array([3])

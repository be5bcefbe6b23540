"""Lot and product statistics (apps/calculations/services/stats.py) and characteristic_calculate,
in process, against numpy and the SPC engine's batch functions."""

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.calculations import services
from apps.calculations.choices import Disposition
from apps.calculations.models import ChartState, LotStatistics, ProductStatistics, Violation
from apps.calculations.services import calculate
from apps.calculations.services.stats import _lot_finish, moments_add
from apps.config.choices import TestKind
from apps.config.models import Characteristic
from apps.observations.models import Sample
from spc import (
    capability_indices,
    individuals_chart,
    process_capability,
    xbar_r_chart,
    xbar_s_chart,
)
from tests.support.lines import Stream
from tests.support.signing import limits_signer

REL = 1e-12


# --- Welford ------------------------------------------------------------------------------------


def _moments(values: Sequence[float], chunks: int = 1, lsl: float | None = None, usl: float | None = None):
    stats = LotStatistics()
    characteristic = Characteristic(lsl=lsl, usl=usl)
    size = max(1, math.ceil(len(values) / chunks))
    for start in range(0, len(values), size):
        moments_add(stats, values[start : start + size], characteristic)
    return stats


def _exact(values: Sequence[float]) -> tuple[float, float]:
    """Mean and SD (n − 1) in exact rational arithmetic, rounded once."""
    fractions = [Fraction(v) for v in values]
    mean = sum(fractions) / len(fractions)
    return float(mean), math.sqrt(sum((x - mean) ** 2 for x in fractions) / (len(fractions) - 1))


@st.composite
def offset_series(draw: st.DrawFn) -> list[float]:
    offset = draw(st.sampled_from([0.0, 74.0, -250.5, 1e6, -1e6, 1e6 + 0.5]))
    scale = draw(st.sampled_from([1e-3, 0.01, 1.0, 10.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    size = draw(st.integers(2, 400))
    values = offset + scale * np.random.default_rng(seed).standard_normal(size)
    if draw(st.booleans()):  # ties and a repeated block
        values[size // 2 :] = np.round(values[size // 2 :], 1)
    return values.tolist()


class MomentsTests:
    @settings(max_examples=300, deadline=None)
    @given(values=offset_series(), chunks=st.integers(1, 9))
    def test_welford_equals_numpy(self, values: list[float], chunks: int) -> None:
        stats = _moments(values, chunks)
        array = np.asarray(values)
        spread = float(np.std(array, ddof=1))
        assert stats.n == len(values)
        assert stats.mean == pytest.approx(float(np.mean(array)), rel=REL, abs=REL * spread)
        assert stats.sd == pytest.approx(spread, rel=REL)
        assert (stats.minimum, stats.maximum) == (float(array.min()), float(array.max()))

    def test_a_large_offset_costs_no_precision(self) -> None:
        """Regression: plain Welford on 1e6 + N(0, 0.001) got the SD right to ~1e-8 only (the update
        loses log10(mean / SD) digits); on the values minus the first one it is exact to rounding."""
        values = (1e6 + 1e-3 * np.random.default_rng(3).standard_normal(500)).tolist()
        mean, sd = _exact(values)
        stats = _moments(values, chunks=5)
        assert stats.sd == pytest.approx(sd, rel=REL)
        assert stats.mean == pytest.approx(mean, rel=1e-15)

    def test_statistics_kept_before_the_shift_go_on_from_their_mean(self) -> None:
        stats = LotStatistics(n=3, mean=2.0, m2=2.0, sd=1.0, minimum=1.0, maximum=3.0)  # 1, 2, 3
        moments_add(stats, [4.0], Characteristic())
        assert (stats.n, stats.mean, stats.minimum, stats.maximum) == (4, 2.5, 1.0, 4.0)
        assert stats.sd == pytest.approx(float(np.std([1, 2, 3, 4], ddof=1)), rel=1e-15)

    def test_one_value_has_no_sd(self) -> None:
        stats = _moments([74.25])
        assert (stats.n, stats.mean, stats.sd, stats.minimum, stats.maximum) == (1, 74.25, None, 74.25, 74.25)

    @pytest.mark.parametrize(
        ("lsl", "usl", "expected"),
        [(None, None, 0), (9.0, None, 2), (None, 11.0, 3), (9.0, 11.0, 5), (8.0, 12.0, 3)],
    )
    def test_out_of_spec_counts_values_strictly_outside(self, lsl, usl, expected) -> None:
        # 9 and 11 lie on the limits: in specification.
        values = [7.5, 8.5, 9.0, 10.0, 11.0, 11.5, 12.5, 13.0]
        assert _moments(values, chunks=3, lsl=lsl, usl=usl).out_of_spec == expected


# --- Lot statistics ------------------------------------------------------------------------------


def _lot_expected(values: Sequence[float], lsl: float | None, usl: float | None) -> dict[str, Any]:
    array = np.asarray(values)
    sd = float(np.std(array, ddof=1))
    cpk = process_capability(array, sigma_within=sd, lsl=lsl, usl=usl).cpk if lsl or usl else None
    return {"n": array.size, "mean": float(array.mean()), "sd": sd, "min": float(array.min()),
            "max": float(array.max()), "cpk": cpk}  # fmt: skip


@pytest.mark.django_db
class LotStatisticsTests:
    @pytest.mark.parametrize(
        ("noise", "outlier", "disposition"),
        [(0.1, None, Disposition.RELEASE), (0.6, None, Disposition.REVIEW), (0.1, 12.5, Disposition.REJECT)],
    )
    def test_disposition_and_cpk_against_the_engine(self, noise, outlier, disposition) -> None:
        stream = Stream(lsl=8.0, usl=12.0)
        rng = np.random.default_rng(21)
        values = np.clip(10.0 + noise * rng.standard_normal(40), 8.0, 12.0).tolist()
        values[7] = 11.0
        if outlier is not None:
            values[20] = outlier
        stream.feed("A", values[:25])
        stream.calculate()
        stream.feed("A", values[25:])
        stream.feed("B", [10.0, 10.5])
        stream.calculate()
        lot = stream.lot("A")
        expected = _lot_expected(values, 8.0, 12.0)
        assert (lot.n, lot.observations, lot.minimum, lot.maximum) == (
            40,
            40,
            expected["min"],
            expected["max"],
        )
        assert lot.mean == pytest.approx(expected["mean"], rel=REL)
        assert lot.sd == pytest.approx(expected["sd"], rel=REL)
        assert lot.cpk == pytest.approx(expected["cpk"], rel=REL)
        assert lot.cpk == pytest.approx(capability_indices(lot.mean, lot.sd, 8.0, 12.0)[1], rel=1e-15)
        assert lot.out_of_spec == (1 if outlier else 0)
        assert lot.disposition == disposition
        assert stream.lot("B").n == 2  # its own statistics

    @pytest.mark.parametrize(("lsl", "usl"), [(9.5, None), (None, 10.5), (None, None)])
    def test_one_sided_and_no_specification(self, lsl, usl) -> None:
        stream = Stream(lsl=lsl, usl=usl)
        values = (10.0 + 0.05 * np.random.default_rng(4).standard_normal(30)).tolist()
        stream.feed("A", values)
        stream.calculate()
        lot = stream.lot("A")
        expected = _lot_expected(values, lsl, usl)["cpk"]
        if expected is None:
            assert lot.cpk is None
        else:
            assert lot.cpk == pytest.approx(expected, rel=REL)
        assert lot.cpk is None or lot.cpk > 1.33
        assert lot.disposition == Disposition.RELEASE

    def test_a_lot_without_values_is_pending(self) -> None:
        stream = Stream(lsl=8.0, usl=12.0)
        stats = LotStatistics(lot=stream.lots["A"], test=stream.test, characteristic=stream.characteristic)
        stats.disposition = Disposition.REJECT
        _lot_finish(stats, stream.characteristic, attribute=False)
        assert (stats.disposition, stats.cpk) == (Disposition.PENDING, None)

    def test_attribute_lots_get_no_cpk(self) -> None:
        stream = Stream(size=20, kind=TestKind.DEFECTIVES)
        stream.feed("A", [1, 0, 3, 2, 0, 1])
        stream.calculate()
        lot = stream.lot("A")
        assert (lot.n, lot.mean, lot.cpk, lot.disposition) == (6, 7 / 6, None, Disposition.RELEASE)

    def test_a_checksum_mismatch_recomputes_the_lot_from_its_observations(self) -> None:
        stream = Stream(lsl=8.0, usl=12.0)
        values = (10.0 + 0.2 * np.random.default_rng(8).standard_normal(12)).tolist()
        stream.feed("A", values[:10])
        stream.calculate()
        LotStatistics.objects.filter(pk=stream.lot("A").pk).update(n=99, mean=0.0, m2=5.0, checksum=12345)
        stream.feed("A", values[10:])
        stream.calculate()
        lot = stream.lot("A")
        assert lot.recomputed_at is not None
        assert (lot.n, lot.observations) == (12, 12)
        assert lot.mean == pytest.approx(float(np.mean(values)), rel=REL)
        assert lot.sd == pytest.approx(float(np.std(values, ddof=1)), rel=REL)


# --- Product statistics --------------------------------------------------------------------------


@pytest.mark.django_db
class ProductStatisticsTests:
    def test_sigma_within_from_the_limits_and_the_indices_equal_the_engine(self) -> None:
        stream = Stream(size=4, lsl=9.0, usl=11.5)
        services.limits_set_historical(
            signer=limits_signer(), characteristic=stream.characteristic, center=10.0, sigma=0.2, reason="r"
        )
        values = (10.1 + 0.25 * np.random.default_rng(5).standard_normal(48)).tolist()
        stream.feed("A", values[:20])
        stream.feed("B", values[20:])
        stream.calculate()
        stats = stream.product_stats()
        engine = process_capability(values, sigma_within=0.2, lsl=9.0, usl=11.5)
        assert (stats.sigma_within, stats.sigma_source, stats.limits_version) == (0.2, "limits", 1)
        assert stats.n == 48
        assert stats.mean == pytest.approx(engine.center, rel=REL)
        assert stats.sd == pytest.approx(engine.sigma_overall, rel=REL)
        for name in ("cp", "cpk", "pp", "ppk"):
            assert getattr(stats, name) == pytest.approx(getattr(engine, name), rel=REL), name

    @pytest.mark.parametrize(
        ("size", "chart"),
        [(1, lambda groups: individuals_chart(groups[:, 0])), (4, xbar_r_chart), (12, xbar_s_chart)],
    )
    def test_sigma_within_from_the_samples_equals_the_engines_estimate(self, size, chart) -> None:
        stream = Stream(size=size, lsl=9.0, usl=11.5)
        groups = 10.0 + 0.3 * np.random.default_rng(size).standard_normal((15, size))
        # Whole subgroups, lot A then B, processed and calculated in two rounds.
        stream.feed("A", groups[:8].ravel().tolist(), per_observation=size)
        stream.calculate()
        stream.feed("B", groups[8:].ravel().tolist(), per_observation=size)
        stream.calculate()
        assert len(stream.samples()) == 15
        stats = stream.product_stats()
        estimate = chart(groups).sigma
        assert stats.sigma_source == "samples"
        assert stats.sigma_within == pytest.approx(estimate, rel=REL)
        engine = process_capability(groups.ravel(), sigma_within=stats.sigma_within, lsl=9.0, usl=11.5)
        for name in ("cp", "cpk", "pp", "ppk"):
            assert getattr(stats, name) == pytest.approx(getattr(engine, name), rel=REL), name

    def test_without_limits_or_samples_to_estimate_from_there_are_no_capability_indices(self) -> None:
        stream = Stream(size=1, lsl=9.0, usl=11.0)
        stream.feed("A", [10.0])
        stream.calculate()
        stats = stream.product_stats()
        assert (stats.n, stats.sigma_within, stats.cp, stats.cpk, stats.pp, stats.ppk) == (
            1, None, None, None, None, None,
        )  # fmt: skip

    @pytest.mark.parametrize("kind", [TestKind.DEFECTIVES, TestKind.DEFECTS])
    def test_attribute_characteristics_get_no_indices(self, kind) -> None:
        stream = Stream(size=10, kind=kind)
        services.limits_set_historical(
            signer=limits_signer(), characteristic=stream.characteristic, center=0.2, reason="known rate"
        )
        stream.feed("A", [1, 3, 0, 2, 4, 2])
        stream.calculate()
        stats = stream.product_stats()
        assert (stats.n, stats.mean) == (6, 2.0)
        assert stats.sd == pytest.approx(float(np.std([1, 3, 0, 2, 4, 2], ddof=1)), rel=REL)
        assert (stats.sigma_within, stats.cp, stats.cpk, stats.pp, stats.ppk) == (None,) * 5
        assert stats.within_count == 0


# --- characteristic_calculate ------------------------------------------------------------------------


def _shifted_series(seed: int, count: int) -> list[float]:
    rng = np.random.default_rng(seed)
    values = 10.0 + 0.2 * rng.standard_normal(count)
    values[count // 2 :] += 0.3  # a shift the rules see
    values[count // 3] = 11.0  # beyond 3 sigma
    return values.tolist()


@pytest.mark.django_db
class CalculateTests:
    def test_calculating_twice_changes_nothing(self) -> None:
        stream = Stream(size=3, lsl=9.0, usl=11.0)
        services.limits_set_historical(
            signer=limits_signer(), characteristic=stream.characteristic, center=10.0, sigma=0.2, reason="r"
        )
        values = _shifted_series(1, 60)
        stream.feed("A", values[:30])
        stream.feed("B", values[30:])
        first = stream.calculate()
        rows = _all_rows(stream)
        assert (first.samples, first.observations) == (20, 60)
        assert first.violations > 0
        assert stream.calculate() == services.CalculationResult()
        assert _all_rows(stream) == rows

    @pytest.mark.parametrize("size", [1, 3])
    def test_small_batches_give_what_one_big_batch_gives(self, size, monkeypatch) -> None:
        """BATCH = 7: samples and observations run out at different batches, the window is rebuilt
        from the database for every batch (no commit here, so nothing reaches Redis)."""
        values = _shifted_series(size, 90)
        twins = []
        for batch in (calculate.BATCH, 7):
            monkeypatch.setattr(calculate, "BATCH", batch)
            stream = Stream(size=size, lsl=9.0, usl=11.0)
            services.limits_set_historical(
                signer=limits_signer(),
                characteristic=stream.characteristic,
                center=10.0,
                sigma=0.2,
                reason="r",
            )
            stream.feed("A", values[:40])
            stream.feed("B", values[40:70])
            stream.feed("A", values[70:])
            result = stream.calculate()
            assert (result.samples, result.observations) == (90 // size, 90)
            twins.append(stream.snapshot())
        big, small = twins
        assert small == big
        assert big["violations"]  # the rules fired, across batch boundaries
        assert {rule for _, rule, *_ in big["violations"]} >= {1, 2}

    def test_characteristics_calculated_together_give_what_each_gives_alone(self, monkeypatch) -> None:
        """One transaction for three characteristics (as a batch's calculations.apply runs), with
        BATCH = 7 cutting through them, against each characteristic calculated by itself."""
        monkeypatch.setattr(calculate, "BATCH", 7)
        snapshots: list[list[dict[str, Any]]] = []
        for together in (True, False):
            streams = [Stream(size=size, lsl=9.0, usl=11.0) for size in (1, 3, 5)]
            for seed, stream in enumerate(streams):
                services.limits_set_historical(
                    signer=limits_signer(),
                    characteristic=stream.characteristic,
                    center=10.0,
                    sigma=0.2,
                    reason="r",
                )
                values = _shifted_series(seed, 45)
                stream.feed("A", values[:30])
                stream.feed("B", values[30:])
            ids = [stream.characteristic.pk for stream in streams]
            if together:
                result = services.characteristics_calculate(characteristic_ids=ids[::-1])
                assert (result.samples, result.observations) == (45 + 15 + 9, 3 * 45)
                assert (
                    services.characteristics_calculate(characteristic_ids=ids) == services.CalculationResult()
                )
            else:
                for stream in streams:
                    stream.calculate()
            snapshots.append([stream.snapshot() for stream in streams])
        together_rows, alone_rows = snapshots
        assert together_rows == alone_rows
        assert all(rows["violations"] for rows in together_rows)


def _all_rows(stream: Stream) -> dict[str, list[dict[str, Any]]]:
    """Whole rows, timestamps included: a second run must not even re-save them."""
    characteristic = stream.characteristic
    return {
        "samples": list(Sample.objects.filter(characteristic=characteristic).order_by("pk").values()),
        "violations": list(Violation.objects.filter(characteristic=characteristic).order_by("pk").values()),
        "lots": list(LotStatistics.objects.filter(characteristic=characteristic).order_by("pk").values()),
        "product": list(ProductStatistics.objects.filter(characteristic=characteristic).values()),
        "state": list(ChartState.objects.filter(pk=characteristic.pk).values()),
    }


def test_the_within_sigma_of_calculated_limits_has_its_baseline_degrees_of_freedom() -> None:
    """Cp's interval with limits calculated from 25 subgroups of 5: 0.9 · 25 · 4 = 90 degrees of freedom
    for an X-bar-R baseline, 0.95 · 25 · 4 = 95 for X-bar-S, 24 for 25 individual values; none for
    limits entered by hand (no baseline)."""
    from apps.calculations.models import ProductStatistics
    from apps.calculations.services.stats import within_dof_of
    from apps.config.models import Characteristic, ControlLimits

    stats = ProductStatistics(sigma_source="limits")
    grouped, single = Characteristic(subgroup_size=5), Characteristic(subgroup_size=1)
    xbar_r = ControlLimits(baseline={"samples": 25, "chart": "xbar_r"})
    xbar_s = ControlLimits(baseline={"samples": 25, "chart": "xbar_s"})
    imr = ControlLimits(baseline={"samples": 25, "chart": "imr"})
    given = ControlLimits(baseline={"given": {"center": 1.0, "sigma": 0.1}, "chart": "imr"})
    assert within_dof_of(stats, grouped, xbar_r) == pytest.approx(90.0)
    assert within_dof_of(stats, grouped, xbar_s) == pytest.approx(95.0)
    assert within_dof_of(stats, single, imr) == 24.0
    assert within_dof_of(stats, single, given) is None
    assert within_dof_of(stats, single, None) is None

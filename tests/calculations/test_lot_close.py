"""Closing a lot, through to the calculation: the undersized sample it leaves is judged with the
sigma of its own n, kept off the range chart, and counted in the within-subgroup sigma."""

import math

import numpy as np
import pytest

from apps.calculations import services
from apps.calculations.models import Violation
from apps.observations import handoff
from apps.observations import services as obs_services
from apps.observations.choices import LotStatus
from spc import PRESETS, evaluate_batch, xbar_r_chart
from tests.support.lines import Stream
from tests.support.signing import limits_signer

pytestmark = pytest.mark.django_db


@pytest.fixture
def calculated(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Run the calculation the closing transaction queues, as the worker would; its characteristics."""
    ran: list[int] = []

    def run(*, characteristic_ids: list[int]) -> None:
        for characteristic_id in characteristic_ids:
            ran.append(characteristic_id)
            services.characteristic_calculate(characteristic_id=characteristic_id)

    monkeypatch.setattr(handoff, "calculations_queue", run)
    return ran


def test_the_undersized_sample_is_judged_with_the_sigma_of_its_n(
    calculated, django_capture_on_commit_callbacks
):
    stream = Stream(size=4)
    services.limits_set_historical(
        signer=limits_signer(), characteristic=stream.characteristic, center=10.0, sigma=2.0, reason="r"
    )
    stream.feed("A", [10.0, 10.5, 9.5, 10.0, 11.0, 10.0, 18.6])  # A waits with 11.0, 10.0, 18.6
    stream.feed("B", [10.0, 10.0])
    stream.calculate()
    with django_capture_on_commit_callbacks(execute=True):
        obs_services.lot_status_set(lot=stream.lots["A"], status=LotStatus.REJECTED)
    assert calculated == [stream.characteristic.pk]
    full, undersized = stream.samples()
    assert (undersized.n, undersized.undersized, undersized.values) == (3, True, [11.0, 10.0, 18.6])
    assert undersized.mean == pytest.approx(13.2, rel=1e-12)
    # Beyond the UCL of a full sample, 10 + 3 · 2 / √4 = 13, inside that of n = 3, 10 + 3 · 2 / √3 = 13.46.
    assert 10.0 + 3 * 2.0 / math.sqrt(4) < undersized.mean < 10.0 + 3 * 2.0 / math.sqrt(3)
    assert (undersized.in_control, undersized.limits_version) == (True, 1)
    assert not Violation.objects.filter(sample=undersized).exists()
    assert full.in_control is True
    # Lot B's values wait for their subgroup; closing A did not touch them.
    assert stream.lot("B").n == 2
    assert len(stream.samples()) == 2


def test_an_undersized_sample_is_never_judged_on_the_range_chart(
    calculated, django_capture_on_commit_callbacks
):
    stream = Stream(size=4)
    services.limits_set_historical(
        signer=limits_signer(), characteristic=stream.characteristic, center=10.0, sigma=2.0, reason="r"
    )
    ucl_r = stream.characteristic.limits.get().dispersion_ucl
    stream.feed("A", [5.0, 5.0 + ucl_r + 1.0, 10.0])  # a range beyond the R chart's UCL, 3 of 4
    with django_capture_on_commit_callbacks(execute=True):
        obs_services.lot_status_set(lot=stream.lots["A"], status=LotStatus.REJECTED)
    [undersized] = stream.samples()
    assert undersized.range == pytest.approx(ucl_r + 1.0)
    assert undersized.in_control is True
    assert not Violation.objects.filter(sample=undersized).exists()
    stream.feed("B", [5.0, 5.0 + ucl_r + 1.0, 10.0, 10.0])  # the same range in a full sample
    stream.calculate()
    full = stream.samples()[-1]
    assert list(Violation.objects.filter(sample=full).values_list("rule", "chart")) == [(1, "dispersion")]


def test_signals_with_undersized_samples_equal_the_engine_and_sigma_within_counts_them(
    calculated, django_capture_on_commit_callbacks
):
    """Several lots closed part-way: location signals equal evaluate_batch with σ/√nᵢ per point,
    and the within-subgroup sigma equals the engine's mean of Rᵢ / d2(nᵢ) over ragged subgroups."""
    stream = Stream(size=4, lots="ABCDEF")
    rng = np.random.default_rng(17)
    for index, name in enumerate("ABCDEF"):
        count = 4 * (3 + index) + index % 4  # some lots end with 1, 2 or 3 values pending
        values = (10.0 + 0.5 * index / 5 + 0.4 * rng.standard_normal(count)).tolist()
        stream.feed(name, values)
        with django_capture_on_commit_callbacks(execute=True):
            obs_services.lot_status_set(lot=stream.lots[name], status=LotStatus.REJECTED)
    samples = stream.samples()
    assert sorted({s.n for s in samples}) == [1, 2, 3, 4]
    assert [s.undersized for s in samples] == [s.n < 4 for s in samples]
    # No limits yet: the within sigma comes from the samples (n = 1 gives none).
    stats = stream.product_stats()
    ragged = np.full((len(samples), 4), np.nan)
    for row, sample in enumerate(samples):
        ragged[row, : sample.n] = sample.values
    with_range = ragged[[s.n >= 2 for s in samples]]
    assert stats.sigma_source == "samples"
    assert stats.sigma_within == pytest.approx(xbar_r_chart(with_range).sigma, rel=1e-12)
    assert stats.within_count == len(with_range)
    # Limits now, and the whole history judged again from the start under them.
    services.limits_set_historical(
        signer=limits_signer(), characteristic=stream.characteristic, center=10.0, sigma=0.4, reason="r"
    )
    rules = PRESETS["nelson"]
    means = [s.mean for s in samples]
    sigmas = [0.4 / np.sqrt(s.n) for s in samples]
    expected = evaluate_batch(means, center=10.0, sigma=sigmas, rules=rules).violations()
    judged = _judge_again(stream)
    assert judged == sorted((samples[v.index].sequence, v.rule) for v in expected)
    assert judged  # the drift between lots is seen


def _judge_again(stream: Stream) -> list[tuple[int, int]]:
    """Re-run the calculation of every sample under the current limits (the state rewound)."""
    from apps.calculations.models import ChartState, LotStatistics, ProductStatistics

    Violation.objects.filter(characteristic=stream.characteristic).delete()
    ChartState.objects.filter(pk=stream.characteristic.pk).update(last_sequence=0, last_position=0)
    LotStatistics.objects.filter(characteristic=stream.characteristic).delete()
    ProductStatistics.objects.filter(characteristic=stream.characteristic).delete()
    services.window_invalidate(characteristic_id=stream.characteristic.pk)
    stream.calculate()
    return sorted(
        Violation.objects.filter(characteristic=stream.characteristic, chart="location").values_list(
            "sample__sequence", "rule"
        )
    )

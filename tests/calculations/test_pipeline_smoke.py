"""The calculation pipeline in process: observations → samples → violations → statistics."""

import numpy as np
import pytest

from apps.calculations import services
from apps.calculations.models import LotStatistics, ProductStatistics, Violation
from apps.config.models import Characteristic
from apps.observations import services as obs_services
from apps.observations.models import Sample
from spc import PRESETS, evaluate_batch
from tests.support.signing import limits_signer

pytestmark = pytest.mark.django_db


def test_samples_violations_and_statistics_equal_the_engine(plant):
    dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
    services.limits_set_historical(
        signer=limits_signer(), characteristic=dia, center=74.0, sigma=0.01, reason="historical"
    )
    rng = np.random.default_rng(7)
    values = list(74.0 + 0.01 * rng.standard_normal(20)) + list(74.03 + 0.01 * rng.standard_normal(10))
    ids = plant.record(
        *[{"item": plant.items[i % 3], "test": plant.dia, "values": [v]} for i, v in enumerate(values)]
    )
    obs_services.observations_process(ids=ids)
    services.characteristic_calculate(characteristic_id=dia.pk)

    samples = list(Sample.objects.filter(characteristic=dia).order_by("sequence"))
    assert [s.sequence for s in samples] == list(range(1, 31))
    assert [s.mean for s in samples] == values
    expected = evaluate_batch(values, center=74.0, sigma=0.01, rules=PRESETS["nelson"]).violations()
    got = sorted((v.rule, v.sample.sequence - 1) for v in Violation.objects.filter(characteristic=dia))
    assert got == sorted((v.rule, v.index) for v in expected)
    assert got  # the shift is seen
    lot = LotStatistics.objects.get(lot=plant.lot, test=plant.dia)
    assert lot.n == 30
    assert lot.mean == pytest.approx(np.mean(values), rel=1e-12)
    assert lot.sd == pytest.approx(np.std(values, ddof=1), rel=1e-9)
    product = ProductStatistics.objects.get(characteristic=dia)
    assert product.n == 30
    assert product.sigma_within == 0.01

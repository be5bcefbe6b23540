"""openspc.rows row helpers: rows_insert and rows_update write what the ORM would, on every
backend (PostgreSQL: column arrays; elsewhere: bulk_create and a VALUES list)."""

import pytest
from django.utils import timezone

from apps.calculations.models import ProductStatistics
from apps.observations.choices import ObservationStatus
from apps.observations.models import Observation, Sample
from openspc.rows import rows_insert, rows_update
from tests.factories import LotFactory, ObservationFactory, ProductFactory, TestFactory, characteristic_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def dia():
    return characteristic_for(ProductFactory(code="RING-74"), TestFactory(code="DIA"))


def _sample(dia, lot, sequence: int, mean: float | int, sd: float | None) -> Sample:
    return Sample(
        characteristic=dia, lot=lot, sequence=sequence, values=[mean, mean], observation_ids=[sequence],
        n=2, mean=mean, range=0.0, sd=sd,
    )  # fmt: skip


def test_insert_sets_keys_in_order_and_stores_a_float_column_holding_an_int(dia):
    lot = LotFactory(product=dia.product)
    # An int among floats: psycopg dumps an array with its first element's dumper and refuses
    # mixed types, so such a column must go through its field.
    samples = [
        _sample(dia, lot, 1, 74, None),
        _sample(dia, lot, 2, 74.5, 0.25),
        _sample(dia, lot, 3, 73.9, None),
    ]
    rows_insert(model=Sample, rows=samples)
    stored = {s.pk: s for s in Sample.objects.all()}
    assert [stored[s.pk].sequence for s in samples] == [1, 2, 3]
    assert [(stored[s.pk].mean, stored[s.pk].sd) for s in samples] == [
        (74.0, None),
        (74.5, 0.25),
        (73.9, None),
    ]
    assert stored[samples[1].pk].values == [74.5, 74.5]
    assert all(s.created_at is not None and not s._state.adding for s in samples)  # auto_now_add, saved


def test_insert_of_a_model_keyed_by_its_characteristic(dia):
    [stats] = rows_insert(
        model=ProductStatistics, rows=[ProductStatistics(characteristic=dia, n=3, mean=1.5)]
    )
    assert ProductStatistics.objects.values_list("pk", "n", "mean").get() == (dia.pk, 3, 1.5)
    assert stats.pk == dia.pk


def test_update_writes_choices_as_their_values_json_nulls_and_times():
    rows = [ObservationFactory(), ObservationFactory()]
    now = timezone.now()
    rows[0].status, rows[0].reasons, rows[0].processed_at = ObservationStatus.CONFIRMED, [], now
    rows[1].status, rows[1].reasons, rows[1].processed_at = (
        ObservationStatus.REJECTED, [{"code": "out_of_range", "message": "too big"}], now,
    )  # fmt: skip
    rows[1].hash = -5
    assert (
        rows_update(model=Observation, rows=rows, fields=["status", "reasons", "processed_at", "hash"]) == 2
    )
    stored = list(Observation.objects.order_by("pk").values_list("status", "reasons", "processed_at", "hash"))
    assert stored == [
        ("confirmed", [], now, None),
        ("rejected", [{"code": "out_of_range", "message": "too big"}], now, -5),
    ]

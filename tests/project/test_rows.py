"""openspc.rows row helpers: rows_insert and rows_update write what the ORM would, on every
backend (PostgreSQL: column arrays; elsewhere: bulk_create and a VALUES list)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.calculations.models import ProductStatistics
from apps.observations.choices import ObservationStatus
from apps.observations.models import Observation, Sample
from openspc.rows import RowsUpdate, rows_insert, rows_update, rows_update_together
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


def test_updates_of_several_tables_together_write_each_in_one_statement(dia):
    """rows_update_together: the calculation's verdicts, statistics and cursors in one round trip on
    PostgreSQL (a WITH of UPDATEs), one after the other elsewhere; the same rows written either way."""
    lot = LotFactory(product=dia.product)
    samples = rows_insert(
        model=Sample, rows=[_sample(dia, lot, 1, 74.0, 0.1), _sample(dia, lot, 2, 74.2, 0.1)]
    )
    [stats] = rows_insert(
        model=ProductStatistics, rows=[ProductStatistics(characteristic=dia, n=1, mean=1.0)]
    )
    samples[0].in_control, samples[1].in_control = True, False
    stats.n, stats.mean = 2, 74.1
    with CaptureQueriesContext(connection) as queries:
        rows_update_together(
            [
                RowsUpdate(model=Sample, rows=samples, fields=["in_control"]),
                RowsUpdate(model=ProductStatistics, rows=[stats], fields=["n", "mean"]),
                RowsUpdate(model=Observation, rows=[], fields=["status"]),  # nothing: left out
            ]
        )
    assert len(queries.captured_queries) == (1 if connection.vendor == "postgresql" else 2)
    assert list(Sample.objects.order_by("sequence").values_list("in_control", flat=True)) == [True, False]
    assert ProductStatistics.objects.values_list("n", "mean").get() == (2, 74.1)
    if connection.vendor == "postgresql":  # one statement may not update a row twice
        twice = [
            RowsUpdate(model=Sample, rows=samples[:1], fields=["n"]),
            RowsUpdate(model=Sample, rows=samples[1:], fields=["n"]),
        ]
        with pytest.raises(AssertionError, match="cannot update a table twice"):
            rows_update_together(twice)

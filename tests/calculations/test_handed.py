"""The calculation that follows POST /samples takes the rows its group just stored and processed as
they are (`Handed`), instead of reading them back, where they follow on from the chart's cursors;
anything else is read as before (issue #20: two statements less per synchronous sample)."""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.calculations.models import ChartState, LotStatistics, ProductStatistics
from apps.calculations.services.calculate import Handed, characteristics_calculate
from apps.observations import services
from apps.observations.models import Item, Sample
from apps.observations.services.process import ProcessResult
from tests.calculations.api_helpers import dia_of, historical
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def dia(plant: Any) -> Any:
    characteristic = dia_of(plant)
    historical(characteristic, center=74.0, sigma=0.01)
    return characteristic


def stored(plant: Any, *values: float) -> ProcessResult:
    """Values of DIA on new items, stored and processed (not calculated), as a group is."""
    first = Item.objects.count()
    items = [
        ItemFactory(lot=plant.lot, serial=f"H{first + n:04d}", plans=[plant.ring], tester=plant.tester)
        for n in range(len(values))
    ]
    ids = plant.record(
        *({"item": i, "test": plant.dia, "values": [v]} for i, v in zip(items, values, strict=True))
    )
    return services.observations_process(ids=ids, calculate=False)


def handed(result: ProcessResult) -> Handed:
    return Handed(samples=result.samples, observations=result.rows)


def cursor_reads(queries: list[dict[str, Any]]) -> int:
    """The reads of the rows past the chart's cursors (samples, observations)."""
    return sum(1 for q in queries if "cursor_of" in q["sql"])


def test_rows_that_follow_the_cursors_are_judged_without_reading_them_back(plant, dia):
    group = stored(plant, 74.0, 74.1)  # 74.1: beyond the UCL (74.03), and a moving range beyond its UCL
    with CaptureQueriesContext(connection) as queries:
        result = characteristics_calculate(characteristic_ids=[dia.pk], handed=handed(group))
    assert (result.samples, result.observations, result.violations) == (2, 2, 2)
    assert cursor_reads(queries.captured_queries) == 0
    state = ChartState.objects.get(pk=dia.pk)
    assert (state.last_sequence, state.last_position) == (2, 2)
    assert list(Sample.objects.order_by("sequence").values_list("in_control", flat=True)) == [True, False]
    assert ProductStatistics.objects.get(characteristic=dia).n == 2
    assert LotStatistics.objects.get(lot=plant.lot, characteristic=dia).n == 2


def test_rows_committed_after_the_handed_ones_are_left_for_their_own_calculation(plant, dia):
    first, second = stored(plant, 74.0), stored(plant, 74.01)
    done = characteristics_calculate(characteristic_ids=[dia.pk], handed=handed(first))
    assert (done.samples, ChartState.objects.get(pk=dia.pk).last_sequence) == (1, 1)
    # The second group's calculation takes its own sample then (it follows on now).
    done = characteristics_calculate(characteristic_ids=[dia.pk], handed=handed(second))
    assert (done.samples, ChartState.objects.get(pk=dia.pk).last_sequence) == (1, 2)
    assert ProductStatistics.objects.get(characteristic=dia).n == 2


def test_rows_that_do_not_follow_on_are_read_and_never_judged_twice(plant, dia):
    first, second = stored(plant, 74.0), stored(plant, 74.01)
    # The second group's calculation runs first: its rows do not follow the cursor (the first
    # group's sample is before them), so both are read and judged, in order.
    with CaptureQueriesContext(connection) as queries:
        done = characteristics_calculate(characteristic_ids=[dia.pk], handed=handed(second))
    assert (done.samples, done.observations) == (2, 2)
    assert cursor_reads(queries.captured_queries) == 2
    # The first group's calculation then finds its rows judged already: nothing is done twice.
    again = characteristics_calculate(characteristic_ids=[dia.pk], handed=handed(first))
    assert (again.samples, again.observations) == (0, 0)
    assert ProductStatistics.objects.get(characteristic=dia).n == 2
    assert list(Sample.objects.order_by("sequence").values_list("sequence", "in_control")) == [
        (1, True),
        (2, True),
    ]

"""The chart kind by subgroup size and the subgroup size limit are written once (apps/config/choices.py)
and every copy of the rule reads them."""

import pytest

from apps.config.api.serializers import CharacteristicSerializer, PlanEntryInputSerializer
from apps.config.choices import MAX_SUBGROUP_SIZE, ChartType, chart_type_by_subgroup_size
from apps.observations.api.serializers import ValuesField


@pytest.mark.parametrize(
    ("size", "kind"),
    [
        (1, ChartType.IMR),
        (2, ChartType.XBAR_R),
        (10, ChartType.XBAR_R),
        (11, ChartType.XBAR_S),
        (25, ChartType.XBAR_S),
    ],
)
def test_the_chart_kind_by_subgroup_size(size, kind):
    assert chart_type_by_subgroup_size(size) == kind


def test_every_limit_on_values_per_subgroup_is_the_one_limit():
    assert MAX_SUBGROUP_SIZE == 25
    assert CharacteristicSerializer().fields["subgroup_size"].max_value == MAX_SUBGROUP_SIZE
    assert PlanEntryInputSerializer().fields["replicates"].max_value == MAX_SUBGROUP_SIZE
    assert ValuesField().to_internal_value([1.0] * MAX_SUBGROUP_SIZE) == [1.0] * MAX_SUBGROUP_SIZE

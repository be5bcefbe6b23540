"""A lot closed after its observations were claimed but before they were grouped leaves no
values behind in a buffer that nothing would ever close."""

import pytest

from apps.config.models import Characteristic
from apps.observations import services, subgroups
from apps.observations.models import Lot, Observation, Sample, SubgroupFeed
from apps.observations.services import process

pytestmark = pytest.mark.django_db


def test_values_of_a_lot_closed_meanwhile_close_as_an_undersized_sample(plant, monkeypatch):
    dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
    dia.subgroup_size = 5
    dia.save()
    ids = plant.record(
        *[{"item": plant.items[i], "test": plant.dia, "values": [74.0 + i / 100]} for i in range(3)]
    )
    real_fold = subgroups.subgroups_fold

    def close_then_fold(**kwargs):
        # The lot is released between the claim (which saw it in testing) and the grouping.
        Lot.objects.filter(pk=plant.lot.pk).update(status="released")
        return real_fold(**kwargs)

    # observations_process looks subgroups_fold up in its own module, services.process.
    monkeypatch.setattr(process, "subgroups_fold", close_then_fold)
    result = services.observations_process(ids=ids)

    assert result.confirmed == 3  # accepted before the lot closed: confirmed, not lost
    sample = Sample.objects.get(characteristic=dia)
    assert sample.undersized is True
    assert sample.values == [74.0, 74.01, 74.02]
    assert sample.n == 3
    assert SubgroupFeed.objects.get(pk=dia.pk).pending == {}
    assert set(Observation.objects.filter(pk__in=ids).values_list("sample", flat=True)) == {sample.pk}

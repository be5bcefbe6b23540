"""`dia`: the shared plant's DIA characteristic (tests/support/plant.py), for the page tests."""

import pytest

from apps.config.models import Characteristic
from tests.support.plant import Plant


@pytest.fixture
def dia(plant: Plant) -> Characteristic:
    return Characteristic.objects.get(product=plant.product, test=plant.dia)

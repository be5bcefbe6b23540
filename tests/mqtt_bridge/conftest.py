"""The observation tests' plant (RING-74, lot L-1, three items assigned to `tester`) serves here too,
and `world`: violation rows on it."""

from typing import Any

import pytest

from apps.calculations.choices import Severity
from apps.calculations.models import Violation
from apps.config.models import Characteristic
from apps.observations.models import Sample
from tests.observations.conftest import plant

__all__ = ["plant", "world"]


class Violations:
    """Violation rows on the plant's DIA characteristic, each on a sample of its own."""

    def __init__(self, plant: Any) -> None:
        self.plant = plant
        self.dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
        self.samples = 0

    def violation(self, characteristic: Characteristic | None = None, *, rule: int = 1) -> Violation:
        c = characteristic or self.dia
        self.samples += 1
        values = [74.0 + self.samples / 100, 74.1]
        sample = Sample.objects.create(
            characteristic=c, sequence=self.samples, lot=self.plant.lot, values=values, observation_ids=[],
            n=2, mean=sum(values) / 2, in_control=False,
        )  # fmt: skip
        return Violation.objects.create(
            characteristic=c, sample=sample, rule=rule, points=[self.samples], limits_version=1,
            severity=Severity.CRITICAL,
        )  # fmt: skip


@pytest.fixture
def world(plant: Any) -> Violations:
    return Violations(plant)

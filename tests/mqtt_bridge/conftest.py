"""`world`: violation rows on the shared plant (tests/support/plant.py)."""

import pytest

from tests.support.plant import Plant, Violations


@pytest.fixture
def world(plant: Plant) -> Violations:
    return Violations(plant)

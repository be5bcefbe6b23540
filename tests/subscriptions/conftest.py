"""The observation tests' plant (RING-74, lot L-1, three items assigned to `tester`) serves here too."""

from tests.observations.conftest import other_tester, plant

__all__ = ["other_tester", "plant"]

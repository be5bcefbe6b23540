"""The observation tests' plant (RING-74, lot L-1, three items assigned to `tester`) serves here too."""

from tests.observations.conftest import plant

__all__ = ["plant"]

"""The observation tests' plant (RING-74 with lot L-1 and three assigned items) serves here too."""

from tests.observations.conftest import plant

__all__ = ["plant"]

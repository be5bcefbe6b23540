"""The observation tests' plant (RING-74 with lot L-1 and three assigned items) and a device serve
the role walk."""

from tests.observations.conftest import device, plant

__all__ = ["device", "plant"]

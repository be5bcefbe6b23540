"""The observation tests' plant (RING-74 with lot L-1 and three assigned items) serves here too."""

from tests.observations.conftest import device, device_client, other_tester, plant, queued

__all__ = ["device", "device_client", "other_tester", "plant", "queued"]

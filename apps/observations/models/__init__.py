"""Observation domain: lots, their items, every observation posted for them, and their subgroups."""

from .health import CharacteristicHealth
from .lots import Item, Lot
from .observations import Invalidation, Observation
from .samples import Sample, SubgroupFeed
from .schedules import PlantMessage, ScheduledSample

__all__ = [
    "CharacteristicHealth",
    "Invalidation",
    "Item",
    "Lot",
    "Observation",
    "PlantMessage",
    "Sample",
    "ScheduledSample",
    "SubgroupFeed",
]

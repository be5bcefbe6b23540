"""Observation domain: lots, their items, every observation posted for them, and their subgroups."""

from .health import CharacteristicHealth
from .lots import Item, Lot
from .observations import Invalidation, Observation
from .samples import Sample, SubgroupFeed

__all__ = ["CharacteristicHealth", "Invalidation", "Item", "Lot", "Observation", "Sample", "SubgroupFeed"]

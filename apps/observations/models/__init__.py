"""Observation domain: lots, their items, every observation posted for them, and their subgroups."""

from .lots import Item, Lot
from .observations import Invalidation, Observation
from .samples import Sample, SubgroupFeed

__all__ = ["Invalidation", "Item", "Lot", "Observation", "Sample", "SubgroupFeed"]

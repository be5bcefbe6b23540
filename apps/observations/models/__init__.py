"""Observation domain: lots, their items, every observation posted for them, and their subgroups."""

from .lots import Item, Lot
from .observations import Observation
from .samples import Sample, SubgroupFeed

__all__ = ["Item", "Lot", "Observation", "Sample", "SubgroupFeed"]

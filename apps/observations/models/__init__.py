"""Observation domain: lots, their items, and every observation posted for them."""

from .lots import Item, Lot
from .observations import Observation

__all__ = ["Item", "Lot", "Observation"]

"""Lots, items, observations and samples (the observation pipeline issue fills this app)."""

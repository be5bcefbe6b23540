"""Subscriptions, notifications and WebSocket consumers (filled by the subscriptions issue)."""

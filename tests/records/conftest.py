"""Fixtures of the lot records tests; the world itself is tests/support/records.py."""

from typing import Any

import pytest
from celery import current_app

from apps.subscriptions import tasks as subscription_tasks
from tests.support.plant import Plant
from tests.support.records import Review


@pytest.fixture
def review(plant: Plant) -> Review:
    return Review(plant)


@pytest.fixture
def sent_tasks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every task sent by name (nothing reaches the broker); the fan-out runs inline."""
    sent: list[tuple[str, dict[str, Any]]] = []

    def send_task(name: str, kwargs: dict[str, Any] | None = None, **options: Any) -> None:
        sent.append((name, kwargs or {}))
        if name == "subscriptions.fanout":
            subscription_tasks.subscriptions_fanout_task(**(kwargs or {}))

    monkeypatch.setattr(current_app, "send_task", send_task)
    return sent

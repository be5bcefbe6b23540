"""Holding a calculation inside its transaction, for the tests of what others do meanwhile."""

import threading
from typing import Any

import pytest

from apps.calculations.services import calculate


def first_calculation_paused(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """(paused, release): the next calculation stops once it holds the ChartState lock and has read
    its work (lines_of is called right after), sets `paused`, and waits until `release` is set."""
    paused, release = threading.Event(), threading.Event()
    real_lines_of = calculate.lines_of

    def lines_of_once_paused(*args: Any) -> Any:
        if not paused.is_set():
            paused.set()
            assert release.wait(timeout=30)
        return real_lines_of(*args)

    monkeypatch.setattr(calculate, "lines_of", lines_of_once_paused)
    return paused, release

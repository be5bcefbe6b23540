"""bench/mqtt_ingest.py's plant feeds and what the database shows of a run: rows, counts, the wait
until everything is settled, and the database's wait events."""

from __future__ import annotations

import contextlib
import datetime
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest_common import (  # noqa: E402
    SUBGROUP,
    Plant,
    plant_setup,
)
from bench.mqtt_ingest_clients import (  # noqa: E402
    JSON_TOPIC,
    JSON_TOPICS,
    METRICS,
    REST_CHARACTERISTICS,
    SEED,
    metric_name,
)

# --- The plant -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Feeds:
    plant: Plant
    sparkplug: list[int]  # characteristic ids, metric index order
    json: list[int]  # topic index order
    rest: list[int]


def plant_feed() -> Feeds:
    from apps.config import services as config
    from apps.config.models import Characteristic

    plant = plant_setup(characteristics=METRICS + JSON_TOPICS + REST_CHARACTERISTICS)
    ids = plant.characteristic_ids
    sparkplug, json_fed, rest = (
        ids[:METRICS],
        ids[METRICS : METRICS + JSON_TOPICS],
        ids[METRICS + JSON_TOPICS :],
    )
    for index, pk in enumerate(sparkplug):
        config.characteristic_update(
            characteristic=Characteristic.objects.get(pk=pk),
            data={"data_source": "sparkplug", "tag": metric_name(index)},
        )
    for index, pk in enumerate(json_fed):
        config.characteristic_update(
            characteristic=Characteristic.objects.get(pk=pk),
            data={"data_source": "tag", "tag": JSON_TOPIC.format(index + 1)},
        )
    return Feeds(plant=plant, sparkplug=sparkplug, json=json_fed, rest=rest)


# --- What the database shows ---------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One stored observation of a run: times in epoch seconds."""

    published: float
    received: float
    sample: int | None
    evaluated: float | None
    seeded: bool


def rows_of(characteristics: Sequence[int], since: datetime.datetime) -> list[Row]:
    from apps.observations.models import Observation

    rows = Observation.objects.filter(
        source="mqtt", characteristic_id__in=characteristics, observed_at__gte=since
    ).values_list("observed_at", "received_at", "sample_id", "sample__evaluated_at", "values")
    return [
        Row(observed.timestamp(), received.timestamp(), sample, evaluated.timestamp() if evaluated else None,
            SEED in values)
        for observed, received, sample, evaluated, values in rows
    ]  # fmt: skip


def counts_of(characteristics: Sequence[int], since: datetime.datetime) -> tuple[int, int]:
    """(stored, in a judged sample)."""
    from apps.observations.models import Observation

    rows = Observation.objects.filter(
        source="mqtt", characteristic_id__in=characteristics, observed_at__gte=since
    )
    return rows.count(), rows.filter(sample__evaluated_at__isnull=False).count()


def wait_settled(characteristics: Sequence[int], since: datetime.datetime, acked: int, stall: float,
                 timeout: float, alive: Callable[[], None]) -> None:  # fmt: skip
    """Until every acknowledged value is stored and all but incomplete subgroups are judged, or
    nothing moved for `stall` seconds."""
    tail = (SUBGROUP - 1) * len(characteristics)
    last, last_change = (-1, -1), time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and time.monotonic() - last_change < stall:
        alive()
        now = counts_of(characteristics, since)
        if now != last:
            last, last_change = now, time.monotonic()
        if now[0] >= acked and now[1] >= now[0] - tail:
            return
        time.sleep(0.1)


class DatabaseWaits:
    """What the bench database's server processes are doing, sampled every 20 ms from
    pg_stat_activity (this benchmark's own connection left out): the share of samples of an active
    backend per wait event ("cpu": active, waiting on nothing). Lock waits are workers queued behind
    each other's row locks; much "cpu" with few cores free is PostgreSQL itself."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.counts: dict[str, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="db-waits", daemon=True)

    def _backends(self, cursor: Any) -> list[tuple[int, str, str]]:
        cursor.execute(
            "SELECT pid, state, coalesce(wait_event_type || ':' || wait_event, 'cpu') FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [self.database],
        )
        return cursor.fetchall()

    def _run(self) -> None:
        from django.db import connection

        try:
            with connection.cursor() as cursor:
                while not self.stop.wait(0.02):
                    for _, state, event in self._backends(cursor):
                        if state == "active" and event != "Client:ClientRead":
                            self.counts[event] = self.counts.get(event, 0) + 1
        finally:
            connection.close()

    def cpu(self) -> dict[int, float]:
        """CPU seconds so far of each server process of the bench database."""
        from django.db import connection

        from bench.ingest_rest import cpu_seconds

        seconds = {}
        with connection.cursor() as cursor:
            for pid, _, _ in self._backends(cursor):
                with contextlib.suppress(OSError, ValueError, IndexError):  # gone, or no Linux /proc
                    seconds[pid] = cpu_seconds(pid)
        return seconds

    def cpu_since(self, before: dict[int, float]) -> float:
        """CPU seconds the server processes used since `before` (those that were there then)."""
        now = self.cpu()
        return sum(now[pid] - before[pid] for pid in now if pid in before)

    def shares(self) -> dict[str, float]:
        total = sum(self.counts.values())
        top = sorted(self.counts.items(), key=lambda item: -item[1])[:6]
        return {event: round(count / total, 2) for event, count in top} if total else {}


def profile_report(directory: Path, top: int = 25) -> None:
    """The workers' time (all runs, warm-up and the REST phase included) in the project's code."""
    import pstats
    import re

    files = sorted(str(p) for p in directory.glob("mqtt-ingest-worker-*.prof"))
    if files:
        stats = pstats.Stats(*files, stream=sys.stdout)
        print("\n--- profile: the workers, the project's code, cumulative (wall clock) ---")
        stats.sort_stats("cumulative").print_stats(re.escape(str(ROOT / "apps")), top)
        print("--- profile: the workers, all code by own time ---")
        stats.strip_dirs().sort_stats("tottime").print_stats(top)

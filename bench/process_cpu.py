"""CPU seconds of the processes a benchmark measures, sampled from /proc: a process with its children
(the web server's tree), the Celery workers, and the PostgreSQL backends of the bench database."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest_rest import (  # noqa: E402
    Processes,
    cpu_seconds,
)


def process_tree(pid: int) -> list[int]:
    """pid and its living descendants (daphne's worker processes, if any)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def cpu_of(pids: Sequence[int]) -> dict[int, float]:
    seen = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):  # ended between listing and reading
            seen[pid] = cpu_seconds(pid)
    return seen


class Sampler:
    """CPU seconds per process of each part, read every `interval` s: a process that starts in the
    window counts from zero, one that ends counts up to its last reading."""

    def __init__(self, processes: Processes, database: str, interval: float = 0.1) -> None:
        self.processes = processes
        self.database = database
        self.interval = interval
        self.first: dict[str, dict[int, float]] = {}
        self.last: dict[str, dict[int, float]] = {}
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def _backends(self, conn: Any) -> list[int]:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [self.database],
        ).fetchall()
        return [pid for (pid,) in rows]

    def _read(self, conn: Any) -> dict[str, dict[int, float]]:
        web = [pid for root in self.processes.pids("web") for pid in process_tree(root)]
        return {
            "web": cpu_of(web),
            "workers": cpu_of(self.processes.pids("worker")),
            "postgres": cpu_of(self._backends(conn)),
        }

    def _run(self, conn: Any) -> None:
        while not self.stop.wait(self.interval):
            for part, readings in self._read(conn).items():
                self.last[part].update(readings)

    def start(self) -> None:
        import psycopg

        conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
        self.first = self._read(conn)
        self.last = {part: dict(readings) for part, readings in self.first.items()}
        self.stop.clear()

        def run() -> None:
            try:
                self._run(conn)
            finally:
                conn.close()

        self.thread = threading.Thread(target=run, name="cpu-sampler", daemon=True)
        self.thread.start()

    def finish(self) -> dict[str, float]:
        """CPU seconds per part since start()."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        return {
            part: sum(value - self.first[part].get(pid, 0.0) for pid, value in readings.items())
            for part, readings in self.last.items()
        }

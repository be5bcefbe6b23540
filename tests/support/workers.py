"""Real Celery worker processes on the test database, and the results their work must equal.

    with CeleryWorkers(count=4, log_dir=tmp_path) as workers:
        ...post observations...
        workers.wait_for(pipeline_idle, what="the pipeline to drain")

Each worker is `celery -A openspc worker --pool solo` in its own process (so N workers are N
processes, N database connections, N consumers of the broker), started with DATABASE_URL
pointing at the database the test runs on. The broker and cache are the test process's
REDIS_URL. When the block exits with an exception, the workers' logs are printed (pytest
shows them with the failure).

The second half is the reference: what a single sequential run gives for values taken in a
given order, computed independently of the services (the grouping rules of
apps/observations/subgroups.py written out again, the SPC engine's batch functions, numpy).
"""

import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import numpy as np
import pytest
import redis
from django.conf import settings
from django.db import connection

from apps.calculations.choices import CPK_RELEASE
from apps.calculations.services import characteristics_behind
from apps.observations.choices import ObservationStatus
from apps.observations.models import Observation
from spc import RuleSet, evaluate_batch, process_capability

BASE_DIR = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).parent / "celery"
# Every queue the project's tasks go to (settings.CELERY_TASK_ROUTES; "celery" is the default one).
ALL_QUEUES = ("celery", "observations.in", "calculations", "qa_runs")
LOG_TAIL = 4000  # characters of each worker's log shown on a failure


def database_url_for_workers() -> str:
    """The URL of the database this test runs on (the test database), for another process."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        if "memory" in str(db["NAME"]):
            pytest.skip("the SQLite test database is in memory; another process cannot open it")
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def queues_purge(queues: Sequence[str]) -> None:
    """Drop messages left in the broker by earlier tests (a calculations.apply sent by a worker that
    consumed only observations.in, say), so the workers see only this test's work."""
    from openspc.celery import app

    with app.connection_for_write() as broker:
        for queue in queues:
            broker.default_channel.queue_purge(queue)
    # The marks of calculations queued by earlier tests (whose messages were just dropped) would
    # keep this test's characteristics, numbered from 1 again, from being queued for 30 s.
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match="*calculations:pending:*"):
        client.delete(key)


def pipeline_idle() -> bool:
    """Nothing left to do: no observation `received`, every characteristic's calculation caught up."""
    received = Observation.objects.filter(status=ObservationStatus.RECEIVED).exists()
    return not received and not characteristics_behind()


class Started:
    """A context manager over start() and stop() that shows the processes' logs when the block fails."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> Any:
        raise NotImplementedError

    def log_text(self) -> str:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if error is not None:
            print(self.log_text())


class CeleryWorkers(Started):
    """`count` worker processes consuming `queues`; a context manager that stops them on exit."""

    def __init__(
        self,
        *,
        count: int,
        log_dir: Path,
        queues: Sequence[str] = ALL_QUEUES,
        beat: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self.count = count
        self.log_dir = log_dir
        self.queues = tuple(queues)
        self.beat = beat  # the first process runs beat too (celery worker -B): the periodic tasks
        self.env = dict(env or {})  # settings for the workers (e.g. a short beat interval)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start(self, *, ready_within: float = 60.0) -> None:
        """Start the processes and wait until every one of them consumes."""
        # LOG_TASKS: a line per task received and succeeded, which tests read to see who worked.
        env = {**os.environ, "DATABASE_URL": database_url_for_workers(), "LOG_TASKS": "1", **self.env}
        queues_purge(self.queues)
        for index in range(self.count):
            log = self.log_dir / f"worker-{index}.log"
            command = [
                str(CELERY), "-A", "openspc", "worker", "-Q", ",".join(self.queues), "--pool", "solo",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
                "--hostname", f"test-{index}-{uuid.uuid4().hex[:8]}@%h",
            ]  # fmt: skip
            if self.beat and index == 0:
                command += ["--beat", "--schedule", str(self.log_dir / "beat-schedule")]
            with log.open("wb") as out:
                process = subprocess.Popen(
                    command, env=env, cwd=BASE_DIR, stdout=out, stderr=subprocess.STDOUT
                )
            self.processes.append(process)
            self.logs.append(log)
        try:
            self.wait_for(self._all_ready, timeout=ready_within, what="the workers to start")
        except BaseException:
            self.stop()
            raise

    def _all_ready(self) -> bool:
        # Celery logs "<hostname> ready." once the consumer is connected to the broker.
        return all(" ready." in log.read_text(errors="replace") for log in self.logs)

    def stop(self, *, within: float = 20.0) -> None:
        """Warm shutdown (SIGTERM: finish the task in hand), then kill what is still running."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + within
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes = []

    def check_alive(self) -> None:
        dead = [index for index, process in enumerate(self.processes) if process.poll() is not None]
        assert not dead, f"worker(s) {dead} exited:\n{self.log_text()}"

    def wait_for(self, condition: Callable[[], bool], *, timeout: float = 60.0, what: str = "") -> None:
        """Poll `condition` until it holds; fail (with the logs) if a worker dies or time runs out."""
        deadline = time.monotonic() + timeout
        while not condition():
            self.check_alive()
            assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {what}:\n{self.log_text()}"
            time.sleep(0.2)

    def log_text(self) -> str:
        parts = []
        for index, log in enumerate(self.logs):
            text = log.read_text(errors="replace") if log.exists() else "(no log)"
            parts.append(f"--- worker {index} ({log}) ---\n{text[-LOG_TAIL:]}")
        return "\n".join(parts)

    def all_logs(self) -> str:
        return "".join(log.read_text(errors="replace") for log in self.logs if log.exists())


# --- The reference: a sequential run, computed independently --------------------------------


@dataclass
class Subgroups:
    """Samples as (lot, values, observation ids) in sequence order, and each lot's unfinished values."""

    samples: list[tuple[int, list[float], list[int]]] = field(default_factory=list)
    pending: dict[int, tuple[list[float], list[int]]] = field(default_factory=dict)

    def last_sample_of(self) -> dict[int, int]:
        """Observation id -> sequence of the last sample holding one of its values."""
        last = {}
        for sequence, (_, _, ids) in enumerate(self.samples, start=1):
            for observation_id in ids:
                last[observation_id] = sequence
        return last


def subgroups_expected(rows: Iterable[tuple[int, int, Sequence[float]]], size: int) -> Subgroups:
    """Group (observation id, lot, values) taken in this order, as subgroups.py documents it: per
    lot, in arrival order; an observation of exactly `size` values is a sample by itself; smaller
    ones fill the lot's buffer, which becomes a sample when it holds `size` values."""
    result = Subgroups()
    for observation_id, lot, values in rows:
        if len(values) == size:
            result.samples.append((lot, list(values), [observation_id]))
            continue
        buffered, ids = result.pending.pop(lot, ([], []))
        for value in values:
            buffered.append(value)
            ids.append(observation_id)
            if len(buffered) == size:
                result.samples.append((lot, buffered, list(dict.fromkeys(ids))))
                buffered, ids = [], []
        if buffered:
            result.pending[lot] = (buffered, ids)
    return result


Signal = tuple[int, str, int, tuple[int, ...]]  # (rule, chart, sequence, the pattern's sequences)


def violations_expected(
    samples: Sequence[Sequence[float]], *, size: int, rules: RuleSet, limits: object
) -> set[Signal]:
    """The engine's batch evaluation of the sample means (location chart: centre, σ/√n per
    sample) plus the dispersion chart's rule 1 (MR for n = 1, else R of full samples, beyond the
    stored dispersion limits; a point on a limit is inside). Sequences are 1-based.
    `limits` is a ControlLimits row or its API form (a dict)."""

    def line(name: str) -> float:
        return float(limits[name] if isinstance(limits, dict) else getattr(limits, name))

    means = [float(np.mean(values)) for values in samples]
    sigmas = [line("sigma") / math.sqrt(len(values)) for values in samples]
    batch = evaluate_batch(means, center=line("center"), sigma=sigmas, rules=rules)
    found = {(v.rule, "location", v.index + 1, tuple(p + 1 for p in v.points)) for v in batch.violations()}
    low, high = line("dispersion_lcl"), line("dispersion_ucl")
    for index, values in enumerate(samples):
        if size == 1:
            if index and not low <= abs(means[index] - means[index - 1]) <= high:
                found.add((1, "dispersion", index + 1, (index, index + 1)))
        elif len(values) == size and not low <= max(values) - min(values) <= high:
            found.add((1, "dispersion", index + 1, (index + 1,)))
    return found


@dataclass(frozen=True)
class Summary:
    """Statistics of a set of values as numpy and the engine give them."""

    n: int
    mean: float
    sd: float
    minimum: float
    maximum: float
    out_of_spec: int
    cp: float | None
    cpk: float | None
    pp: float | None
    ppk: float | None


def summary_expected(
    values: Sequence[float], *, lsl: float | None, usl: float | None, sigma_within: float | None = None
) -> Summary:
    """numpy moments and the engine's process_capability; Cp / Cpk with `sigma_within` (default:
    the overall SD, as a lot's Cpk is)."""
    data = np.asarray(values, dtype=float)
    sd = float(np.std(data, ddof=1))
    capability = process_capability(data, sigma_within=sigma_within or sd, lsl=lsl, usl=usl)
    below = data < lsl if lsl is not None else np.zeros(data.size, dtype=bool)
    above = data > usl if usl is not None else np.zeros(data.size, dtype=bool)
    return Summary(
        n=int(data.size), mean=float(np.mean(data)), sd=sd, minimum=float(data.min()),
        maximum=float(data.max()), out_of_spec=int(np.sum(below | above)), cp=capability.cp,
        cpk=capability.cpk, pp=capability.pp, ppk=capability.ppk,
    )  # fmt: skip


def disposition_expected(summary: Summary) -> str:
    """The lot disposition hint: reject with any value out of spec, review below the Cpk needed."""
    if summary.out_of_spec:
        return "reject"
    return "review" if summary.cpk is not None and summary.cpk < CPK_RELEASE else "release"

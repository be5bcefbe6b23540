"""End-to-end ingestion benchmark: device REST batches through the workers into stored statistics.

Run from the repository root against real services (never the embedded ones):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/ingest_rest.py [--workers 1,2,4] [--seconds 20 | --observations 40000]

For each worker count N the benchmark (re)creates the database `openspc_ingest_bench` on
the server of DATABASE_URL (never the database DATABASE_URL names, nor one it did not
create: it marks its own with a comment) and runs `manage.py migrate`; sets up, through
the services, one product with K variable characteristics (n = 5, historical control
limits, spec limits), one open lot and one device; starts daphne
(`openspc.asgi:application`) on a free port and N Celery workers (`celery -A openspc
worker -Q celery,observations.in,calculations --pool solo`). After a warm-up, C client
threads post batches of 100 observations (one value each, round robin
over the characteristics, with observed_at and an idempotency key, as a device sends them)
to POST /api/v1/device/observations/ with `Authorization: Device <token>` over keep-alive
connections, for --seconds (or until --observations are posted). The database is dropped
at the end; every process started here is stopped, on Ctrl-C or failure too.

Definitions:

* A batch is *stored* when every one of its observations is in the stored statistics: it
  is confirmed and its characteristic's ChartState.last_position has reached its position.
  The calculation worker moves last_position in the transaction that writes the lot and
  product statistics and judges the new samples, so that is the moment a client reading
  the statistics sees the value. (A value whose subgroup of 5 is still incomplete is in the
  statistics but in no sample yet; with batches of 100 over 4 characteristics that does
  not happen.)
* Latency of a batch: from just before its POST is sent to the first poll that sees it
  stored. A thread of the benchmark polls ChartState every --poll-ms, so a latency is late
  by at most that interval plus one query.
* observations/s: observations of the timed phase / (last batch stored - first POST sent).
  accepted/s: observations / (last 202 - first POST sent); it shows the web side's own
  limit only while the workers keep up (else the clients wait for in-flight slots).
* The backlog is bounded: a client waits while --max-in-flight batches are posted but not
  stored, so a run measures the pipeline, not a queue that grows for as long as the run
  lasts. When the workers are the bottleneck, latency is that queue (Little's law:
  p50 ~ in-flight x 100 / throughput); --rate offers a fixed load instead (open loop), to
  read the latency below saturation.

Each run ends with a check that every observation is confirmed and that the lot and
product statistics count all of them; otherwise the benchmark fails. The Celery queues on
REDIS_URL must be empty at the start (the benchmark's workers would take what is there;
--purge-queues deletes it); what a run leaves queued is deleted after it. --profile DIR
runs the workers under cProfile and daphne under a profiler per thread, and prints where
the time goes (profiling slows everything down: those figures are not comparable);
bench/ingest_profile.py measures the CPU of each stage in one process.

Prints a table for people; the LAST line is one line of JSON for machines: the run with
--target-workers at the top level (observations_per_s, p50_ms, p99_ms, workers, ...) and
every run under "runs".
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest_common import (  # noqa: E402
    BATCH,
    PATH,
    QUEUES,
    SUBGROUP,
    BenchError,
    Plant,
    Stored,
    batch_body,
    bench_database_url,
    database_recreate,
    django_start,
    migrate,
    plant_setup,
    plant_verify,
    queues_check,
    queues_clear,
    services_check,
)
from openspc.embedded import free_port, wait_for_port, web_command  # noqa: E402

LOG_DIR = ROOT / "var" / "bench"
TARGET = 2000  # observations/s end to end with --target-workers workers (issue 4)


# --- Processes: daphne and the workers ---------------------------------------------------------


class Processes:
    """daphne and N Celery workers, each in a session of its own; stop() ends every one of them."""

    def __init__(self, env: dict[str, str], profile_dir: Path | None, label: str) -> None:
        self.env = env
        self.profile_dir = profile_dir
        self.label = label
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.workers: list[str] = []
        self.port = 0

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = LOG_DIR / f"{self.label}-{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(command, env=self.env, cwd=ROOT, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.started.append((name, process))
        return process

    def _profiled(self, name: str, module_args: list[str]) -> list[str]:
        if self.profile_dir is None:
            return [sys.executable, "-m", *module_args]
        out = self.profile_dir / f"{self.label}-{name}.prof"
        return [sys.executable, "-m", "cProfile", "-o", str(out), "-m", *module_args]

    def start_web(self) -> int:
        self.port = free_port()
        if self.profile_dir is None:
            command = web_command(host="127.0.0.1", port=self.port)
        else:
            out = self.profile_dir / f"{self.label}-web.prof"
            command = [sys.executable, __file__, "profiled-web", str(out), str(self.port)]
        process = self._spawn("web", command)
        wait_for_port(self.port, process, "daphne", LOG_DIR / f"{self.label}-web.log")
        return self.port

    def start_workers(self, count: int) -> None:
        for index in range(1, count + 1):
            hostname = f"bench-{self.label}-{index}-{secrets.token_hex(3)}@%h"
            args = ["celery", "-A", "openspc", "worker", "-Q", ",".join(QUEUES), "--pool", "solo",
                    "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING",
                    "--hostname", hostname]  # fmt: skip
            self._spawn(f"worker-{index}", self._profiled(f"worker-{index}", args))
            self.workers.append(hostname.replace("%h", platform.node()))

    def wait_workers_ready(self, timeout: float = 60) -> None:
        """Every worker answers a ping (it consumes its queues)."""
        from openspc.celery import app

        deadline = time.monotonic() + timeout
        answered: set[str] = set()
        while time.monotonic() < deadline:
            self.check_alive()
            for reply in app.control.ping(destination=self.workers, timeout=0.5) or []:
                answered.update(reply)
            if answered >= set(self.workers):
                return
        raise BenchError(f"workers not ready in {timeout:.0f} s: {sorted(set(self.workers) - answered)}")

    def check_alive(self) -> None:
        for name, process in self.started:
            if process.poll() is not None:
                log = LOG_DIR / f"{self.label}-{name}.log"
                raise BenchError(f"{name} exited with code {process.returncode}; see {log}")

    def pids(self, prefix: str) -> list[int]:
        return [process.pid for name, process in self.started if name.startswith(prefix)]

    def stop(self) -> None:
        # SIGTERM: a Celery worker finishes its task (warm shutdown), and profilers write their files.
        for _, process in self.started:
            if process.poll() is None:
                process.terminate()
        for _, process in self.started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.started.clear()


def serve_web_profiled(out: str, port: str) -> None:
    """daphne with a cProfile profiler in every thread: Django runs the views in a thread of
    asgiref's executor, which a profiler of the main thread alone would not see."""
    import cProfile
    import pstats

    from openspc.server import Command

    profiles: list[cProfile.Profile] = []

    def start(frame: object, event: str, arg: object) -> None:  # first event of a new thread
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()  # replaces this hook for the thread

    threading.setprofile(start)
    main = cProfile.Profile()
    profiles.append(main)
    main.enable()
    try:
        Command().run(["-b", "127.0.0.1", "-p", port, "openspc.asgi:application"])
    finally:
        main.disable()
        pstats.Stats(*profiles).dump_stats(out)  # the other threads are idle once daphne stops


# --- Clients and the poller ---------------------------------------------------------------------


@dataclass
class Batch:
    index: int
    ids: list[int]
    sent: float
    accepted: float
    stored: float | None = None
    rejected: int = 0


class Tracker:
    """Sees which posted batches are stored by polling ChartState (see the module docstring)."""

    def __init__(self, characteristic_ids: Sequence[int], poll_s: float, max_in_flight: int) -> None:
        self.characteristic_ids = list(characteristic_ids)
        self.poll_s = poll_s
        self.slots = threading.BoundedSemaphore(max_in_flight)
        self.lock = threading.Lock()
        self.pending: list[Batch] = []
        self.stored_at: dict[int, float] = {}  # observation id -> first poll that saw it stored
        self.rejected: set[int] = set()
        self.positions: dict[int, int] = dict.fromkeys(self.characteristic_ids, 0)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="poller", daemon=True)

    def register(self, batch: Batch) -> None:
        with self.lock:
            self.pending.append(batch)

    def unfinished(self) -> int:
        with self.lock:
            return len(self.pending)

    def _run(self) -> None:
        from django.db import connection

        last_rejection_check = time.monotonic()
        try:
            while not self.stop.is_set():
                self._poll()
                if time.monotonic() - last_rejection_check > 1.0:
                    self._poll_rejected()
                    last_rejection_check = time.monotonic()
                time.sleep(self.poll_s)
        except BaseException as exc:  # the main thread reports it
            self.error = exc
        finally:
            connection.close()

    def _poll(self) -> None:
        from apps.calculations.models import ChartState
        from apps.observations.models import Observation

        states = ChartState.objects.filter(pk__in=self.characteristic_ids).values_list("pk", "last_position")
        now = time.monotonic()
        fresh: list[int] = []
        for characteristic_id, last_position in states:
            before = self.positions[characteristic_id]
            if last_position > before:
                fresh += Observation.objects.filter(
                    characteristic_id=characteristic_id, position__gt=before, position__lte=last_position
                ).values_list("pk", flat=True)
                self.positions[characteristic_id] = last_position
        with self.lock:
            for pk in fresh:
                self.stored_at[pk] = now
            self._complete()

    def _poll_rejected(self) -> None:
        """A rejected observation never reaches the statistics: count it, so its batch completes."""
        from apps.observations.choices import ObservationStatus
        from apps.observations.models import Observation

        with self.lock:
            waiting = [pk for batch in self.pending for pk in batch.ids if pk not in self.stored_at]
        if not waiting:
            return
        rejected = Observation.objects.filter(pk__in=waiting, status=ObservationStatus.REJECTED)
        now = time.monotonic()
        with self.lock:
            for pk in rejected.values_list("pk", flat=True):
                self.rejected.add(pk)
                self.stored_at[pk] = now
            self._complete()

    def _complete(self) -> None:
        still = []
        for batch in self.pending:
            times = [self.stored_at.get(pk) for pk in batch.ids]
            if any(t is None for t in times):
                still.append(batch)
                continue
            batch.stored = max(t for t in times if t is not None)
            batch.rejected = sum(1 for pk in batch.ids if pk in self.rejected)
            self.slots.release()
        self.pending = still


class Feeder:
    """Hands out batch numbers until the count or the deadline; paces them when a rate is given."""

    def __init__(self, *, count: int | None, seconds: float | None, rate: float) -> None:
        self.count, self.seconds, self.rate = count, seconds, rate
        self.issued = 0
        self.lock = threading.Lock()
        self.start = time.monotonic()

    def next(self) -> int | None:
        with self.lock:
            elapsed = time.monotonic() - self.start
            if (self.count is not None and self.issued >= self.count) or (
                self.seconds is not None and elapsed >= self.seconds
            ):
                return None
            index = self.issued
            self.issued += 1
        if self.rate > 0:
            time.sleep(max(0.0, self.start + index * BATCH / self.rate - time.monotonic()))
        return index


def post_batches(
    *, port: int, plant: Plant, tracker: Tracker, feeder: Feeder, clients: int, key: str
) -> list[Batch]:
    """Run `clients` posting threads until the feeder runs dry; the batches they posted."""
    posted: list[Batch] = []
    errors: list[BaseException] = []
    abort = threading.Event()
    headers = {"Authorization": f"Device {plant.token}", "Content-Type": "application/json"}

    def client(number: int) -> None:
        rng = random.Random(f"{key}-{number}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)  # keep-alive
        try:
            while not abort.is_set() and (index := feeder.next()) is not None:
                body = batch_body(plant, key, index, rng)
                while not tracker.slots.acquire(timeout=0.5):
                    if abort.is_set():
                        return
                sent = time.monotonic()
                connection.request("POST", PATH, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                if response.status != 202:
                    raise BenchError(f"POST {PATH} answered {response.status}: {payload[:500]!r}")
                batch = Batch(index, json.loads(payload)["ids"], sent, time.monotonic())
                tracker.register(batch)
                posted.append(batch)
        except BaseException as exc:
            errors.append(exc)
            abort.set()
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(timeout=0.5)  # a short join keeps Ctrl-C responsive
    if errors:
        raise BenchError(f"a client failed: {errors[0]!r}") from errors[0]
    return posted


def wait_stored(tracker: Tracker, processes: Processes, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while tracker.unfinished():
        if tracker.error is not None:
            raise BenchError(f"the poller failed: {tracker.error!r}") from tracker.error
        processes.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"{tracker.unfinished()} batches not stored within {timeout:.0f} s")
        time.sleep(0.05)


# --- CPU accounting (Linux /proc; elsewhere the columns stay empty) ---------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class Cpu:
    """CPU seconds used so far by each part; two snapshots give the cores each part kept busy."""

    parts: dict[str, float]

    @classmethod
    def snapshot(cls, processes: Processes) -> Cpu:
        bench = sum(os.times()[:2])
        try:
            return cls(
                {
                    "bench": bench,
                    "web": sum(cpu_seconds(pid) for pid in processes.pids("web")),
                    "workers": sum(cpu_seconds(pid) for pid in processes.pids("worker")),
                    "machine": machine_busy_seconds(),
                }
            )
        except (OSError, ValueError, IndexError):  # no Linux /proc: only the benchmark's own time
            return cls({"bench": bench})

    def cores(self, later: Cpu, seconds: float) -> dict[str, float]:
        used = {name: later.parts[name] - self.parts[name] for name in self.parts}
        if "machine" in used:
            # PostgreSQL and Redis, and whatever else runs on the machine. (PostgreSQL cannot be
            # told apart: under daphne every request opens a connection, so backends come and go.)
            used["other"] = used["machine"] - used["web"] - used["workers"] - used["bench"]
        return {name: round(value / seconds, 2) for name, value in used.items()}


def machine_busy(seconds: float = 1.0) -> float | None:
    """Cores busy on the machine over `seconds` before the benchmark starts (others' load)."""
    try:
        before = machine_busy_seconds()
        time.sleep(seconds)
        return round((machine_busy_seconds() - before) / seconds, 2)
    except (OSError, ValueError, IndexError):
        return None


# --- One run ---------------------------------------------------------------------------------


@dataclass
class Run:
    workers: int
    observations: int
    observations_per_s: float
    accepted_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    seconds: float
    samples: int
    violations: int
    cores: dict[str, float] = field(default_factory=dict)


def percentile(values: Sequence[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q))


def summarise(workers: int, batches: Sequence[Batch], stored: Stored, cores: dict[str, float]) -> Run:
    first_sent = min(b.sent for b in batches)
    last_stored = max(b.stored or 0.0 for b in batches)
    last_accepted = max(b.accepted for b in batches)
    latencies = [((b.stored or 0.0) - b.sent) * 1000 for b in batches]
    observations = sum(len(b.ids) for b in batches)
    return Run(
        workers=workers,
        observations=observations,
        observations_per_s=round(observations / (last_stored - first_sent), 1),
        accepted_per_s=round(observations / (last_accepted - first_sent), 1),
        p50_ms=round(percentile(latencies, 50), 1),
        p99_ms=round(percentile(latencies, 99), 1),
        max_ms=round(max(latencies), 1),
        seconds=round(last_stored - first_sent, 2),
        samples=stored.samples,
        violations=stored.violations,
        cores=cores,
    )


def run_once(args: argparse.Namespace, workers: int, env: dict[str, str], admin_url: str) -> Run:
    from django.db import connections

    label = f"w{workers}"
    database_recreate(admin_url, args.database)
    migrate(env)
    plant = plant_setup(characteristics=args.characteristics)
    processes = Processes(env, args.profile, label)
    tracker = Tracker(plant.characteristic_ids, args.poll_ms / 1000, args.max_in_flight)
    try:
        port = processes.start_web()
        processes.start_workers(workers)
        processes.wait_workers_ready()
        tracker.thread.start()
        key = secrets.token_hex(4)
        warm = Feeder(count=2 * args.clients, seconds=None, rate=0)
        warmed = post_batches(port=port, plant=plant, tracker=tracker, feeder=warm,
                              clients=args.clients, key=f"warm-{key}")  # fmt: skip
        wait_stored(tracker, processes, args.timeout)
        before = Cpu.snapshot(processes)
        feeder = Feeder(count=args.observations // BATCH if args.observations else None,
                        seconds=None if args.observations else args.seconds, rate=args.rate)  # fmt: skip
        batches = post_batches(port=port, plant=plant, tracker=tracker, feeder=feeder,
                               clients=args.clients, key=key)  # fmt: skip
        wait_stored(tracker, processes, args.timeout)
        after = Cpu.snapshot(processes)
        if not batches:
            raise BenchError("no batch was posted in the timed phase")
        seconds = max(b.stored or 0.0 for b in batches) - min(b.sent for b in batches)
    finally:
        tracker.stop.set()
        processes.stop()
        # The queues were empty when the benchmark started (queues_check): what is left is ours.
        queues_clear(env["REDIS_URL"])
        if tracker.thread.is_alive():
            tracker.thread.join(timeout=5)
    rejected = len(tracker.rejected)
    if rejected:
        raise BenchError(f"{rejected} observations were rejected; the benchmark posts only valid ones")
    stored = plant_verify(plant, posted=sum(len(b.ids) for b in [*warmed, *batches]))
    connections.close_all()
    return summarise(workers, batches, stored, before.cores(after, seconds))


# --- Output -------------------------------------------------------------------------------------


CPU_PARTS = ("web", "workers", "bench", "other", "machine")


def table(runs: Sequence[Run]) -> list[str]:
    """Figures per run, then the cores each part kept busy (other: PostgreSQL, Redis and whatever
    else runs on the machine)."""
    lines = [
        f"{'workers':>7}{'observations':>13}{'obs/s':>8}{'accepted/s':>11}{'p50 ms':>8}{'p99 ms':>8}"
        "  cores:" + "".join(f"{part:>8}" for part in CPU_PARTS)
    ]
    for r in runs:
        cores = "".join(f"{r.cores[p]:>8.2f}" if p in r.cores else f"{'':>8}" for p in CPU_PARTS)
        lines.append(
            f"{r.workers:>7}{r.observations:>13,}{r.observations_per_s:>8,.0f}{r.accepted_per_s:>11,.0f}"
            f"{r.p50_ms:>8,.0f}{r.p99_ms:>8,.0f}        {cores}"
        )
    return lines


def profile_report(profile_dir: Path, runs: Sequence[Run], top: int) -> None:
    """Per run and side: the project's functions by cumulative time (wall clock: lock and database
    waits included), then every function by own time."""
    import pstats
    import re

    for run in runs:
        for role in ("worker", "web"):
            files = sorted(str(p) for p in profile_dir.glob(f"w{run.workers}-{role}*.prof"))
            if not files:
                continue
            stats = pstats.Stats(*files, stream=sys.stdout)
            print(f"\n--- profile: {role} side, {run.workers} worker(s): the project's code, cumulative ---")
            stats.sort_stats("cumulative").print_stats(re.escape(str(ROOT / "apps")), top)
            print(f"--- profile: {role} side, {run.workers} worker(s): all code by own time ---")
            stats.strip_dirs().sort_stats("tottime").print_stats(top)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workers", default="1,2,4", help="worker counts to run, e.g. 1,2,4")
    parser.add_argument("--target-workers", type=int, default=2, help="the run the JSON summary leads with")
    load = parser.add_mutually_exclusive_group()
    load.add_argument("--seconds", type=float, default=20.0, help="post for this long (default 20)")
    load.add_argument("--observations", type=int, help="post this many observations instead")
    parser.add_argument("--clients", type=int, default=4, help="concurrent posting threads")
    parser.add_argument("--characteristics", type=int, default=4, choices=range(1, 11), metavar="K")
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=12,
        help="batches posted but not yet stored before clients wait (default 12)",
    )
    parser.add_argument(
        "--rate", type=float, default=0.0, help="offered observations/s (0: as fast as accepted)"
    )
    parser.add_argument("--poll-ms", type=float, default=10.0, help="how often the poller reads ChartState")
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="seconds to wait for the backlog to clear"
    )
    parser.add_argument("--database", default="openspc_ingest_bench", help="database to create and drop")
    parser.add_argument("--keep-database", action="store_true", help="leave the last run's database")
    parser.add_argument("--purge-queues", action="store_true", help="delete messages already queued")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="profile web and workers into DIR")
    parser.add_argument("--profile-top", type=int, default=25, help="functions shown per profile")
    args = parser.parse_args(argv)  # fmt: skip
    try:
        args.worker_counts = [int(part) for part in args.workers.split(",") if part.strip()]
    except ValueError:
        parser.error(f"--workers takes numbers separated by commas; got {args.workers!r}")
    if not args.worker_counts or min(args.worker_counts) < 1:
        parser.error("--workers: at least one worker per run")
    if args.observations is not None and args.observations < BATCH:
        parser.error(f"--observations: at least one batch ({BATCH})")
    if args.clients < 1 or args.max_in_flight < 1:
        parser.error("--clients and --max-in-flight must be at least 1")
    return args


R = TypeVar("R")


@contextmanager
def interrupts_as_exceptions() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C, so the processes started here are stopped either way."""

    def raise_interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous: Callable[..., Any] | int | None = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def runs_measured(
    measures: Iterable[Callable[[], R]], table: Callable[[list[R]], list[str]], cleanup: Callable[[], None]
) -> list[R] | int:
    """Each measurement in turn, its table row printed as it comes. Returns the runs, or the exit
    code when a BenchError (1) or Ctrl-C / SIGTERM (130) stopped them; `cleanup` runs either way,
    after the benchmark's own database connections are closed."""
    runs: list[R] = []
    try:
        with interrupts_as_exceptions():
            for measure in measures:
                runs.append(measure())
                print("  " + table(runs)[-1].strip(), flush=True)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; every process started here is stopped", file=sys.stderr)
        return 130
    finally:
        from django.db import connections

        connections.close_all()
        cleanup()
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    database_url, redis_url = services_check()
    queues_check(redis_url, purge=args.purge_queues)
    # The benchmark's own Django (setup, poller, checks) and every process it starts share this.
    env = django_start(database_url=bench_database_url(database_url, args.database))
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    if args.profile is not None:
        shutil.rmtree(args.profile, ignore_errors=True)
        args.profile.mkdir(parents=True)
        args.profile = args.profile.resolve()
    busy = machine_busy()
    load = f"{args.observations:,} observations" if args.observations else f"{args.seconds:g} s"
    print(f"Ingestion benchmark: POST {PATH}, batches of {BATCH}, {args.clients} clients, {load} per run, "
          f"{args.characteristics} characteristics (n = {SUBGROUP}), at most {args.max_in_flight} batches "
          f"in flight{f', offered {args.rate:,.0f} obs/s' if args.rate else ''}; Python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs; logs in {LOG_DIR}", flush=True)  # fmt: skip
    if busy is not None and busy > 0.25:
        print(f"warning: {busy:.2f} cores were busy before the benchmark started; the figures will be "
              "lower than on an idle machine", flush=True)  # fmt: skip
    measured = runs_measured(
        (
            lambda workers=workers: run_once(args, workers, env, database_url)
            for workers in args.worker_counts
        ),
        table,
        cleanup=lambda: (
            None if args.keep_database else database_recreate(database_url, args.database, drop_only=True)
        ),
    )
    if isinstance(measured, int):
        return measured
    runs = measured
    if args.profile is not None:
        profile_report(args.profile, runs, args.profile_top)
    print()
    for line in table(runs):
        print(line)
    lead = next((r for r in runs if r.workers == args.target_workers), runs[0])
    met = lead.workers == args.target_workers and lead.observations_per_s >= TARGET
    if args.rate:  # an offered load measures latency, not what the pipeline can take
        print(f"offered {args.rate:,.0f} observations/s: {lead.observations_per_s:,.0f} stored/s with "
              f"{lead.workers} workers (the target is judged without --rate)")  # fmt: skip
        met = False
    else:
        verdict = "met" if met else "NOT met"
        print(f"target: >= {TARGET:,} observations/s end to end with {args.target_workers} workers: "
              f"{verdict} ({lead.observations_per_s:,.0f} with {lead.workers})")  # fmt: skip
    summary: dict[str, Any] = {
        "observations_per_s": lead.observations_per_s, "p50_ms": lead.p50_ms, "p99_ms": lead.p99_ms,
        "workers": lead.workers, "target_observations_per_s": TARGET, "target_met": met,
        "batch_size": BATCH, "clients": args.clients, "characteristics": args.characteristics,
        "subgroup_size": SUBGROUP, "max_in_flight": args.max_in_flight, "rate": args.rate,
        "profiled": args.profile is not None, "cpus": os.cpu_count(), "machine_busy_before": busy,
        "runs": [asdict(r) for r in runs],
    }  # fmt: skip
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["profiled-web"]:
        serve_web_profiled(*sys.argv[2:4])
    else:
        sys.exit(main())

"""WebSocket fan-out benchmark: from an observation's POST to its `sample` message on N sockets.

Run from the repository root against real services (never the embedded ones):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/ws_fanout.py [--clients 10,100] [--posts 30] [--burst 20]

Sets up what bench/ingest_rest.py sets up (its database `openspc_ws_bench`, created, migrated
and dropped the same way; the plant of bench/ingest_common.py with one characteristic,
n = 5; daphne and one Celery worker from ingest_rest.Processes), plus a manager whose JWT the
clients connect with. For each client count N:

* N clients connect to ws/samples/ (the `websockets` library, all on one asyncio loop in
  this process) and subscribe to the characteristic.
* Latency: --posts times, one POST /api/v1/device/observations/ of 5 single values (exactly
  one subgroup, so one sample); the clock starts just before the POST is sent and stops,
  per client, when that client receives the `sample` message of it; the next POST waits
  until every client has it. p50 / p99 are over all (post, client) pairs.
* Throughput: --burst POSTs of 100 values (20 samples each) sent back to back; events/s is
  the number of messages the clients received (samples, statistics, any violations) divided
  by the time from the first to the last of them. It is what one daphne process delivered,
  bounded by this process's reading too when both share few cores (the CPU columns show it).

Prints a table for people; the LAST line is one line of JSON: p50_ms_<N>_clients,
p99_ms_<N>_clients per client count, events_per_s (the largest client count's run) and
every run under "runs".
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import http.client
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest_common import (  # noqa: E402
    BATCH,
    CENTER,
    PATH,
    SIGMA,
    SUBGROUP,
    BenchError,
    Plant,
    bench_database_url,
    database_recreate,
    django_start,
    migrate,
    plant_setup,
    queues_check,
    queues_clear,
    services_check,
)
from bench.ingest_rest import LOG_DIR, Cpu, Processes, percentile, runs_measured  # noqa: E402


@dataclass
class Run:
    clients: int
    posts: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    events: int
    events_per_s: float
    cores: dict[str, float]


def manager_token() -> str:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from rest_framework_simplejwt.tokens import AccessToken

    from openspc.roles import Role

    user = get_user_model().objects.create_user(username="bench-manager")
    user.groups.add(Group.objects.get(name=Role.MANAGER))
    return str(AccessToken.for_user(user))


def body(plant: Plant, key: str, values: Sequence[float]) -> bytes:
    now = datetime.datetime.now(datetime.UTC).isoformat()
    rows = [
        {"characteristic": plant.characteristic_ids[0], "lot": plant.lot_number, "values": [round(v, 4)],
         "observed_at": now, "idempotency_key": f"{key}-{i}"}
        for i, v in enumerate(values)
    ]  # fmt: skip
    return json.dumps(rows).encode()


class Poster:
    """POSTs device batches over one keep-alive connection (called from a thread)."""

    def __init__(self, port: int, plant: Plant) -> None:
        self.plant = plant
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Device {plant.token}", "Content-Type": "application/json"}
        self.count = 0

    def post(self, values: Sequence[float]) -> None:
        self.count += 1
        self.connection.request(
            "POST", PATH, body=body(self.plant, f"ws-{self.count}", values), headers=self.headers
        )
        response = self.connection.getresponse()
        answer = response.read()
        if response.status != 202:
            raise BenchError(f"POST {PATH} answered {response.status}: {answer[:300]!r}")


class Client:
    """One subscribed socket; records when each message arrived."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.samples: dict[int, float] = {}  # sequence -> arrival
        self.arrivals: list[float] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            now = time.monotonic()
            message = json.loads(raw)
            self.arrivals.append(now)
            if message["type"] == "sample":
                self.samples[message["payload"]["sequence"]] = now


async def connect_clients(port: int, token: str, characteristic: int, count: int) -> list[Client]:
    from websockets.asyncio.client import connect

    origin = f"http://127.0.0.1:{port}"
    clients = []
    for _ in range(count):
        ws = await connect(f"ws://127.0.0.1:{port}/ws/samples/?token={token}", origin=origin, max_queue=None)
        await ws.send(json.dumps({"type": "subscribe", "characteristic_ids": [characteristic]}))
        answer = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        if answer.get("type") != "subscribed":
            raise BenchError(f"subscribe answered {answer}")
        clients.append(Client(ws))
    return clients


async def wait_all(clients: Sequence[Client], sequence: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(sequence in c.samples for c in clients):
        if time.monotonic() > deadline:
            got = sum(sequence in c.samples for c in clients)
            raise BenchError(f"sample {sequence} reached {got} of {len(clients)} clients in {timeout:.0f} s")
        await asyncio.sleep(0.001)


async def measure(
    args: argparse.Namespace, port: int, plant: Plant, token: str, count: int, processes: Processes
) -> Run:
    import random

    rng = random.Random(count)
    poster = Poster(port, plant)
    clients = await connect_clients(port, token, plant.characteristic_ids[0], count)
    sequence = 0
    try:
        # Warm-up: connections, the worker's first task, the rolling window.
        for _ in range(2):
            await asyncio.to_thread(poster.post, [rng.gauss(CENTER, SIGMA) for _ in range(SUBGROUP)])
            sequence += 1
            await wait_all(clients, sequence, args.timeout)
        latencies: list[float] = []
        for _ in range(args.posts):
            values = [rng.gauss(CENTER, SIGMA) for _ in range(SUBGROUP)]
            sent = time.monotonic()
            await asyncio.to_thread(poster.post, values)
            sequence += 1
            await wait_all(clients, sequence, args.timeout)
            latencies += [(c.samples[sequence] - sent) * 1000 for c in clients]
        # Throughput: a burst of full batches, every client counting what it receives.
        for c in clients:
            c.arrivals.clear()
        before = Cpu.snapshot(processes)
        started = time.monotonic()
        for _ in range(args.burst):
            await asyncio.to_thread(poster.post, [rng.gauss(CENTER, SIGMA) for _ in range(BATCH)])
        sequence += args.burst * BATCH // SUBGROUP
        await wait_all(clients, sequence, args.timeout)
        await asyncio.sleep(0.5)  # the statistics that follow the last samples
        arrivals = sorted(t for c in clients for t in c.arrivals)
        cores = before.cores(Cpu.snapshot(processes), time.monotonic() - started)
    finally:
        for c in clients:
            c.task.cancel()
            await c.ws.close()
        poster.connection.close()
    seconds = arrivals[-1] - arrivals[0]
    return Run(
        clients=count, posts=args.posts, p50_ms=round(percentile(latencies, 50), 1),
        p99_ms=round(percentile(latencies, 99), 1), max_ms=round(max(latencies), 1), events=len(arrivals),
        events_per_s=round(len(arrivals) / seconds, 1) if seconds > 0 else 0.0, cores=cores,
    )  # fmt: skip


def run_once(args: argparse.Namespace, count: int, env: dict[str, str], admin_url: str) -> Run:
    from django.db import connections

    database_recreate(admin_url, args.database)
    migrate(env)
    plant = plant_setup(characteristics=1)
    token = manager_token()
    connections.close_all()
    processes = Processes(env, None, f"ws{count}")
    try:
        port = processes.start_web()
        processes.start_workers(1)
        processes.wait_workers_ready()
        return asyncio.run(measure(args, port, plant, token, count, processes))
    finally:
        processes.stop()
        queues_clear(env["REDIS_URL"])


def table(runs: Sequence[Run]) -> list[str]:
    lines = [f"{'clients':>7}{'posts':>7}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'events':>8}{'events/s':>10}"
             "  cores: web  workers  bench  other"]  # fmt: skip
    for r in runs:
        cores = "".join(f"{r.cores.get(p, 0):>7.2f}" for p in ("web", "workers", "bench", "other"))
        lines.append(f"{r.clients:>7}{r.posts:>7}{r.p50_ms:>8.1f}{r.p99_ms:>8.1f}{r.max_ms:>8.1f}{r.events:>8,}"
                     f"{r.events_per_s:>10,.0f}       {cores}")  # fmt: skip
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", default="10,100", help="client counts to run, e.g. 10,100")
    parser.add_argument("--posts", type=int, default=30, help="timed POSTs (one sample each) per run")
    parser.add_argument("--burst", type=int, default=20, help="POSTs of 100 values in the throughput phase")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a sample")
    parser.add_argument("--database", default="openspc_ws_bench", help="database to create and drop")
    parser.add_argument("--purge-queues", action="store_true", help="delete messages already queued")
    args = parser.parse_args(argv)
    try:
        args.client_counts = [int(part) for part in args.clients.split(",") if part.strip()]
    except ValueError:
        parser.error(f"--clients takes numbers separated by commas; got {args.clients!r}")
    if not args.client_counts or min(args.client_counts) < 1 or args.posts < 1 or args.burst < 1:
        parser.error("--clients, --posts and --burst must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    database_url, redis_url = services_check()
    queues_check(redis_url, purge=args.purge_queues)
    env = django_start(database_url=bench_database_url(database_url, args.database))
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    print(f"WebSocket fan-out benchmark: ws/samples/, {args.posts} timed POSTs of one subgroup "
          f"(n = {SUBGROUP}), a burst of {args.burst} x {BATCH} values; one daphne, one worker; Python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs; logs in {LOG_DIR}", flush=True)  # fmt: skip
    measured = runs_measured(
        (lambda count=count: run_once(args, count, env, database_url) for count in args.client_counts),
        table,
        cleanup=lambda: database_recreate(database_url, args.database, drop_only=True),
    )
    if isinstance(measured, int):
        return measured
    runs = measured
    print()
    for line in table(runs):
        print(line)
    summary: dict[str, Any] = {}
    for r in runs:
        summary[f"p50_ms_{r.clients}_clients"] = r.p50_ms
        summary[f"p99_ms_{r.clients}_clients"] = r.p99_ms
    summary["events_per_s"] = max(runs, key=lambda r: r.clients).events_per_s
    summary.update(posts=args.posts, burst=args.burst, cpus=os.cpu_count(), runs=[asdict(r) for r in runs])
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

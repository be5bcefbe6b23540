"""One sample per request, answered synchronously: POST /api/v1/samples/ against the stack's ceiling.

Run from the repository root against real services (never the embedded ones):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/samples_sync.py [--clients 1,4,16] [--sizes 1,5] [--seconds 20] [--quick]

The benchmark (re)creates the database `openspc_sync_bench` on the server of DATABASE_URL (only
one it created, as bench/ingest_rest.py does) and migrates it; sets up, through the services, one
product with a characteristic of subgroup size 1 and one of 5 (historical control limits, so every
sample is judged by the rules, and spec limits), an open lot with one item per client assigned to
a tester; then starts the deployment docs/operations.md gives for one host: daphne through
`python -m openspc.server` (with --processes N when asked, and any --server-args) and --workers
Celery workers. It signs the tester in once (POST /api/v1/auth/token/) and every client sends
that JWT.

Cells: for each subgroup size and client count, C threads each hold one keep-alive connection
and post one subgroup per request (closed loop: the next request leaves when the answer is in),
to their own item; then the same client counts against GET /api/v1/ping/, an authenticated
no-op on the same stack (the ceiling of Django, DRF, authentication and the server). A cell runs
--warmup seconds, discarded, then --seconds measured: requests/s counts the answers received in
the measured window; p50/p99 are their latencies (from just before the request is sent to its
whole answer read); errors are every answer but 201 (200 for ping) and every failed connection,
warm-up included. CPU per request: the CPU seconds used in the measured window by the web
process(es) (daphne and its children), the workers and the PostgreSQL server processes of the
bench database (sampled every 100 ms from pg_stat_activity: the web process pools its
connections, so they live across requests), divided by the requests answered.

SQL statements per POST: two more POSTs of each size, in this process through Django's test
client with the same JWT, the second's statements captured (CaptureQueriesContext; after the
load and a first POST, so caches are as warm as under it). BEGIN/COMMIT are not counted (psycopg
sends them itself); SAVEPOINTs are.

Prints a table for people; the LAST line is one line of JSON for machines: samples_per_s_16_n1,
samples_per_s_16_n5, p99_ms_4_n1, p99_ms_4_n5 (when those cells were run), statements_per_sample
(n = 1; statements_per_sample_n5 too), ceiling_per_s (the best ping rate over the client counts),
ceiling_ratio (the lower of the two sizes' samples/s at the most clients over ceiling_per_s),
errors (in all cells), and every cell under "cells".
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import random
import shlex
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest_common import (  # noqa: E402
    CENTER,
    SIGMA,
    BenchError,
    bench_database_url,
    database_recreate,
    django_start,
    migrate,
    queues_check,
    queues_clear,
    services_check,
)
from bench.ingest_rest import (  # noqa: E402
    Processes,
    machine_busy,
    percentile,
    runs_measured,
)
from openspc.embedded import free_port, wait_for_port, web_command  # noqa: E402

LOG_DIR = ROOT / "var" / "bench"
SAMPLES = "/api/v1/samples/"
PING = "/api/v1/ping/"
TOKEN = "/api/v1/auth/token/"
USERNAME = "bench-tester"
# Issue 20's targets on a 2-core machine (shown beside the figures, not enforced).
TARGETS = {"samples_per_s_16": 200, "p99_ms_4": 100, "statements_per_sample": 12, "ceiling_ratio": 1 / 3}


# --- The plant -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plant:
    lot_id: int
    characteristic_ids: dict[int, int]  # subgroup size -> characteristic id
    item_ids: list[int]
    password: str


def plant_setup(*, sizes: Sequence[int], items: int) -> Plant:
    """A product with one variable test per subgroup size on a released plan (as many replicates),
    each characteristic with historical limits and spec limits at +-4 sigma; an open lot with
    `items` items on that plan, all assigned to a tester who signs in with a password."""
    import secrets

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from apps.calculations.services import limits_set_historical
    from apps.config import services as config
    from apps.config.models import Characteristic
    from apps.observations.services.items import items_assign, lot_open
    from openspc.roles import Role

    lead = get_user_model().objects.create_user(username="bench-lead")
    password = secrets.token_urlsafe(24)
    tester = get_user_model().objects.create_user(username=USERNAME, password=password)
    tester.groups.add(Group.objects.get(name=Role.TESTER))
    product = config.product_create(code="BENCH-S", name="Synchronous samples benchmark")
    tests = {
        n: config.test_create(code=f"BENCH-N{n}", name=f"Dimension, n = {n}", kind="variable",
                              plausible_min=0.0, plausible_max=2 * CENTER)
        for n in sizes
    }  # fmt: skip
    plan = config.test_plan_create(
        code="BENCH-S",
        name="Synchronous samples benchmark",
        entries=[config.PlanEntryInput(test=test, replicates=n) for n, test in tests.items()],
    )
    # A seed: nobody signs; the release and the limits are stored unsigned (signed_by_system).
    plan = config.test_plan_release(plan=plan, user=lead, reason="benchmark", signed_by_system=True)
    config.plan_assign(
        product=product, plan=plan, effective_from=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    )
    ids = {}
    for n, test in tests.items():
        characteristic = config.characteristic_update(
            characteristic=Characteristic.objects.get(product=product, test=test),
            data={"subgroup_size": n, "lsl": CENTER - 4 * SIGMA, "usl": CENTER + 4 * SIGMA},
            reason="benchmark",
        )
        limits_set_historical(characteristic=characteristic, center=CENTER, sigma=SIGMA,
                              reason="benchmark", user=lead, signed_by_system=True)  # fmt: skip
        ids[n] = characteristic.pk
    lot = lot_open(product=product, number="BENCH-S-LOT-1", plans=[plan], user=lead, count=items)
    assigned = items_assign(items=list(lot.items.order_by("serial")), tester=tester)
    return Plant(lot_id=lot.pk, characteristic_ids=ids, item_ids=[item.pk for item in assigned],
                 password=password)  # fmt: skip


def sample_body(plant: Plant, n: int, item_id: int, rng: random.Random) -> bytes:
    """One subgroup of n values from the process in control around its historical limits, with a key
    of its own, as a client that may retry sends it: without one, the same values posted again for
    the same item are taken for a retry and answered with the first sample (values of 4 decimals
    repeat within a few hundred posts)."""
    return json.dumps(
        {
            "characteristic_id": plant.characteristic_ids[n],
            "measurements": [round(rng.gauss(CENTER, SIGMA), 4) for _ in range(n)],
            "context": {
                "lot": plant.lot_id,
                "item": item_id,
                "idempotency_key": f"bench-{rng.getrandbits(64):016x}",
            },
        }
    ).encode()


def sign_in(port: int, password: str) -> str:
    """The tester's access token, as a client gets it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body = json.dumps({"username": USERNAME, "password": password})
        connection.request("POST", TOKEN, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise BenchError(f"POST {TOKEN} answered {response.status}: {payload[:500]!r}")
    return str(json.loads(payload)["access"])


def statements_per_post(plant: Plant, token: str, n: int) -> int:
    """The SQL statements one POST of a subgroup of n sends, in this process (see the docstring)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    rng = random.Random(n)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    # One POST first: this process keeps the configuration and the user's roles from then on, as
    # each server process does after its first request (openspc.kept).
    warm = client.post(
        SAMPLES, data=sample_body(plant, n, plant.item_ids[0], rng), content_type="application/json"
    )
    if warm.status_code != 201:
        raise BenchError(f"the warm-up POST answered {warm.status_code}: {warm.content[:500]!r}")
    body = sample_body(plant, n, plant.item_ids[0], rng)
    with CaptureQueriesContext(connection) as captured:
        response = client.post(SAMPLES, data=body, content_type="application/json")
    if response.status_code != 201:
        raise BenchError(f"the counted POST answered {response.status_code}: {response.content[:500]!r}")
    return len(captured.captured_queries)


from bench.process_cpu import Sampler, cpu_of, process_tree  # noqa: E402,F401  (the tests import them from here)

# --- The clients ----------------------------------------------------------------------------------


@dataclass
class Cell:
    endpoint: str  # "samples" or "ping"
    n: int | None  # subgroup size (None for ping)
    clients: int
    requests: int
    per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    seconds: float
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU ms per request, by part
    first_error: str = ""
    answered: int = 0  # good answers, warm-up and the window's edges included


def run_cell(
    *, port: int, token: str, plant: Plant, n: int | None, clients: int, warmup: float, seconds: float,
    sampler: Sampler,
) -> Cell:  # fmt: skip
    """C closed-loop clients for warmup + seconds; the figures of the measured window."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    expected = 200 if n is None else 201
    lock = threading.Lock()
    timed: list[tuple[float, float]] = []  # (sent, answered) of every good answer
    errors: list[str] = []
    start = time.monotonic()
    window_start, window_end = start + warmup, start + warmup + seconds

    def client(number: int) -> None:
        rng = random.Random(f"{n}-{clients}-{number}")
        item = plant.item_ids[number % len(plant.item_ids)]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)  # keep-alive
        mine: list[tuple[float, float]] = []
        failed: list[str] = []
        try:
            while time.monotonic() < window_end:
                body = None if n is None else sample_body(plant, n, item, rng)
                sent = time.monotonic()
                try:
                    if n is None:
                        connection.request("GET", PING, headers=headers)
                    else:
                        connection.request("POST", SAMPLES, body=body, headers=headers)
                    response = connection.getresponse()
                    payload = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    failed.append(repr(exc))
                    connection.close()  # http.client reconnects on the next request
                    continue
                if response.status != expected:
                    failed.append(f"{response.status}: {payload[:300]!r}")
                    continue
                mine.append((sent, time.monotonic()))
        finally:
            connection.close()
            with lock:
                timed.extend(mine)
                errors.extend(failed)

    sampler_started = False
    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, window_start - time.monotonic()))
    sampler.start()
    sampler_started = True
    time.sleep(max(0.0, window_end - time.monotonic()))
    cpu = sampler.finish() if sampler_started else {}
    for thread in threads:
        while thread.is_alive():
            thread.join(timeout=0.5)  # a short join keeps Ctrl-C responsive
    counted = [(sent, answered) for sent, answered in timed if window_start <= answered <= window_end]
    latencies = [(answered - sent) * 1000 for sent, answered in counted]
    done = len(counted)
    return Cell(
        endpoint="ping" if n is None else "samples",
        n=n,
        clients=clients,
        requests=done,
        per_s=round(done / seconds, 1),
        p50_ms=round(percentile(latencies, 50), 1) if latencies else 0.0,
        p99_ms=round(percentile(latencies, 99), 1) if latencies else 0.0,
        errors=len(errors),
        seconds=seconds,
        cpu_ms={part: round(1000 * used / done, 2) if done else 0.0 for part, used in cpu.items()},
        first_error=errors[0] if errors else "",
        answered=len(timed),
    )


def samples_verify(plant: Plant, cells: Sequence[Cell]) -> None:
    """Every 201 is one stored, judged sample of the lot, and nothing else was stored."""
    from apps.observations.models import Sample

    answered = sum(c.answered for c in cells if c.endpoint == "samples")
    stored = Sample.objects.filter(lot_id=plant.lot_id).count()
    if stored != answered:
        raise BenchError(f"{answered} POSTs answered 201, but the lot holds {stored} samples")


# --- Output ----------------------------------------------------------------------------------------


CPU_PARTS = ("web", "workers", "postgres")


def table(cells: Sequence[Cell]) -> list[str]:
    lines = [
        f"{'endpoint':<10}{'n':>3}{'clients':>8}{'requests':>9}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'errors':>7}  CPU ms/request:" + "".join(f"{part:>9}" for part in CPU_PARTS)
    ]
    for c in cells:
        cpu = "".join(f"{c.cpu_ms[p]:>9.1f}" if p in c.cpu_ms else f"{'':>9}" for p in CPU_PARTS)
        lines.append(
            f"{c.endpoint:<10}{c.n if c.n is not None else '-':>3}{c.clients:>8}{c.requests:>9,}"
            f"{c.per_s:>8,.1f}{c.p50_ms:>8,.0f}{c.p99_ms:>8,.0f}{c.errors:>7}"
            f"{'':>17}{cpu}"
        )
    return lines


def summary(cells: Sequence[Cell], statements: dict[int, int], sizes: Sequence[int],
            clients: Sequence[int]) -> dict[str, Any]:  # fmt: skip
    samples = {(c.n, c.clients): c for c in cells if c.endpoint == "samples"}
    pings = [c for c in cells if c.endpoint == "ping"]
    result: dict[str, Any] = {}
    for n in sizes:
        for count in clients:
            cell = samples.get((n, count))
            if cell is not None:
                result[f"samples_per_s_{count}_n{n}"] = cell.per_s
                result[f"p50_ms_{count}_n{n}"] = cell.p50_ms
                result[f"p99_ms_{count}_n{n}"] = cell.p99_ms
    for cell in pings:
        result[f"ceiling_per_s_{cell.clients}"] = cell.per_s
    ceiling = max((c.per_s for c in pings), default=0.0)
    most = max(clients)
    at_most = [samples[(n, most)].per_s for n in sizes if (n, most) in samples]
    result.update(
        statements_per_sample=statements.get(1, statements.get(min(statements), 0)) if statements else None,
        **{f"statements_per_sample_n{n}": count for n, count in statements.items()},
        ceiling_per_s=ceiling,
        ceiling_ratio=round(min(at_most) / ceiling, 3) if ceiling and at_most else None,
        errors=sum(c.errors for c in cells),
    )
    return result


# --- The run -----------------------------------------------------------------------------------


class Deployment(Processes):
    """daphne (openspc.server, with the extra arguments given) and the Celery workers."""

    def start_server(self, extra: Sequence[str]) -> int:
        self.port = free_port()
        process = self._spawn("web", [*web_command(host="127.0.0.1", port=self.port), *extra])
        wait_for_port(self.port, process, "openspc.server", LOG_DIR / f"{self.label}-web.log")
        return self.port


def server_extra(args: argparse.Namespace) -> list[str]:
    """--processes N goes to openspc.server only when more than one (an option it gains in issue 20),
    then --server-args as given."""
    extra = ["--processes", str(args.processes)] if args.processes != 1 else []
    return extra + shlex.split(args.server_args)


def run_all(
    args: argparse.Namespace, env: dict[str, str], admin_url: str
) -> tuple[list[Cell], dict[int, int]]:
    from django.db import connections

    database_recreate(admin_url, args.database)
    migrate(env)
    plant = plant_setup(sizes=args.size_list, items=max(args.client_counts))
    connections.close_all()
    processes = Deployment(env, None, "sync")
    cells: list[Cell] = []
    statements: dict[int, int] = {}
    try:
        port = processes.start_server(server_extra(args))
        processes.start_workers(args.workers)
        if args.workers:
            processes.wait_workers_ready()
        token = sign_in(port, plant.password)
        sampler = Sampler(processes, args.database)
        plan = [(n, count) for n in args.size_list for count in args.client_counts]
        plan += [(None, count) for count in args.client_counts]
        measured = runs_measured(
            (
                lambda n=n, count=count: run_cell(
                    port=port,
                    token=token,
                    plant=plant,
                    n=n,
                    clients=count,
                    warmup=args.warmup,
                    seconds=args.seconds,
                    sampler=sampler,
                )
                for n, count in plan
            ),
            table,
            cleanup=lambda: None,
        )
        if isinstance(measured, int):
            raise SystemExit(measured)
        cells = measured
        samples_verify(plant, cells)
        for n in args.size_list:
            statements[n] = statements_per_post(plant, token, n)
    finally:
        processes.stop()
        queues_clear(env["REDIS_URL"])
        connections.close_all()
    return cells, statements


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", default="1,4,16", help="client counts, e.g. 1,4,16")
    parser.add_argument("--sizes", default="1,5", help="subgroup sizes, e.g. 1,5")
    parser.add_argument(
        "--seconds", type=float, help="measured seconds per cell (default 20; 2 with --quick)"
    )
    parser.add_argument(
        "--warmup", type=float, help="discarded seconds per cell (default 3; 0.5 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="short cells, to check that it works (tests)")
    parser.add_argument("--processes", type=int, default=1, help="web processes (openspc.server --processes)")
    parser.add_argument("--server-args", default="", help="more arguments for openspc.server, as one string")
    parser.add_argument("--workers", type=int, default=1, help="Celery workers started beside the server")
    parser.add_argument("--database", default="openspc_sync_bench", help="database to create and drop")
    parser.add_argument("--keep-database", action="store_true", help="leave the database")
    parser.add_argument("--purge-queues", action="store_true", help="delete messages already queued")
    args = parser.parse_args(argv)
    try:
        args.client_counts = [int(part) for part in args.clients.split(",") if part.strip()]
        args.size_list = [int(part) for part in args.sizes.split(",") if part.strip()]
    except ValueError:
        parser.error("--clients and --sizes take numbers separated by commas")
    if not args.client_counts or min(args.client_counts) < 1:
        parser.error("--clients: at least one client per cell")
    if not args.size_list or min(args.size_list) < 1 or max(args.size_list) > 25:
        parser.error("--sizes: subgroup sizes between 1 and 25")
    if args.processes < 1 or args.workers < 0:
        parser.error("--processes must be at least 1 and --workers at least 0")
    if args.seconds is None:
        args.seconds = 2.0 if args.quick else 20.0
    if args.warmup is None:
        args.warmup = 0.5 if args.quick else 3.0
    if args.seconds <= 0 or args.warmup < 0:
        parser.error("--seconds must be positive and --warmup not negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    database_url, redis_url = services_check()
    queues_check(redis_url, purge=args.purge_queues)
    env = django_start(database_url=bench_database_url(database_url, args.database))
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    busy = machine_busy()
    server = " ".join(server_extra(args)) or "(defaults)"
    print(f"Synchronous samples benchmark: POST {SAMPLES} (n = {args.sizes}) and GET {PING}, "
          f"{args.clients} clients, {args.warmup:g} s warm-up + {args.seconds:g} s per cell; "
          f"openspc.server {server}, {args.workers} worker(s); Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; logs in {LOG_DIR}", flush=True)  # fmt: skip
    if busy is not None and busy > 0.25:
        print(f"warning: {busy:.2f} cores were busy before the benchmark started; the figures will be "
              "lower than on an idle machine", flush=True)  # fmt: skip
    try:
        cells, statements = run_all(args, env, database_url)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except SystemExit as exc:
        return int(exc.code or 1)
    finally:
        if not args.keep_database:
            database_recreate(database_url, args.database, drop_only=True)
    print()
    for line in table(cells):
        print(line)
    result = summary(cells, statements, args.size_list, args.client_counts)
    print(f"SQL statements per POST: {', '.join(f'n = {n}: {s}' for n, s in statements.items())}")
    print(f"ceiling (GET {PING}): {result['ceiling_per_s']:,.1f} req/s; samples at {max(args.client_counts)} "
          f"clients / ceiling: {result['ceiling_ratio']}")  # fmt: skip
    errors = [c for c in cells if c.errors]
    for cell in errors:
        print(f"errors in {cell.endpoint} n={cell.n} clients={cell.clients}: {cell.errors}, first: "
              f"{cell.first_error}", file=sys.stderr)  # fmt: skip
    result.update(
        targets=TARGETS, processes=args.processes, server_args=args.server_args, workers=args.workers,
        seconds=args.seconds, warmup=args.warmup, cpus=os.cpu_count(), machine_busy_before=busy,
        cells=[asdict(c) for c in cells],
    )  # fmt: skip
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

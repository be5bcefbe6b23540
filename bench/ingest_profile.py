"""Where the ingestion time goes: the work of bench/ingest_rest.py, stage by stage, in one process.

Run from the repository root against real services:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/ingest_profile.py [--batches 50] [--profile] [--top 20]

Creates the bench database (dropped at the end) with the plant of ingest_rest.py and
times, per batch of 100 observations (4 characteristics, n = 5):

* web: POST /api/v1/device/observations/ through Django's test client: middleware, DRF,
  the view and the services, not daphne and ASGI (ingest_rest.py has those);
* observations.process: observations_process on the batch's ids, as one task does;
* calculations.apply: characteristics_calculate for the batch's characteristics after each
  batch, one call for all of them, as a worker gets them; again with the channel-layer
  events switched off, to show what they cost;
* idle calculations.apply: one call with nothing new (a redundant task).

No Celery: what the stages queue is collected instead of sent, and not counted. CPU is
this process's (time.process_time), so it hardly depends on what else runs on the
machine; wall time adds PostgreSQL, Redis and the waits. --profile prints each stage's
functions by own CPU time (cProfile).

Prints a table for people; the LAST line is one line of JSON for machines.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest_common import (  # noqa: E402
    BATCH,
    PATH,
    BenchError,
    Plant,
    batch_body,
    bench_database_url,
    database_recreate,
    django_start,
    migrate,
    plant_setup,
    services_check,
)


class Stage:
    """CPU and wall time of one stage, summed over its calls; optionally profiled (CPU clock)."""

    def __init__(self, name: str, *, profile: bool) -> None:
        self.name = name
        self.calls = 0
        self.cpu = self.wall = 0.0
        self.queries = 0
        self.profiler = cProfile.Profile(time.process_time) if profile else None

    def _count(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.queries += 1
        return execute(sql, params, many, context)

    @contextmanager
    def timed(self) -> Iterator[None]:
        from django.db import connection

        if self.profiler is not None:
            self.profiler.enable()
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            with connection.execute_wrapper(self._count):
                yield
        finally:
            self.cpu += time.process_time() - cpu
            self.wall += time.perf_counter() - wall
            self.calls += 1
            if self.profiler is not None:
                self.profiler.disable()

    def per_call_ms(self) -> dict[str, float]:
        calls = max(self.calls, 1)
        return {
            "cpu_ms": round(self.cpu / calls * 1000, 2),
            "wall_ms": round(self.wall / calls * 1000, 2),
            "queries": round(self.queries / calls, 1),
        }


class Pipeline:
    """The plant, a test client posting as its device, and the work the stages queue, collected."""

    def __init__(self, plant: Plant, seed: int) -> None:
        from django.test import Client

        from apps.observations import services as observations
        from apps.observations import subgroups

        self.plant = plant
        self.client = Client()
        self.rng = random.Random(seed)
        self.batches: list[list[int]] = []
        self.posted = 0
        # Collected, not sent: the workers' queues are not part of this measurement.
        observations.observations_queue = lambda *, ids: self.batches.append(list(ids))
        subgroups.calculations_queue = lambda *, characteristic_ids: None

    def post(self) -> None:
        body = batch_body(self.plant, "profile", self.posted, self.rng)
        self.posted += 1
        response = self.client.post(
            PATH, body, content_type="application/json", HTTP_AUTHORIZATION=f"Device {self.plant.token}"
        )
        if response.status_code != 202:
            raise BenchError(f"POST {PATH} answered {response.status_code}: {response.content[:300]!r}")

    def process(self, ids: Sequence[int]) -> None:
        from apps.observations.services import observations_process

        observations_process(ids=ids)

    def calculate(self) -> None:
        from apps.calculations.services import characteristics_calculate

        characteristics_calculate(characteristic_ids=self.plant.characteristic_ids)

    def calculate_one(self) -> None:
        from apps.calculations.services import characteristic_calculate

        characteristic_calculate(characteristic_id=self.plant.characteristic_ids[0])


@contextmanager
def events_off() -> Iterator[None]:
    from apps.calculations.services import calculate

    original = calculate.events_send_on_commit
    calculate.events_send_on_commit = lambda events: None
    try:
        yield
    finally:
        calculate.events_send_on_commit = original


def _round(pipeline: Pipeline, batches: int, web: Stage, process: Stage, calculate: Stage) -> None:
    """Post the batches, then process and calculate them one by one, as the workers do."""
    pipeline.batches.clear()
    for _ in range(batches):
        with web.timed():
            pipeline.post()
    for ids in list(pipeline.batches):
        with process.timed():
            pipeline.process(ids)
        with calculate.timed():
            pipeline.calculate()


def measure(pipeline: Pipeline, batches: int, *, profile: bool) -> list[Stage]:
    web = Stage("web (view, no ASGI)", profile=profile)
    process = Stage("observations.process", profile=profile)
    calculate = Stage("calculations.apply", profile=profile)
    quiet = Stage("  the same, events off", profile=profile)
    idle = Stage("idle calculations.apply", profile=profile)

    def unmeasured() -> Stage:
        return Stage("", profile=False)

    # Warm-up: imports, caches, the rolling windows in Redis.
    _round(pipeline, min(batches, 5), unmeasured(), unmeasured(), unmeasured())
    _round(pipeline, batches, web, process, calculate)
    with events_off():
        _round(pipeline, batches, unmeasured(), unmeasured(), quiet)
    for _ in range(batches):
        with idle.timed():
            pipeline.calculate_one()
    return [web, process, calculate, quiet, idle]


def table(stages: Sequence[Stage]) -> list[str]:
    lines = [f"{'stage, per batch of 100':<28}{'CPU ms':>9}{'wall ms':>10}{'CPU us/obs':>12}{'queries':>9}"]
    for stage in stages:
        figures = stage.per_call_ms()
        per_observation = "" if stage.name.startswith("idle") else f"{figures['cpu_ms'] * 1000 / BATCH:,.0f}"
        lines.append(
            f"{stage.name:<28}{figures['cpu_ms']:>9.2f}{figures['wall_ms']:>10.2f}{per_observation:>12}"
            f"{figures['queries']:>9.1f}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batches", type=int, default=50, help="batches per measured round (default 50)")
    parser.add_argument("--characteristics", type=int, default=4, choices=range(1, 11), metavar="K")
    parser.add_argument("--database", default="openspc_ingest_profile", help="database to create and drop")
    parser.add_argument("--profile", action="store_true", help="print each stage's hot functions")
    parser.add_argument("--top", type=int, default=20, help="functions shown per stage with --profile")
    parser.add_argument(
        "--sort", default="tottime", choices=("tottime", "cumulative"), help="--profile order"
    )
    args = parser.parse_args(argv)
    database_url, _ = services_check()
    env = django_start(database_url=bench_database_url(database_url, args.database))
    database_recreate(database_url, args.database)
    try:
        migrate(env)
        pipeline = Pipeline(plant_setup(characteristics=args.characteristics), seed=20240601)
        stages = measure(pipeline, args.batches, profile=args.profile)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        from django.db import connections

        connections.close_all()
        database_recreate(database_url, args.database, drop_only=True)
    if args.profile:
        for stage in stages:
            if stage.profiler is not None:
                print(f"\n--- {stage.name}: {stage.calls} calls, functions by own CPU time ---")
                stats = pstats.Stats(stage.profiler, stream=sys.stdout)
                stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)
    profiled = " (profiled: slower)" if args.profile else ""
    print(f"Ingestion stages in one process: {args.batches} batches of {BATCH} per round, "
          f"{args.characteristics} characteristics{profiled}")  # fmt: skip
    for line in table(stages):
        print(line)
    pipeline_cpu = sum(stage.per_call_ms()["cpu_ms"] for stage in stages[:3])
    print(f"web + observations.process + calculations: {pipeline_cpu:.1f} ms CPU per batch, "
          f"at most {BATCH * 1000 / pipeline_cpu:,.0f} observations/s per core before Celery, daphne, "
          "PostgreSQL and Redis")  # fmt: skip
    summary: dict[str, Any] = {
        "stages": {stage.name.strip(): stage.per_call_ms() for stage in stages},
        "pipeline_cpu_ms_per_batch": round(pipeline_cpu, 2),
        "observations_per_core_s": round(BATCH * 1000 / pipeline_cpu, 1),
        "batches": args.batches, "characteristics": args.characteristics, "profiled": args.profile,
    }  # fmt: skip
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

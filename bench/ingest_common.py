"""What the ingestion benchmarks share: the services check, the bench database, the plant, the batches.

bench/ingest_rest.py (end to end, real processes) and bench/ingest_profile.py (the
same work in one process, per stage) set up the same plant and post the same batches.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
PATH = "/api/v1/device/observations/"
BATCH = 100
SUBGROUP = 5
CENTER, SIGMA = 25.0, 0.1  # the simulated process, in control around its historical limits
QUEUES = ("celery", "observations.in", "calculations")


class BenchError(Exception):
    """The benchmark cannot give a meaningful figure (a service, a process or a check failed)."""


# --- Services and the database ----------------------------------------------------------------


def services_check() -> tuple[str, str]:
    """DATABASE_URL (PostgreSQL) and REDIS_URL, both answering; else exit saying what is missing."""
    import psycopg
    import redis

    database_url = os.environ.get("DATABASE_URL", "").strip()
    redis_url = os.environ.get("REDIS_URL", "").strip()
    if not database_url or not redis_url:
        raise SystemExit(
            "Set DATABASE_URL (PostgreSQL) and REDIS_URL: this benchmark measures the production "
            "setup, not the embedded SQLite and Redis."
        )
    if urlsplit(database_url).scheme not in {"postgres", "postgresql"}:
        raise SystemExit(f"DATABASE_URL must be a postgres:// URL; got {database_url!r}")
    try:
        psycopg.connect(database_url, connect_timeout=3).close()
    except psycopg.Error as exc:
        raise SystemExit(f"PostgreSQL at DATABASE_URL does not answer: {exc}".strip()) from None
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise SystemExit(f"Redis at REDIS_URL does not answer: {exc}") from None
    return database_url, redis_url


def bench_database_url(database_url: str, name: str) -> str:
    """DATABASE_URL with the database name replaced; refuses to name the configured database."""
    parts = urlsplit(database_url)
    if parts.path.lstrip("/") == name:
        raise SystemExit(f"--database {name} is the database DATABASE_URL names; the benchmark drops it.")
    return urlunsplit(parts._replace(path=f"/{name}"))


# Written on every database the benchmarks create; a database without it is never dropped.
MARKER = "OpenSPC ingestion benchmark: created and dropped by bench/ingest_rest.py and ingest_profile.py"


def database_recreate(admin_url: str, name: str, *, drop_only: bool = False) -> None:
    """Drop the bench database (only one the benchmarks created) and, unless drop_only, create it."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if found is not None and found[0] != MARKER:
            raise SystemExit(f"A database {name} exists that the benchmark did not create; it is left alone. "
                             "Name another with --database.")  # fmt: skip
        # FORCE (PostgreSQL 13+): a connection left over from an interrupted run must not block it.
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if not drop_only:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(MARKER))
            )


def queues_check(redis_url: str, *, purge: bool) -> None:
    """Messages already queued would be processed by our workers against the bench database."""
    import redis

    client = redis.Redis.from_url(redis_url)
    waiting = {queue: int(client.llen(queue)) for queue in QUEUES}
    if any(waiting.values()) and not purge:
        raise SystemExit(
            f"The Celery queues on REDIS_URL hold messages {waiting}: use a Redis database nothing "
            "else uses, or pass --purge-queues to delete them."
        )
    if purge:
        queues_clear(redis_url)


def queues_clear(redis_url: str) -> None:
    """Drop what a run left queued (redundant calculation tasks; after an interrupt, unfinished
    work): it names rows of a bench database that is dropped."""
    import redis

    redis.Redis.from_url(redis_url).delete(*QUEUES)


def migrate(env: dict[str, str]) -> None:
    command = [sys.executable, str(ROOT / "manage.py"), "migrate", "--no-input", "-v", "0"]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BenchError(f"manage.py migrate failed:\n{result.stdout}{result.stderr}")


def django_start(*, database_url: str) -> dict[str, str]:
    """Point this process (and the environment handed to the processes it starts) at the bench
    database, with production settings (DEBUG off: no query log), and set Django up."""
    import django

    os.environ.update(DATABASE_URL=database_url, DEBUG="0", DJANGO_SETTINGS_MODULE="openspc.settings",
                      ALLOWED_HOSTS="127.0.0.1,localhost,testserver", PYTHONUNBUFFERED="1")  # fmt: skip
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    django.setup()
    return dict(os.environ)


# --- The plant: configuration through the services --------------------------------------------


@dataclass(frozen=True)
class Plant:
    lot_id: int
    lot_number: str
    characteristic_ids: list[int]
    token: str


def plant_setup(*, characteristics: int) -> Plant:
    """A product with `characteristics` variable tests on a released plan, n = 5, historical limits,
    spec limits at +-4 sigma; an open lot; a device and its token."""
    from django.contrib.auth import get_user_model

    from apps.calculations.services import limits_set_historical
    from apps.config import services as config
    from apps.config.models import Characteristic
    from apps.observations.services import lot_create

    user = get_user_model().objects.create_user(username="bench-lead")
    product = config.product_create(code="BENCH-1", name="Benchmark product")
    tests = [
        config.test_create(code=f"BENCH-D{i}", name=f"Dimension {i}", kind="variable",
                           plausible_min=0.0, plausible_max=2 * CENTER)
        for i in range(1, characteristics + 1)
    ]  # fmt: skip
    plan = config.test_plan_create(
        code="BENCH", name="Benchmark plan", entries=[config.PlanEntryInput(test=test) for test in tests]
    )
    # A seed: nobody signs; the release and the limits are stored unsigned (signed_by_system).
    plan = config.test_plan_release(plan=plan, user=user, reason="benchmark", signed_by_system=True)
    config.plan_assign(
        product=product, plan=plan, effective_from=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    )
    ids = []
    for test in tests:
        characteristic = config.characteristic_update(
            characteristic=Characteristic.objects.get(product=product, test=test),
            data={"subgroup_size": SUBGROUP, "lsl": CENTER - 4 * SIGMA, "usl": CENTER + 4 * SIGMA},
            reason="benchmark",
        )
        limits_set_historical(characteristic=characteristic, center=CENTER, sigma=SIGMA,
                              reason="benchmark", user=user, signed_by_system=True)  # fmt: skip
        ids.append(characteristic.pk)
    lot = lot_create(product=product, number="BENCH-LOT-1", user=user)
    _, token = config.device_create(name="bench-gauge", products=[product])
    return Plant(lot_id=lot.pk, lot_number=lot.number, characteristic_ids=ids, token=token)


@dataclass(frozen=True)
class Stored:
    observations: int
    samples: int
    violations: int


def plant_verify(plant: Plant, *, posted: int) -> Stored:
    """Every posted observation confirmed, and counted once in the lot and product statistics."""
    from django.db.models import Count, Sum

    from apps.calculations.models import LotStatistics, ProductStatistics, Violation
    from apps.observations.models import Observation, Sample

    statuses = dict(
        Observation.objects.filter(lot_id=plant.lot_id)
        .order_by()
        .values_list("status")
        .annotate(count=Count("pk"))
    )
    lot_n = LotStatistics.objects.filter(lot_id=plant.lot_id).aggregate(n=Sum("n"))["n"]
    product_n = ProductStatistics.objects.filter(characteristic_id__in=plant.characteristic_ids).aggregate(
        n=Sum("n")
    )["n"]
    if statuses != {"confirmed": posted} or lot_n != posted or product_n != posted:
        raise BenchError(
            f"posted {posted} observations; stored statuses {statuses}, lot statistics n = {lot_n}, "
            f"product statistics n = {product_n}"
        )
    return Stored(
        observations=posted,
        samples=Sample.objects.filter(lot_id=plant.lot_id).count(),
        violations=Violation.objects.filter(sample__lot_id=plant.lot_id).count(),
    )


def batch_body(plant: Plant, key: str, index: int, rng: random.Random) -> bytes:
    """100 single values, round robin over the characteristics, as a device posts them."""
    now = datetime.datetime.now(datetime.UTC).isoformat()
    characteristics = plant.characteristic_ids
    rows = [
        {
            "characteristic": characteristics[(index * BATCH + i) % len(characteristics)],
            "lot": plant.lot_number,
            "values": [round(rng.gauss(CENTER, SIGMA), 4)],
            "observed_at": now,
            "idempotency_key": f"{key}-{index}-{i}",
        }
        for i in range(BATCH)
    ]
    return json.dumps(rows).encode()

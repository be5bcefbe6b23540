"""What the observation table's indexes cost its writes: store N rows, then process them.

Run from the repository root against a real PostgreSQL (never the embedded SQLite):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/observation_writes.py \\
        [--rows 200000] [--rounds 3]

It (re)creates the database `openspc_writes_bench` (only one it created, as the other benchmarks
do), migrates it, and then, per round and per index set, in a scratch copy of the observations
table (CREATE TABLE … LIKE … INCLUDING ALL: the migrated indexes and constraints, no foreign keys):

* stores `--rows` rows as `received` (one INSERT … SELECT, as the pipeline's column-array insert);
* processes them: one UPDATE of status, characteristic, position, hash, lot checksum, sample and
  processed_at, as `observations.process` writes every row (indexed columns change: never a HOT
  update, so every index gets an entry again).

Index sets: `now` (as migrated) and `before` (with the indexes migration 0023 dropped added back:
the (lot, test) index that (lot, test, position) covers, the idempotency key's LIKE index, the
whole verified_by index). Milliseconds are the server's (clock_timestamp() read before and after
each statement), the best of the rounds.

Prints a table for people; the LAST line is one line of JSON: rows, and per index set `store_ms`,
`process_ms`, `us_per_row` (store and process together), `indexes`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest_common import bench_database_url, database_recreate, migrate  # noqa: E402

BEFORE = [
    'CREATE INDEX ON {t} ("lot_id", "test_id")',
    'CREATE INDEX ON {t} ("idempotency_key" varchar_pattern_ops)',
    'CREATE INDEX ON {t} ("verified_by_id")',
]
STORE = """
INSERT INTO {t} (item_id, lot_id, test_id, "values", observed_at, received_at, source, user_id,
                 idempotency_key, status, reasons, historical, late)
SELECT g %% 1000 + 1, g %% 50 + 1, g %% 20 + 1, '[74.0]'::jsonb, now(), now(), 'device', 1,
       'bench:' || g, 'received', '[]'::jsonb, false, false
FROM generate_series(1, %(rows)s) g
"""
PROCESS = """
UPDATE {t} SET status = 'confirmed', characteristic_id = id %% 200 + 1, "position" = id,
       hash = id * 7919, lot_checksum = id * 104729, sample_id = id, processed_at = now()
"""


def timed(conn, statement: str, params: dict[str, object] | None = None) -> float:
    """Milliseconds the server spent on the statement."""
    start = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    conn.execute(statement, params or {})
    end = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    return (end - start).total_seconds() * 1000


def run_set(conn, name: str, extra: list[str], rows: int) -> dict[str, float]:
    table = f"obs_{name}"
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (LIKE observations_observation INCLUDING ALL)")
    for statement in extra:
        conn.execute(statement.format(t=table))
    indexes = conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s", [table]).fetchone()[0]
    conn.execute("CHECKPOINT")
    store = timed(conn, STORE.format(t=table), {"rows": rows})
    process = timed(conn, PROCESS.format(t=table))
    conn.execute(f"DROP TABLE {table}")
    return {"store_ms": store, "process_ms": process, "indexes": indexes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", default="openspc_writes_bench")
    args = parser.parse_args(argv)
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit(
            "DATABASE_URL must name a PostgreSQL server (the benchmark creates its own database)."
        )

    import psycopg

    url = bench_database_url(database_url, args.database)
    database_recreate(database_url, args.database)
    try:
        migrate({**os.environ, "DATABASE_URL": url})
        best: dict[str, dict[str, float]] = {}
        with psycopg.connect(url, autocommit=True) as conn:
            for _ in range(args.rounds):
                for name, extra in (("before", BEFORE), ("now", [])):
                    got = run_set(conn, name, extra, args.rows)
                    kept = best.get(name)
                    total = got["store_ms"] + got["process_ms"]
                    if kept is None or total < kept["store_ms"] + kept["process_ms"]:
                        best[name] = got
    finally:
        database_recreate(database_url, args.database, drop_only=True)
    print(f"Observation writes: {args.rows:,} rows stored then processed, best of {args.rounds} rounds")
    print(f"{'index set':10} {'indexes':>7} {'store ms':>9} {'process ms':>11} {'µs per row':>11}")
    result: dict[str, object] = {"rows": args.rows}
    for name in ("before", "now"):
        got = best[name]
        per_row = 1000 * (got["store_ms"] + got["process_ms"]) / args.rows
        figures = f"{got['indexes']:>7} {got['store_ms']:>9.0f} {got['process_ms']:>11.0f} {per_row:>11.2f}"
        print(f"{name:10} {figures}")
        result[name] = {**{k: round(v, 1) for k, v in got.items()}, "us_per_row": round(per_row, 2)}
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

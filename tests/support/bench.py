"""What the benchmark tests share: the PostgreSQL they need, and the databases a run left behind."""

import os
from urllib.parse import urlsplit

import psycopg
import pytest


def postgres_url() -> str:
    """DATABASE_URL when it is PostgreSQL and Redis is configured; else the test is skipped (a bench
    measures the production setup)."""
    database_url = os.environ.get("DATABASE_URL", "")
    if urlsplit(database_url).scheme not in {"postgres", "postgresql"} or not os.environ.get("REDIS_URL"):
        pytest.skip("needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)")
    return database_url


def database_names(database_url: str, pattern: str) -> list[str]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [pattern]).fetchall()
    return [name for (name,) in rows]

"""Workers keep their database connection between tasks, as Django keeps one between requests."""

import time

import pytest
from django.db import connection

from openspc.celery import _database_connections_tidy, app


class _Request:
    def __init__(self, is_eager: bool) -> None:
        self.is_eager = is_eager


class _Task:
    def __init__(self, is_eager: bool = False) -> None:
        self.request = _Request(is_eager)


# SQLite's in-memory test database is never closed by Django (closing it would lose it), so what
# is kept or closed shows on PostgreSQL, where the workers' connections matter.
@pytest.mark.skipif(connection.vendor != "postgresql", reason="Django never closes SQLite's test database")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class ConnectionTidyTests:
    def test_a_healthy_connection_is_kept_for_the_next_task(self, monkeypatch):
        connection.ensure_connection()
        kept = connection.connection
        monkeypatch.setattr(connection, "close_at", None)  # persistent (CONN_MAX_AGE None)
        _database_connections_tidy(sender=_Task())
        assert connection.connection is kept

    def test_a_connection_past_its_age_is_closed(self, monkeypatch):
        connection.ensure_connection()
        monkeypatch.setattr(connection, "close_at", time.monotonic() - 1)
        _database_connections_tidy(sender=_Task())
        assert connection.connection is None

    def test_a_broken_connection_is_closed(self, monkeypatch):
        connection.ensure_connection()
        monkeypatch.setattr(connection, "close_at", None)
        connection.connection.close()  # the server went away under it
        connection.errors_occurred = True
        _database_connections_tidy(sender=_Task())
        assert connection.connection is None

    def test_an_eager_task_leaves_the_callers_connection_alone(self, monkeypatch):
        connection.ensure_connection()
        kept = connection.connection
        monkeypatch.setattr(connection, "close_at", time.monotonic() - 1)
        _database_connections_tidy(sender=_Task(is_eager=True))
        assert connection.connection is kept


def test_celerys_fixup_does_not_close_the_connection_around_every_task():
    # Unset, the fixup closes it before and after each task (a new PostgreSQL process per task).
    assert app.conf.get("CELERY_DB_REUSE_MAX", 0) >= 100_000

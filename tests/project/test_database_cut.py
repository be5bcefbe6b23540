"""A request whose database connection is cut while it runs answers 503 with Retry-After, and the
log has one line about it, no traceback; the next request gets a new connection and succeeds.

The cut is real: a second connection holds an ACCESS EXCLUSIVE lock on the table the request reads,
so the request's query waits in PostgreSQL, and a third terminates that waiting backend
(pg_terminate_backend), as a restarted or failed-over server would.
"""

import logging
import threading
import time
from types import TracebackType

import psycopg
import pytest
from django.db import connection

from apps.observations.models import Lot
from tests.factories import LotFactory

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="cuts a PostgreSQL backend"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def connect() -> psycopg.Connection:
    db = connection.settings_dict
    return psycopg.connect(
        dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"] or None,
        host=db["HOST"] or None, port=db["PORT"] or None, autocommit=True,
    )  # fmt: skip


class Cut:
    """While open: `table` is locked, and the first backend that waits for it is terminated."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.terminated: list[int] = []
        self.stop = threading.Event()

    def __enter__(self) -> "Cut":
        self.holder = connect()
        self.holder.autocommit = False
        self.holder.execute(f'LOCK TABLE "{self.table}" IN ACCESS EXCLUSIVE MODE')
        self.killer = threading.Thread(target=self._terminate_the_waiter, daemon=True)
        self.killer.start()
        return self

    def _terminate_the_waiter(self) -> None:
        holder_pid = self.holder.info.backend_pid
        with connect() as killer:
            while not self.stop.is_set() and not self.terminated:
                waiting = killer.execute(
                    "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [holder_pid]
                ).fetchall()
                for (pid,) in waiting:
                    killer.execute("SELECT pg_terminate_backend(%s)", [pid])
                    self.terminated.append(pid)
                time.sleep(0.02)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop.set()
        self.killer.join(timeout=10)
        self.holder.rollback()
        self.holder.close()


def cut_request(client, path: str, **extra: str):
    """GET `path` with its connection cut while it reads the lots; the response."""
    with Cut(Lot._meta.db_table) as cut:
        response = client.get(path, **extra)
    assert len(cut.terminated) == 1, "the request never waited for the lock"
    return response


def one_line_logged(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    """The one record logged at WARNING or above: about the database, and without a traceback."""
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(records) == 1, [(r.name, r.getMessage()) for r in records]
    (record,) = records
    assert record.exc_info is None
    assert record.exc_text is None
    assert "\n" not in record.getMessage()
    assert "database" in record.getMessage().lower()
    return record


def test_an_api_request_cut_mid_query_answers_503_with_retry_after(api, operations_lead, caplog):
    lot = LotFactory()
    client = api(operations_lead)
    with caplog.at_level(logging.INFO):
        response = cut_request(client, "/api/v1/lots/")

    assert response.status_code == 503
    assert int(response["Retry-After"]) in range(1, 31)
    assert response.json() == {
        "error": {
            "code": "database_unavailable",
            "message": "The database is unavailable; try again shortly.",
            "fields": {},
        }
    }
    record = one_line_logged(caplog)
    assert "GET /api/v1/lots/" in record.getMessage()

    again = client.get("/api/v1/lots/")
    assert again.status_code == 200
    assert [row["id"] for row in again.json()["results"]] == [lot.pk]


def test_a_page_request_cut_mid_query_answers_503_with_retry_after(client, operations_lead, caplog):
    lot = LotFactory(number="L-CUT")
    client.force_login(operations_lead)
    with caplog.at_level(logging.INFO):
        response = cut_request(client, "/lots/")

    assert response.status_code == 503
    assert int(response["Retry-After"]) in range(1, 31)
    assert response["Content-Type"].startswith("text/html")
    assert "try again" in response.content.decode().lower()
    record = one_line_logged(caplog)
    assert "GET /lots/" in record.getMessage()

    again = client.get("/lots/")
    assert again.status_code == 200
    assert lot.number in again.content.decode()


def test_under_daphne_with_its_pool_the_cut_answers_503_and_logs_one_line(operations_lead, tmp_path):
    """The web process as deployed: daphne, connections from psycopg's pool."""
    from tests.support.daphne import Daphne, access_token

    lot = LotFactory()
    token = access_token(operations_lead)
    with Daphne(log_dir=tmp_path) as web:
        with Cut(Lot._meta.db_table) as cut:
            status, body = web.http("GET", "/api/v1/lots/", token=token)
        assert len(cut.terminated) == 1, "the request never waited for the lock"
        again = [web.http("GET", "/api/v1/lots/", token=token) for _ in range(3)]
    log = web.log.read_text()

    assert (status, body["error"]["code"]) == (503, "database_unavailable")
    assert [(code, [row["id"] for row in answer["results"]]) for code, answer in again] == [
        (200, [lot.pk])
    ] * 3
    lines = [line for line in log.splitlines() if "Database unavailable" in line]
    assert len(lines) == 1, log
    assert "GET /api/v1/lots/" in lines[0]
    assert "Traceback" not in log
    assert "Internal Server Error" not in log

"""The SQL statements of one synchronous sample, POST /api/v1/samples/ (issue #20), pinned on
PostgreSQL for a subgroup of 1 and of 5, so that a statement that creeps in fails here with the
list of what ran.

Warm, as in a running server after its first sample of the characteristic: the rolling window
stored in Redis by the warm-up POST's commit, Django's in-process content type cache, and the
configuration each process keeps (the characteristic, its product's tests and plans, the current
limits: apps.config.cached), and the user's roles and permissions (openspc.roles). The user and
the statistics are read by each POST.

The test runs in one transaction, so each of the request's transactions shows as a SAVEPOINT and
its RELEASE; in a server those are a BEGIN and a COMMIT, which Django does not log. They are
counted apart, as transactions.
"""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.config.models import Characteristic
from apps.observations import handoff
from tests.calculations.api_helpers import assigned_item, dia_of, historical, sized, submit

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the statements pinned are PostgreSQL's"),
]

STATEMENTS = 15  # besides the transactions' own
TRANSACTIONS = 3  # record, process, calculate


@pytest.fixture
def charted(plant: Any, request: pytest.FixtureRequest) -> tuple[Characteristic, list[float]]:
    """A characteristic of subgroup size n with historical limits, on an item assigned to the
    tester, and a subgroup of it."""
    n = request.param
    if n == 1:
        characteristic = dia_of(plant)
        assigned_item(plant)
        historical(characteristic, center=74.0, sigma=0.01)
        return characteristic, [74.004]
    characteristic = sized(plant, n)
    assigned_item(plant, characteristic)
    historical(characteristic, center=10.0, sigma=1.0)
    return characteristic, [10.0 + (i % 3 - 1) / 10 for i in range(n)]


def _listing(queries: list[dict[str, Any]]) -> str:
    return "\n".join(f"{i}. {' '.join(q['sql'].split())[:240]}" for i, q in enumerate(queries, 1))


@pytest.mark.parametrize("charted", [1, 5], indirect=True, ids=["n=1", "n=5"])
def test_one_synchronous_sample_runs_a_fixed_number_of_statements(
    api, plant, charted, monkeypatch, django_capture_on_commit_callbacks
):
    characteristic, values = charted
    # A calculation queued for the worker would go to the broker: noted, not sent. None is: the
    # request calculates its sample itself.
    queued: list[list[int]] = []
    monkeypatch.setattr(
        handoff, "calculations_queue", lambda *, characteristic_ids: queued.append(characteristic_ids)
    )
    client = api(plant.tester)
    item = plant.items[0].pk
    with django_capture_on_commit_callbacks(execute=True):  # stores the window in Redis
        warm = submit(client, characteristic, values, lot=plant.lot, item=item, idempotency_key="warm-up")
    assert warm.status_code == 201, warm.content
    with CaptureQueriesContext(connection) as captured:
        response = submit(
            client, characteristic, values, lot=plant.lot, item=item, idempotency_key="measured"
        )
    assert response.status_code == 201, response.content
    assert response.json()["sample"]["sequence"] == 2
    assert queued == []
    queries = captured.captured_queries
    transactions = [q for q in queries if q["sql"].startswith("SAVEPOINT")]
    statements = [
        q
        for q in queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT"))
    ]
    assert (len(statements), len(transactions)) == (STATEMENTS, TRANSACTIONS), (
        f"{len(statements)} statements in {len(transactions)} transactions, "
        f"pinned {STATEMENTS} in {TRANSACTIONS}:\n{_listing(queries)}"
    )

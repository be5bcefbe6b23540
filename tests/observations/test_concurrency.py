"""Two workers on the same rows, two posts of the same keys at once (PostgreSQL: real row locks)."""

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from apps.observations import services
from apps.observations.choices import ObservationStatus
from apps.observations.models import Observation
from tests.factories import ObservationFactory
from tests.support.plant import Plant

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locking needs PostgreSQL"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _in_another_connection(work: Callable[[], Any]) -> dict[str, Any]:
    """Run `work` in a thread (its own database connection) and wait for it."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except Exception as exc:
            outcome["error"] = exc
        finally:
            close_old_connections()
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    return outcome


def test_a_second_worker_skips_rows_the_first_holds(tester):
    plant = Plant(tester)
    ids = plant.record(
        {"item": plant.items[0], "test": plant.dia, "values": [74.0]},
        {"item": plant.items[1], "test": plant.dia, "values": [74.1]},
    )
    with transaction.atomic():
        # This transaction plays the first worker, holding the first row mid-processing.
        list(Observation.objects.select_for_update().filter(pk=ids[0]))
        outcome = _in_another_connection(lambda: services.observations_process(ids=ids))
        assert outcome == {"result": services.ProcessResult(confirmed=1, rejected=0)}  # did not wait
    statuses = dict(Observation.objects.values_list("pk", "status"))
    assert statuses == {ids[0]: ObservationStatus.RECEIVED, ids[1]: ObservationStatus.CONFIRMED}
    assert services.observations_process(ids=ids).confirmed == 1  # the redelivery finishes it


def _waiting_on_a_lock(timeout: float = 10.0) -> bool:
    """Whether another backend of this database waits on a lock (polled for up to `timeout` s). The
    statistics views keep one snapshot per transaction: each poll clears it."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.05)
    return False


def test_a_key_stored_concurrently_becomes_a_duplicate_not_an_error(tester):
    """Another request has inserted the key and not committed when ours inserts: ours waits for it
    (ON CONFLICT), then answers its id as a duplicate and stores only the other entry."""
    plant = Plant(tester)
    entries = services.tester_entries_resolve(
        rows=[
            {"item": plant.items[0].pk, "test": plant.dia.pk, "values": [74.0], "idempotency_key": "a"},
            {"item": plant.items[1].pk, "test": plant.dia.pk, "values": [74.0], "idempotency_key": "b"},
        ],
        user=tester,
        batch=True,
    )
    outcome: dict[str, Any] = {}
    ours = threading.Thread(
        target=lambda: outcome.update(
            _in_another_connection(
                lambda: services.observations_record(entries=entries, source="manual", user=tester)
            )
        )
    )
    with transaction.atomic():
        now = timezone.now()  # no observed_at given: the other request stored its receipt time
        stored_by_the_other = ObservationFactory(
            item=plant.items[0], test=plant.dia, values=[74.0], idempotency_key=f"{tester.pk}:a",
            observed_at=now, received_at=now,
        ).pk  # fmt: skip
        ours.start()
        assert _waiting_on_a_lock(), "our insert did not wait for the uncommitted key"
    ours.join(timeout=30)
    assert "error" not in outcome, outcome
    result = outcome["result"]
    assert result.ids[0] == stored_by_the_other
    assert result.duplicates == [stored_by_the_other]
    assert Observation.objects.count() == 2
    assert Observation.objects.get(pk=result.ids[1]).idempotency_key == f"{tester.pk}:b"


def test_taking_more_skips_the_rows_another_worker_holds(tester):
    plant = Plant(tester)
    ids = plant.record(
        *({"item": item, "test": plant.dia, "values": [74.0]} for item in plant.items)  # 3 rows
    )
    with transaction.atomic():
        Observation.objects.select_for_update().get(pk=ids[0])  # the other worker, mid-processing
        outcome = _in_another_connection(lambda: services.observations_process(ids=[ids[2]], up_to=6))
        assert outcome == {"result": services.ProcessResult(confirmed=2, rejected=0)}  # did not wait
    statuses = dict(Observation.objects.values_list("pk", "status"))
    assert [statuses[pk] for pk in ids] == [
        ObservationStatus.RECEIVED,
        ObservationStatus.CONFIRMED,
        ObservationStatus.CONFIRMED,
    ]

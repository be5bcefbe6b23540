"""Two workers on the same rows, two posts of the same keys at once (PostgreSQL: real row locks)."""

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import close_old_connections, connection, transaction

from apps.observations import services
from apps.observations.choices import ObservationStatus
from apps.observations.models import Observation
from tests.factories import ObservationFactory
from tests.observations.conftest import Plant

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


def test_a_key_stored_concurrently_becomes_a_duplicate_not_an_error(tester, monkeypatch):
    """The other request commits a key between our read of existing keys and our insert."""
    plant = Plant(tester)
    entries = services.tester_entries_resolve(
        rows=[
            {"item": plant.items[0].pk, "test": plant.dia.pk, "values": [74.0], "idempotency_key": "a"},
            {"item": plant.items[1].pk, "test": plant.dia.pk, "values": [74.0], "idempotency_key": "b"},
        ],
        user=tester,
        batch=True,
    )
    real_bulk_create = Observation.objects.bulk_create
    other: dict[str, Any] = {}

    def racing_bulk_create(objs: Any, **kwargs: Any) -> Any:
        if not other:
            other.update(
                _in_another_connection(
                    lambda: ObservationFactory(
                        item=plant.items[0], test=plant.dia, idempotency_key=f"{tester.pk}:a"
                    )
                )
            )
        return real_bulk_create(objs, **kwargs)

    monkeypatch.setattr(Observation.objects, "bulk_create", racing_bulk_create)
    result = services.observations_record(entries=entries, source="manual", user=tester)
    stored_by_the_other = other["result"].pk
    assert result.ids[0] == stored_by_the_other
    assert result.duplicates == [stored_by_the_other]
    assert Observation.objects.count() == 2

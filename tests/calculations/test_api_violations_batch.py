"""Acknowledging violations in a batch: all or none, one audit entry each, broadcast (issue 5)."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from apps.audit.models import AuditAction, AuditEntry
from apps.calculations.models import Violation
from openspc.events import events_unpack
from tests.calculations.api_helpers import dia_of, historical, subgroups_store

URL = "/api/v1/violations/acknowledge/"


def _violations(plant) -> list[Violation]:
    """Three rule 1 violations on the DIA chart (three points far beyond the limits)."""
    dia = dia_of(plant)
    historical(dia, center=74.0, sigma=0.01)
    subgroups_store(dia, [[74.001], [74.5], [73.5], [74.6]], lot=plant.lot, user=plant.tester)
    found = list(Violation.objects.filter(characteristic=dia, rule=1, chart="location").order_by("pk"))
    assert len(found) == 3
    return found


@pytest.fixture
def three(plant) -> list[Violation]:
    return _violations(plant)


def _acknowledged() -> int:
    return AuditEntry.objects.filter(action=AuditAction.ACKNOWLEDGE).count()


class BatchAcknowledgeTests:
    def test_all_are_acknowledged_with_one_audit_entry_each(self, api, manager, three):
        ids = [v.pk for v in three]
        body = {
            "ids": ids,
            "reason": "assignable-cause",
            "comment": "Tool wear",
            "corrective_action": "New tool",
        }
        response = api(manager).post(URL, body, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["count"] == 3
        assert [v["id"] for v in response.json()["violations"]] == ids
        rows = Violation.objects.filter(pk__in=ids)
        assert {(v.acknowledged_by_id, v.acknowledgement_reason.code, v.corrective_action) for v in rows} == {
            (manager.pk, "assignable-cause", "New tool")
        }
        entries = AuditEntry.objects.filter(action=AuditAction.ACKNOWLEDGE)
        assert sorted(int(e.object_id) for e in entries) == ids
        assert {(e.user_id, e.reason, e.source) for e in entries} == {
            (manager.pk, "assignable-cause: Tool wear", "api")
        }
        assert all(e.before["acknowledged_at"] is None and e.after["acknowledged_at"] for e in entries)

    def test_one_acknowledged_before_refuses_the_whole_batch(self, api, manager, three):
        first = api(manager).post(f"/api/v1/violations/{three[1].pk}/acknowledge/", {"reason": "no-action"})
        assert first.status_code == 200
        response = api(manager).post(
            URL, {"ids": [v.pk for v in three], "reason": "no-action"}, format="json"
        )
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "conflict"
        assert f"Violations {three[1].pk} were acknowledged already" in error["message"]
        assert (
            Violation.objects.filter(pk__in=[three[0].pk, three[2].pk], acknowledged_at__isnull=False).count()
            == 0
        )
        assert _acknowledged() == 1

    def test_an_unknown_id_is_named_and_nothing_changes(self, api, manager, three):
        response = api(manager).post(
            URL, {"ids": [three[0].pk, 987654], "reason": "no-action"}, format="json"
        )
        assert response.status_code == 400
        assert "987654" in response.json()["error"]["fields"]["ids"][0]
        assert not Violation.objects.filter(acknowledged_at__isnull=False).exists()
        assert _acknowledged() == 0

    def test_a_repeated_id_counts_once(self, api, manager, three):
        ids = [three[0].pk, three[0].pk, three[1].pk]
        response = api(manager).post(URL, {"ids": ids, "reason": "no-action"}, format="json")
        assert response.status_code == 200
        assert response.json()["count"] == 2
        assert _acknowledged() == 2

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"ids": [], "reason": "no-action"}, "ids"),
            ({"ids": list(range(1, 502)), "reason": "no-action"}, "no more than 500"),
            ({"ids": [1]}, "reason"),
        ],
    )
    def test_an_empty_too_large_or_reasonless_batch_is_refused(self, api, manager, three, body, message):
        response = api(manager).post(URL, body, format="json")
        assert response.status_code == 400
        assert message in str(response.json()["error"])
        assert _acknowledged() == 0

    def test_testers_and_operations_leads_may_not(self, api, tester, operations_lead, three):
        for user in (tester, operations_lead):
            response = api(user).post(URL, {"ids": [three[0].pk], "reason": "no-action"}, format="json")
            assert response.status_code == 403
        assert _acknowledged() == 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_each_acknowledgement_is_broadcast_after_commit(plant, manager, api):
    violations = _violations(plant)
    layer = get_channel_layer()

    async def subscribe():
        channel = await layer.new_channel()
        await layer.group_add(f"characteristic.{violations[0].characteristic_id}", channel)
        return channel

    channel = async_to_sync(subscribe)()
    ids = [v.pk for v in violations[:2]]
    response = api(manager).post(URL, {"ids": ids, "reason": "no-action"}, format="json")
    assert response.status_code == 200

    async def receive():
        events = []
        while len(events) < 2:
            events += events_unpack(await asyncio.wait_for(layer.receive(channel), timeout=3))
        return events

    events = async_to_sync(receive)()
    assert [(e["type"], e["id"]) for e in events] == [("violation.acknowledged", pk) for pk in ids]
    assert {e["acknowledged_by"] for e in events} == {manager.pk}

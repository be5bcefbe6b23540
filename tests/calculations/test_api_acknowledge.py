"""Acknowledging a violation: who, why, once; audited; broadcast after commit (issue 5)."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from apps.audit.models import AuditAction, AuditEntry
from apps.calculations.models import AcknowledgementReason, Violation
from openspc.events import events_unpack
from tests.calculations.api_helpers import dia_of, historical, subgroups_store
from tests.factories import UserFactory


def _violation(plant) -> Violation:
    dia = dia_of(plant)
    historical(dia, center=74.0, sigma=0.01)
    subgroups_store(dia, [[74.001], [74.5]], lot=plant.lot, user=plant.tester)  # 74.5: beyond UCL
    return Violation.objects.filter(characteristic=dia, chart="location").get()


def _url(violation: Violation) -> str:
    return f"/api/v1/violations/{violation.pk}/acknowledge/"


@pytest.fixture
def plant_violation(plant):
    return _violation(plant)


class AcknowledgeTests:
    def test_a_manager_acknowledges_with_a_reason_comment_and_corrective_action(
        self, api, manager, plant_violation
    ):
        response = api(manager).post(
            _url(plant_violation),
            {"reason": "assignable-cause", "comment": "Worn insert", "corrective_action": "Insert changed"},
            format="json",
        )
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["acknowledged_by"] == manager.pk
        assert body["acknowledgement_reason"] == "assignable-cause"
        assert (body["acknowledgement_comment"], body["corrective_action"]) == (
            "Worn insert",
            "Insert changed",
        )
        row = Violation.objects.get(pk=plant_violation.pk)
        assert row.acknowledged_by == manager
        assert row.acknowledged_at is not None
        assert row.acknowledgement_reason.code == "assignable-cause"

    def test_a_second_acknowledgement_answers_409_and_changes_nothing(self, api, manager, plant_violation):
        other = UserFactory(username="other-manager", roles=["Manager"])
        first = api(manager).post(_url(plant_violation), {"reason": "no-action"}, format="json")
        assert first.status_code == 200
        before = Violation.objects.filter(pk=plant_violation.pk).values().get()
        second = api(other).post(_url(plant_violation), {"reason": "process-adjusted"}, format="json")
        assert second.status_code == 409
        assert second.json()["error"]["code"] == "conflict"
        assert "acknowledged already" in second.json()["error"]["message"]
        assert Violation.objects.filter(pk=plant_violation.pk).values().get() == before
        assert AuditEntry.objects.filter(action=AuditAction.ACKNOWLEDGE).count() == 1

    def test_a_user_named_in_the_body_is_ignored(self, api, manager, plant_violation):
        someone = UserFactory(username="someone-else", roles=["Manager"])
        body = {"reason": "no-action", "acknowledged_by": someone.pk, "user": someone.pk}
        assert api(manager).post(_url(plant_violation), body, format="json").status_code == 200
        assert Violation.objects.get(pk=plant_violation.pk).acknowledged_by == manager

    def test_the_audit_log_holds_one_entry_with_before_and_after(self, api, manager, plant_violation):
        api(manager).post(_url(plant_violation), {"reason": "no-action", "comment": "seen"}, format="json")
        entry = AuditEntry.objects.get(action=AuditAction.ACKNOWLEDGE)
        assert (entry.user, entry.object_id, entry.source) == (manager, str(plant_violation.pk), "api")
        assert entry.before["acknowledged_at"] is None
        assert entry.before["acknowledged_by"] is None
        assert entry.after["acknowledged_by"] == manager.pk
        assert entry.after["acknowledgement_comment"] == "seen"
        assert entry.reason == "no-action: seen"

    @pytest.mark.parametrize(
        ("body", "field"),
        [({}, "reason"), ({"reason": "no-such-code"}, "reason"), ({"reason": "retired"}, "reason")],
    )
    def test_a_missing_unknown_or_retired_reason_is_refused(self, api, manager, plant_violation, body, field):
        AcknowledgementReason.objects.create(code="retired", label="Old", active=False)
        response = api(manager).post(_url(plant_violation), body, format="json")
        assert response.status_code == 400
        assert field in response.json()["error"]["fields"]
        assert Violation.objects.get(pk=plant_violation.pk).acknowledged_at is None
        assert not AuditEntry.objects.filter(action=AuditAction.ACKNOWLEDGE).exists()

    def test_testers_and_operations_leads_may_not_acknowledge(
        self, api, tester, operations_lead, plant_violation
    ):
        for user in (tester, operations_lead):
            response = api(user).post(_url(plant_violation), {"reason": "no-action"}, format="json")
            assert response.status_code == 403
        assert Violation.objects.get(pk=plant_violation.pk).acknowledged_at is None

    def test_quality_specialists_may(self, api, quality_specialist, plant_violation):
        response = api(quality_specialist).post(_url(plant_violation), {"reason": "no-action"}, format="json")
        assert response.status_code == 200

    def test_the_reason_codes_are_listed(self, api, manager):
        codes = [row["code"] for row in api(manager).get("/api/v1/acknowledgement-reasons/").json()]
        assert codes[:2] == ["assignable-cause", "measurement-error"]
        assert "no-action" in codes


class RequiresAcknowledgementTests:
    def test_rules_the_characteristic_does_not_list_are_informational(self, plant):
        dia = dia_of(plant)
        dia.acknowledge_rules = [2, 3]
        dia.save()
        historical(dia, center=74.0, sigma=0.01)
        subgroups_store(dia, [[74.001], [74.5]], lot=plant.lot, user=plant.tester)
        assert set(
            Violation.objects.filter(characteristic=dia).values_list("requires_acknowledgement", flat=True)
        ) == {False}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_acknowledgement_is_broadcast_after_commit(plant, manager):
    from apps.calculations import services

    violation = _violation(plant)
    reason = AcknowledgementReason.objects.get(code="no-action")

    async def scenario():
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(f"characteristic.{violation.characteristic_id}", channel)
        await asyncio.sleep(0)
        return layer, channel

    layer, channel = async_to_sync(scenario)()
    with transaction.atomic():
        services.violation_acknowledge(violation=violation, user=manager, reason=reason, comment="ok")

    async def receive():
        return await asyncio.wait_for(layer.receive(channel), timeout=3)

    events = events_unpack(async_to_sync(receive)())
    assert [e["type"] for e in events] == ["violation.acknowledged"]
    assert events[0]["id"] == violation.pk
    assert (events[0]["acknowledged_by"], events[0]["reason"], events[0]["comment"]) == (
        manager.pk,
        "no-action",
        "ok",
    )
    assert events[0]["acknowledged_by_name"] == "manager"

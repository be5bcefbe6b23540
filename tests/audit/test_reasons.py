"""A change of the specification limits or the rules, a plan release and a control limits change
say why (issue 18): without a reason, a 400 (or a form error) naming `reason`, and nothing changes;
the reason is kept on the audit entry. Other configuration changes may carry one."""

import json

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.test import Client

from apps.audit.choices import AuditAction
from apps.audit.models import AuditEntry
from apps.config import services
from apps.config.choices import PlanStatus
from apps.config.models import Characteristic, TestPlan
from tests.config.helpers import error_of
from tests.factories import ProductFactory, TestFactory, TestPlanFactory, characteristic_for
from tests.support.signing import PASSWORD, QS_SIGNATURE

pytestmark = pytest.mark.django_db


@pytest.fixture
def dia() -> Characteristic:
    return characteristic_for(ProductFactory(code="RING-74"), TestFactory(code="DIA"), lsl=1.0, usl=2.0)


def plan_entries(plan: TestPlan) -> list[AuditEntry]:
    return list(
        AuditEntry.objects.filter(content_type__model="testplan", object_id=str(plan.pk)).order_by("seq")
    )


def release(client, plan: TestPlan, body: dict | None = None):
    return client.post(f"/api/v1/test-plans/{plan.pk}/release/", body or {}, format="json")


def url(characteristic: Characteristic) -> str:
    return f"/api/v1/characteristics/{characteristic.pk}/"


def row(characteristic: Characteristic) -> dict:
    return Characteristic.objects.filter(pk=characteristic.pk).values(*services.CHARACTERISTIC_FIELDS).get()


def updates(characteristic: Characteristic) -> list[AuditEntry]:
    return list(
        AuditEntry.objects.filter(
            action=AuditAction.UPDATE, content_type__model="characteristic", object_id=str(characteristic.pk)
        ).order_by("seq")
    )


class CharacteristicReasonTests:
    @pytest.mark.parametrize(
        ("change", "named"),
        [
            ({"usl": 2.5}, "USL"),
            ({"lsl": 0.5, "target": 1.5}, "LSL, target"),
            ({"rule_preset": "western_electric"}, "rules"),
            ({"acknowledge_rules": [1]}, "rules to acknowledge"),
        ],
    )
    def test_a_change_of_specification_or_rules_without_a_reason_is_400_and_changes_nothing(
        self, api, quality_specialist, dia, change, named
    ):
        before, audited = row(dia), len(updates(dia))
        for body in (change, {**change, "reason": " "}):
            error = error_of(api(quality_specialist).patch(url(dia), body, format="json"), 400, "reason")
            assert f"Say why the {named} change" in error["message"]
        assert row(dia) == before
        assert len(updates(dia)) == audited

    def test_the_reason_is_kept_on_the_audit_entry(self, api, quality_specialist, dia):
        body = {"usl": 2.5, "reason": "Drawing rev. C"}
        response = api(quality_specialist).patch(url(dia), body, format="json")
        assert response.status_code == 200, response.content
        assert "reason" not in response.json()  # written, never read back
        entry = updates(dia)[-1]
        assert (entry.before, entry.after, entry.reason) == ({"usl": 2.0}, {"usl": 2.5}, "Drawing rev. C")

    def test_other_changes_need_none_and_may_carry_one(self, api, quality_specialist, dia):
        client = api(quality_specialist)
        assert client.patch(url(dia), {"line": "L1"}, format="json").status_code == 200
        body = {"line": "L2", "reason": "Moved"}
        assert client.patch(url(dia), body, format="json").status_code == 200
        assert [e.reason for e in updates(dia)[-2:]] == ["", "Moved"]

    def test_setting_the_same_limits_again_needs_no_reason(self, api, quality_specialist, dia):
        response = api(quality_specialist).patch(url(dia), {"lsl": 1.0, "usl": 2.0}, format="json")
        assert response.status_code == 200, response.content

    def test_the_service_asks_too(self, dia):
        with pytest.raises(ValidationError, match="Say why the USL change"):
            services.characteristic_update(characteristic=dia, data={"usl": 3.0})
        assert Characteristic.objects.get(pk=dia.pk).usl == 2.0


class PlanReleaseReasonTests:
    def test_releasing_without_a_reason_is_400_and_the_plan_stays_a_draft(self, api, quality_specialist):
        plan = TestPlanFactory(code="REL", tests=[TestFactory()])
        audited = len(plan_entries(plan))
        error = error_of(release(api(quality_specialist), plan), 400, "reason")
        assert "Say why the plan is released" in error["message"]
        assert TestPlan.objects.get(pk=plan.pk).status == PlanStatus.DRAFT
        assert len(plan_entries(plan)) == audited

    def test_the_reason_is_on_the_release_entry(self, api, quality_specialist):
        plan = TestPlanFactory(code="REL", tests=[TestFactory()])
        response = release(
            api(quality_specialist), plan, {"reason": "Validated per VP-12", "signature": QS_SIGNATURE}
        )
        assert response.status_code == 200, response.content
        entry = plan_entries(plan)[-1]
        assert (entry.after, entry.reason) == ({"status": "released"}, "Validated per VP-12")


class LimitsReasonTests:
    def test_setting_or_freezing_limits_without_a_reason_says_why_in_words(
        self, api, quality_specialist, dia
    ):
        client = api(quality_specialist)
        for action, body in (
            ("set-limits", {"center": 1.5, "sigma": 0.1}),
            ("freeze-limits", {"frozen": True}),
        ):
            response = client.post(f"{url(dia)}{action}/", body, format="json")
            error = error_of(response, 400, "reason")
            assert "Say why the limits change" in error["message"]
        assert not dia.limits.exists()


@pytest.fixture
def admin_qs(quality_specialist) -> Client:
    client = Client()
    client.force_login(quality_specialist)
    return client


def form_data(characteristic: Characteristic, **changes: object) -> dict[str, object]:
    values = {name: getattr(characteristic, name) for name in services.CHARACTERISTIC_FIELDS}
    values.update(changes)
    data: dict[str, object] = {
        "limits-TOTAL_FORMS": "0",
        "limits-INITIAL_FORMS": "0",
        "limits-MAX_NUM_FORMS": "0",
    }
    for name, value in values.items():
        if name in {"rules", "chart_params", "acknowledge_rules"}:
            data[name] = json.dumps(value)
        elif name == "active":
            if value:
                data[name] = "on"
        else:
            data[name] = "" if value is None else value
    return data


class AdminReasonTests:
    def test_the_characteristic_form_asks_for_a_reason_when_the_limits_change(self, admin_qs, dia):
        change = f"/admin/config/characteristic/{dia.pk}/change/"
        response = admin_qs.post(change, form_data(dia, usl=2.5))
        assert response.status_code == 200
        assert "Say why the USL change" in response.content.decode()
        assert Characteristic.objects.get(pk=dia.pk).usl == 2.0
        response = admin_qs.post(change, {**form_data(dia, usl=2.5), "reason": "Drawing rev. C"})
        assert response.status_code == 302
        entry = updates(dia)[-1]
        assert (entry.after, entry.reason, entry.source) == ({"usl": 2.5}, "Drawing rev. C", "admin")

    def test_the_form_saves_other_changes_without_one(self, admin_qs, dia):
        response = admin_qs.post(f"/admin/config/characteristic/{dia.pk}/change/", form_data(dia, line="L4"))
        assert response.status_code == 302
        assert updates(dia)[-1].after == {"line": "L4"}

    def test_the_release_action_takes_the_reason_from_the_action_bar(self, admin_qs):
        plan = TestPlanFactory(code="READY", tests=[TestFactory()])
        data = {"action": "release_plans", "_selected_action": [plan.pk]}
        response = admin_qs.post("/admin/config/testplan/", data, follow=True)
        messages = [str(m) for m in get_messages(response.wsgi_request)]
        assert any("Say why the plan is released" in m for m in messages), messages
        assert TestPlan.objects.get(pk=plan.pk).status == PlanStatus.DRAFT
        signed = {"signature_password": PASSWORD, "signature_meaning": "approved", "signature_username": "qs"}
        admin_qs.post("/admin/config/testplan/", {**data, **signed, "reason": "Validated"}, follow=True)
        assert TestPlan.objects.get(pk=plan.pk).status == PlanStatus.RELEASED
        entry = AuditEntry.objects.filter(content_type__model="testplan", object_id=str(plan.pk)).latest(
            "seq"
        )
        assert (entry.reason, entry.source) == ("Validated", "admin")

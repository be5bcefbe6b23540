"""The audit trail (issue 5): who, when, what, before and after, why; read by quality specialists
through /api/v1/audit/, written only by the services and the admin."""

import datetime

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from apps.audit.models import AuditAction, AuditEntry
from apps.config import services
from apps.config.models import Characteristic, Product, TestPlan
from apps.observations.models import Sample
from tests.calculations.api_helpers import characteristic_url, dia_of, subgroups_store
from tests.factories import TestFactory, UserFactory
from tests.support.signing import QS_SIGNATURE

URL = "/api/v1/audit/"

pytestmark = pytest.mark.django_db


def product(*, code: str, name: str = "A product") -> Product:
    """A product made through the service, as the API and admin make them (so it is audited)."""
    return services.product_create(code=code, name=name)


def _entries(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


@pytest.fixture
def admin_qs(quality_specialist) -> Client:
    """The quality specialist (staff, in the group, not a superuser) signed in to the admin."""
    client = Client()
    client.force_login(quality_specialist)
    return client


class AuditApiAccessTests:
    def test_quality_specialists_read_managers_testers_and_operations_leads_do_not(
        self, api, quality_specialist, manager, tester, operations_lead
    ):
        product(code="X-1")
        assert api(quality_specialist).get(URL).status_code == 200
        for user in (manager, tester, operations_lead):
            assert api(user).get(URL).status_code == 403
        assert api(None).get(URL).status_code == 401

    def test_every_write_is_405_and_changes_nothing(self, api, quality_specialist):
        product(code="X-1")
        entry = AuditEntry.objects.get()
        client = api(quality_specialist)
        body = {"reason": "tampered", "action": "delete"}
        assert client.post(URL, body, format="json").status_code == 405
        for method in (client.put, client.patch):
            assert method(f"{URL}{entry.pk}/", body, format="json").status_code == 405
        assert client.delete(f"{URL}{entry.pk}/").status_code == 405
        assert AuditEntry.objects.get().reason == entry.reason
        assert AuditEntry.objects.count() == 1

    def test_pages_by_cursor_newest_first(self, api, quality_specialist):
        for n in range(3):
            product(code=f"X-{n}")
        first = api(quality_specialist).get(URL, {"page_size": 2}).json()
        assert [e["object_repr"] for e in first["results"]] == [
            str(Product.objects.get(code=c)) for c in ("X-2", "X-1")
        ]
        second = api(quality_specialist).get(first["next"]).json()
        assert [e["object_repr"] for e in second["results"]] == [str(Product.objects.get(code="X-0"))]


class AuditFilterTests:
    @pytest.fixture
    def trail(self, api, quality_specialist, manager):
        made = product(code="F-1")
        client = api(quality_specialist)
        assert client.patch(f"/api/v1/products/{made.pk}/", {"name": "Renamed"}).status_code == 200
        return made, product(code="F-2")

    def test_by_action_object_type_object_id_user_source(self, api, quality_specialist, trail):
        made, other = trail
        client = api(quality_specialist)
        updates = _entries(client.get(URL, {"action": "update"}))
        assert [(e["object_id"], e["before"], e["after"]) for e in updates] == [
            (str(made.pk), {"name": "A product"}, {"name": "Renamed"})
        ]
        by_object = _entries(client.get(URL, {"object_type": "config.product", "object_id": other.pk}))
        assert [(e["action"], e["object_id"]) for e in by_object] == [("create", str(other.pk))]
        assert _entries(client.get(URL, {"object_type": "calculations.violation"})) == []
        mine = _entries(client.get(URL, {"user": quality_specialist.pk}))
        assert [(e["action"], e["source"], e["username"]) for e in mine] == [("update", "api", "qs")]
        assert len(_entries(client.get(URL, {"source": "system"}))) == 2

    def test_by_time_range(self, api, quality_specialist, trail):
        client = api(quality_specialist)
        later = (timezone.now() + datetime.timedelta(hours=1)).isoformat()
        assert _entries(client.get(URL, {"at_after": later})) == []
        assert len(_entries(client.get(URL, {"at_before": later}))) == 3


class LimitsAuditTests:
    def test_each_limit_change_has_one_entry_with_the_values_before_and_after(
        self, api, quality_specialist, plant
    ):
        dia = dia_of(plant)
        client = api(quality_specialist)
        first = client.post(
            characteristic_url(dia, "set-limits"),
            {"center": 74.0, "sigma": 0.01, "reason": "study", "signature": QS_SIGNATURE},
            format="json",
        )
        assert first.status_code == 200, first.content
        second = client.post(
            characteristic_url(dia, "set-limits"),
            {"center": 74.1, "sigma": 0.02, "reason": "new die", "signature": QS_SIGNATURE},
            format="json",
        )
        assert second.status_code == 200
        frozen = client.post(
            characteristic_url(dia, "freeze-limits"),
            {"frozen": True, "reason": "validated", "signature": QS_SIGNATURE},
            format="json",
        )
        assert frozen.status_code == 200
        rows = _entries(client.get(URL, {"action": "limits", "object_type": "config.characteristic"}))
        assert [(r["object_id"], r["reason"], r["username"], r["source"]) for r in rows] == [
            (str(dia.pk), "validated", "qs", "api"),
            (str(dia.pk), "new die", "qs", "api"),
            (str(dia.pk), "study", "qs", "api"),
        ]
        freeze, change, created = rows
        assert created["before"] is None
        assert created["after"]["version"] == 1
        assert created["after"]["center"] == pytest.approx(74.0)
        assert created["after"]["ucl"] == pytest.approx(74.03)
        assert (change["before"]["center"], change["before"]["sigma"]) == pytest.approx((74.0, 0.01))
        assert (change["after"]["center"], change["after"]["sigma"]) == pytest.approx((74.1, 0.02))
        assert change["after"]["lcl"] == pytest.approx(74.04)
        assert (freeze["before"]["frozen"], freeze["after"]["frozen"]) == (False, True)
        assert (freeze["before"]["version"], freeze["after"]["version"]) == (2, 3)


class ConfigurationAuditTests:
    def test_a_characteristic_change_through_the_api_records_the_changed_fields(
        self, api, quality_specialist, plant
    ):
        dia = dia_of(plant)
        url = f"/api/v1/characteristics/{dia.pk}/"
        response = api(quality_specialist).patch(
            url, {"usl": 76.0, "acknowledge_rules": [5, 1, 2], "line": "L9", "reason": "New drawing rev. C"}
        )
        assert response.status_code == 200, response.content
        assert response.json()["acknowledge_rules"] == [1, 2, 5]
        entry = AuditEntry.objects.filter(
            action=AuditAction.UPDATE, object_id=str(dia.pk), content_type__model="characteristic"
        ).get()
        assert entry.content_type.model == "characteristic"
        assert (entry.user, entry.source, entry.reason) == (quality_specialist, "api", "New drawing rev. C")
        assert entry.before == {"usl": dia.usl, "acknowledge_rules": list(range(1, 9)), "line": ""}
        assert entry.after == {"usl": 76.0, "acknowledge_rules": [1, 2, 5], "line": "L9"}

    @pytest.mark.parametrize(
        ("rules", "message"),
        [([0, 1], "1 to 8; not 0"), ([9], "not 9"), ([1, 1], "Rule 1 is listed twice"), ("1,2", "list")],
    )
    def test_acknowledge_rules_are_rule_numbers_1_to_8_each_once(
        self, api, quality_specialist, plant, rules, message
    ):
        dia = dia_of(plant)
        response = api(quality_specialist).patch(
            f"/api/v1/characteristics/{dia.pk}/", {"acknowledge_rules": rules}
        )
        assert response.status_code == 400
        assert "acknowledge_rules" in response.json()["error"]["fields"]
        assert message in str(response.json()["error"]["fields"]["acknowledge_rules"])
        assert Characteristic.objects.get(pk=dia.pk).acknowledge_rules == list(range(1, 9))
        assert not AuditEntry.objects.filter(
            action=AuditAction.UPDATE, object_id=str(dia.pk), content_type__model="characteristic"
        ).exists()

    def test_a_change_that_changes_nothing_records_nothing(self, api, quality_specialist):
        made = product(code="SAME", name="Same")
        count = AuditEntry.objects.count()
        assert (
            api(quality_specialist).patch(f"/api/v1/products/{made.pk}/", {"name": "Same"}).status_code == 200
        )
        assert AuditEntry.objects.count() == count

    def test_a_deletion_through_the_api_keeps_the_fields_before(self, api, quality_specialist):
        test = TestFactory(code="GONE", unit="s")
        assert api(quality_specialist).delete(f"/api/v1/tests/{test.pk}/").status_code == 204
        entry = AuditEntry.objects.get(action=AuditAction.DELETE)
        assert (entry.object_id, entry.before["code"], entry.before["unit"], entry.after) == (
            str(test.pk), "GONE", "s", None,
        )  # fmt: skip

    def test_a_plan_release_records_the_status(self, api, quality_specialist):
        from tests.factories import TestPlanFactory

        plan = TestPlanFactory(code="REL", tests=[TestFactory(code="T1")])
        response = api(quality_specialist).post(
            f"/api/v1/test-plans/{plan.pk}/release/",
            {"reason": "Validated", "signature": QS_SIGNATURE},
            format="json",
        )
        assert response.status_code == 200
        entry = AuditEntry.objects.filter(object_id=str(plan.pk), content_type__model="testplan").first()
        assert (entry.before, entry.after, entry.source, entry.reason) == (
            {"status": "draft"},
            {"status": "released"},
            "api",
            "Validated",
        )


class AdminAuditTests:
    def test_a_product_change_in_the_admin_is_recorded_once_as_admin(self, admin_qs, quality_specialist):
        made = product(code="ADM-1", name="Before")
        count = AuditEntry.objects.count()
        data = {"code": "ADM-1", "name": "After", "description": "", "active": "on"}
        response = admin_qs.post(f"/admin/config/product/{made.pk}/change/", data)
        assert response.status_code == 302
        assert AuditEntry.objects.count() == count + 1
        entry = AuditEntry.objects.latest("id")
        assert (entry.action, entry.user, entry.source) == ("update", quality_specialist, "admin")
        assert (entry.before, entry.after) == ({"name": "Before"}, {"name": "After"})

    def test_a_deletion_in_the_admin_is_recorded(self, admin_qs):
        made = product(code="ADM-2")
        response = admin_qs.post(f"/admin/config/product/{made.pk}/delete/", {"post": "yes"})
        assert response.status_code == 302
        assert not Product.objects.filter(pk=made.pk).exists()
        entry = AuditEntry.objects.get(action=AuditAction.DELETE)
        assert (entry.object_id, entry.before["code"], entry.source) == (str(made.pk), "ADM-2", "admin")

    def test_a_plan_created_with_its_tests_in_the_admin(self, admin_qs, quality_specialist):
        test = TestFactory(code="INL")
        data = {
            "code": "ADM-PLAN", "name": "Plan", "description": "",
            "entries-TOTAL_FORMS": "1", "entries-INITIAL_FORMS": "0", "entries-MIN_NUM_FORMS": "0",
            "entries-MAX_NUM_FORMS": "1000", "entries-0-position": "1", "entries-0-test": str(test.pk),
            "entries-0-replicates": "2",
        }  # fmt: skip
        response = admin_qs.post("/admin/config/testplan/add/", data)
        assert response.status_code == 302, response.context["adminform"].form.errors
        plan = TestPlan.objects.get(code="ADM-PLAN")
        entries = AuditEntry.objects.filter(content_type__model="testplan", object_id=str(plan.pk)).order_by(
            "id"
        )
        assert [(e.action, e.source, e.user) for e in entries] == [
            ("create", "admin", quality_specialist),
            ("update", "admin", quality_specialist),
        ]
        rows = entries[1].after["test plan entries"]
        assert [(r["test"], r["replicates"]) for r in rows] == [(test.pk, 2)]
        assert entries[1].before == {"test plan entries": []}

    def test_the_audit_trail_is_read_only_in_the_admin_even_for_superusers(self, admin_qs):
        product(code="RO")
        entry = AuditEntry.objects.get()
        superuser = UserFactory(username="root", is_staff=True, is_superuser=True)
        root = Client()
        root.force_login(superuser)
        for client in (admin_qs, root):
            assert client.get("/admin/audit/auditentry/").status_code == 200
            assert client.get(f"/admin/audit/auditentry/{entry.pk}/change/").status_code == 200
            assert client.get("/admin/audit/auditentry/add/").status_code == 403
            assert (
                client.post(f"/admin/audit/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
            )
        assert AuditEntry.objects.filter(pk=entry.pk).exists()

    def test_managers_see_no_audit_trail_in_the_admin(self, manager):
        manager.is_staff = True
        manager.save()
        client = Client()
        client.force_login(manager)
        assert client.get("/admin/audit/auditentry/").status_code == 403


class SampleExclusionTests:
    @pytest.fixture
    def samples(self, plant) -> list[Sample]:
        dia = dia_of(plant)
        return subgroups_store(
            dia, [[74.0], [74.02], [73.99], [74.01], [75.5]], lot=plant.lot, user=plant.tester
        )

    def test_excluding_and_including_are_audited_with_the_reason(self, api, quality_specialist, samples):
        sample = samples[-1]
        client = api(quality_specialist)
        response = client.post(f"/api/v1/samples/{sample.pk}/exclude/", {"reason": "Gauge dropped"})
        assert response.status_code == 200, response.content
        assert (response.json()["excluded"], response.json()["exclusion_reason"]) == (True, "Gauge dropped")
        assert Sample.objects.get(pk=sample.pk).excluded
        response = client.post(f"/api/v1/samples/{sample.pk}/include/", {})
        assert response.status_code == 200
        assert Sample.objects.get(pk=sample.pk).excluded is False
        rows = _entries(client.get(URL, {"object_type": "observations.sample", "object_id": sample.pk}))
        assert [(r["action"], r["reason"], r["before"], r["after"]) for r in rows] == [
            ("include", "", {"excluded": True, "exclusion_reason": "Gauge dropped"},
             {"excluded": False, "exclusion_reason": ""}),
            ("exclude", "Gauge dropped", {"excluded": False, "exclusion_reason": ""},
             {"excluded": True, "exclusion_reason": "Gauge dropped"}),
        ]  # fmt: skip

    def test_excluding_needs_a_reason_and_a_quality_specialist(
        self, api, quality_specialist, manager, operations_lead, tester, samples
    ):
        url = f"/api/v1/samples/{samples[0].pk}/exclude/"
        response = api(quality_specialist).post(url, {})
        assert response.status_code == 400
        assert "reason" in response.json()["error"]["fields"]
        for user in (manager, operations_lead, tester):
            assert api(user).post(url, {"reason": "x"}).status_code == 403
        assert not Sample.objects.filter(excluded=True).exists()
        assert not AuditEntry.objects.filter(action=AuditAction.EXCLUDE).exists()

    def test_recalculated_limits_leave_excluded_samples_out(self, api, quality_specialist, plant, samples):
        client = api(quality_specialist)
        dia = samples[0].characteristic
        assert (
            client.post(f"/api/v1/samples/{samples[-1].pk}/exclude/", {"reason": "Bad run"}).status_code
            == 200
        )
        body = {"sample_count": 5, "exclude_out_of_control": False, "reason": "baseline"}
        body["signature"] = QS_SIGNATURE
        response = client.post(characteristic_url(dia, "recalculate-limits"), body, format="json")
        assert response.status_code == 200, response.content
        result = response.json()
        assert result["samples_used"] == 4
        assert result["excluded"] == [
            {
                "sample": samples[-1].pk,
                "sequence": samples[-1].sequence,
                "why": "excluded",
                "reason": "Bad run",
            }
        ]
        assert result["new"]["center"] == pytest.approx((74.0 + 74.02 + 73.99 + 74.01) / 4)


def test_the_quality_specialist_group_holds_only_the_view_permission():
    codenames = set(
        Group.objects.get(name="Quality Specialist")
        .permissions.filter(content_type__app_label="audit")
        .values_list("codename", flat=True)
    )
    assert codenames == {"view_auditentry"}
    assert not Group.objects.filter(permissions__codename__in=["add_auditentry", "change_auditentry",
                                                                "delete_auditentry"]).exists()  # fmt: skip

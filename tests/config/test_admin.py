"""The admin as the Quality Specialist's configuration tool: pages, writes through services, actions."""

import datetime
import json

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.config import services
from apps.config.choices import PlanStatus
from apps.config.models import Characteristic, Device, PlanAssignment, Product, Test, TestPlan
from apps.signatures.models import Signature
from tests.config.helpers import characteristic_row, limits_set
from tests.factories import ProductFactory, TestFactory, TestPlanFactory, characteristic_for, released_plan
from tests.support.signing import PASSWORD

pytestmark = pytest.mark.django_db

CHANGELISTS = ["product", "test", "testplan", "planassignment", "characteristic", "device"]
ADD_FORMS = ["product", "test", "testplan", "planassignment", "device"]


@pytest.fixture
def admin_client_qs(quality_specialist) -> Client:
    """The quality specialist (staff, in the group, not a superuser) signed in to the admin."""
    assert not quality_specialist.is_superuser
    client = Client()
    client.force_login(quality_specialist)
    return client


@pytest.fixture
def some_configuration():
    product = ProductFactory(code="RING-74")
    characteristic = characteristic_for(product, TestFactory(code="DIA"), lsl=1.0, usl=2.0)
    limits_set(characteristic, center=1.5, half_width=0.2)
    services.device_create(name="gauge-7")
    return characteristic


def _characteristic_form(characteristic: Characteristic, **changes: object) -> dict[str, object]:
    """POST data for the characteristic change form: its current values with `changes`."""
    values = {name: getattr(characteristic, name) for name in services.CHARACTERISTIC_FIELDS}
    values.update(changes)
    data: dict[str, object] = {}
    for name, value in values.items():
        if name in {"rules", "chart_params", "acknowledge_rules"}:
            data[name] = json.dumps(value)
        elif name == "active":
            if value:
                data[name] = "on"
        else:
            data[name] = "" if value is None else value
    # The read-only control limit history inline still posts its management form.
    data.update({"limits-TOTAL_FORMS": "0", "limits-INITIAL_FORMS": "0", "limits-MAX_NUM_FORMS": "0"})
    return data


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


class PagesTests:
    @pytest.mark.parametrize("model", CHANGELISTS)
    def test_changelists_open(self, admin_client_qs, some_configuration, model):
        response = admin_client_qs.get(f"/admin/config/{model}/")
        assert response.status_code == 200
        assert response.context["cl"].result_count >= 1

    @pytest.mark.parametrize("model", ADD_FORMS)
    def test_add_forms_open(self, admin_client_qs, model):
        response = admin_client_qs.get(f"/admin/config/{model}/add/")
        assert response.status_code == 200
        assert "adminform" in response.context

    def test_characteristics_are_not_added_by_hand(self, admin_client_qs):
        assert admin_client_qs.get("/admin/config/characteristic/add/").status_code == 403

    def test_characteristic_change_page_shows_the_limit_history(self, admin_client_qs, some_configuration):
        response = admin_client_qs.get(f"/admin/config/characteristic/{some_configuration.pk}/change/")
        assert response.status_code == 200
        html = response.content.decode()
        assert "Control limit history (read-only" in html
        assert "Capability study" in html
        assert 'name="limits-0-center"' not in html

    def test_assignments_cannot_be_deleted(self, admin_client_qs):
        assignment = services.plan_assign(product=ProductFactory(), plan=released_plan(TestFactory()))
        assert admin_client_qs.get(f"/admin/config/planassignment/{assignment.pk}/delete/").status_code == 403
        assert PlanAssignment.objects.filter(pk=assignment.pk).exists()

    def test_tester_is_sent_to_the_login_page(self, tester):
        client = Client()
        client.force_login(tester)
        response = client.get("/admin/config/product/")
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")

    def test_anonymous_is_sent_to_the_login_page(self):
        response = Client().get("/admin/config/characteristic/")
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")

    @pytest.mark.parametrize("role", ["operations_lead", "manager"])
    def test_non_staff_office_roles_are_sent_to_the_login_page(self, request, role):
        client = Client()
        client.force_login(request.getfixturevalue(role))
        assert client.get("/admin/config/product/").status_code == 302


class WritesTests:
    def test_add_a_product(self, admin_client_qs):
        data = {"code": "RING-74", "name": "Piston ring", "description": "74 mm", "active": "on"}
        response = admin_client_qs.post("/admin/config/product/add/", data)
        assert response.status_code == 302, response.context["adminform"].form.errors
        product = Product.objects.get(code="RING-74")
        assert (product.name, product.description, product.active) == ("Piston ring", "74 mm", True)

    def test_change_a_product(self, admin_client_qs):
        product = ProductFactory(code="RING-74", name="Old")
        data = {"code": "RING-74", "name": "New", "description": ""}
        response = admin_client_qs.post(f"/admin/config/product/{product.pk}/change/", data)
        assert response.status_code == 302
        product.refresh_from_db()
        assert (product.name, product.active) == ("New", False)

    def test_add_a_test_with_a_bad_range_shows_the_error(self, admin_client_qs):
        data = {"code": "DIA", "name": "Diameter", "kind": "variable", "decimals": "3", "unit": "mm"}
        data.update({"plausible_min": "78", "plausible_max": "70", "active": "on"})
        response = admin_client_qs.post("/admin/config/test/add/", data)
        assert response.status_code == 200
        assert "Must be above the plausible minimum" in response.content.decode()
        assert response.context["adminform"].form.errors["plausible_max"]
        assert not Test.objects.exists()

    def test_add_a_plan_with_entries(self, admin_client_qs):
        a, b = TestFactory(code="A"), TestFactory(code="B")
        data = {
            "code": "RING-FINAL",
            "name": "Ring final",
            "description": "",
            "entries-TOTAL_FORMS": "2",
            "entries-INITIAL_FORMS": "0",
            "entries-0-position": "1",
            "entries-0-test": str(b.pk),
            "entries-0-replicates": "3",
            "entries-1-position": "2",
            "entries-1-test": str(a.pk),
            "entries-1-replicates": "1",
        }
        response = admin_client_qs.post("/admin/config/testplan/add/", data)
        assert response.status_code == 302, response.content.decode()[:3000]
        plan = TestPlan.objects.get(code="RING-FINAL")
        assert (plan.version, plan.status) == (1, PlanStatus.DRAFT)
        assert [(e.position, e.test.code, e.replicates) for e in plan.entries.order_by("position")] == [
            (1, "B", 3),
            (2, "A", 1),
        ]

    def test_add_a_device_shows_its_token_once(self, admin_client_qs):
        response = admin_client_qs.post(
            "/admin/config/device/add/", {"name": "gauge-9", "active": "on"}, follow=True
        )
        assert response.status_code == 200
        device = Device.objects.get(name="gauge-9")
        (token_message,) = [m for m in _messages(response) if "shown once" in m]
        token = token_message.rsplit(" ", 1)[-1]
        assert token.startswith(device.token_prefix)
        assert device.user.groups.filter(name="Device").exists()

    def test_add_a_device_with_its_binding(self, admin_client_qs, some_configuration):
        shaft = ProductFactory(code="SHAFT-20")
        data = {
            "name": "gauge-9",
            "active": "on",
            "characteristics": [some_configuration.pk],
            "products": [shaft.pk],
        }
        response = admin_client_qs.post("/admin/config/device/add/", data, follow=True)
        assert response.status_code == 200
        device = Device.objects.get(name="gauge-9")
        assert (list(device.characteristics.all()), list(device.products.all())) == (
            [some_configuration],
            [shaft],
        )
        created = AuditEntry.objects.filter(object_id=str(device.pk), content_type__model="device").get()
        assert (created.source, created.after["characteristics"]) == ("admin", [some_configuration.pk])

    def test_change_a_devices_binding_and_see_it_in_the_list(self, admin_client_qs, some_configuration):
        device = Device.objects.get(name="gauge-7")
        listing = admin_client_qs.get("/admin/config/device/").content.decode()
        assert "nothing (bind it before it posts)" in listing
        data = {"name": "gauge-7", "active": "on", "characteristics": [some_configuration.pk]}
        response = admin_client_qs.post(f"/admin/config/device/{device.pk}/change/", data)
        assert response.status_code == 302, response.context["adminform"].form.errors
        assert list(device.characteristics.all()) == [some_configuration]
        assert "RING-74 / DIA" in admin_client_qs.get("/admin/config/device/").content.decode()
        change = AuditEntry.objects.filter(object_id=str(device.pk), content_type__model="device").latest(
            "pk"
        )
        assert (change.before, change.after) == (
            {"characteristics": []},
            {"characteristics": [some_configuration.pk]},
        )
        form = admin_client_qs.get(f"/admin/config/device/{device.pk}/change/").content.decode()
        assert 'name="characteristics"' in form
        assert 'name="products"' in form


class CharacteristicFormTests:
    def test_valid_change_is_saved(self, admin_client_qs, some_configuration):
        data = _characteristic_form(some_configuration, usl=2.5, line="Line 4", subgroup_size=5)
        data["reason"] = "Drawing rev. B"
        response = admin_client_qs.post(f"/admin/config/characteristic/{some_configuration.pk}/change/", data)
        assert response.status_code == 302, response.context["adminform"].form.errors
        stored = Characteristic.objects.get(pk=some_configuration.pk)
        assert (stored.usl, stored.line, stored.subgroup_size) == (2.5, "Line 4", 5)

    def test_lsl_above_usl_is_not_saved_and_shows_an_error(self, admin_client_qs, some_configuration):
        before = characteristic_row(some_configuration)
        data = _characteristic_form(some_configuration, lsl=5.0)
        response = admin_client_qs.post(f"/admin/config/characteristic/{some_configuration.pk}/change/", data)
        assert response.status_code == 200
        form = response.context["adminform"].form
        assert form.errors
        assert 'class="errornote"' in response.content.decode()
        assert characteristic_row(some_configuration) == before

    def test_lsl_above_usl_shows_the_services_message_at_lsl(self, admin_client_qs, some_configuration):
        data = _characteristic_form(some_configuration, lsl=5.0)
        response = admin_client_qs.post(f"/admin/config/characteristic/{some_configuration.pk}/change/", data)
        form = response.context["adminform"].form
        assert "must be below USL" in " ".join(form.errors.get("lsl", []))
        assert "Constraint" not in response.content.decode()

    def test_chart_type_that_does_not_fit_shows_the_error_at_the_field(
        self, admin_client_qs, some_configuration
    ):
        before = characteristic_row(some_configuration)
        data = _characteristic_form(some_configuration, chart_type="p")
        response = admin_client_qs.post(f"/admin/config/characteristic/{some_configuration.pk}/change/", data)
        assert response.status_code == 200
        assert "does not fit" in " ".join(response.context["adminform"].form.errors["chart_type"])
        assert characteristic_row(some_configuration) == before

    def test_malformed_rules_show_the_error(self, admin_client_qs, some_configuration):
        before = characteristic_row(some_configuration)
        data = _characteristic_form(some_configuration, rules={"9": {}})
        response = admin_client_qs.post(f"/admin/config/characteristic/{some_configuration.pk}/change/", data)
        assert response.status_code == 200
        assert "unknown rule" in " ".join(response.context["adminform"].form.errors["rules"])
        assert characteristic_row(some_configuration) == before


class TestPlanAdminTests:
    def test_released_plan_shows_entries_read_only(self, admin_client_qs):
        plan = released_plan((TestFactory(code="WALL"), 3), TestFactory(code="DIA"), code="RING-FINAL")
        response = admin_client_qs.get(f"/admin/config/testplan/{plan.pk}/change/")
        assert response.status_code == 200
        html = response.content.decode()
        assert "WALL" in html
        assert "DIA" in html
        assert 'name="entries-0-replicates"' not in html
        assert 'name="entries-0-test"' not in html
        assert 'name="name"' not in html  # the plan's own fields are read-only too
        formset = response.context["inline_admin_formsets"][0]
        assert not formset.has_add_permission
        assert not formset.has_change_permission
        assert not formset.has_delete_permission

    def test_draft_plan_entries_are_editable(self, admin_client_qs):
        plan = TestPlanFactory(tests=[TestFactory(code="DIA")])
        html = admin_client_qs.get(f"/admin/config/testplan/{plan.pk}/change/").content.decode()
        assert 'name="entries-0-replicates"' in html
        assert 'name="name"' in html

    def test_release_action(self, admin_client_qs, quality_specialist):
        ready = TestPlanFactory(code="READY", tests=[TestFactory()])
        empty = TestPlanFactory(code="EMPTY")
        data = {
            "action": "release_plans", "_selected_action": [ready.pk, empty.pk], "reason": "Validated",
            "signature_password": PASSWORD, "signature_meaning": "released", "signature_username": "qs",
        }  # fmt: skip
        response = admin_client_qs.post("/admin/config/testplan/", data, follow=True)
        assert response.status_code == 200
        messages = _messages(response)
        assert "READY v1 released." in messages
        assert any(m.startswith("EMPTY v1:") and "at least one test" in m for m in messages)
        ready.refresh_from_db()
        assert (ready.status, ready.released_by) == (PlanStatus.RELEASED, quality_specialist)
        assert TestPlan.objects.get(pk=empty.pk).status == PlanStatus.DRAFT
        (signature,) = Signature.objects.filter(object_id=str(ready.pk), action="plan_release")
        assert (signature.user, signature.meaning) == (quality_specialist, "released")
        assert signature.content["entries"][0]["position"] == 1

    def test_release_action_without_signature_releases_nothing(self, admin_client_qs):
        ready = TestPlanFactory(code="READY", tests=[TestFactory()])
        data = {"action": "release_plans", "_selected_action": [ready.pk], "reason": "Validated"}
        messages = _messages(admin_client_qs.post("/admin/config/testplan/", data, follow=True))
        assert any("READY v1:" in m and "electronic signature" in m for m in messages), messages
        assert TestPlan.objects.get(pk=ready.pk).status == PlanStatus.DRAFT

    def test_release_action_with_wrong_password_is_refused_and_audited(
        self, admin_client_qs, quality_specialist
    ):
        ready = TestPlanFactory(code="READY", tests=[TestFactory()])
        data = {
            "action": "release_plans", "_selected_action": [ready.pk], "reason": "Validated",
            "signature_password": "wrong", "signature_meaning": "released", "signature_username": "qs",
        }  # fmt: skip
        messages = _messages(admin_client_qs.post("/admin/config/testplan/", data, follow=True))
        assert messages == ["Nothing was released: Wrong password: nothing was signed."]
        assert TestPlan.objects.get(pk=ready.pk).status == PlanStatus.DRAFT
        failed = AuditEntry.objects.get(action="sign_failed", object_id=str(quality_specialist.pk))
        assert (failed.reason, failed.source) == ("wrong password", "admin")
        assert not Signature.objects.exists()

    def test_retire_and_new_version_actions(self, admin_client_qs):
        plan = released_plan(TestFactory(), code="RING-FINAL")
        admin_client_qs.post(
            "/admin/config/testplan/", {"action": "new_versions", "_selected_action": [plan.pk]}
        )
        response = admin_client_qs.post(
            "/admin/config/testplan/", {"action": "retire_plans", "_selected_action": [plan.pk]}, follow=True
        )
        assert "RING-FINAL v1 retired." in _messages(response)
        assert list(TestPlan.objects.filter(code="RING-FINAL").values_list("version", "status")) == [
            (2, PlanStatus.DRAFT),
            (1, PlanStatus.RETIRED),
        ]

    def test_released_plan_page_is_read_only(self, quality_specialist):
        plan = released_plan(TestFactory(), TestFactory(), code="RING-FINAL")
        client = Client(raise_request_exception=False)
        client.force_login(quality_specialist)
        page = client.get(f"/admin/config/testplan/{plan.pk}/change/")
        assert page.status_code == 200
        assert 'name="_save"' not in page.content.decode()
        entries = list(plan.entries.order_by("position"))
        data = {
            "entries-TOTAL_FORMS": "2",
            "entries-INITIAL_FORMS": "2",
            "entries-0-id": entries[0].pk,
            "entries-0-plan": plan.pk,
            "entries-1-id": entries[1].pk,
            "entries-1-plan": plan.pk,
            "name": "changed",
            "_save": "Save",
        }
        response = client.post(f"/admin/config/testplan/{plan.pk}/change/", data)
        assert response.status_code == 403
        assert TestPlan.objects.get(pk=plan.pk).name != "changed"
        assert TestPlan.objects.get(pk=plan.pk).status == PlanStatus.RELEASED


class PlanAssignmentAdminTests:
    def test_assign_in_the_admin_creates_characteristics(self, admin_client_qs, quality_specialist):
        product, plan = ProductFactory(), released_plan(TestFactory(code="DIA"), TestFactory(code="WALL"))
        data = {
            "product": product.pk, "plan": plan.pk, "effective_from_0": "2025-01-01",
            "effective_from_1": "06:30:00", "effective_to_0": "", "effective_to_1": "",
        }  # fmt: skip
        response = admin_client_qs.post("/admin/config/planassignment/add/", data)
        assert response.status_code == 302, response.context["adminform"].form.errors
        assignment = PlanAssignment.objects.get()
        assert assignment.assigned_by == quality_specialist
        assert timezone.localtime(assignment.effective_from).strftime("%Y-%m-%d %H:%M") == "2025-01-01 06:30"
        assert sorted(
            Characteristic.objects.filter(product=product).values_list("test__code", flat=True)
        ) == [
            "DIA",
            "WALL",
        ]

    def test_assigning_a_draft_shows_the_error(self, admin_client_qs):
        product, plan = ProductFactory(), TestPlanFactory(tests=[TestFactory()])
        data = {
            "product": product.pk,
            "plan": plan.pk,
            "effective_from_0": "2025-01-01",
            "effective_from_1": "00:00",
        }
        response = admin_client_qs.post("/admin/config/planassignment/add/", data)
        assert response.status_code == 200
        assert "Only released plans" in " ".join(response.context["adminform"].form.errors["plan"])
        assert not PlanAssignment.objects.exists()
        assert not Characteristic.objects.exists()

    def test_ending_before_the_start_shows_the_error(self, quality_specialist):
        assignment = services.plan_assign(
            product=ProductFactory(),
            plan=released_plan(TestFactory()),
            effective_from=datetime.datetime(2025, 2, 1, tzinfo=datetime.UTC),
        )
        client = Client(raise_request_exception=False)
        client.force_login(quality_specialist)
        response = client.post(
            f"/admin/config/planassignment/{assignment.pk}/change/",
            {"effective_to_0": "2025-01-01", "effective_to_1": "00:00"},
        )
        assert PlanAssignment.objects.get(pk=assignment.pk).effective_to is None
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["effective_to"]


class PlanDeletionTests:
    def test_a_released_plan_cannot_be_deleted_in_the_admin(self, admin_client_qs):
        plan = released_plan(TestFactory(), code="RING-FINAL")
        page = admin_client_qs.get(f"/admin/config/testplan/{plan.pk}/change/")
        assert f"/admin/config/testplan/{plan.pk}/delete/" not in page.content.decode()
        response = admin_client_qs.post(f"/admin/config/testplan/{plan.pk}/delete/", {"post": "yes"})
        assert response.status_code == 403
        assert TestPlan.objects.filter(pk=plan.pk).exists()

    def test_there_is_no_bulk_delete_that_would_skip_the_status_check(self, admin_client_qs):
        released_plan(TestFactory(), code="RING-FINAL")
        page = admin_client_qs.get("/admin/config/testplan/")
        assert 'value="delete_selected"' not in page.content.decode()
        assert 'value="release_plans"' in page.content.decode()

    def test_a_draft_plan_is_deleted(self, admin_client_qs):
        plan = TestPlanFactory(tests=[TestFactory()])
        response = admin_client_qs.post(f"/admin/config/testplan/{plan.pk}/delete/", {"post": "yes"})
        assert response.status_code == 302
        assert not TestPlan.objects.filter(pk=plan.pk).exists()


def test_characteristic_list_names_the_chart_drawn(admin_client_qs):
    characteristic_for(ProductFactory(), TestFactory(), subgroup_size=5)
    page = admin_client_qs.get("/admin/config/characteristic/").content.decode()
    assert "Mean and range (X̄-R) (auto)" in page

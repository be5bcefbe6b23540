"""Roles: the groups the migrations create, and what each role may do on each configuration endpoint."""

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from apps.config import services
from apps.config.models import Characteristic, Device, PlanAssignment, Product, Test, TestPlan
from openspc.roles import Role
from tests.config.helpers import characteristic_row, error_of
from tests.factories import ProductFactory, TestFactory, UserFactory, characteristic_for, released_plan

pytestmark = pytest.mark.django_db

CONFIG_LISTS = [
    "/api/v1/products/",
    "/api/v1/tests/",
    "/api/v1/test-plans/",
    "/api/v1/plan-assignments/",
    "/api/v1/characteristics/",
]
ALL_LISTS = [*CONFIG_LISTS, "/api/v1/devices/"]


def _perms(role: Role) -> set[str]:
    """The role's permissions on the configuration models (tests/observations checks its own)."""
    permissions = Group.objects.get(name=role).permissions.filter(content_type__app_label="config")
    return set(permissions.values_list("codename", flat=True))


class GroupsTests:
    def test_every_role_has_a_group(self):
        assert set(Group.objects.values_list("name", flat=True)) >= {str(role) for role in Role}

    def test_quality_specialist_configures_everything_but_adds_no_characteristics(self):
        perms = _perms(Role.QUALITY_SPECIALIST)
        for model in ["product", "test", "testplan", "testplanentry", "planassignment", "device"]:
            assert {f"{action}_{model}" for action in ["add", "change", "delete", "view"]} <= perms, model
        assert {"change_characteristic", "view_characteristic"} <= perms
        assert {"add_controllimits", "view_controllimits"} <= perms
        # Characteristics come from plan assignment; limit versions are history.
        assert not perms & {
            "add_characteristic",
            "delete_characteristic",
            "change_controllimits",
            "delete_controllimits",
        }

    @pytest.mark.parametrize("role", [Role.OPERATIONS_LEAD, Role.MANAGER])
    def test_operations_lead_and_manager_only_view_configuration(self, role):
        assert _perms(role) == {
            "view_product",
            "view_test",
            "view_testplan",
            "view_testplanentry",
            "view_planassignment",
            "view_characteristic",
            "view_controllimits",
            "view_samplingschedule",
        }

    def test_tester_views_tests_only(self):
        assert _perms(Role.TESTER) == {"view_test"}

    def test_device_has_no_model_permissions(self):
        assert _perms(Role.DEVICE) == set()


@pytest.fixture
def configuration(db):
    """One of everything, so detail and list endpoints have rows to show."""
    product, test = ProductFactory(), TestFactory()
    characteristic = characteristic_for(product, test, lsl=1.0, usl=2.0)
    return {"product": product, "test": test, "characteristic": characteristic}


class ReadAccessTests:
    @pytest.mark.parametrize("url", CONFIG_LISTS)
    @pytest.mark.parametrize("role", ["quality_specialist", "operations_lead", "manager"])
    def test_office_roles_read_configuration(self, api, request, configuration, role, url):
        response = api(request.getfixturevalue(role)).get(url)
        assert response.status_code == 200, response.content
        assert response.json()["count"] >= 1

    @pytest.mark.parametrize("role", ["quality_specialist", "operations_lead", "manager"])
    def test_office_roles_read_a_products_configuration(self, api, request, configuration, role):
        product = configuration["product"]
        response = api(request.getfixturevalue(role)).get(f"/api/v1/products/{product.pk}/config/")
        assert response.status_code == 200
        assert response.json()["code"] == product.code

    @pytest.mark.parametrize("role", ["operations_lead", "manager", "tester"])
    def test_only_the_quality_specialist_reads_devices(self, api, request, device_token, role):
        error = error_of(api(request.getfixturevalue(role)).get("/api/v1/devices/"), 403)
        assert error["code"] == "permission_denied"

    @pytest.mark.parametrize("url", ["/api/v1/products/", "/api/v1/test-plans/", "/api/v1/plan-assignments/"])
    def test_tester_cannot_read_products_or_plans(self, api, tester, configuration, url):
        assert api(tester).get(url).status_code == 403

    def test_tester_with_no_assigned_items_sees_no_tests(self, api, tester, configuration):
        client = api(tester)
        response = client.get("/api/v1/tests/")
        assert response.status_code == 200
        assert response.json()["count"] == 0
        assert response.json()["results"] == []
        error_of(client.get(f"/api/v1/tests/{configuration['test'].pk}/"), 404)

    def test_tester_sees_no_characteristics(self, api, tester, configuration):
        # Testers read SPC settings only through their assigned items: the endpoint is closed to them.
        client = api(tester)
        error_of(client.get("/api/v1/characteristics/"), 403)
        error_of(client.get(f"/api/v1/characteristics/{configuration['characteristic'].pk}/"), 403)

    def test_tester_who_is_also_an_operations_lead_sees_tests(self, api, configuration):
        user = UserFactory(roles=[Role.TESTER, Role.OPERATIONS_LEAD])
        response = api(user).get("/api/v1/tests/")
        assert response.status_code == 200
        assert [row["code"] for row in response.json()["results"]] == [configuration["test"].code]


class WriteAccessTests:
    def test_quality_specialist_creates_a_product(self, api, quality_specialist):
        response = api(quality_specialist).post("/api/v1/products/", {"code": "X-1", "name": "X"})
        assert response.status_code == 201, response.content
        assert response.json()["code"] == "X-1"
        assert Product.objects.get(code="X-1").name == "X"

    @pytest.mark.parametrize("role", ["tester", "operations_lead", "manager"])
    def test_other_roles_cannot_create_a_product(self, api, request, role):
        response = api(request.getfixturevalue(role)).post("/api/v1/products/", {"code": "X-1", "name": "X"})
        error = error_of(response, 403)
        assert error["code"] == "permission_denied"
        assert not Product.objects.exists()

    @pytest.mark.parametrize("role", ["tester", "operations_lead", "manager"])
    def test_other_roles_cannot_create_tests_plans_or_assignments(self, api, request, role):
        client = api(request.getfixturevalue(role))
        product, plan = ProductFactory(), released_plan(TestFactory())
        tests_before = Test.objects.count()
        error_of(client.post("/api/v1/tests/", {"code": "T-X", "name": "X"}), 403)
        error_of(client.post("/api/v1/test-plans/", {"code": "PL-X", "name": "X"}), 403)
        error_of(client.post("/api/v1/plan-assignments/", {"product": product.pk, "plan": plan.pk}), 403)
        error_of(client.post(f"/api/v1/test-plans/{plan.pk}/retire/"), 403)
        assert Test.objects.count() == tests_before
        assert TestPlan.objects.count() == 1
        assert TestPlan.objects.get().status == "released"
        assert not PlanAssignment.objects.exists()

    @pytest.mark.parametrize("role", ["operations_lead", "manager"])
    def test_other_roles_cannot_change_or_delete(self, api, request, configuration, role):
        client = api(request.getfixturevalue(role))
        product, characteristic = configuration["product"], configuration["characteristic"]
        before = characteristic_row(characteristic)
        error_of(client.patch(f"/api/v1/products/{product.pk}/", {"name": "Renamed"}), 403)
        error_of(client.delete(f"/api/v1/products/{product.pk}/"), 403)
        error_of(client.patch(f"/api/v1/characteristics/{characteristic.pk}/", {"usl": 9.0}), 403)
        assert Product.objects.get(pk=product.pk).name == product.name
        assert characteristic_row(characteristic) == before

    @pytest.mark.parametrize("role", ["operations_lead", "manager", "tester"])
    def test_other_roles_cannot_create_devices(self, api, request, role):
        error_of(api(request.getfixturevalue(role)).post("/api/v1/devices/", {"name": "gauge-9"}), 403)
        assert not Device.objects.filter(name="gauge-9").exists()


class DeviceTokenTests:
    @pytest.mark.parametrize("url", ALL_LISTS)
    def test_device_token_is_refused_on_configuration(self, device_api, configuration, url):
        error = error_of(device_api.get(url), 403)
        assert error["message"] == "Device tokens may only post observations."

    def test_device_token_cannot_write_configuration(self, device_api):
        error_of(device_api.post("/api/v1/products/", {"code": "X-1", "name": "X"}), 403)
        assert not Product.objects.exists()

    def test_device_token_authenticates_as_the_device_user(self, device_api):
        response = device_api.get("/api/v1/me/")
        assert response.status_code == 200
        device = Device.objects.get(name="gauge-1")
        assert response.json() == {
            "id": device.user.pk,
            "username": "device:gauge-1",
            "roles": ["Device"],
            "is_staff": False,
        }

    def test_device_use_is_recorded(self, device_api):
        assert Device.objects.get(name="gauge-1").last_used_at is None
        assert device_api.get("/api/v1/me/").status_code == 200
        assert Device.objects.get(name="gauge-1").last_used_at is not None

    @pytest.mark.parametrize(
        "header",
        ["Device osd_not-a-real-token", "Device", "Device two parts"],
        ids=["unknown", "missing", "spaces"],
    )
    def test_bad_device_header_is_401(self, device_token, header):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        error = error_of(client.get("/api/v1/me/"), 401)
        assert error["code"] == "authentication_failed"

    def test_deactivated_device_token_is_401(self, device_api):
        services.device_update(device=Device.objects.get(name="gauge-1"), data={"active": False})
        error = error_of(device_api.get("/api/v1/me/"), 401)
        assert error["message"] == "Unknown or deactivated device token."

    def test_device_whose_user_is_inactive_is_401(self, device_api):
        device = Device.objects.get(name="gauge-1")
        device.user.is_active = False
        device.user.save()
        error_of(device_api.get("/api/v1/me/"), 401)


class AnonymousTests:
    @pytest.mark.parametrize("url", [*ALL_LISTS, "/api/v1/me/"])
    def test_anonymous_is_401_in_the_error_format(self, api, url):
        error = error_of(api(None).get(url), 401)
        assert error == {
            "code": "not_authenticated",
            "message": "Authentication credentials were not provided.",
            "fields": {},
        }

    def test_anonymous_cannot_write(self, api):
        error_of(api(None).post("/api/v1/products/", {"code": "X-1", "name": "X"}), 401)
        assert not Product.objects.exists()


class JwtTests:
    def test_obtain_use_and_refresh_a_token(self, quality_specialist):
        client = APIClient()
        response = client.post(
            "/api/v1/auth/token/", {"username": "qs", "password": "pw-for-tests-only"}, format="json"
        )
        assert response.status_code == 200, response.content
        tokens = response.json()
        assert set(tokens) == {"access", "refresh"}

        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        me = client.get("/api/v1/me/")
        assert me.status_code == 200
        assert me.json() == {
            "id": quality_specialist.pk,
            "username": "qs",
            "roles": ["Quality Specialist"],
            "is_staff": True,
        }

        refreshed = APIClient().post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]})
        assert refreshed.status_code == 200
        access = refreshed.json()["access"]
        assert access
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
        assert client.get("/api/v1/me/").json()["username"] == "qs"

    def test_wrong_password_is_401(self, quality_specialist):
        response = APIClient().post("/api/v1/auth/token/", {"username": "qs", "password": "wrong"})
        error_of(response, 401)

    def test_device_user_cannot_obtain_a_token(self, device_token):
        # The device's service user has no usable password; its token is the only way in.
        response = APIClient().post("/api/v1/auth/token/", {"username": "device:gauge-1", "password": ""})
        assert response.status_code in {400, 401}
        assert "access" not in response.json()

    def test_garbage_bearer_token_is_401(self):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
        error_of(client.get("/api/v1/products/"), 401)

    def test_me_lists_every_role_sorted(self, api):
        user = UserFactory(roles=[Role.TESTER, Role.MANAGER])
        assert api(user).get("/api/v1/me/").json()["roles"] == ["Manager", "Tester"]


class ErrorFormatTests:
    def test_validation_errors_use_the_documented_code(self, api, quality_specialist):
        """openspc/api.py documents {"error": {"code": "validation_error", ...}} for invalid input."""
        error = error_of(api(quality_specialist).post("/api/v1/products/", {"name": "No code"}), 400, "code")
        assert error["code"] in {"validation_error", "invalid"}

    def test_validation_error_code_is_validation_error(self, api, quality_specialist):
        error = error_of(api(quality_specialist).post("/api/v1/products/", {"name": "No code"}), 400, "code")
        assert error["code"] == "validation_error"

    def test_not_found_uses_the_error_format(self, api, quality_specialist):
        error = error_of(api(quality_specialist).get("/api/v1/products/999999/"), 404)
        assert error["code"] == "not_found"
        assert error["fields"] == {}

    def test_unknown_api_route_uses_the_error_format(self, api, quality_specialist):
        error = error_of(api(quality_specialist).get("/api/v1/no-such-thing/"), 404)
        assert error["code"] == "not_found"

    def test_characteristic_row_is_unchanged_helper_sees_changes(self, configuration):
        # Guard for the helper the refusal tests rely on: it must notice a change.
        characteristic = configuration["characteristic"]
        before = characteristic_row(characteristic)
        Characteristic.objects.filter(pk=characteristic.pk).update(usl=3.0)
        assert characteristic_row(characteristic) != before

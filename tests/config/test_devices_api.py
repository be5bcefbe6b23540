"""Devices: a token issued once, stored as a hash, and switched off with the device."""

import hashlib

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from apps.audit.models import AuditEntry
from apps.config import services
from apps.config.models import Device
from tests.config.helpers import error_of
from tests.factories import ProductFactory, TestFactory, characteristic_for

pytestmark = pytest.mark.django_db

DEVICES = "/api/v1/devices/"


@pytest.fixture
def qs_api(api, quality_specialist):
    return api(quality_specialist)


def _device_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {token}")
    return client


class CreateTests:
    def test_create_returns_the_token_once_and_stores_its_hash(self, qs_api):
        response = qs_api.post(DEVICES, {"name": "line1-gauge", "description": "Bore gauge"})
        assert response.status_code == 201, response.content
        body = response.json()
        token = body["token"]
        assert token.startswith("osd_")
        assert len(token) > 40
        device = Device.objects.get(name="line1-gauge")
        assert body["id"] == device.pk
        assert (body["description"], body["active"], body["last_used_at"]) == ("Bore gauge", True, None)
        assert device.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in {device.token_hash, device.token_prefix}
        assert body["token_prefix"] == device.token_prefix == token[:12]

    def test_device_gets_its_own_user_in_the_device_group(self, qs_api):
        token = qs_api.post(DEVICES, {"name": "line1-gauge"}).json()["token"]
        device = Device.objects.get(name="line1-gauge")
        assert device.user.username == "device:line1-gauge"
        assert list(device.user.groups.values_list("name", flat=True)) == ["Device"]
        assert not device.user.has_usable_password()
        me = _device_client(token).get("/api/v1/me/")
        assert me.json()["username"] == "device:line1-gauge"

    def test_tokens_differ(self, qs_api):
        first = qs_api.post(DEVICES, {"name": "a"}).json()["token"]
        second = qs_api.post(DEVICES, {"name": "b"}).json()["token"]
        assert first != second

    def test_list_and_detail_never_show_the_token(self, qs_api):
        token = qs_api.post(DEVICES, {"name": "line1-gauge"}).json()["token"]
        device = Device.objects.get()
        listing = qs_api.get(DEVICES)
        assert listing.status_code == 200
        row = listing.json()["results"][0]
        assert "token" not in row
        assert "token_hash" not in row
        assert token not in listing.content.decode()
        assert device.token_hash not in listing.content.decode()
        detail = qs_api.get(f"{DEVICES}{device.pk}/")
        assert "token" not in detail.json()
        assert token not in detail.content.decode()

    def test_duplicate_name_is_400(self, qs_api):
        services.device_create(name="line1-gauge")
        error_of(qs_api.post(DEVICES, {"name": "line1-gauge"}), 400, "name")
        assert Device.objects.count() == 1
        assert get_user_model().objects.filter(username__startswith="device:").count() == 1

    def test_name_is_required(self, qs_api):
        error_of(qs_api.post(DEVICES, {"description": "nameless"}), 400, "name")
        assert not Device.objects.exists()

    def test_token_prefix_and_hash_cannot_be_posted(self, qs_api):
        body = {"name": "g", "token_prefix": "osd_chosen", "token_hash": "0" * 64}
        assert qs_api.post(DEVICES, body).status_code == 201
        device = Device.objects.get()
        assert device.token_prefix != "osd_chosen"
        assert device.token_hash != "0" * 64


class UpdateTests:
    def test_deactivating_stops_the_token(self, qs_api):
        token = qs_api.post(DEVICES, {"name": "line1-gauge"}).json()["token"]
        device = Device.objects.get()
        assert _device_client(token).get("/api/v1/me/").status_code == 200
        response = qs_api.patch(f"{DEVICES}{device.pk}/", {"active": False})
        assert response.status_code == 200, response.content
        assert response.json()["active"] is False
        assert Device.objects.get(pk=device.pk).active is False
        error = error_of(_device_client(token).get("/api/v1/me/"), 401)
        assert error["code"] == "authentication_failed"

    def test_reactivating_restores_the_same_token(self, qs_api):
        token = qs_api.post(DEVICES, {"name": "line1-gauge"}).json()["token"]
        device = Device.objects.get()
        qs_api.patch(f"{DEVICES}{device.pk}/", {"active": False})
        qs_api.patch(f"{DEVICES}{device.pk}/", {"active": True})
        assert _device_client(token).get("/api/v1/me/").status_code == 200

    def test_rename_keeps_the_token(self, qs_api):
        token = qs_api.post(DEVICES, {"name": "line1-gauge"}).json()["token"]
        device = Device.objects.get()
        response = qs_api.patch(f"{DEVICES}{device.pk}/", {"name": "line2-gauge", "description": "moved"})
        assert response.status_code == 200
        device.refresh_from_db()
        assert (device.name, device.description) == ("line2-gauge", "moved")
        assert _device_client(token).get("/api/v1/me/").status_code == 200

    def test_rename_to_an_existing_name_is_400(self, qs_api):
        services.device_create(name="a")
        device, _ = services.device_create(name="b")
        error_of(qs_api.patch(f"{DEVICES}{device.pk}/", {"name": "a"}), 400, "name")
        assert Device.objects.get(pk=device.pk).name == "b"

    def test_devices_are_deactivated_not_deleted(self, qs_api):
        device, _ = services.device_create(name="a")
        error_of(qs_api.delete(f"{DEVICES}{device.pk}/"), 405)
        assert Device.objects.filter(pk=device.pk).exists()


class ListTests:
    def test_filter_search_and_ordering(self, qs_api):
        services.device_create(name="line1-gauge")
        services.device_create(name="line2-plc", active=False)
        services.device_create(name="lims")
        names = lambda params: [row["name"] for row in qs_api.get(DEVICES, params).json()["results"]]  # noqa: E731
        assert names({}) == ["lims", "line1-gauge", "line2-plc"]
        assert names({"active": "false"}) == ["line2-plc"]
        assert names({"search": "line"}) == ["line1-gauge", "line2-plc"]
        assert names({"ordering": "-name"}) == ["line2-plc", "line1-gauge", "lims"]

    def test_list_query_count(self, qs_api, django_assert_max_num_queries):
        for n in range(6):
            _, token = services.device_create(name=f"gauge-{n}")
            _device_client(token).get("/api/v1/me/")  # sets last_used_at
        services.device_update(
            device=Device.objects.get(name="gauge-0"), data={"products": [ProductFactory()]}
        )
        with django_assert_max_num_queries(8):  # 6, and the binding's two, prefetched for the page
            response = qs_api.get(DEVICES)
        rows = response.json()["results"]
        assert len(rows) == 6
        assert all(row["last_used_at"] for row in rows)


class BindingTests:
    """What a device may post to: `characteristics` and `products`, read and set by specialists."""

    @pytest.fixture
    def targets(self):
        ring, shaft = ProductFactory(code="RING-74"), ProductFactory(code="SHAFT-20")
        return characteristic_for(ring, TestFactory(code="DIA")), shaft

    def test_creating_a_device_binds_it(self, qs_api, targets):
        dia, shaft = targets
        body = {"name": "gauge", "characteristics": [dia.pk], "products": [shaft.pk]}
        response = qs_api.post(DEVICES, body, format="json")
        assert response.status_code == 201, response.content
        assert (response.json()["characteristics"], response.json()["products"]) == ([dia.pk], [shaft.pk])
        device = Device.objects.get()
        assert (list(device.characteristics.all()), list(device.products.all())) == ([dia], [shaft])
        detail = qs_api.get(f"{DEVICES}{device.pk}/").json()
        assert (detail["characteristics"], detail["products"]) == ([dia.pk], [shaft.pk])
        assert qs_api.get(DEVICES).json()["results"][0]["products"] == [shaft.pk]
        entry = AuditEntry.objects.get(object_id=str(device.pk), content_type__model="device")
        assert (entry.after["characteristics"], entry.after["products"]) == ([dia.pk], [shaft.pk])

    def test_without_a_binding_a_device_is_bound_to_nothing(self, qs_api):
        body = qs_api.post(DEVICES, {"name": "gauge"}).json()
        assert (body["characteristics"], body["products"]) == ([], [])

    def test_patch_rebinds_and_is_audited(self, qs_api, targets):
        dia, shaft = targets
        device, _ = services.device_create(name="gauge", characteristics=[dia])
        body = {"characteristics": [], "products": [shaft.pk]}
        response = qs_api.patch(f"{DEVICES}{device.pk}/", body, format="json")
        assert response.status_code == 200, response.content
        assert (response.json()["characteristics"], response.json()["products"]) == ([], [shaft.pk])
        assert (list(device.characteristics.all()), list(device.products.all())) == ([], [shaft])
        change = AuditEntry.objects.filter(object_id=str(device.pk), content_type__model="device").latest(
            "pk"
        )
        assert (change.before, change.after) == (
            {"characteristics": [dia.pk], "products": []},
            {"characteristics": [], "products": [shaft.pk]},
        )
        # A PATCH without the binding leaves it alone.
        qs_api.patch(f"{DEVICES}{device.pk}/", {"description": "moved"}, format="json")
        assert list(device.products.all()) == [shaft]

    def test_an_unknown_characteristic_is_400(self, qs_api):
        error = error_of(qs_api.post(DEVICES, {"name": "g", "characteristics": [987654]}, format="json"), 400)
        assert "characteristics" in error["fields"]
        assert not Device.objects.exists()

    @pytest.mark.parametrize("role", ["operations_lead", "tester", "manager"])
    def test_only_quality_specialists_bind(self, api, request, targets, role):
        dia, _ = targets
        device, _ = services.device_create(name="gauge")
        client = api(request.getfixturevalue(role))
        error_of(client.patch(f"{DEVICES}{device.pk}/", {"characteristics": [dia.pk]}, format="json"), 403)
        assert not device.characteristics.exists()

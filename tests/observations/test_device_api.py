"""Devices post batches: POST /api/v1/device/observations/ with a device token."""

import json
import math

import pytest
from django.db import connection
from rest_framework.test import APIClient

from apps.config import services as config_services
from apps.config.models import Characteristic
from apps.observations import services
from apps.observations.choices import LotStatus, ObservationSource, ObservationStatus
from apps.observations.models import Observation
from openspc.roles import Role
from tests.config.helpers import error_of
from tests.factories import LotFactory, ProductFactory, UserFactory
from tests.support.plant import rows

pytestmark = pytest.mark.django_db

DEVICE = "/api/v1/device/observations/"


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {token}")
    return client


def _by_codes(**extra):
    return {"product": "RING-74", "test": "DIA", "lot": "L-1", "values": [74.0], **extra}


class DevicePostTests:
    def test_by_product_and_test_codes(
        self, device_client, device, plant, queued, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            response = device_client.post(DEVICE, [_by_codes(observed_at="2025-03-01T08:00:00Z")])
        assert response.status_code == 202, response.content
        observation = Observation.objects.get()
        assert response.json()["ids"] == [observation.pk]
        assert response.json()["status_url"].endswith(f"/api/v1/observations/{observation.pk}/")
        assert (observation.lot, observation.item, observation.test) == (plant.lot, None, plant.dia)
        assert (observation.source, observation.user, observation.status) == (
            ObservationSource.DEVICE, device[0].user, ObservationStatus.RECEIVED,
        )  # fmt: skip
        assert queued == [[observation.pk]]

    def test_by_characteristic_and_item_serial(self, device_client, plant):
        services.items_assign(items=[plant.items[1]], tester=None)  # a tester's item is the tester's
        characteristic = Characteristic.objects.get(product=plant.product, test=plant.wall)
        body = [{"characteristic": characteristic.pk, "lot": "L-1", "item": "0002", "values": [1.5]}]
        response = device_client.post(DEVICE, body)
        assert response.status_code == 202, response.content
        observation = Observation.objects.get()
        assert (observation.test, observation.item) == (plant.wall, plant.items[1])

    def test_a_single_object_is_accepted_too(self, device_client, plant):
        assert device_client.post(DEVICE, _by_codes()).status_code == 202

    def test_a_batch_of_5000_is_stored_in_a_few_queries(
        self, device_client, plant, django_assert_max_num_queries
    ):
        batch = [
            _by_codes(values=[70 + n / 1000], observed_at=f"2025-03-01T08:00:{n % 60:02d}Z")
            for n in range(5000)
        ]
        fields = [f for f in Observation._meta.concrete_fields if not f.primary_key]
        per_insert = min(services.INSERT_BATCH, connection.ops.bulk_batch_size(fields, [None] * 5000))
        # Authentication, the device's binding (2), a few look-ups for the whole batch, the key check,
        # the INSERTs, then the request's one audit entry: on PostgreSQL the chain head's lock and one
        # statement that inserts the entry and moves the head; SQLite reads and writes them apart (+2).
        audit = 4 if connection.vendor == "sqlite" else 2
        with django_assert_max_num_queries(12 + audit + math.ceil(5000 / per_insert)):
            response = device_client.post(DEVICE, batch)
        assert response.status_code == 202, response.content
        assert len(response.json()["ids"]) == 5000
        assert Observation.objects.count() == 5000

    def test_a_retry_creates_nothing(self, device_client, plant):
        batch = [_by_codes(idempotency_key="a"), _by_codes(values=[75.0], observed_at="2025-03-01T08:00:00Z")]
        first = device_client.post(DEVICE, batch).json()
        second = device_client.post(DEVICE, batch).json()
        assert second["ids"] == first["ids"] == second["duplicates"]
        assert Observation.objects.count() == 2

    def test_a_key_reused_with_another_body_is_409_and_nothing_is_stored(self, device_client, plant, queued):
        first = device_client.post(DEVICE, [_by_codes(idempotency_key="run-1")]).json()
        batch = [
            _by_codes(values=[70.5], idempotency_key="run-2"),
            _by_codes(values=[75.0], idempotency_key="run-1"),
        ]
        error = error_of(device_client.post(DEVICE, batch), 409)
        assert error["code"] == "idempotency_key_reused"
        assert (
            f"[1] key 'run-1' was used for observation {first['ids'][0]} with another values."
            in error["message"]
        )
        assert list(Observation.objects.values_list("values", flat=True)) == [[74.0]]

    def test_repeats_within_a_batch_are_reported(self, device_client, plant):
        batch = [
            _by_codes(idempotency_key="a"),
            _by_codes(idempotency_key="b"),
            _by_codes(idempotency_key="a"),
        ]
        body = device_client.post(DEVICE, batch).json()
        assert (body["ids"][2], body["duplicates"], body["repeated"]) == (body["ids"][0], [], [2])
        again = device_client.post(DEVICE, batch).json()
        assert (again["ids"], again["duplicates"], again["repeated"]) == (body["ids"], body["ids"], [2])
        assert Observation.objects.count() == 2

    def test_the_same_value_twice_without_key_or_time_is_two_observations(self, device_client, plant):
        """A gauge streaming lot-level values repeats a reading often: nothing identifies a retry,
        so both are kept (a content hash would have dropped the second, within a batch and after)."""
        first = device_client.post(DEVICE, [_by_codes(), _by_codes()]).json()
        second = device_client.post(DEVICE, [_by_codes()]).json()
        assert len(set(first["ids"] + second["ids"])) == 3
        assert (first["duplicates"], second["duplicates"]) == ([], [])
        assert list(Observation.objects.values_list("values", flat=True)) == [[74.0]] * 3

    def test_lot_numbers_are_per_product(self, device_client, plant):
        other = LotFactory(number="L-1")  # the same number on another product
        device_client.post(DEVICE, [_by_codes()])
        assert Observation.objects.get().lot == plant.lot
        assert other.observations.count() == 0


class DeviceRefusedTests:
    @pytest.fixture(autouse=True)
    def _nothing_changes(self, plant, queued):
        before = rows()
        yield
        assert rows() == before
        assert queued == []

    def test_unknown_lot_is_400_naming_it(self, device_client):
        error = error_of(device_client.post(DEVICE, [_by_codes(), _by_codes(lot="L-404")]), 400, "[1].lot")
        assert "L-404" in error["message"]
        assert "RING-74" in error["message"]

    @pytest.mark.parametrize(("field", "value"), [("product", "NOPE"), ("test", "NOPE")])
    def test_unknown_codes_are_400_naming_them(self, device_client, field, value):
        error = error_of(device_client.post(DEVICE, [_by_codes(**{field: value})]), 400, f"[0].{field}")
        assert "NOPE" in error["message"]

    def test_unknown_characteristic_is_400(self, device_client):
        body = [{"characteristic": 987654, "lot": "L-1", "values": [1]}]
        error = error_of(device_client.post(DEVICE, body), 400, "[0].characteristic")
        assert "987654" in error["message"]

    def test_unknown_item_serial_is_400_naming_it(self, device_client):
        error = error_of(device_client.post(DEVICE, [_by_codes(item="9999")]), 400, "[0].item")
        assert "9999" in error["message"]

    @pytest.mark.parametrize("status", [LotStatus.RELEASED, LotStatus.REJECTED])
    def test_a_closed_lot_is_400_naming_it(self, device_client, plant, status):
        plant.lot.status = status
        plant.lot.save()
        error = error_of(device_client.post(DEVICE, [_by_codes()]), 400, "[0].lot")
        assert "L-1" in error["message"]

    @pytest.mark.parametrize(
        "entry",
        [
            {"lot": "L-1", "values": [1]},  # neither characteristic nor codes
            {"product": "RING-74", "lot": "L-1", "values": [1]},  # product without test
            {"characteristic": 1, "product": "RING-74", "test": "DIA", "lot": "L-1", "values": [1]},
            {"product": "RING-74", "test": "DIA", "values": [1]},  # no lot
            {"product": "RING-74", "test": "DIA", "lot": "L-1", "values": ["1"]},
        ],
    )
    def test_malformed_entries_are_400_naming_the_entry(self, device_client, entry):
        error = error_of(device_client.post(DEVICE, [_by_codes(), entry]), 400)
        assert any(key.startswith("[1].") for key in error["fields"]), error

    def test_more_than_5000_entries_is_400(self, device_client):
        error = error_of(device_client.post(DEVICE, [_by_codes()] * 5001), 400)
        assert "5000" in error["message"]

    def test_a_10_mb_body_is_413(self, device_client):
        body = json.dumps([_by_codes(idempotency_key="k" * 120)] * 60_000).encode()
        assert len(body) > 10_000_000
        error = error_of(device_client.post(DEVICE, body, content_type="application/json"), 413)
        assert error["code"] == "body_too_large"

    @pytest.mark.parametrize("role", ["tester", "operations_lead", "quality_specialist", "manager"])
    def test_people_cannot_post_here(self, api, request, role):
        error = error_of(api(request.getfixturevalue(role)).post(DEVICE, [_by_codes()]), 401)
        assert "Device" in error["message"] or error["code"] == "not_authenticated"

    def test_a_user_in_the_device_group_without_a_token_is_refused(self, api):
        user = UserFactory(username="fake-device", roles=[Role.DEVICE])
        assert api(user).post(DEVICE, [_by_codes()]).status_code in (401, 403)

    def test_a_deactivated_device_is_401(self, device_client, device):

        config_services.device_update(device=device[0], data={"active": False})
        error_of(device_client.post(DEVICE, [_by_codes()]), 401)

    def test_anonymous_is_401(self, api):
        error_of(api(None).post(DEVICE, [_by_codes()]), 401)


class DeviceBindingTests:
    """A device posts only to what it is bound to, and never onto a tester's items."""

    @pytest.fixture
    def gauge(self, plant):
        """A device bound to one characteristic: RING-74 / DIA."""
        dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
        device, token = config_services.device_create(name="dia-gauge", characteristics=[dia])
        return device, _client(token)

    def test_a_bound_device_posts_to_its_characteristic(self, gauge, plant):
        dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
        by_id = {"characteristic": dia.pk, "lot": "L-1", "values": [74.1]}
        response = gauge[1].post(DEVICE, [_by_codes(), by_id])
        assert response.status_code == 202, response.content
        assert list(Observation.objects.order_by("pk").values_list("test", "user", "values")) == [
            (plant.dia.pk, gauge[0].user.pk, [74.0]),
            (plant.dia.pk, gauge[0].user.pk, [74.1]),
        ]

    def test_another_characteristic_of_the_product_is_403_and_nothing_is_stored(self, gauge, plant, queued):
        batch = [_by_codes(), _by_codes(test="WALL"), _by_codes(), _by_codes(test="WALL", values=[2.0])]
        error = error_of(gauge[1].post(DEVICE, batch), 403)
        assert error["message"].startswith(
            "Device dia-gauge is not bound to [1] RING-74 / WALL, [3] RING-74 / WALL; nothing was stored."
        )
        assert "[0]" not in error["message"]
        assert (Observation.objects.count(), queued) == (0, [])

    def test_another_product_is_403_and_nothing_is_stored(self, gauge, plant, device_client, queued):
        other = ProductFactory(code="SHAFT-20")
        config_services.plan_assign(product=other, plan=plant.ring)
        LotFactory(product=other, number="S-1")
        for client in (gauge[1], device_client):  # by characteristic, and by product (device is RING-74's)
            error = error_of(client.post(DEVICE, [_by_codes(product="SHAFT-20", lot="S-1")]), 403)
            assert "is not bound to [0] SHAFT-20 / DIA; nothing was stored" in error["message"]
        assert (Observation.objects.count(), queued) == (0, [])

    def test_a_device_bound_to_nothing_posts_nothing(self, plant, queued):
        _, token = config_services.device_create(name="new-gauge")
        error = error_of(_client(token).post(DEVICE, [_by_codes()]), 403)
        assert "Device new-gauge is not bound to [0] RING-74 / DIA" in error["message"]
        assert "/api/v1/devices/" in error["message"]
        assert (Observation.objects.count(), queued) == (0, [])

    def test_a_testers_item_is_refused_and_nothing_is_stored(self, device_client, plant, queued):
        services.items_assign(items=[plant.items[2]], tester=None)
        batch = [_by_codes(item="0003"), _by_codes(item="0001"), _by_codes()]
        error = error_of(device_client.post(DEVICE, batch), 403)
        assert error["message"].startswith("Assigned to a tester: [1] item 0001 of lot L-1; devices do not")
        assert (Observation.objects.count(), queued) == (0, [])
        # Taken back from the tester, the item takes the device's value.
        services.items_assign(items=[plant.items[0]], tester=None)
        assert device_client.post(DEVICE, batch).status_code == 202
        assert sorted(Observation.objects.values_list("item__serial", flat=True), key=str) == [
            "0001", "0003", None,
        ]  # fmt: skip


class DeviceStatusTests:
    """The 202 names a status URL; the device may read it, for what it posted itself and nothing
    else (Observation.visible_to; the Device role's view right on observations)."""

    def test_the_status_url_of_a_batch_answers_the_device_its_observations(self, device_client, plant):
        response = device_client.post(DEVICE, [_by_codes(), _by_codes(values=[74.1])])
        assert response.status_code == 202, response.content
        ids = response.json()["ids"]
        assert response.json()["status_url"].endswith(f"/api/v1/observations/?ids={ids[0]},{ids[1]}")
        status = device_client.get(response.json()["status_url"])
        assert status.status_code == 200, status.content
        assert [(row["id"], row["status"]) for row in status.json()["results"]] == [
            (ids[1], "received"), (ids[0], "received"),
        ]  # fmt: skip
        one = device_client.get(f"/api/v1/observations/{ids[0]}/")
        assert (one.status_code, one.json()["values"]) == (200, [74.0])

    def test_a_device_reads_nothing_it_did_not_post(self, device_client, plant):
        from apps.config import services as config_services

        [by_tester] = plant.record({"item": plant.items[0], "test": plant.dia, "values": [74.0]})
        other_device, _ = config_services.device_create(name="gauge-8", products=[plant.product])
        [by_other] = services.observations_record(
            entries=services.device_entries_resolve(
                rows=[_by_codes(values=[74.2])], batch=False, device=other_device
            ),
            source=ObservationSource.DEVICE, user=other_device.user, device=other_device,
        ).ids  # fmt: skip
        assert device_client.get("/api/v1/observations/").json()["count"] == 0
        for pk in (by_tester, by_other):
            error_of(device_client.get(f"/api/v1/observations/{pk}/"), 404)
        assert device_client.get(f"/api/v1/observations/?ids={by_tester},{by_other}").json()["count"] == 0

    def test_a_device_posts_observations_only_to_its_own_endpoint(self, device_client, plant):
        body = {"item": plant.items[0].pk, "test": plant.dia.pk, "values": [74.0]}
        error = error_of(device_client.post("/api/v1/observations/", body), 403)
        assert "devices post to /api/v1/device/observations/" in error["message"]
        assert not Observation.objects.exists()


def test_record_refuses_a_device_that_is_not_the_poster(plant, device):
    from django.core.exceptions import ValidationError

    entries = services.device_entries_resolve(rows=[_by_codes()], batch=True, device=device[0])
    with pytest.raises(ValidationError):
        services.observations_record(entries=entries, source="device", user=plant.tester, device=device[0])

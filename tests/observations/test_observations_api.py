"""Testers post observations: POST /api/v1/observations/, and read them back."""

import json

import pytest
from django.contrib.auth.models import Permission, User
from django.test import override_settings

from apps.observations.choices import LotStatus, ObservationSource, ObservationStatus
from apps.observations.models import Observation
from openspc.roles import Role
from tests.config.helpers import error_of
from tests.factories import ItemFactory, ObservationFactory, UserFactory
from tests.support.plant import rows

pytestmark = pytest.mark.django_db

OBSERVATIONS = "/api/v1/observations/"


def _entry(plant, index=0, **extra):
    return {"item": plant.items[index].pk, "test": plant.dia.pk, "values": [74.0], **extra}


class PostTests:
    def test_one_object_is_stored_received_and_queued_on_commit(
        self, api, plant, queued, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = api(plant.tester).post(OBSERVATIONS, _entry(plant, observed_at="2025-03-01T08:00:00Z"))
        assert response.status_code == 202, response.content
        body = response.json()
        observation = Observation.objects.get()
        assert body == {
            "ids": [observation.pk],
            "duplicates": [],
            "repeated": [],
            "status_url": f"http://testserver/api/v1/observations/{observation.pk}/",
        }
        assert (observation.status, observation.source, observation.user) == (
            ObservationStatus.RECEIVED, ObservationSource.MANUAL, plant.tester,
        )  # fmt: skip
        assert (observation.item, observation.lot, observation.test) == (plant.items[0], plant.lot, plant.dia)
        assert observation.values == [74.0]
        assert observation.observed_at.isoformat() == "2025-03-01T08:00:00+00:00"
        assert observation.processed_at is None
        assert len(callbacks) == 1
        assert queued == [[observation.pk]]

    def test_nothing_is_queued_before_commit(self, api, plant, queued, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            api(plant.tester).post(OBSERVATIONS, _entry(plant))
        assert queued == []
        assert len(callbacks) == 1

    def test_a_batch_answers_ids_in_order_and_a_status_url_for_all(self, api, plant):
        batch = [
            _entry(plant, 0),
            _entry(plant, 1),
            {**_entry(plant, 2), "test": plant.wall.pk, "values": [1, 2, 3]},
        ]
        response = api(plant.tester).post(OBSERVATIONS, batch)
        assert response.status_code == 202, response.content
        ids = response.json()["ids"]
        stored = Observation.objects.in_bulk(ids)
        assert [stored[pk].item for pk in ids] == plant.items
        assert stored[ids[2]].values == [1, 2, 3]
        status_url = response.json()["status_url"]
        assert status_url.endswith("/api/v1/observations/?ids=" + ",".join(map(str, ids)))
        listed = api(plant.tester).get(status_url).json()
        assert sorted(row["id"] for row in listed["results"]) == sorted(ids)

    def test_observed_at_defaults_to_the_receipt_time(self, api, plant):
        api(plant.tester).post(OBSERVATIONS, _entry(plant))
        observation = Observation.objects.get()
        assert observation.observed_at == observation.received_at

    def test_the_poster_is_the_caller_whatever_the_body_says(self, api, plant, other_tester):
        api(plant.tester).post(OBSERVATIONS, _entry(plant, user=other_tester.pk, source="device"))
        observation = Observation.objects.get()
        assert (observation.user, observation.source) == (plant.tester, ObservationSource.MANUAL)


class IdempotencyTests:
    def test_a_retry_with_the_same_keys_creates_nothing(
        self, api, plant, queued, django_capture_on_commit_callbacks
    ):
        batch = [_entry(plant, 0, idempotency_key="k-1"), _entry(plant, 1, idempotency_key="k-2")]
        client = api(plant.tester)
        with django_capture_on_commit_callbacks(execute=True):
            first = client.post(OBSERVATIONS, batch).json()
        with django_capture_on_commit_callbacks(execute=True):
            second = client.post(OBSERVATIONS, batch)
        assert second.status_code == 202
        assert second.json()["ids"] == first["ids"]
        assert second.json()["duplicates"] == first["ids"]
        assert Observation.objects.count() == 2
        assert queued == [first["ids"]]  # the retry queues nothing

    def test_a_retry_without_keys_is_recognised_by_its_content(self, api, plant):
        entry = _entry(plant, observed_at="2025-03-01T08:00:00Z")
        first = api(plant.tester).post(OBSERVATIONS, entry).json()
        second = api(plant.tester).post(OBSERVATIONS, entry).json()
        assert second["ids"] == first["ids"] == second["duplicates"]
        assert Observation.objects.count() == 1

    def test_a_partial_retry_stores_only_the_new_entries(self, api, plant):
        client = api(plant.tester)
        first = client.post(OBSERVATIONS, [_entry(plant, 0, idempotency_key="a")]).json()
        second = client.post(
            OBSERVATIONS, [_entry(plant, 0, idempotency_key="a"), _entry(plant, 1, idempotency_key="b")]
        ).json()
        assert second["ids"][0] == first["ids"][0]
        assert second["duplicates"] == first["ids"]
        assert Observation.objects.count() == 2

    def test_the_same_entry_twice_in_one_batch_is_stored_once_and_reported(self, api, plant):
        batch = [
            _entry(plant, 0, idempotency_key="x"),
            _entry(plant, 1),
            _entry(plant, 0, idempotency_key="x"),
        ]
        body = api(plant.tester).post(OBSERVATIONS, batch).json()
        assert body["ids"][0] == body["ids"][2]
        assert (body["duplicates"], body["repeated"]) == ([], [2])
        assert Observation.objects.count() == 2

    def test_the_same_key_with_two_bodies_in_one_batch_is_400_and_nothing_is_stored(self, api, plant, queued):
        batch = [_entry(plant, 0, idempotency_key="x"), _entry(plant, 1, idempotency_key="x")]
        error = error_of(api(plant.tester).post(OBSERVATIONS, batch), 400, "[1].idempotency_key")
        assert error["code"] == "validation_error"
        assert "Entry [0] has the same idempotency key 'x' with another item" in error["message"]
        assert (Observation.objects.count(), queued) == (0, [])

    @pytest.mark.parametrize(
        ("again", "differs"),
        [
            ({"values": [74.5]}, "values"),
            ({"observed_at": "2025-03-01T08:00:00Z"}, "observed_at"),  # the first gave no time
            ({"test": "wall", "values": [1, 2, 3]}, "test, values"),
        ],
    )
    def test_a_key_reused_with_another_body_is_409_and_nothing_is_stored(
        self, api, plant, queued, django_capture_on_commit_callbacks, again, differs
    ):
        client = api(plant.tester)
        with django_capture_on_commit_callbacks(execute=True):
            first = client.post(OBSERVATIONS, _entry(plant, idempotency_key="k-1")).json()
        before = rows()
        if again.get("test") == "wall":
            again = {**again, "test": plant.wall.pk}
        batch = [_entry(plant, 1, idempotency_key="k-2"), _entry(plant, idempotency_key="k-1", **again)]
        with django_capture_on_commit_callbacks(execute=True):
            error = error_of(client.post(OBSERVATIONS, batch), 409)
        assert error["code"] == "idempotency_key_reused"
        assert error["message"] == (
            f"Idempotency key reused with a different body: [1] key 'k-1' was used for observation "
            f"{first['ids'][0]} with another {differs}. Nothing was stored; send a key again only to "
            "retry the same observation."
        )
        assert rows() == before  # k-2 was not stored either
        assert queued == [first["ids"]]

    def test_a_retry_of_a_timed_entry_with_the_same_time_is_a_duplicate(self, api, plant):
        entry = _entry(plant, idempotency_key="k", observed_at="2025-03-01T09:00:00+01:00", values=[74, 1.5])
        first = api(plant.tester).post(OBSERVATIONS, entry).json()
        again = {
            **entry,
            "observed_at": "2025-03-01T08:00:00Z",
            "values": [74.0, 1.5],
        }  # the same time and values
        second = api(plant.tester).post(OBSERVATIONS, again)
        assert second.status_code == 202, second.content
        assert second.json()["duplicates"] == first["ids"]

    def test_keys_of_different_posters_do_not_collide(self, api, plant, other_tester):
        ItemFactory(lot=plant.lot, serial="0900", plans=[plant.ring], tester=other_tester)
        mine = api(plant.tester).post(OBSERVATIONS, _entry(plant, idempotency_key="same")).json()
        item = plant.lot.items.get(serial="0900")
        theirs = (
            api(other_tester)
            .post(
                OBSERVATIONS,
                {"item": item.pk, "test": plant.dia.pk, "values": [75], "idempotency_key": "same"},
            )
            .json()
        )
        assert theirs["ids"] != mine["ids"]
        assert theirs["duplicates"] == []
        assert Observation.objects.count() == 2

    def test_different_values_without_keys_are_different_observations(self, api, plant):
        client = api(plant.tester)
        client.post(OBSERVATIONS, _entry(plant, values=[74.0]))
        client.post(OBSERVATIONS, _entry(plant, values=[74.5]))
        assert Observation.objects.count() == 2


class RefusedTests:
    """Refused at the edge: an error naming the problem, and nothing stored or queued."""

    @pytest.fixture(autouse=True)
    def _nothing_changes(self, plant, queued):
        ObservationFactory(item=plant.items[0], test=plant.dia)
        before = rows()
        yield
        assert rows() == before
        assert queued == []

    def test_an_item_not_assigned_to_me_is_403_naming_it(self, api, plant, other_tester):
        response = api(other_tester).post(OBSERVATIONS, _entry(plant, 1))
        error = error_of(response, 403)
        assert "0002" in error["message"]
        assert "L-1" in error["message"]

    def test_one_foreign_item_refuses_the_whole_batch(self, api, plant, other_tester):
        foreign = ItemFactory(lot=plant.lot, serial="0777", tester=other_tester)
        batch = [_entry(plant, 0), {"item": foreign.pk, "test": plant.dia.pk, "values": [1]}]
        error = error_of(api(plant.tester).post(OBSERVATIONS, batch), 403)
        assert "0777" in error["message"]

    def test_unknown_item_is_400_naming_it(self, api, plant):
        error = error_of(api(plant.tester).post(OBSERVATIONS, {**_entry(plant), "item": 987654}), 400, "item")
        assert "987654" in error["message"]

    def test_unknown_test_is_400_naming_it(self, api, plant):
        error = error_of(api(plant.tester).post(OBSERVATIONS, {**_entry(plant), "test": 987654}), 400, "test")
        assert "987654" in error["message"]

    @pytest.mark.parametrize("status", [LotStatus.RELEASED, LotStatus.REJECTED])
    def test_a_closed_lot_is_400_naming_it(self, api, plant, status):
        plant.lot.status = status
        plant.lot.save()
        error = error_of(api(plant.tester).post(OBSERVATIONS, _entry(plant)), 400, "item")
        assert "L-1" in error["message"]
        assert status in error["message"]

    @pytest.mark.parametrize(
        ("values", "problem"),
        [
            ([], "values"),
            ("74", "values"),
            (["74"], "values"),
            ([True], "values"),
            ([None], "values"),
            ([[74]], "values"),
            ([1.0] * 26, "values"),
        ],
    )
    def test_values_that_are_not_a_list_of_numbers_are_400(self, api, plant, values, problem):
        error_of(api(plant.tester).post(OBSERVATIONS, _entry(plant, values=values)), 400, problem)

    @pytest.mark.parametrize(
        ("entry", "field"),
        [
            ({"test": 1, "values": [1]}, "item"),
            ({"item": 1, "values": [1]}, "test"),
            ({"item": 1, "test": 1}, "values"),
            ({"item": "one", "test": 1, "values": [1]}, "item"),
            ({"item": 1, "test": 1, "values": [1], "observed_at": "yesterday"}, "observed_at"),
            ({"item": 1, "test": 1, "values": [1], "idempotency_key": "k" * 129}, "idempotency_key"),
        ],
    )
    def test_a_malformed_entry_is_400_naming_the_field(self, api, plant, entry, field):
        error_of(api(plant.tester).post(OBSERVATIONS, entry), 400, field)

    def test_a_malformed_entry_in_a_batch_is_400_naming_its_index(self, api, plant):
        batch = [_entry(plant, 0), _entry(plant, 1), _entry(plant, 2, values=["x"])]
        error = error_of(api(plant.tester).post(OBSERVATIONS, batch), 400, "[2].values")
        assert "not a number" in error["message"]

    @pytest.mark.parametrize("body", [[], "text", 42, [1, 2]])
    def test_a_body_that_is_not_objects_is_400(self, api, plant, body):
        error_of(api(plant.tester).post(OBSERVATIONS, body), 400)

    def test_more_than_500_entries_is_400(self, api, plant):
        error = error_of(api(plant.tester).post(OBSERVATIONS, [_entry(plant)] * 501), 400)
        assert "500" in error["message"]

    def test_invalid_json_is_400(self, api, plant):
        response = api(plant.tester).post(OBSERVATIONS, b"{not json", content_type="application/json")
        error_of(response, 400)

    @pytest.mark.parametrize("body", ["[" * 100_000, '{"a": ' * 100_000, "[" * 100_000 + "]" * 100_000])
    def test_deeply_nested_json_is_400_in_the_error_format(self, api, plant, body):
        before = rows()
        response = api(plant.tester).post(OBSERVATIONS, body, content_type="application/json")
        error = error_of(response, 400)
        assert error["code"] == "parse_error"
        assert "nested too deeply" in error["message"]
        assert rows() == before

    def test_nan_literal_is_refused_by_the_parser(self, api, plant):
        body = f'{{"item": {plant.items[0].pk}, "test": {plant.dia.pk}, "values": [NaN]}}'
        error_of(api(plant.tester).post(OBSERVATIONS, body, content_type="application/json"), 400)

    def test_a_10_mb_body_is_413(self, api, plant):
        body = json.dumps([_entry(plant, idempotency_key="p" * 100)] * 70_000).encode()
        assert len(body) > 10_000_000
        error = error_of(api(plant.tester).post(OBSERVATIONS, body, content_type="application/json"), 413)
        assert error["code"] == "body_too_large"
        assert "bytes" in error["message"]

    @override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100_000)
    def test_the_limit_is_the_setting(self, api, plant):
        body = json.dumps([_entry(plant, idempotency_key="p" * 100)] * 700).encode()
        assert 100_000 < len(body) < 1_000_000
        error_of(api(plant.tester).post(OBSERVATIONS, body, content_type="application/json"), 413)

    @pytest.mark.parametrize("role", ["operations_lead", "quality_specialist", "manager"])
    def test_office_roles_cannot_post(self, api, request, plant, role):
        error_of(api(request.getfixturevalue(role)).post(OBSERVATIONS, _entry(plant)), 403)

    def test_a_device_token_cannot_post_here(self, device_api, plant):
        error_of(device_api.post(OBSERVATIONS, _entry(plant)), 403)

    def test_anonymous_is_401(self, api, plant):
        error_of(api(None).post(OBSERVATIONS, _entry(plant)), 401)


class DataEntryTests:
    """Data entry is for testers (for their items) and devices; nobody else, whatever model
    permissions an administrator gives (docs/roles.md)."""

    @pytest.mark.parametrize("role", ["operations_lead", "quality_specialist", "manager"])
    def test_other_roles_are_refused_even_with_the_add_right(self, api, request, plant, role):
        user = request.getfixturevalue(role)
        user.user_permissions.add(Permission.objects.get(codename="add_observation"))
        error = error_of(api(User.objects.get(pk=user.pk)).post(OBSERVATIONS, _entry(plant, 0)), 403)
        assert error["message"].startswith("Only testers post here")
        assert not Observation.objects.exists()

    def test_a_superuser_is_no_tester(self, api, plant):
        root = UserFactory(username="root", is_superuser=True)
        error_of(api(root).post(OBSERVATIONS, _entry(plant, 0)), 403)
        assert not Observation.objects.exists()

    def test_a_tester_with_another_role_posts_only_for_their_items(self, api, plant):
        lead = UserFactory(username="lead-tester", roles=[Role.TESTER, Role.OPERATIONS_LEAD])
        error_of(api(lead).post(OBSERVATIONS, _entry(plant, 0)), 403)  # item 0001 is the tester's
        item = ItemFactory(lot=plant.lot, plans=[plant.ring], tester=lead)
        body = {"item": item.pk, "test": plant.dia.pk, "values": [74.0]}
        assert api(lead).post(OBSERVATIONS, body).status_code == 202
        assert Observation.objects.get().user == lead


class ReadTests:
    def test_status_and_reasons_of_my_observation(self, api, plant):
        from apps.observations import services

        [pk] = plant.record({"item": plant.items[0], "test": plant.dia, "values": [99.0]})
        services.observations_process(ids=[pk])
        body = api(plant.tester).get(f"{OBSERVATIONS}{pk}/").json()
        assert (body["status"], body["item_serial"], body["lot_number"], body["test_code"]) == (
            "rejected", "0001", "L-1", "DIA",
        )  # fmt: skip
        assert [reason["code"] for reason in body["reasons"]] == ["out_of_range"]
        assert body["processed_at"] is not None
        assert body["user"] == "tester"

    def test_a_tester_does_not_read_anothers_observations(self, api, plant, other_tester):
        [pk] = plant.record({"item": plant.items[0], "test": plant.dia, "values": [74.0]})
        error_of(api(other_tester).get(f"{OBSERVATIONS}{pk}/"), 404)
        assert api(other_tester).get(OBSERVATIONS).json()["count"] == 0

    @pytest.mark.parametrize("role", ["quality_specialist", "manager"])
    def test_quality_specialist_and_manager_read_all(self, api, request, plant, role):
        plant.record({"item": plant.items[0], "test": plant.dia, "values": [74.0]})
        assert api(request.getfixturevalue(role)).get(OBSERVATIONS).json()["count"] == 1

    def test_operations_lead_reads_progress_not_observations(self, api, plant, operations_lead):
        error_of(api(operations_lead).get(OBSERVATIONS), 403)

    def test_filters(self, api, plant, quality_specialist):
        plant.record(
            {"item": plant.items[0], "test": plant.dia, "values": [74.0]},
            {"item": plant.items[1], "test": plant.wall, "values": [1, 2, 3]},
        )
        client = api(quality_specialist)
        assert client.get(OBSERVATIONS, {"test": plant.wall.pk}).json()["count"] == 1
        assert client.get(OBSERVATIONS, {"item": plant.items[0].pk}).json()["count"] == 1
        assert client.get(OBSERVATIONS, {"status": "received", "lot": plant.lot.pk}).json()["count"] == 2
        assert client.get(OBSERVATIONS, {"source": "device"}).json()["count"] == 0

    def test_list_query_count_does_not_grow(
        self, api, plant, quality_specialist, django_assert_max_num_queries
    ):
        for n in range(30):
            plant.record({"item": plant.items[n % 3], "test": plant.dia, "values": [70 + n / 10]})
        with django_assert_max_num_queries(6):
            response = api(quality_specialist).get(OBSERVATIONS)
        assert response.json()["count"] == 30

"""The observations.in worker's work: observations_process and the stale sweep."""

import datetime
import json

import pytest
from django.db import connection
from django.utils import timezone

from apps.config import services as config_services
from apps.config.models import Characteristic
from apps.observations import services
from apps.observations.choices import LotStatus, ObservationStatus
from apps.observations.models import Observation
from apps.observations.services import record
from tests.factories import ItemFactory, LotFactory, ProductFactory, TestFactory, released_plan
from tests.support.plant import rows

pytestmark = pytest.mark.django_db


def _one(pk: int) -> Observation:
    return Observation.objects.get(pk=pk)


def _codes(observation: Observation) -> list[str]:
    return [reason["code"] for reason in observation.reasons]


class ConfirmTests:
    def test_a_valid_observation_is_confirmed_with_its_characteristic(self, plant):
        [pk] = plant.record({"item": plant.items[0], "test": plant.wall, "values": [1.1, 1.2, 1.3]})
        result = services.observations_process(ids=[pk])
        assert (result.confirmed, result.rejected) == (1, 0)
        observation = _one(pk)
        assert observation.status == ObservationStatus.CONFIRMED
        assert observation.reasons == []
        assert observation.characteristic == Characteristic.objects.get(
            product=plant.product, test=plant.wall
        )
        assert observation.processed_at is not None

    def test_device_data_for_a_lot_is_checked_against_every_plan_of_the_product(self, plant, device):
        entries = services.device_entries_resolve(
            rows=[{"product": "RING-74", "test": "WALL", "lot": "L-1", "values": [1.0]}],
            batch=True,
            device=device[0],
        )
        ids = services.observations_record(entries=entries, source="device", user=device[0].user).ids
        services.observations_process(ids=ids)
        # A device streams single values: the replicate count of the plan is not asked for.
        assert _one(ids[0]).status == ObservationStatus.CONFIRMED


class RejectTests:
    """Found after acceptance: a stored row, rejected, with every reason."""

    def test_a_test_not_in_the_items_plans(self, plant):
        other = released_plan(TestFactory(code="ROUGH"), code="ROUGH")
        config_services.plan_assign(product=plant.product, plan=other)
        rough = other.entries.get().test
        [pk] = plant.record({"item": plant.items[0], "test": rough, "values": [1.0]})
        services.observations_process(ids=[pk])
        observation = _one(pk)
        assert observation.status == ObservationStatus.REJECTED
        assert _codes(observation) == ["test_not_in_plan"]
        assert "ROUGH is not in the item's test plans" in observation.reasons[0]["message"]
        assert observation.characteristic is None

    def test_a_test_of_no_plan_of_the_product(self, plant):
        [pk] = plant.record({"item": plant.items[0], "test": plant.surf, "values": [2]})
        services.observations_process(ids=[pk])
        assert _codes(_one(pk)) == ["test_not_in_plan"]
        assert "RING-74" in _one(pk).reasons[0]["message"]

    def test_an_item_without_plans(self, plant):
        bare = ItemFactory(lot=plant.lot, tester=plant.tester)
        [pk] = plant.record({"item": bare, "test": plant.dia, "values": [74.0]})
        services.observations_process(ids=[pk])
        assert _codes(_one(pk)) == ["test_not_in_plan"]

    def test_a_non_finite_value_is_kept_and_rejected(self, api, plant):
        # 1e999 is valid JSON and overflows to infinity; JSON cannot store it, so it is kept as text.
        body = json.dumps({"item": plant.items[0].pk, "test": plant.dia.pk, "values": [0]}).replace(
            "[0]", "[1e999]"
        )
        response = api(plant.tester).post("/api/v1/observations/", body, content_type="application/json")
        assert response.status_code == 202, response.content
        [pk] = response.json()["ids"]
        assert _one(pk).values == ["Infinity"]
        services.observations_process(ids=[pk])
        observation = _one(pk)
        assert observation.status == ObservationStatus.REJECTED
        assert _codes(observation) == ["not_a_number"]
        assert "'Infinity'" in observation.reasons[0]["message"]

    def test_every_reason_is_kept(self, plant):
        [pk] = plant.record({"item": plant.items[0], "test": plant.dia, "values": [99.0, 74.0]})
        services.observations_process(ids=[pk])
        assert _codes(_one(pk)) == ["out_of_range", "replicate_count"]

    @pytest.mark.parametrize("status", [LotStatus.RELEASED, LotStatus.REJECTED])
    def test_a_lot_closed_after_acceptance(self, plant, status):
        [pk] = plant.record({"item": plant.items[0], "test": plant.dia, "values": [74.0]})
        services.lot_status_set(lot=plant.lot, status=LotStatus.IN_TESTING)
        services.lot_status_set(lot=plant.lot, status=status)
        services.observations_process(ids=[pk])
        observation = _one(pk)
        assert observation.status == ObservationStatus.REJECTED
        assert _codes(observation) == ["lot_closed"]
        assert "L-1" in observation.reasons[0]["message"]

    def test_an_observation_dated_before_the_plan_was_in_effect(self, plant):
        [pk] = plant.record(
            {"item": plant.items[0], "test": plant.dia, "values": [74.0],
             "observed_at": datetime.datetime(2024, 6, 1, tzinfo=datetime.UTC)}
        )  # fmt: skip
        services.observations_process(ids=[pk])
        assert _codes(_one(pk)) == ["not_effective"]

    def test_a_retired_plan(self, plant):
        [pk] = plant.record({"item": plant.items[0], "test": plant.dia, "values": [74.0]})
        config_services.test_plan_retire(plan=plant.ring)
        services.observations_process(ids=[pk])
        assert _codes(_one(pk)) == ["plan_retired"]


class IdempotentProcessingTests:
    def test_processing_twice_changes_nothing(self, plant):
        ids = plant.record(
            {"item": plant.items[0], "test": plant.dia, "values": [74.0]},
            {"item": plant.items[1], "test": plant.dia, "values": [99.0]},
        )
        first = services.observations_process(ids=ids)
        after_first = rows()
        second = services.observations_process(ids=ids)
        assert (first.confirmed, first.rejected) == (1, 1)
        assert (second.confirmed, second.rejected) == (0, 0)
        assert rows() == after_first

    def test_only_received_rows_among_the_ids_are_processed(self, plant):
        [done] = plant.record({"item": plant.items[0], "test": plant.dia, "values": [74.0]})
        services.observations_process(ids=[done])
        [new] = plant.record({"item": plant.items[1], "test": plant.dia, "values": [74.0]})
        assert services.observations_process(ids=[done, new, 987654]).confirmed == 1

    def test_unknown_ids_do_nothing(self, db):
        assert services.observations_process(ids=[987654]) == services.ProcessResult()

    def test_up_to_takes_the_oldest_other_waiting_rows_too(self, plant):
        ids = plant.record(*({"item": plant.items[0], "test": plant.dia, "values": [74.0 + n / 10]}
                             for n in range(5)))  # fmt: skip
        hour_ago = timezone.now() - datetime.timedelta(hours=1)  # received (and measured) then
        Observation.objects.filter(pk=ids[3]).update(received_at=hour_ago, observed_at=hour_ago)
        result = services.observations_process(ids=[ids[4]], up_to=3)
        # Its own row, then the two received first: ids[3] (an hour ago), then ids[0].
        assert (result.confirmed, result.rejected) == (3, 0)
        statuses = dict(Observation.objects.values_list("pk", "status"))
        assert [statuses[pk] for pk in ids] == [
            ObservationStatus.CONFIRMED, ObservationStatus.RECEIVED, ObservationStatus.RECEIVED,
            ObservationStatus.CONFIRMED, ObservationStatus.CONFIRMED,
        ]  # fmt: skip
        # Numbered in id order (arrival), whatever order they were claimed in.
        positions = dict(Observation.objects.filter(position__isnull=False).values_list("pk", "position"))
        assert sorted(positions, key=positions.get) == [ids[0], ids[3], ids[4]]

    def test_up_to_counts_the_rows_found_not_the_ids_given(self, plant):
        """A queued message some of whose rows an earlier transaction took (under a backlog, most of
        them) still fills its transaction with the waiting rows after them."""
        items = plant.items_total(6)
        ids = plant.record(*({"item": item, "test": plant.dia, "values": [74.0]} for item in items))
        assert services.observations_process(ids=ids[:2]).confirmed == 2
        result = services.observations_process(ids=ids[:3], up_to=3)  # 1 of its own left
        assert (result.confirmed, sorted(row.pk for row in result.rows)) == (3, ids[2:5])
        assert list(
            Observation.objects.filter(status=ObservationStatus.RECEIVED).values_list("pk", flat=True)
        ) == [ids[5]]

    def test_a_message_with_none_of_its_rows_left_takes_no_others(self, plant):
        items = plant.items_total(4)
        ids = plant.record(*({"item": item, "test": plant.dia, "values": [74.0]} for item in items))
        assert services.observations_process(ids=ids[:2]).confirmed == 2
        assert services.observations_process(ids=ids[:2], up_to=4) == services.ProcessResult()
        assert Observation.objects.filter(status=ObservationStatus.RECEIVED).count() == 2  # their messages'

    def test_the_task_takes_a_backlog_in_one_go_and_its_messages_find_nothing(self, plant):
        from apps.observations.tasks import observations_process_task

        items = plant.items_total(12)
        ids = plant.record(*({"item": item, "test": plant.dia, "values": [74.0]} for item in items))
        assert observations_process_task.run(ids=ids[:2]) == {"confirmed": 12, "rejected": 0}
        assert observations_process_task.run(ids=ids[2:4]) == {"confirmed": 0, "rejected": 0}
        assert not Observation.objects.filter(status=ObservationStatus.RECEIVED).exists()

    def test_configuration_is_loaded_once_per_product(self, plant, django_assert_max_num_queries):
        second_product = ProductFactory(code="CAP-9")
        config_services.plan_assign(product=second_product, plan=plant.ring)
        cap_lot = LotFactory(product=second_product, number="C-1")
        cap_items = [ItemFactory(lot=cap_lot, plans=[plant.ring], tester=plant.tester) for _ in range(10)]
        items = [*plant.items, *cap_items] * 5
        entries = [{"item": item, "test": plant.dia, "values": [70 + n / 10]} for n, item in enumerate(items)]
        ids = plant.record(*entries)
        # The claim, the items' plans, 4 per product configuration, the update (SQLite: a savepoint
        # too); folding into subgroups: the characteristics, their feed rows (create, lock), and per
        # characteristic its lot's checksum, the samples and the feed; the lots closed meanwhile; the
        # spec limits for the out-of-spec check of testers' results (apps/records). None of it grows
        # with the rows.
        with django_assert_max_num_queries(24 if connection.vendor == "sqlite" else 23):
            result = services.observations_process(ids=ids)
        assert result.confirmed == 65


class RequeueStaleTests:
    def test_rows_left_received_too_long_are_queued_again(self, plant, queued):
        old, _recent, done = plant.record(
            {"item": plant.items[0], "test": plant.dia, "values": [74.0]},
            {"item": plant.items[1], "test": plant.dia, "values": [74.0]},
            {"item": plant.items[2], "test": plant.dia, "values": [74.0]},
        )
        services.observations_process(ids=[done])
        an_hour_ago = timezone.now() - datetime.timedelta(hours=1)
        Observation.objects.filter(pk__in=[old, done]).update(received_at=an_hour_ago)
        assert services.observations_requeue_stale(older_than=datetime.timedelta(minutes=5)) == 1
        assert queued == [[old]]

    def test_big_backlogs_are_queued_in_chunks(self, plant, queued, monkeypatch):
        # observations_queue (services.record) reads the chunk size where it is defined.
        monkeypatch.setattr(record, "PROCESS_CHUNK", 2)
        ids = plant.record(
            *[{"item": plant.items[0], "test": plant.dia, "values": [70 + n]} for n in range(5)]
        )
        Observation.objects.update(received_at=timezone.now() - datetime.timedelta(hours=1))
        services.observations_requeue_stale(older_than=datetime.timedelta(minutes=5))
        assert queued == [ids[:2], ids[2:4], ids[4:]]

    def test_a_broker_outage_at_commit_does_not_fail_the_request(
        self, api, plant, monkeypatch, django_capture_on_commit_callbacks
    ):
        from apps.observations import tasks

        def broker_down(**kwargs):
            raise ConnectionError("broker down")

        monkeypatch.setattr(tasks.observations_process_task, "apply_async", broker_down)
        with django_capture_on_commit_callbacks(execute=True):
            response = api(plant.tester).post(
                "/api/v1/observations/", {"item": plant.items[0].pk, "test": plant.dia.pk, "values": [74.0]}
            )
        assert response.status_code == 202
        assert Observation.objects.get().status == ObservationStatus.RECEIVED  # the sweep will queue it


class ObservedAtTests:
    """A time of measurement far ahead of its receipt (the year 9999) or long before it is accepted
    at the edge, stored, and rejected by the worker with the limit named; judged against received_at."""

    def test_the_year_9999_over_rest_is_stored_then_rejected_with_the_reason(self, api, plant):
        client = api(plant.tester)
        entry = {"item": plant.items[0].pk, "test": plant.dia.pk, "values": [74.0]}
        posted = client.post("/api/v1/observations/", {**entry, "observed_at": "9999-12-31T23:59:59Z"})
        assert posted.status_code == 202, posted.content
        ok = client.post("/api/v1/observations/", {**entry, "item": plant.items[1].pk})  # no time: now
        (far,), (now,) = posted.json()["ids"], ok.json()["ids"]
        assert _one(far).status == ObservationStatus.RECEIVED  # stored as posted
        assert services.observations_process(ids=[far, now]) == services.ProcessResult(
            confirmed=1, rejected=1
        )
        body = client.get(posted.json()["status_url"]).json()
        assert (body["status"], body["observed_at"]) == ("rejected", "9999-12-31T23:59:59Z")
        (reason,) = body["reasons"]
        assert reason["code"] == "observed_in_future"
        assert reason["message"].startswith("observed_at 9999-12-31T23:59:59+00:00 is ")
        assert reason["message"].endswith("OBSERVATION_MAX_FUTURE_SECONDS allows 300 s")
        assert _one(now).status == ObservationStatus.CONFIRMED

    def test_a_time_before_the_horizon_is_rejected(self, api, plant, settings):
        settings.OBSERVATION_HORIZON_DAYS = 3650
        entry = {
            "item": plant.items[0].pk,
            "test": plant.dia.pk,
            "values": [74.0],
            "observed_at": "1970-01-01T00:00:00Z",
        }
        [pk] = api(plant.tester).post("/api/v1/observations/", entry).json()["ids"]
        services.observations_process(ids=[pk])
        observation = _one(pk)
        assert (observation.status, _codes(observation)) == (
            ObservationStatus.REJECTED,
            ["observed_too_early"],
        )
        assert "OBSERVATION_HORIZON_DAYS is 3650" in observation.reasons[0]["message"]

    def test_judged_against_receipt_not_against_when_the_worker_runs(self, plant):
        """A backlog: rows received an hour ago are processed now. One measured 4 minutes after its
        receipt is within the skew; one measured 10 minutes after is rejected, though both times are
        in the past by the time the worker looks."""
        received = timezone.now() - datetime.timedelta(hours=1)
        within, beyond = (received + datetime.timedelta(minutes=m) for m in (4, 10))
        ids = plant.record(
            {"item": plant.items[0], "test": plant.dia, "values": [74.0], "observed_at": within},
            {"item": plant.items[1], "test": plant.dia, "values": [74.0], "observed_at": beyond},
        )
        Observation.objects.filter(pk__in=ids).update(received_at=received)
        services.observations_process(ids=ids)
        assert [(_one(pk).status, _codes(_one(pk))) for pk in ids] == [
            (ObservationStatus.CONFIRMED, []),
            (ObservationStatus.REJECTED, ["observed_in_future"]),
        ]

"""Lots: opening, status changes, bulk items, progress; role by role."""

import pytest

from apps.config import services as config_services
from apps.observations import services
from apps.observations.choices import LotStatus
from apps.observations.models import Item, Lot
from apps.observations.services import lots as lots_services
from tests.config.helpers import error_of
from tests.factories import ItemFactory, LotFactory, ProductFactory

pytestmark = pytest.mark.django_db

LOTS = "/api/v1/lots/"


@pytest.fixture
def ops(api, operations_lead):
    return api(operations_lead)


class CreateLotTests:
    def test_operations_lead_opens_a_lot(self, ops, operations_lead):
        product = ProductFactory(code="RING-74")
        response = ops.post(LOTS, {"product": product.pk, "number": " L-100 "})
        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["number"], body["status"], body["product_code"], body["created_by"]) == (
            "L-100", "open", "RING-74", "ops",
        )  # fmt: skip
        assert body["item_count"] == 0
        lot = Lot.objects.get()
        assert (lot.number, lot.status, lot.created_by) == ("L-100", LotStatus.OPEN, operations_lead)

    def test_created_by_is_the_caller_not_the_body(self, ops, operations_lead, manager):
        product = ProductFactory()
        ops.post(LOTS, {"product": product.pk, "number": "L-1", "created_by": manager.pk})
        assert Lot.objects.get().created_by == operations_lead

    def test_duplicate_number_of_the_product_is_400_naming_number(self, ops):
        lot = LotFactory(number="L-1")
        error = error_of(ops.post(LOTS, {"product": lot.product.pk, "number": "L-1"}), 400, "number")
        assert "L-1" in error["message"]
        assert Lot.objects.count() == 1

    def test_a_duplicate_that_races_past_the_check_is_400_too(self, ops, monkeypatch):
        """Two requests for the same number: both pass the check, the database constraint stops the
        second; it is the same clear 400, not a 409 or a 500."""
        lot = LotFactory(number="L-1")
        monkeypatch.setattr(lots_services, "lot_validate", lambda *, product, number: number.strip())
        error = error_of(ops.post(LOTS, {"product": lot.product.pk, "number": "L-1"}), 400, "number")
        assert error["fields"]["number"] == [f"Lot L-1 of {lot.product.code} exists."]
        assert Lot.objects.count() == 1

    def test_same_number_on_another_product_is_fine(self, ops):
        LotFactory(number="L-1")
        assert ops.post(LOTS, {"product": ProductFactory().pk, "number": "L-1"}).status_code == 201

    def test_inactive_product_takes_no_lot(self, ops):
        product = ProductFactory(active=False, code="OLD-1")
        error = error_of(ops.post(LOTS, {"product": product.pk, "number": "L-1"}), 400, "product")
        assert "OLD-1" in error["message"]
        assert not Lot.objects.exists()

    @pytest.mark.parametrize("body", [{}, {"product": 999999, "number": "L"}, {"number": "L"}])
    def test_bad_bodies_are_400(self, ops, body):
        error_of(ops.post(LOTS, body), 400)
        assert not Lot.objects.exists()

    def test_blank_number_is_400(self, ops):
        error_of(ops.post(LOTS, {"product": ProductFactory().pk, "number": "   "}), 400, "number")

    @pytest.mark.parametrize("role", ["quality_specialist", "manager", "tester"])
    def test_other_roles_cannot_open_lots(self, api, request, role):
        product = ProductFactory()
        error_of(api(request.getfixturevalue(role)).post(LOTS, {"product": product.pk, "number": "L"}), 403)
        assert not Lot.objects.exists()

    def test_device_token_and_anonymous_cannot(self, api, device_api):
        product = ProductFactory()
        error_of(device_api.post(LOTS, {"product": product.pk, "number": "L"}), 403)
        error_of(api(None).post(LOTS, {"product": product.pk, "number": "L"}), 401)


class ReadLotTests:
    @pytest.mark.parametrize("role", ["operations_lead", "quality_specialist", "manager"])
    def test_office_roles_list_lots(self, api, request, role):
        LotFactory(number="L-1")
        response = api(request.getfixturevalue(role)).get(LOTS)
        assert response.status_code == 200
        assert [row["number"] for row in response.json()["results"]] == ["L-1"]

    def test_tester_cannot_list_lots(self, api, tester):
        error_of(api(tester).get(LOTS), 403)

    def test_filters_and_item_count(self, ops):
        first = LotFactory(number="L-1")
        LotFactory(number="L-2", status=LotStatus.RELEASED)
        services.items_create(lot=first, count=3)
        rows = ops.get(LOTS, {"status": "open"}).json()["results"]
        assert [(row["number"], row["item_count"]) for row in rows] == [("L-1", 3)]
        assert ops.get(LOTS, {"number": "l-2"}).json()["count"] == 1
        assert ops.get(LOTS, {"product": first.product_id}).json()["count"] == 1

    def test_list_query_count_does_not_grow_with_lots(self, ops, django_assert_max_num_queries):
        for _ in range(15):
            services.items_create(lot=LotFactory(), count=2)
        with django_assert_max_num_queries(6):
            response = ops.get(LOTS)
        assert response.json()["count"] == 15


class StatusTests:
    """The status endpoint moves a lot into testing (and a quarantined one back); releasing,
    rejecting and quarantining are signed dispositions (apps.records, tests/records)."""

    @pytest.mark.parametrize(
        ("path", "allowed"),
        [
            (["in_testing"], True),
            (["in_testing", "quarantined", "in_testing"], True),
            (["in_testing", "released"], False),
            (["in_testing", "rejected"], False),
            (["in_testing", "quarantined"], False),
            (["rejected"], False),
            (["in_testing", "open"], False),
            (["in_testing", "released", "in_testing"], False),
        ],
    )
    def test_transitions(self, ops, path, allowed):
        lot = LotFactory()
        *steps, last = path
        for step in steps:
            services.lot_status_set(lot=lot, status=step)
        response = ops.post(f"{LOTS}{lot.pk}/status/", {"status": last})
        lot.refresh_from_db()
        if allowed:
            assert response.status_code == 200, response.content
            assert response.json()["status"] == last
            assert lot.status == last
        else:
            error = error_of(response, 400, "status")
            assert last in error["message"]
            assert lot.status == (steps[-1] if steps else "open")

    def test_unknown_status_is_400(self, ops):
        lot = LotFactory()
        error_of(ops.post(f"{LOTS}{lot.pk}/status/", {"status": "shipped"}), 400, "status")

    @pytest.mark.parametrize("role", ["quality_specialist", "manager", "tester"])
    def test_only_operations_leads_change_status(self, api, request, role):
        lot = LotFactory()
        error_of(
            api(request.getfixturevalue(role)).post(f"{LOTS}{lot.pk}/status/", {"status": "in_testing"}), 403
        )
        lot.refresh_from_db()
        assert lot.status == LotStatus.OPEN


class ItemsCreateTests:
    def test_count_numbers_the_serials(self, ops):
        lot = LotFactory()
        response = ops.post(f"{LOTS}{lot.pk}/items/", {"count": 3})
        assert response.status_code == 201, response.content
        assert [row["serial"] for row in response.json()] == ["0001", "0002", "0003"]
        assert list(lot.items.values_list("serial", flat=True)) == ["0001", "0002", "0003"]

    def test_count_skips_serials_in_use(self, ops):
        lot = LotFactory()
        services.items_create(lot=lot, serials=["0002", "X"])
        response = ops.post(f"{LOTS}{lot.pk}/items/", {"count": 2})
        assert [row["serial"] for row in response.json()] == ["0001", "0003"]
        assert lot.items.count() == 4

    def test_serials(self, ops):
        lot = LotFactory()
        response = ops.post(f"{LOTS}{lot.pk}/items/", {"serials": ["A-1", " A-2 "]})
        assert response.status_code == 201, response.content
        assert sorted(lot.items.values_list("serial", flat=True)) == ["A-1", "A-2"]

    def test_a_serial_twice_in_the_list_is_400_naming_it(self, ops):
        lot = LotFactory()
        error = error_of(ops.post(f"{LOTS}{lot.pk}/items/", {"serials": ["A", "B", "A"]}), 400, "serials")
        assert "A" in error["message"]
        assert not Item.objects.exists()

    def test_a_serial_the_lot_has_is_400_naming_it(self, ops):
        lot = LotFactory()
        services.items_create(lot=lot, serials=["A-7"])
        error = error_of(ops.post(f"{LOTS}{lot.pk}/items/", {"serials": ["A-8", "A-7"]}), 400, "serials")
        assert "A-7" in error["message"]
        assert lot.items.count() == 1

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"count": 2, "serials": ["A"]},
            {"count": 0},
            {"count": 5001},
            {"serials": []},
            {"serials": [""]},
        ],
    )
    def test_bad_bodies_are_400_and_create_nothing(self, ops, body):
        lot = LotFactory()
        error_of(ops.post(f"{LOTS}{lot.pk}/items/", body), 400)
        assert not Item.objects.exists()

    @pytest.mark.parametrize("status", ["released", "rejected"])
    def test_closed_lot_takes_no_items(self, ops, status):
        lot = LotFactory(status=status, number="L-5")
        error = error_of(ops.post(f"{LOTS}{lot.pk}/items/", {"count": 1}), 400, "lot")
        assert "L-5" in error["message"]
        assert not Item.objects.exists()

    def test_lot_in_testing_takes_items(self, ops):
        lot = LotFactory(status=LotStatus.IN_TESTING)
        assert ops.post(f"{LOTS}{lot.pk}/items/", {"count": 1}).status_code == 201

    @pytest.mark.parametrize("role", ["quality_specialist", "manager", "tester"])
    def test_only_operations_leads_add_items(self, api, request, role):
        lot = LotFactory()
        error_of(api(request.getfixturevalue(role)).post(f"{LOTS}{lot.pk}/items/", {"count": 1}), 403)
        assert not Item.objects.exists()

    def test_service_needs_count_or_serials(self):
        from django.core.exceptions import ValidationError

        with pytest.raises(ValidationError):
            services.items_create(lot=LotFactory())


class ProgressTests:
    def test_progress_counts_items_tests_and_observations(self, ops, plant, django_assert_max_num_queries):
        first, second, third = plant.items
        ItemFactory(lot=plant.lot)  # no plan, not assigned
        ids = plant.record(
            {"item": first, "test": plant.dia, "values": [74.0]},
            {"item": first, "test": plant.wall, "values": [1, 2, 3]},
            {"item": second, "test": plant.dia, "values": [99.0]},  # outside the plausible range
            {"item": third, "test": plant.dia, "values": [74.1]},
        )
        services.observations_process(ids=ids[:3])
        with django_assert_max_num_queries(10):  # authentication and permissions, the lot, 4 counts
            response = ops.get(f"{LOTS}{plant.lot.pk}/progress/")
        assert response.status_code == 200, response.content
        assert response.json() == {
            "items": 4, "items_assigned": 3, "tests_total": 6, "tests_done": 2, "tests_due": 4,
            "received": 1, "confirmed": 2, "rejected": 1,
        }  # fmt: skip

    def test_a_test_in_two_plans_of_an_item_counts_once(self, plant):
        from tests.factories import released_plan

        extra = released_plan(plant.dia, code="EXTRA")
        config_services.plan_assign(product=plant.product, plan=extra)
        services.items_select_plans(items=plant.items[:1], plans=[plant.ring, extra])
        from apps.observations.selectors import lot_progress

        assert lot_progress(lot=plant.lot).tests_total == 6

    def test_tester_cannot_read_progress(self, api, plant):
        error_of(api(plant.tester).get(f"{LOTS}{plant.lot.pk}/progress/"), 403)

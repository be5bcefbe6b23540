"""Items: listing by role, selecting test plans, assigning testers."""

import datetime

import pytest
from django.utils import timezone

from apps.config import services as config_services
from apps.observations.choices import LotStatus
from apps.observations.models import Item
from openspc.roles import Role
from tests.config.helpers import error_of
from tests.factories import ItemFactory, LotFactory, TestFactory, TestPlanFactory, UserFactory, released_plan

pytestmark = pytest.mark.django_db

ITEMS = "/api/v1/items/"
SELECT = "/api/v1/items/select-plans/"
ASSIGN = "/api/v1/items/assign/"


@pytest.fixture
def ops(api, operations_lead):
    return api(operations_lead)


def _plans_of(items) -> list[list[int]]:
    return [sorted(item.plans.values_list("pk", flat=True)) for item in items]


class ListItemsTests:
    @pytest.mark.parametrize("role", ["operations_lead", "quality_specialist", "manager"])
    def test_office_roles_see_every_item(self, api, request, plant, role):
        ItemFactory()
        response = api(request.getfixturevalue(role)).get(ITEMS)
        assert response.status_code == 200
        assert response.json()["count"] == 4

    def test_tester_sees_only_items_assigned_to_them(self, api, plant, other_tester):
        ItemFactory(lot=plant.lot, tester=other_tester)
        response = api(plant.tester).get(ITEMS)
        assert [row["serial"] for row in response.json()["results"]] == ["0001", "0002", "0003"]
        assert response.json()["results"][0]["tester"] == "tester"
        error_of(api(other_tester).get(f"{ITEMS}{plant.items[0].pk}/"), 404)

    def test_filters(self, ops, plant, other_tester):
        ItemFactory(lot=LotFactory(), serial="0001", tester=other_tester)
        assert ops.get(ITEMS, {"lot": plant.lot.pk}).json()["count"] == 3
        assert ops.get(ITEMS, {"tester": other_tester.pk}).json()["count"] == 1
        assert ops.get(ITEMS, {"serial": "0001"}).json()["count"] == 2
        row = ops.get(ITEMS, {"serial": "0002"}).json()["results"][0]
        assert (row["lot_number"], row["plans"], row["product"]) == ("L-1", [plant.ring.pk], plant.product.pk)

    def test_list_query_count_does_not_grow(self, ops, plant, django_assert_max_num_queries):
        for _ in range(20):
            ItemFactory(lot=plant.lot, plans=[plant.ring], tester=plant.tester)
        with django_assert_max_num_queries(7):
            response = ops.get(ITEMS)
        assert response.json()["count"] == 23

    def test_device_token_cannot_list(self, device_api):
        error_of(device_api.get(ITEMS), 403)


class SelectPlansTests:
    def test_select_replaces_the_plans(self, ops, plant):
        other = released_plan(TestFactory(code="ROUGH"), code="ROUGH")
        config_services.plan_assign(
            product=plant.product,
            plan=other,
            effective_from=datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC),
        )
        ids = [item.pk for item in plant.items[:2]]
        response = ops.post(SELECT, {"items": ids, "plans": [other.pk]})
        assert response.status_code == 200, response.content
        assert [row["plans"] for row in response.json()] == [[other.pk], [other.pk]]
        assert _plans_of(plant.items) == [[other.pk], [other.pk], [plant.ring.pk]]

    def test_draft_plan_is_400_naming_it(self, ops, plant):
        draft = TestPlanFactory(code="DRAFTY", tests=[TestFactory()])
        error = error_of(ops.post(SELECT, {"items": [plant.items[0].pk], "plans": [draft.pk]}), 400, "plans")
        assert "DRAFTY v1" in error["message"]
        assert _plans_of(plant.items[:1]) == [[plant.ring.pk]]

    def test_plan_not_assigned_to_the_product_is_400_naming_it(self, ops, plant):
        stray = released_plan(TestFactory(), code="STRAY")
        error = error_of(ops.post(SELECT, {"items": [plant.items[0].pk], "plans": [stray.pk]}), 400, "plans")
        assert "STRAY v1" in error["message"]
        assert "RING-74" in error["message"]

    def test_plan_whose_assignment_ended_is_400(self, ops, plant):
        old = released_plan(TestFactory(), code="OLD")
        a_second_ago = timezone.now() - datetime.timedelta(seconds=1)
        config_services.plan_assign(
            product=plant.product,
            plan=old,
            effective_from=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
            effective_to=a_second_ago,
        )
        error = error_of(ops.post(SELECT, {"items": [plant.items[0].pk], "plans": [old.pk]}), 400, "plans")
        assert "OLD v1" in error["message"]

    def test_plan_assigned_from_a_minute_later_is_400(self, ops, plant):
        later = released_plan(TestFactory(), code="LATER")
        in_a_minute = timezone.now() + datetime.timedelta(minutes=1)
        config_services.plan_assign(product=plant.product, plan=later, effective_from=in_a_minute)
        error_of(ops.post(SELECT, {"items": [plant.items[0].pk], "plans": [later.pk]}), 400, "plans")

    def test_items_of_a_closed_lot_are_400(self, ops, plant):
        plant.lot.status = LotStatus.RELEASED
        plant.lot.save()
        error = error_of(
            ops.post(SELECT, {"items": [plant.items[0].pk], "plans": [plant.ring.pk]}), 400, "items"
        )
        assert "L-1" in error["message"]

    @pytest.mark.parametrize(
        "body",
        [{}, {"items": [], "plans": [1]}, {"items": [1], "plans": []}, {"items": "1", "plans": [1]}],
    )
    def test_bad_bodies_are_400(self, ops, plant, body):
        error_of(ops.post(SELECT, body), 400)
        assert _plans_of(plant.items) == [[plant.ring.pk]] * 3

    def test_unknown_item_or_plan_is_400_naming_the_id(self, ops, plant):
        error = error_of(
            ops.post(SELECT, {"items": [plant.items[0].pk, 987654], "plans": [plant.ring.pk]}), 400
        )
        assert "987654" in error["message"]
        error = error_of(ops.post(SELECT, {"items": [plant.items[0].pk], "plans": [876543]}), 400, "plans")
        assert "876543" in error["message"]

    @pytest.mark.parametrize("role", ["quality_specialist", "manager", "tester"])
    def test_only_operations_leads_select_plans(self, api, request, plant, role):
        body = {"items": [plant.items[0].pk], "plans": [plant.ring.pk]}
        error_of(api(request.getfixturevalue(role)).post(SELECT, body), 403)


class AssignTests:
    def test_assign_to_a_tester(self, ops, plant, other_tester):
        ids = [item.pk for item in plant.items[:2]]
        response = ops.post(ASSIGN, {"items": ids, "tester": other_tester.pk})
        assert response.status_code == 200, response.content
        assert [row["tester"] for row in response.json()] == ["other-tester"] * 2
        testers = list(Item.objects.order_by("serial").values_list("tester__username", flat=True))
        assert testers == ["other-tester", "other-tester", "tester"]
        assert all(item.assigned_at for item in Item.objects.all())

    def test_null_takes_items_back(self, ops, plant):
        response = ops.post(ASSIGN, {"items": [plant.items[0].pk], "tester": None})
        assert response.status_code == 200, response.content
        item = Item.objects.get(pk=plant.items[0].pk)
        assert (item.tester, item.assigned_at) == (None, None)

    @pytest.mark.parametrize("roles", [[], [Role.OPERATIONS_LEAD], [Role.MANAGER]])
    def test_a_user_without_the_tester_role_is_400(self, ops, plant, roles):
        user = UserFactory(username="not-a-tester", roles=roles)
        error = error_of(ops.post(ASSIGN, {"items": [plant.items[0].pk], "tester": user.pk}), 400, "tester")
        assert "not-a-tester" in error["message"]
        assert Item.objects.get(pk=plant.items[0].pk).tester == plant.tester

    def test_an_inactive_tester_is_400(self, ops, plant):
        user = UserFactory(roles=[Role.TESTER], is_active=False)
        error_of(ops.post(ASSIGN, {"items": [plant.items[0].pk], "tester": user.pk}), 400, "tester")

    def test_unknown_user_is_400(self, ops, plant):
        error_of(ops.post(ASSIGN, {"items": [plant.items[0].pk], "tester": 999999}), 400, "tester")

    def test_items_of_a_closed_lot_are_400(self, ops, plant, other_tester):
        plant.lot.status = LotStatus.REJECTED
        plant.lot.save()
        error_of(ops.post(ASSIGN, {"items": [plant.items[0].pk], "tester": other_tester.pk}), 400, "items")
        assert Item.objects.get(pk=plant.items[0].pk).tester == plant.tester

    @pytest.mark.parametrize("role", ["quality_specialist", "manager", "tester"])
    def test_only_operations_leads_assign(self, api, request, plant, other_tester, role):
        body = {"items": [plant.items[0].pk], "tester": other_tester.pk}
        error_of(api(request.getfixturevalue(role)).post(ASSIGN, body), 403)
        assert Item.objects.get(pk=plant.items[0].pk).tester == plant.tester

"""A tester's worklist, GET /api/v1/me/items/: assigned items with the tests still due."""

import pytest

from apps.config import services as config_services
from apps.config.models import Characteristic, Test
from apps.observations import services
from apps.observations.choices import LotStatus
from tests.config.helpers import error_of
from tests.factories import ItemFactory, LotFactory, ProductFactory, TestFactory, released_plan

pytestmark = pytest.mark.django_db

ME_ITEMS = "/api/v1/me/items/"


def _worklist(client) -> dict[str, list[str]]:
    response = client.get(ME_ITEMS)
    assert response.status_code == 200, response.content
    return {row["serial"]: [test["code"] for test in row["tests_due"]] for row in response.json()["results"]}


class WorklistTests:
    def test_each_assigned_item_with_its_tests_in_plan_order(self, api, plant):
        response = api(plant.tester).get(ME_ITEMS)
        first = response.json()["results"][0]
        assert (first["serial"], first["lot_number"], first["lot_status"], first["product_code"]) == (
            "0001", "L-1", "open", "RING-74",
        )  # fmt: skip
        dia, wall = first["tests_due"]
        assert dia == {
            "test": plant.dia.pk, "code": "DIA", "name": plant.dia.name, "kind": "variable", "unit": "mm",
            "decimals": 3, "instructions": "", "replicates": 1, "plausible_min": 70.0, "plausible_max": 78.0,
            "lsl": None, "usl": None, "plan": "RING v1", "retest_of": None,
        }  # fmt: skip
        assert (wall["code"], wall["replicates"]) == ("WALL", 3)

    def test_each_test_carries_the_products_spec_limits(self, api, plant):
        """For the entry form's warning as a value is typed (a tester cannot read characteristics)."""
        Characteristic.objects.filter(product=plant.product, test=plant.dia).update(lsl=73.9, usl=74.1)
        other = ProductFactory(code="OTHER")
        config_services.plan_assign(product=other, plan=plant.ring)
        Characteristic.objects.filter(product=other, test=plant.dia).update(lsl=1.0, usl=2.0)
        dia, wall = api(plant.tester).get(ME_ITEMS).json()["results"][0]["tests_due"]
        assert (dia["lsl"], dia["usl"], wall["lsl"], wall["usl"]) == (73.9, 74.1, None, None)

    def test_confirmed_tests_leave_the_list_and_done_items_too(self, api, plant):
        first, second, _ = plant.items
        ids = plant.record(
            {"item": first, "test": plant.dia, "values": [74.0]},
            {"item": first, "test": plant.wall, "values": [1, 2, 3]},
            {"item": second, "test": plant.dia, "values": [99.0]},  # rejected: still due
        )
        assert _worklist(api(plant.tester))["0001"] == ["DIA", "WALL"]  # received is not done yet
        services.observations_process(ids=ids)
        assert _worklist(api(plant.tester)) == {"0002": ["DIA", "WALL"], "0003": ["DIA", "WALL"]}

    def test_only_my_items_in_working_lots(self, api, plant, other_tester):
        ItemFactory(lot=plant.lot, serial="0500", plans=[plant.ring], tester=other_tester)
        closed = LotFactory(product=plant.product, status=LotStatus.RELEASED)
        ItemFactory(lot=closed, plans=[plant.ring], tester=plant.tester)
        in_testing = LotFactory(product=plant.product, status=LotStatus.IN_TESTING, number="L-2")
        ItemFactory(lot=in_testing, serial="0009", plans=[plant.ring], tester=plant.tester)
        assert sorted(_worklist(api(plant.tester))) == ["0001", "0002", "0003", "0009"]
        assert _worklist(api(other_tester)) == {"0500": ["DIA", "WALL"]}

    def test_an_item_without_plans_has_nothing_due(self, api, plant):
        ItemFactory(lot=plant.lot, serial="0100", tester=plant.tester)
        assert "0100" not in _worklist(api(plant.tester))

    def test_a_test_in_two_plans_is_listed_once(self, api, plant):
        extra = released_plan(plant.dia, TestFactory(code="ROUGH"), code="EXTRA")
        config_services.plan_assign(product=plant.product, plan=extra)
        services.items_select_plans(items=plant.items[:1], plans=[plant.ring, extra])
        assert _worklist(api(plant.tester))["0001"] == ["DIA", "ROUGH", "WALL"]

    def test_query_count_does_not_grow_with_items(self, api, plant, django_assert_max_num_queries):
        for _ in range(25):
            ItemFactory(lot=plant.lot, plans=[plant.ring], tester=plant.tester)
        plant.record({"item": plant.items[0], "test": plant.dia, "values": [74.0]})
        with django_assert_max_num_queries(11):  # 9 + the products' spec limits + their plans in effect
            response = api(plant.tester).get(ME_ITEMS)
        assert response.json()["count"] == 28

    def test_device_token_is_refused(self, device_api):
        error_of(device_api.get(ME_ITEMS), 403)

    def test_anonymous_is_401(self, api):
        error_of(api(None).get(ME_ITEMS), 401)


class TesterReadsTheirTestsTests:
    """Test.objects.visible_to: a tester reads the tests of plans selected for their items."""

    def test_tester_reads_the_tests_of_their_items(self, api, plant, other_tester):
        TestFactory(code="ELSEWHERE")
        response = api(plant.tester).get("/api/v1/tests/")
        assert sorted(row["code"] for row in response.json()["results"]) == ["DIA", "WALL"]
        assert api(plant.tester).get(f"/api/v1/tests/{plant.dia.pk}/").status_code == 200
        assert api(other_tester).get("/api/v1/tests/").json()["count"] == 0
        error_of(api(other_tester).get(f"/api/v1/tests/{plant.dia.pk}/"), 404)

    def test_once_each_however_many_items(self, plant):
        assert Test.objects.visible_to(plant.tester).count() == 2

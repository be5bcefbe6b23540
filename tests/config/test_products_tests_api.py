"""Products and tests through the API: CRUD, validation, filters, search, ordering, pagination."""

import pytest

from apps.config.choices import TestKind
from apps.config.models import Product, Test
from tests.config.helpers import error_of
from tests.factories import ProductFactory, TestFactory, TestPlanFactory, characteristic_for

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products/"
TESTS = "/api/v1/tests/"


@pytest.fixture
def qs_api(api, quality_specialist):
    return api(quality_specialist)


def _codes(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["code"] for row in response.json()["results"]]


class ProductCrudTests:
    def test_create_returns_the_product_and_writes_it(self, qs_api):
        response = qs_api.post(
            PRODUCTS, {"code": "RING-74", "name": "Piston ring", "description": "74 mm", "active": True}
        )
        assert response.status_code == 201, response.content
        body = response.json()
        product = Product.objects.get(code="RING-74")
        assert body["id"] == product.pk
        assert (body["name"], body["description"], body["active"]) == ("Piston ring", "74 mm", True)
        assert (product.name, product.description, product.active) == ("Piston ring", "74 mm", True)

    def test_retrieve(self, qs_api):
        product = ProductFactory(code="SHAFT-20", name="Shaft")
        body = qs_api.get(f"{PRODUCTS}{product.pk}/").json()
        assert (body["code"], body["name"]) == ("SHAFT-20", "Shaft")

    def test_patch_changes_only_the_given_fields(self, qs_api):
        product = ProductFactory(code="SHAFT-20", name="Shaft", description="keep me")
        response = qs_api.patch(f"{PRODUCTS}{product.pk}/", {"name": "Drive shaft", "active": False})
        assert response.status_code == 200, response.content
        assert response.json()["name"] == "Drive shaft"
        product.refresh_from_db()
        assert (product.name, product.active, product.description) == ("Drive shaft", False, "keep me")

    def test_duplicate_code_is_400_naming_code(self, qs_api):
        ProductFactory(code="RING-74", name="First")
        error_of(qs_api.post(PRODUCTS, {"code": "RING-74", "name": "Second"}), 400, "code")
        assert list(Product.objects.values_list("name", flat=True)) == ["First"]

    @pytest.mark.parametrize("missing", ["code", "name"])
    def test_required_fields(self, qs_api, missing):
        data = {"code": "RING-74", "name": "Ring"}
        del data[missing]
        error_of(qs_api.post(PRODUCTS, data), 400, missing)
        assert not Product.objects.exists()

    def test_delete_an_unused_product(self, qs_api):
        product = ProductFactory()
        assert qs_api.delete(f"{PRODUCTS}{product.pk}/").status_code == 204
        assert not Product.objects.filter(pk=product.pk).exists()

    def test_delete_a_product_with_characteristics_is_409(self, qs_api):
        product = ProductFactory()
        characteristic_for(product, TestFactory())
        error = error_of(qs_api.delete(f"{PRODUCTS}{product.pk}/"), 409)
        assert error["code"] == "conflict"
        assert error["fields"] == {}
        assert "still used by" in error["message"]
        assert "characteristic" in error["message"]
        assert "Deactivate" in error["message"]
        assert "<" not in error["message"]  # plain words, no object reprs
        assert Product.objects.filter(pk=product.pk).exists()


class ProductListTests:
    def test_filter_by_active(self, qs_api):
        ProductFactory(code="A", active=True)
        ProductFactory(code="B", active=False)
        assert _codes(qs_api.get(PRODUCTS, {"active": "true"})) == ["A"]
        assert _codes(qs_api.get(PRODUCTS, {"active": "false"})) == ["B"]

    def test_filter_by_code_ignores_case(self, qs_api):
        ProductFactory(code="RING-74")
        ProductFactory(code="RING-740")
        assert _codes(qs_api.get(PRODUCTS, {"code": "ring-74"})) == ["RING-74"]

    def test_filter_by_name_contains(self, qs_api):
        ProductFactory(code="A", name="Piston ring")
        ProductFactory(code="B", name="Shaft")
        assert _codes(qs_api.get(PRODUCTS, {"name": "RING"})) == ["A"]

    def test_search_code_name_and_description(self, qs_api):
        ProductFactory(code="A", name="Alpha", description="hardened steel")
        ProductFactory(code="B", name="Steel shaft")
        ProductFactory(code="C", name="Gamma")
        assert _codes(qs_api.get(PRODUCTS, {"search": "steel"})) == ["A", "B"]

    def test_default_ordering_is_by_code_and_can_be_reversed(self, qs_api):
        for code in ["B", "C", "A"]:
            ProductFactory(code=code, name=f"n{code}")
        assert _codes(qs_api.get(PRODUCTS)) == ["A", "B", "C"]
        assert _codes(qs_api.get(PRODUCTS, {"ordering": "-code"})) == ["C", "B", "A"]
        assert _codes(qs_api.get(PRODUCTS, {"ordering": "name"})) == ["A", "B", "C"]

    def test_pagination_with_page_size(self, qs_api):
        for code in ["A", "B", "C", "D", "E"]:
            ProductFactory(code=code)
        first = qs_api.get(PRODUCTS, {"page_size": 2}).json()
        assert first["count"] == 5
        assert [row["code"] for row in first["results"]] == ["A", "B"]
        assert first["previous"] is None
        assert "page=2" in first["next"]
        last = qs_api.get(PRODUCTS, {"page_size": 2, "page": 3}).json()
        assert [row["code"] for row in last["results"]] == ["E"]
        assert last["next"] is None

    def test_unrecognised_boolean_filter_is_ignored(self, qs_api):
        # django-filter's boolean widget reads anything but true/false as "not given".
        ProductFactory(code="A", active=True)
        ProductFactory(code="B", active=False)
        assert _codes(qs_api.get(PRODUCTS, {"active": "perhaps"})) == ["A", "B"]

    def test_list_query_count(self, qs_api, django_assert_max_num_queries):
        for _ in range(6):
            characteristic_for(ProductFactory(), TestFactory())
        with django_assert_max_num_queries(6):
            response = qs_api.get(PRODUCTS)
        assert response.json()["count"] == 6


class TestCrudTests:
    def test_a_test_may_require_verification_and_free_invalidations(self, qs_api):
        body = {
            "code": "HARD", "name": "Hardness", "requires_verification": True,
            "invalidation_needs_approval": False,
        }  # fmt: skip
        response = qs_api.post("/api/v1/tests/", body)
        assert response.status_code == 201, response.content
        assert (response.json()["requires_verification"], response.json()["invalidation_needs_approval"]) == (
            True, False,
        )  # fmt: skip
        test = Test.objects.get(code="HARD")
        assert (test.requires_verification, test.invalidation_needs_approval) == (True, False)
        response = qs_api.patch(f"/api/v1/tests/{test.pk}/", {"requires_verification": False})
        assert response.status_code == 200, response.content
        test.refresh_from_db()
        assert test.requires_verification is False

    def test_create_with_every_field(self, qs_api):
        data = {
            "code": "RING-DIA",
            "name": "Ring inside diameter",
            "unit": "mm",
            "kind": "variable",
            "decimals": 3,
            "instructions": "Bore gauge",
            "plausible_min": 70.0,
            "plausible_max": 78.0,
            "active": True,
        }
        response = qs_api.post(TESTS, data)
        assert response.status_code == 201, response.content
        body = response.json()
        assert {key: body[key] for key in data} == data
        test = Test.objects.get(code="RING-DIA")
        assert (test.unit, test.decimals, test.plausible_min, test.plausible_max) == ("mm", 3, 70.0, 78.0)

    def test_defaults(self, qs_api):
        response = qs_api.post(TESTS, {"code": "T", "name": "T"})
        assert response.status_code == 201, response.content
        test = Test.objects.get(code="T")
        assert (test.kind, test.decimals, test.plausible_min, test.plausible_max) == (
            "variable",
            2,
            None,
            None,
        )

    @pytest.mark.parametrize("low", [78.0, 80.0], ids=["equal", "above"])
    def test_plausible_min_not_below_max_is_400(self, qs_api, low):
        response = qs_api.post(TESTS, {"code": "T", "name": "T", "plausible_min": low, "plausible_max": 78.0})
        error = error_of(response, 400, "plausible_max")
        assert "plausible minimum" in error["fields"]["plausible_max"][0]
        assert not Test.objects.exists()

    def test_patch_min_above_the_stored_max_is_400(self, qs_api):
        test = TestFactory(plausible_min=1.0, plausible_max=5.0)
        error_of(qs_api.patch(f"{TESTS}{test.pk}/", {"plausible_min": 6.0}), 400, "plausible_max")
        test.refresh_from_db()
        assert (test.plausible_min, test.plausible_max) == (1.0, 5.0)

    def test_patch_range(self, qs_api):
        test = TestFactory(plausible_min=1.0, plausible_max=5.0)
        response = qs_api.patch(f"{TESTS}{test.pk}/", {"plausible_min": None, "plausible_max": 9.5})
        assert response.status_code == 200, response.content
        test.refresh_from_db()
        assert (test.plausible_min, test.plausible_max) == (None, 9.5)

    @pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "abc"])
    @pytest.mark.parametrize("field", ["plausible_min", "plausible_max"])
    def test_non_finite_float_is_400(self, qs_api, field, value):
        error_of(qs_api.post(TESTS, {"code": "T", "name": "T", field: value}), 400, field)
        assert not Test.objects.exists()

    @pytest.mark.parametrize("decimals", [-1, 11])
    def test_decimals_out_of_range_is_400(self, qs_api, decimals):
        error_of(qs_api.post(TESTS, {"code": "T", "name": "T", "decimals": decimals}), 400, "decimals")
        assert not Test.objects.exists()

    def test_unknown_kind_is_400(self, qs_api):
        error_of(qs_api.post(TESTS, {"code": "T", "name": "T", "kind": "colour"}), 400, "kind")
        assert not Test.objects.exists()

    def test_duplicate_code_is_400(self, qs_api):
        TestFactory(code="T")
        error_of(qs_api.post(TESTS, {"code": "T", "name": "again"}), 400, "code")
        assert Test.objects.count() == 1

    def test_kind_cannot_change_once_charted(self, qs_api):
        test = TestFactory()
        characteristic_for(ProductFactory(), test)
        error_of(qs_api.patch(f"{TESTS}{test.pk}/", {"kind": "defects"}), 400, "kind")
        assert Test.objects.get(pk=test.pk).kind == TestKind.VARIABLE

    def test_kind_can_change_before_it_is_charted(self, qs_api):
        test = TestFactory()
        assert qs_api.patch(f"{TESTS}{test.pk}/", {"kind": "defects"}).status_code == 200
        assert Test.objects.get(pk=test.pk).kind == TestKind.DEFECTS

    def test_delete_an_unused_test(self, qs_api):
        test = TestFactory()
        assert qs_api.delete(f"{TESTS}{test.pk}/").status_code == 204
        assert not Test.objects.filter(pk=test.pk).exists()

    def test_delete_a_test_in_a_plan_is_409(self, qs_api):
        test = TestFactory()
        TestPlanFactory(tests=[test])
        error = error_of(qs_api.delete(f"{TESTS}{test.pk}/"), 409)
        assert "test plan entr" in error["message"]
        assert Test.objects.filter(pk=test.pk).exists()


class TestListTests:
    def test_filter_by_kind(self, qs_api):
        TestFactory(code="V", kind=TestKind.VARIABLE)
        TestFactory(code="P", kind=TestKind.DEFECTIVES)
        TestFactory(code="C", kind=TestKind.DEFECTS)
        assert _codes(qs_api.get(TESTS, {"kind": "defectives"})) == ["P"]
        assert _codes(qs_api.get(TESTS, {"kind": "variable"})) == ["V"]

    def test_filter_by_active_and_code(self, qs_api):
        TestFactory(code="RING-DIA", active=True)
        TestFactory(code="RING-WALL", active=False)
        assert _codes(qs_api.get(TESTS, {"active": "false"})) == ["RING-WALL"]
        assert _codes(qs_api.get(TESTS, {"code": "ring-dia"})) == ["RING-DIA"]

    def test_unknown_kind_filter_is_400(self, qs_api):
        error_of(qs_api.get(TESTS, {"kind": "colour"}), 400, "kind")

    def test_search_and_ordering(self, qs_api):
        TestFactory(code="A", name="Wall thickness")
        TestFactory(code="B", name="Diameter")
        TestFactory(code="C", name="Wall height")
        assert _codes(qs_api.get(TESTS, {"search": "wall"})) == ["A", "C"]
        assert _codes(qs_api.get(TESTS, {"search": "wall", "ordering": "-code"})) == ["C", "A"]
        assert _codes(qs_api.get(TESTS, {"ordering": "name"})) == ["B", "C", "A"]

    def test_list_query_count(self, qs_api, django_assert_max_num_queries):
        for _ in range(6):
            characteristic_for(ProductFactory(), TestFactory())
        with django_assert_max_num_queries(6):
            response = qs_api.get(TESTS)
        assert response.json()["count"] == 6

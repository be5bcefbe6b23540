"""Characteristics through the API: SPC settings and their cross-field rules, limits, product config."""

import pytest
from django.core.exceptions import ValidationError

from apps.config import services
from apps.config.choices import TestKind
from apps.config.models import Characteristic
from spc.rules import PRESETS
from tests.config.helpers import characteristic_row, error_of, limits_set
from tests.factories import ProductFactory, TestFactory, UserFactory, characteristic_for, released_plan

pytestmark = pytest.mark.django_db

CHARACTERISTICS = "/api/v1/characteristics/"
NELSON = PRESETS["nelson"].to_dict()
WESTERN_ELECTRIC = PRESETS["western_electric"].to_dict()


@pytest.fixture
def qs_api(api, quality_specialist):
    return api(quality_specialist)


@pytest.fixture
def variable():
    """A variable test's characteristic with a two-sided specification 9.0 … 11.0."""
    return characteristic_for(
        ProductFactory(code="RING-74"), TestFactory(code="RING-DIA"), lsl=9.0, target=10.0, usl=11.0
    )


def _patch(client, characteristic, data):
    """PATCH with a reason (a change of the specification or the rules needs one)."""
    return client.patch(f"{CHARACTERISTICS}{characteristic.pk}/", {"reason": "A test", **data}, format="json")


def _refused(client, characteristic, data, field):
    """PATCH `data`, expect a 400 naming `field`, and check nothing was stored."""
    before = characteristic_row(characteristic)
    error = error_of(_patch(client, characteristic, data), 400, field)
    assert characteristic_row(characteristic) == before
    return error


class ReadTests:
    def test_new_characteristic_defaults(self, qs_api):
        characteristic = characteristic_for(ProductFactory(code="P"), TestFactory(code="T", unit="mm"))
        body = qs_api.get(f"{CHARACTERISTICS}{characteristic.pk}/").json()
        assert body["product_code"] == "P"
        assert (body["test_code"], body["unit"]) == ("T", "mm")
        assert (body["lsl"], body["target"], body["usl"]) == (None, None, None)
        assert (body["subgroup_size"], body["chart_type"], body["effective_chart_type"]) == (1, "auto", "imr")
        assert body["rules"] == NELSON
        assert body["rule_preset"] == "nelson"
        assert (body["data_source"], body["tag"], body["current_limits"]) == ("manual", None, None)

    def test_filters(self, qs_api):
        ring, shaft = ProductFactory(code="RING"), ProductFactory(code="SHAFT")
        dia, leak = TestFactory(code="DIA"), TestFactory(code="LEAK", kind=TestKind.DEFECTIVES)
        a = characteristic_for(ring, dia, line="Line 1", data_source="tag", tag="plant/ring/dia")
        b = characteristic_for(shaft, leak, line="Line 2")
        c = characteristic_for(shaft, dia, line="Line 1", active=False)

        def ids(params):
            response = qs_api.get(CHARACTERISTICS, params)
            assert response.status_code == 200, response.content
            return [row["id"] for row in response.json()["results"]]

        assert ids({"product": shaft.pk}) == [c.pk, b.pk]  # ordered by product code, test code
        assert ids({"test": dia.pk}) == [a.pk, c.pk]
        assert ids({"chart_type": "p"}) == [b.pk]
        assert ids({"data_source": "tag"}) == [a.pk]
        assert ids({"tag": "plant/ring/dia"}) == [a.pk]
        assert ids({"line": "Line 1"}) == [a.pk, c.pk]
        assert ids({"active": "false"}) == [c.pk]

    def test_search_and_ordering(self, qs_api):
        a = characteristic_for(ProductFactory(code="RING"), TestFactory(code="DIA"), cell="Cell 7")
        b = characteristic_for(ProductFactory(code="SHAFT"), TestFactory(code="OD"))
        rows = qs_api.get(CHARACTERISTICS, {"search": "shaft"}).json()["results"]
        assert [row["id"] for row in rows] == [b.pk]
        rows = qs_api.get(CHARACTERISTICS, {"search": "cell 7"}).json()["results"]
        assert [row["id"] for row in rows] == [a.pk]
        rows = qs_api.get(CHARACTERISTICS, {"ordering": "-product__code"}).json()["results"]
        assert [row["id"] for row in rows] == [b.pk, a.pk]

    # DRF checks permissions before the method: the quality specialist has no add/delete permission
    # on characteristics (403), and PUT is simply not offered (405).
    @pytest.mark.parametrize(("method", "status"), [("post", 403), ("delete", 403), ("put", 405)])
    def test_characteristics_are_not_created_replaced_or_deleted_here(self, qs_api, variable, method, status):
        before = characteristic_row(variable)
        url = CHARACTERISTICS if method == "post" else f"{CHARACTERISTICS}{variable.pk}/"
        body = {"product": variable.product_id, "test": variable.test_id, "lsl": 0.0}
        error_of(getattr(qs_api, method)(url, body), status)
        assert Characteristic.objects.count() == 1
        assert characteristic_row(variable) == before

    def test_tester_sees_no_characteristics(self, api, tester, variable):
        error_of(api(tester).get(CHARACTERISTICS), 403)
        assert Characteristic.objects.visible_to(tester).count() == 0

    def test_list_query_count(self, qs_api, django_assert_max_num_queries):
        for _ in range(6):
            characteristic = characteristic_for(ProductFactory(), TestFactory(), lsl=9.0, usl=11.0)
            limits_set(characteristic)
            limits_set(characteristic, center=10.1)
        with django_assert_max_num_queries(7):
            response = qs_api.get(CHARACTERISTICS)
        rows = response.json()["results"]
        assert len(rows) == 6
        assert all(row["current_limits"]["version"] == 2 for row in rows)

    def test_list_query_count_with_limits_set_by_users(self, qs_api, django_assert_max_num_queries):
        for _ in range(6):
            characteristic = characteristic_for(ProductFactory(), TestFactory())
            limits_set(characteristic, user=UserFactory())
        with django_assert_max_num_queries(7):
            response = qs_api.get(CHARACTERISTICS)
        assert all(row["current_limits"]["set_by"].startswith("user") for row in response.json()["results"])


class SettingsTests:
    def test_patch_spc_settings(self, qs_api, variable):
        data = {
            "lsl": 9.5,
            "target": 10.0,
            "usl": 10.5,
            "subgroup_size": 5,
            "chart_type": "xbar_r",
            "site": "Plant 1",
            "area": "Machining",
            "line": "Line 1",
            "cell": "Cell 1",
            "decimals": 3,
        }
        response = _patch(qs_api, variable, data)
        assert response.status_code == 200, response.content
        body = response.json()
        assert {key: body[key] for key in data} == data
        assert body["effective_chart_type"] == "xbar_r"
        stored = Characteristic.objects.get(pk=variable.pk)
        assert {key: getattr(stored, key) for key in data} == data

    @pytest.mark.parametrize(
        ("size", "chart"), [(1, "imr"), (2, "xbar_r"), (10, "xbar_r"), (11, "xbar_s"), (25, "xbar_s")]
    )
    def test_auto_chart_follows_subgroup_size(self, qs_api, variable, size, chart):
        response = _patch(qs_api, variable, {"subgroup_size": size})
        assert response.status_code == 200, response.content
        assert (response.json()["chart_type"], response.json()["effective_chart_type"]) == ("auto", chart)
        assert Characteristic.objects.get(pk=variable.pk).subgroup_size == size

    def test_one_sided_specification(self, qs_api, variable):
        response = _patch(qs_api, variable, {"lsl": None, "target": None, "usl": 12.0})
        assert response.status_code == 200, response.content
        stored = Characteristic.objects.get(pk=variable.pk)
        assert (stored.lsl, stored.target, stored.usl) == (None, None, 12.0)

    @pytest.mark.parametrize(
        "data",
        [{"lsl": 12.0}, {"lsl": 11.0}, {"lsl": 5.0, "usl": 4.0, "target": None}],
        ids=["above-stored-usl", "equal", "both-given"],
    )
    def test_lsl_not_below_usl_is_400_naming_lsl(self, qs_api, variable, data):
        error = _refused(qs_api, variable, data, "lsl")
        assert "must be below USL" in error["message"]

    @pytest.mark.parametrize("field", ["lsl", "usl", "target"])
    @pytest.mark.parametrize("value", ["nan", "inf", "-Infinity", "ten"])
    def test_non_finite_spec_limit_is_400(self, qs_api, variable, field, value):
        _refused(qs_api, variable, {field: value}, field)

    @pytest.mark.parametrize("size", [0, 26, -1])
    def test_subgroup_size_out_of_range_is_400(self, qs_api, variable, size):
        _refused(qs_api, variable, {"subgroup_size": size}, "subgroup_size")

    @pytest.mark.parametrize("target", [8.99, 11.01])
    def test_target_outside_the_specification_is_400(self, qs_api, variable, target):
        error = _refused(qs_api, variable, {"target": target}, "target")
        assert "within the specification" in error["message"]

    def test_target_on_a_limit_is_fine(self, qs_api, variable):
        assert _patch(qs_api, variable, {"target": 11.0}).status_code == 200
        assert Characteristic.objects.get(pk=variable.pk).target == 11.0

    @pytest.mark.parametrize(
        ("kind", "chart"),
        [
            (TestKind.VARIABLE, "p"),
            (TestKind.VARIABLE, "c"),
            (TestKind.DEFECTIVES, "u"),
            (TestKind.DEFECTIVES, "imr"),
            (TestKind.DEFECTS, "np"),
            (TestKind.DEFECTS, "ewma"),
        ],
    )
    def test_chart_type_must_fit_the_test_kind(self, qs_api, kind, chart):
        characteristic = characteristic_for(ProductFactory(), TestFactory(kind=kind))
        error = _refused(qs_api, characteristic, {"chart_type": chart}, "chart_type")
        assert "does not fit" in error["message"]

    @pytest.mark.parametrize(
        ("kind", "chart"),
        [(TestKind.DEFECTIVES, "np"), (TestKind.DEFECTS, "c"), (TestKind.VARIABLE, "cusum")],
    )
    def test_fitting_chart_types(self, qs_api, kind, chart):
        characteristic = characteristic_for(ProductFactory(), TestFactory(kind=kind))
        assert _patch(qs_api, characteristic, {"chart_type": chart}).status_code == 200
        assert Characteristic.objects.get(pk=characteristic.pk).chart_type == chart

    def test_imr_needs_subgroup_size_one(self, qs_api, variable):
        services.characteristic_update(characteristic=variable, data={"subgroup_size": 5})
        error = _refused(qs_api, variable, {"chart_type": "imr"}, "chart_type")
        assert "subgroup size 1" in error["message"]
        services.characteristic_update(
            characteristic=variable, data={"subgroup_size": 1, "chart_type": "imr"}
        )
        _refused(qs_api, variable, {"subgroup_size": 4}, "chart_type")

    def test_xbar_needs_subgroups(self, qs_api, variable):
        _refused(qs_api, variable, {"chart_type": "xbar_s"}, "chart_type")

    def test_ewma_parameters(self, qs_api, variable):
        response = _patch(qs_api, variable, {"chart_type": "ewma", "chart_params": {"lambda": 0.2, "L": 2.7}})
        assert response.status_code == 200, response.content
        assert Characteristic.objects.get(pk=variable.pk).chart_params == {"lambda": 0.2, "L": 2.7}

    @pytest.mark.parametrize(
        "params",
        [{"lambda": 0}, {"lambda": 1.5}, {"k": 0.5}, {"L": True}, {"lambda": "0.2"}, [0.2]],
        ids=["zero", "above-1", "cusum-param", "bool", "string", "list"],
    )
    def test_bad_ewma_parameters_are_400(self, qs_api, variable, params):
        _refused(qs_api, variable, {"chart_type": "ewma", "chart_params": params}, "chart_params")

    def test_leaving_ewma_clears_its_parameters(self, qs_api, variable):
        services.characteristic_update(
            characteristic=variable, data={"chart_type": "ewma", "chart_params": {"lambda": 0.2}}
        )
        response = _patch(qs_api, variable, {"chart_type": "imr"})
        assert response.status_code == 200, response.content
        assert response.json()["chart_params"] == {}
        assert Characteristic.objects.get(pk=variable.pk).chart_params == {}


class RulesTests:
    def test_preset_replaces_the_rules(self, qs_api, variable):
        response = _patch(qs_api, variable, {"rule_preset": "western_electric"})
        assert response.status_code == 200, response.content
        assert response.json()["rules"] == WESTERN_ELECTRIC
        assert response.json()["rule_preset"] == "western_electric"
        assert Characteristic.objects.get(pk=variable.pk).rules == WESTERN_ELECTRIC
        again = _patch(qs_api, variable, {"rule_preset": "nelson"})
        assert again.json()["rule_preset"] == "nelson"
        assert Characteristic.objects.get(pk=variable.pk).rules == NELSON

    def test_custom_rules_read_back_as_custom(self, qs_api, variable):
        response = _patch(qs_api, variable, {"rules": {"1": {"k": 3}, "2": {"length": 7}}})
        assert response.status_code == 200, response.content
        assert response.json()["rule_preset"] == "custom"
        assert response.json()["rules"] == {"1": {"k": 3}, "2": {"length": 7}}
        assert Characteristic.objects.get(pk=variable.pk).rule_preset == "custom"

    def test_rules_are_stored_with_defaults_filled_in(self, qs_api, variable):
        response = _patch(qs_api, variable, {"rules": {"5": {"k": 2.5}, "1": {}}})
        assert response.status_code == 200, response.content
        assert Characteristic.objects.get(pk=variable.pk).rules == {
            "1": {"k": 3},
            "5": {"m": 2, "n": 3, "k": 2.5},
        }

    def test_no_rules_at_all(self, qs_api, variable):
        assert _patch(qs_api, variable, {"rules": {}}).status_code == 200
        assert Characteristic.objects.get(pk=variable.pk).rules == {}

    def test_rules_win_over_a_preset_given_with_them(self, qs_api, variable):
        response = _patch(qs_api, variable, {"rule_preset": "western_electric", "rules": {"1": {"k": 2.5}}})
        assert response.status_code == 200, response.content
        assert Characteristic.objects.get(pk=variable.pk).rules == {"1": {"k": 2.5}}

    def test_equal_to_a_preset_reads_back_as_that_preset(self, qs_api, variable):
        response = _patch(qs_api, variable, {"rules": WESTERN_ELECTRIC})
        assert response.json()["rule_preset"] == "western_electric"

    def test_unknown_preset_is_400(self, qs_api, variable):
        _refused(qs_api, variable, {"rule_preset": "montgomery"}, "rule_preset")

    @pytest.mark.parametrize(
        "rules",
        [
            {"9": {}},
            {"0": {}},
            {"one": {}},
            {"1": {"k": -1}},
            {"1": {"k": 0}},
            {"1": {"k": True}},
            {"1": {"sigma": 3}},
            {"1": None},
            {"1": 3},
            {"2": {"length": "x"}},
            {"2": {"length": 1}},
            {"2": {"length": 2.5}},
            {"5": {"m": 4, "n": 3}},
            [],
            "nelson",
            3,
        ],
    )
    def test_malformed_rules_are_400(self, qs_api, variable, rules):
        _refused(qs_api, variable, {"rules": rules}, "rules")

    def test_malformed_rules_with_a_valid_preset_are_400(self, qs_api, variable):
        _refused(qs_api, variable, {"rule_preset": "nelson", "rules": {"9": {}}}, "rules")


class DataSourceTests:
    def test_tag_source(self, qs_api, variable):
        data = {"data_source": "tag", "tag": "  plant1/line1/ring-dia  "}
        response = _patch(qs_api, variable, data)
        assert response.status_code == 200, response.content
        stored = Characteristic.objects.get(pk=variable.pk)
        assert (stored.data_source, stored.tag) == ("tag", "plant1/line1/ring-dia")

    @pytest.mark.parametrize("tag", [None, "", "   "])
    def test_tag_source_without_a_tag_is_400(self, qs_api, variable, tag):
        data = {"data_source": "tag"} if tag is None else {"data_source": "tag", "tag": tag}
        _refused(qs_api, variable, data, "tag")

    def test_tag_is_unique_across_characteristics(self, qs_api, variable):
        other = characteristic_for(ProductFactory(), TestFactory(), tag="plant1/line1/ring-dia")
        _refused(qs_api, variable, {"tag": "plant1/line1/ring-dia"}, "tag")
        _refused(qs_api, variable, {"tag": " plant1/line1/ring-dia "}, "tag")
        assert Characteristic.objects.get(pk=other.pk).tag == "plant1/line1/ring-dia"

    def test_tag_uniqueness_is_a_service_rule_too(self, variable):
        characteristic_for(ProductFactory(), TestFactory(), tag="plant1/line1/ring-dia")
        with pytest.raises(ValidationError) as caught:
            services.characteristic_update(characteristic=variable, data={"tag": "plant1/line1/ring-dia "})
        assert "already feeds another characteristic" in caught.value.message_dict["tag"][0]
        assert Characteristic.objects.get(pk=variable.pk).tag is None

    def test_blank_tags_do_not_collide(self, qs_api, variable):
        other = characteristic_for(ProductFactory(), TestFactory())
        assert _patch(qs_api, variable, {"tag": ""}).status_code == 200
        assert _patch(qs_api, other, {"tag": "  "}).status_code == 200
        assert list(Characteristic.objects.values_list("tag", flat=True)) == [None, None]

    def test_keeping_its_own_tag_is_fine(self, qs_api, variable):
        services.characteristic_update(characteristic=variable, data={"tag": "t/1"})
        assert _patch(qs_api, variable, {"tag": "t/1", "line": "Line 9"}).status_code == 200
        assert Characteristic.objects.get(pk=variable.pk).line == "Line 9"


class LimitsTests:
    def test_limits_versions_newest_first(self, qs_api, variable, quality_specialist):
        limits_set(variable, center=10.0, reason="First study")
        limits_set(variable, center=10.1, reason="After the tool change", user=quality_specialist)
        response = qs_api.get(f"{CHARACTERISTICS}{variable.pk}/limits/")
        assert response.status_code == 200
        rows = response.json()
        assert [(row["version"], row["center"], row["reason"]) for row in rows] == [
            (2, 10.1, "After the tool change"),
            (1, 10.0, "First study"),
        ]
        assert [row["set_by"] for row in rows] == ["qs", None]
        assert rows[0]["ucl"] == pytest.approx(10.4)
        assert rows[0]["method"] == "historical"

    def test_limits_of_a_characteristic_without_any(self, qs_api, variable):
        response = qs_api.get(f"{CHARACTERISTICS}{variable.pk}/limits/")
        assert (response.status_code, response.json()) == (200, [])

    def test_current_limits_are_the_newest(self, qs_api, variable):
        limits_set(variable, center=10.0)
        limits_set(variable, center=10.2)
        body = qs_api.get(f"{CHARACTERISTICS}{variable.pk}/").json()
        assert (body["current_limits"]["version"], body["current_limits"]["center"]) == (2, 10.2)

    def test_operations_lead_reads_limits(self, api, operations_lead, variable):
        limits_set(variable)
        response = api(operations_lead).get(f"{CHARACTERISTICS}{variable.pk}/limits/")
        assert response.status_code == 200
        assert len(response.json()) == 1


class ProductConfigTests:
    @pytest.fixture
    def product(self):
        product = ProductFactory(code="RING-74")
        dia, wall, surf = (
            TestFactory(code="DIA"),
            TestFactory(code="WALL"),
            TestFactory(code="SURF", kind="defects"),
        )
        plan = released_plan((wall, 3), dia, surf, code="RING-FINAL")
        services.plan_assign(product=product, plan=plan)
        extra = released_plan(TestFactory(code="LEAK", kind="defectives"), dia, code="RING-EXTRA")
        services.plan_assign(product=product, plan=extra)
        for characteristic in Characteristic.objects.filter(product=product, test__kind="variable"):
            services.characteristic_update(
                characteristic=characteristic, data={"lsl": 1.0, "usl": 2.0}, reason="new drawing"
            )
            limits_set(characteristic, center=1.5, half_width=0.2)
            limits_set(characteristic, center=1.6, half_width=0.2)
        return product

    def test_plans_with_ordered_entries_and_characteristics_with_limits(self, qs_api, product):
        response = qs_api.get(f"/api/v1/products/{product.pk}/config/")
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["code"], body["active"]) == ("RING-74", True)
        plans = {row["plan"]["code"]: row["plan"] for row in body["plans"]}
        assert set(plans) == {"RING-FINAL", "RING-EXTRA"}
        assert [(e["position"], e["test_code"], e["replicates"]) for e in plans["RING-FINAL"]["entries"]] == [
            (1, "WALL", 3),
            (2, "DIA", 1),
            (3, "SURF", 1),
        ]
        assert plans["RING-FINAL"]["status"] == "released"
        characteristics = {row["test_code"]: row for row in body["characteristics"]}
        assert set(characteristics) == {"DIA", "WALL", "SURF", "LEAK"}
        assert (characteristics["DIA"]["lsl"], characteristics["DIA"]["usl"]) == (1.0, 2.0)
        assert characteristics["DIA"]["current_limits"]["version"] == 2
        assert characteristics["DIA"]["current_limits"]["center"] == 1.6
        assert characteristics["SURF"]["current_limits"] is None
        assert characteristics["LEAK"]["effective_chart_type"] == "p"
        assert all(row["product_code"] == "RING-74" for row in body["characteristics"])

    def test_query_count(self, qs_api, product, django_assert_max_num_queries):
        for n in range(4):
            services.plan_assign(
                product=product,
                plan=released_plan(TestFactory(), TestFactory(), code=f"MORE-{n}"),
            )
        with django_assert_max_num_queries(10):
            response = qs_api.get(f"/api/v1/products/{product.pk}/config/")
        body = response.json()
        assert len(body["plans"]) == 6
        assert len(body["characteristics"]) == 12

    def test_query_count_with_limits_set_by_users(self, qs_api, product, django_assert_max_num_queries):
        for characteristic in Characteristic.objects.filter(product=product):
            limits_set(characteristic, center=1.5, half_width=0.2, user=UserFactory())
        with django_assert_max_num_queries(10):
            response = qs_api.get(f"/api/v1/products/{product.pk}/config/")
        assert len(response.json()["characteristics"]) == 4

    def test_unknown_product_is_404(self, qs_api):
        error_of(qs_api.get("/api/v1/products/999999/config/"), 404)

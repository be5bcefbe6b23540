"""GET /api/v1/violations/, /lot-statistics/ and /product-statistics/: lists, filters, who reads them,
and numbers equal to the SPC engine's on the same values."""

import datetime

import numpy as np
import pytest
from django.utils import timezone

from apps.calculations.models import LotStatistics, ProductStatistics, Violation
from apps.config import services as config_services
from apps.config.models import ControlLimits
from spc import index_intervals, individuals_chart, process_capability, xbar_r_chart
from tests.calculations.api_helpers import dia_of, historical, sized, subgroups_store
from tests.config.helpers import error_of
from tests.factories import LotFactory, ProductFactory

pytestmark = [
    pytest.mark.django_db,
    # A list paged in no defined order can repeat or skip rows between pages.
    pytest.mark.filterwarnings("error::django.core.paginator.UnorderedObjectListWarning"),
]

VIOLATIONS = "/api/v1/violations/"
LOT_STATISTICS = "/api/v1/lot-statistics/"
PRODUCT_STATISTICS = "/api/v1/product-statistics/"
LSL, USL = 73.95, 74.05


class Data:
    """DIA (spec 73.95–74.05, limits 74 ± 0.03) over lots L-1 (20 values) and L-2 (15 values, the
    last out of spec and beyond the UCL); LEN5 (n = 5, spec 9–11, no limits) with 6 subgroups in L-1."""

    def __init__(self, plant, user):
        rng = np.random.default_rng(2024)
        self.plant = plant
        self.dia = config_services.characteristic_update(
            characteristic=dia_of(plant), data={"lsl": LSL, "usl": USL}, reason="specification"
        )
        self.limits = historical(self.dia, center=74.0, sigma=0.01)
        self.lot2 = LotFactory(product=plant.product, number="L-2")
        self.l1 = [round(float(v), 4) for v in 74.0 + 0.008 * rng.standard_normal(20)]
        self.l2 = [round(float(v), 4) for v in 74.004 + 0.008 * rng.standard_normal(14)] + [74.07]
        subgroups_store(self.dia, [[v] for v in self.l1], lot=plant.lot, user=user)
        subgroups_store(self.dia, [[v] for v in self.l2], lot=self.lot2, user=user)
        self.len5 = sized(plant, 5, lsl=9.0, usl=11.0)
        self.groups = [[float(v) for v in row] for row in 10.0 + 0.2 * rng.standard_normal((6, 5))]
        subgroups_store(self.len5, self.groups, lot=plant.lot, user=user)


@pytest.fixture
def data(plant, quality_specialist):
    return Data(plant, quality_specialist)


def _results(response):
    assert response.status_code == 200, response.content
    return response.json()["results"]


class LotStatisticsTests:
    def test_each_lot_and_test_equals_numpy_and_the_engine(self, api, data, quality_specialist):
        rows = _results(api(quality_specialist).get(LOT_STATISTICS, {"characteristic": data.dia.pk}))
        by_lot = {row["lot_number"]: row for row in rows}
        assert sorted(by_lot) == ["L-1", "L-2"]
        for number, values in (("L-1", data.l1), ("L-2", data.l2)):
            row = by_lot[number]
            assert (row["test_code"], row["characteristic"], row["n"], row["observations"]) == (
                "DIA", data.dia.pk, len(values), len(values),
            )  # fmt: skip
            assert row["mean"] == pytest.approx(np.mean(values), rel=1e-12)
            assert row["sd"] == pytest.approx(np.std(values, ddof=1), rel=1e-9)
            assert (row["minimum"], row["maximum"]) == (min(values), max(values))
            engine = process_capability(values, sigma_within=np.std(values, ddof=1), lsl=LSL, usl=USL)
            assert row["cpk"] == pytest.approx(engine.cpk, rel=1e-9)
            stored = LotStatistics.objects.get(pk=row["id"])
            assert (stored.n, stored.cpk, stored.disposition) == (row["n"], row["cpk"], row["disposition"])
        assert (by_lot["L-1"]["out_of_spec"], by_lot["L-2"]["out_of_spec"]) == (0, 1)
        assert by_lot["L-1"]["cpk"] > 1.33
        assert (by_lot["L-1"]["disposition"], by_lot["L-2"]["disposition"]) == ("release", "reject")

    def test_filters(self, api, data, quality_specialist):
        client = api(quality_specialist)

        def listed(**params):
            return sorted(
                (r["lot_number"], r["test_code"]) for r in _results(client.get(LOT_STATISTICS, params))
            )

        assert listed() == [("L-1", "DIA"), ("L-1", "LEN5"), ("L-2", "DIA")]
        assert listed(lot=data.lot2.pk) == [("L-2", "DIA")]
        assert listed(test=data.len5.test_id) == [("L-1", "LEN5")]
        assert listed(disposition="reject") == [("L-2", "DIA")]
        assert listed(lot=data.plant.lot.pk, characteristic=data.len5.pk) == [("L-1", "LEN5")]
        error_of(client.get(LOT_STATISTICS, {"disposition": "maybe"}), 400, "disposition")

    def test_who_reads_them(self, api, data, manager, operations_lead):
        for user in (manager, operations_lead):
            assert len(_results(api(user).get(LOT_STATISTICS))) == 3
        error_of(api(data.plant.tester).get(LOT_STATISTICS), 403)
        error_of(api(None).get(LOT_STATISTICS), 401)

    def test_the_query_count_does_not_grow_with_lots(
        self, api, data, quality_specialist, django_assert_max_num_queries
    ):
        client = api(quality_specialist)
        with django_assert_max_num_queries(6):
            assert len(_results(client.get(LOT_STATISTICS))) == 3
        for number in range(4):
            lot = LotFactory(product=data.plant.product, number=f"L-{10 + number}")
            subgroups_store(data.dia, [[74.0], [74.001]], lot=lot, user=quality_specialist)
        with django_assert_max_num_queries(6):
            assert len(_results(client.get(LOT_STATISTICS))) == 7


class ProductStatisticsTests:
    def test_capability_with_limits_equals_the_engine(self, api, data, quality_specialist):
        [row] = _results(api(quality_specialist).get(PRODUCT_STATISTICS, {"characteristic": data.dia.pk}))
        values = data.l1 + data.l2
        engine = process_capability(values, sigma_within=0.01, lsl=LSL, usl=USL)
        assert (row["product"], row["product_code"], row["test_code"], row["n"]) == (
            data.plant.product.pk, "RING-74", "DIA", 35,
        )  # fmt: skip
        assert row["mean"] == pytest.approx(engine.center, rel=1e-12)
        assert row["sd"] == pytest.approx(engine.sigma_overall, rel=1e-9)
        assert (row["sigma_within"], row["sigma_source"], row["limits_version"]) == (0.01, "limits", 1)
        for name in ("cp", "cpk", "pp", "ppk"):
            assert row[name] == pytest.approx(getattr(engine, name), rel=1e-9), name
        assert (row["minimum"], row["maximum"], row["out_of_spec"]) == (min(values), max(values), 1)
        limits = row["limits"]
        assert (limits["id"], limits["version"], limits["center"], limits["sigma"], limits["method"]) == (
            data.limits.pk, 1, 74.0, 0.01, "historical",
        )  # fmt: skip
        assert limits["ucl"] == data.limits.ucl
        stored = ProductStatistics.objects.get(characteristic=data.dia)
        assert (stored.cp, stored.ppk) == (row["cp"], row["ppk"])

    def test_capability_says_when_it_is_not_to_be_trusted_and_carries_intervals(
        self, api, data, quality_specialist, settings
    ):
        """Issue #21: 35 individual values are too few (AIAG: 100); 6 subgroups of 5 too (25)."""
        client = api(quality_specialist)
        [row] = _results(client.get(PRODUCT_STATISTICS, {"characteristic": data.dia.pk}))
        assert (row["trusted"], row["trust_note"]) == (False, "too few values (n = 35)")
        expected = index_intervals(n=35, cp=row["cp"], cpk=row["cpk"], pp=row["pp"], ppk=row["ppk"])
        for name in ("cp", "cpk", "pp", "ppk"):
            interval = expected[name]
            assert interval is not None
            assert row["intervals"][name] == [interval.lower, interval.upper], name
            assert interval.lower < row[name] < interval.upper
        [grouped] = _results(client.get(PRODUCT_STATISTICS, {"characteristic": data.len5.pk}))
        assert (grouped["trusted"], grouped["trust_note"]) == (False, "too few subgroups (6; 25 needed)")
        settings.CAPABILITY_MIN_VALUES = 35
        [row] = _results(client.get(PRODUCT_STATISTICS, {"characteristic": data.dia.pk}))
        assert (row["trusted"], row["trust_note"]) == (True, "")

    def test_capability_without_limits_uses_the_samples_within_sigma(self, api, data, quality_specialist):
        [row] = _results(api(quality_specialist).get(PRODUCT_STATISTICS, {"characteristic": data.len5.pk}))
        within = xbar_r_chart(data.groups).sigma  # mean of R / d2(5)
        engine = process_capability(data.groups, sigma_within=within, lsl=9.0, usl=11.0)
        assert (row["limits"], row["limits_version"], row["sigma_source"], row["n"]) == (
            None,
            None,
            "samples",
            30,
        )
        assert row["sigma_within"] == pytest.approx(within, rel=1e-9)
        for name in ("cp", "cpk", "pp", "ppk"):
            assert row[name] == pytest.approx(getattr(engine, name), rel=1e-9), name
        # Cp and Cpk's intervals have the R-bar sigma's degrees of freedom, 0.9 k (n − 1) = 21.6 for 6
        # subgroups of 5 (Minitab); Pp and Ppk's the 30 values' 29.
        expected = index_intervals(
            n=30, cp=row["cp"], cpk=row["cpk"], pp=row["pp"], ppk=row["ppk"], within_dof=21.6
        )  # fmt: skip
        assert {k: [i.lower, i.upper] for k, i in expected.items() if i} == row["intervals"]
        naive = index_intervals(n=30, cp=row["cp"])["cp"]  # what n − 1 would have given
        assert naive is not None
        assert row["intervals"]["cp"] != [naive.lower, naive.upper]

    def test_individuals_without_limits_use_the_average_moving_range(self, api, plant, quality_specialist):
        single = sized(plant, 1, lsl=0.0, usl=10.0)
        values = [5.0, 5.3, 4.8, 5.1, 5.6, 4.9, 5.2]
        subgroups_store(single, [[v] for v in values], lot=plant.lot, user=quality_specialist)
        [row] = _results(api(quality_specialist).get(PRODUCT_STATISTICS, {"characteristic": single.pk}))
        chart = individuals_chart(values)
        engine = process_capability(values, sigma_within=chart.sigma, lsl=0.0, usl=10.0)
        assert row["sigma_within"] == pytest.approx(chart.sigma, rel=1e-9)
        assert (row["cp"], row["cpk"]) == (
            pytest.approx(engine.cp, rel=1e-9),
            pytest.approx(engine.cpk, rel=1e-9),
        )
        # 6 moving ranges of 7 values: 6 degrees of freedom, as n − 1 would give too.
        expected = index_intervals(n=7, cp=row["cp"], cpk=row["cpk"], within_dof=6)
        assert row["intervals"]["cp"] == [expected["cp"].lower, expected["cp"].upper]  # type: ignore[union-attr]

    def test_the_product_filter(self, api, data, quality_specialist):
        client = api(quality_specialist)
        listed = _results(client.get(PRODUCT_STATISTICS, {"product": data.plant.product.pk}))
        assert sorted(r["characteristic"] for r in listed) == sorted([data.dia.pk, data.len5.pk])
        assert _results(client.get(PRODUCT_STATISTICS, {"product": ProductFactory().pk})) == []

    def test_who_reads_them(self, api, data, manager, operations_lead):
        for user in (manager, operations_lead):
            assert len(_results(api(user).get(PRODUCT_STATISTICS))) == 2
        error_of(api(data.plant.tester).get(PRODUCT_STATISTICS), 403)
        error_of(api(data.plant.tester).get(f"{PRODUCT_STATISTICS}{data.dia.pk}/"), 403)

    def test_the_query_count_does_not_grow_with_characteristics(
        self, api, data, quality_specialist, django_assert_max_num_queries
    ):
        client = api(quality_specialist)
        with django_assert_max_num_queries(7):
            assert len(_results(client.get(PRODUCT_STATISTICS))) == 2
        for n in (2, 3, 4):
            extra = sized(data.plant, n, code=f"EXTRA{n}")
            historical(extra, center=1.0, sigma=0.1)
            subgroups_store(
                extra, [[1.0 + i / 10 for i in range(n)]], lot=data.plant.lot, user=quality_specialist
            )
        with django_assert_max_num_queries(7):
            rows = _results(client.get(PRODUCT_STATISTICS))
        assert [row["test_code"] for row in rows] == ["DIA", "EXTRA2", "EXTRA3", "EXTRA4", "LEN5"]
        assert sum(1 for row in rows if row["limits"] is not None) == 4


class ViolationListTests:
    def test_the_violations_of_a_characteristic_newest_first(self, api, data, quality_specialist):
        rows = _results(api(quality_specialist).get(VIOLATIONS, {"characteristic": data.dia.pk}))
        stored = list(Violation.objects.filter(characteristic=data.dia).order_by("-created_at", "-id"))
        assert [r["id"] for r in rows] == [v.pk for v in stored]
        assert stored
        last = Violation.objects.get(characteristic=data.dia, sample__sequence=35, chart="location", rule=1)
        row = next(r for r in rows if r["id"] == last.pk)
        assert row == {
            **row, "characteristic": data.dia.pk, "sample": last.sample_id, "sequence": 35,
            "lot": data.lot2.pk, "rule": 1, "chart": "location", "points": [35], "severity": "critical",
            "limits_version": 1,
        }  # fmt: skip

    def test_filters(self, api, data, quality_specialist):
        client = api(quality_specialist)

        def listed(**params):
            return sorted(r["id"] for r in _results(client.get(VIOLATIONS, params)))

        def expected(**lookups):
            return sorted(Violation.objects.filter(**lookups).values_list("pk", flat=True))

        assert listed(lot=data.lot2.pk) == expected(sample__lot=data.lot2) != []
        assert listed(rule=1) == expected(rule=1) != []
        assert listed(chart="dispersion") == expected(chart="dispersion") != []
        assert listed(severity="critical", chart="location") == expected(
            severity="critical", chart="location"
        )
        assert listed(lot=data.plant.lot.pk, rule=1) == expected(sample__lot=data.plant.lot, rule=1)
        tomorrow = (timezone.now() + datetime.timedelta(days=1)).isoformat()
        assert listed(since=tomorrow) == []
        assert listed(characteristic=data.len5.pk) == []  # no limits: nothing judged
        error_of(client.get(VIOLATIONS, {"chart": "both"}), 400, "chart")
        error_of(client.get(VIOLATIONS, {"since": "yesterday"}), 400, "since")

    def test_ordering_by_rule(self, api, data, quality_specialist):
        rows = _results(api(quality_specialist).get(VIOLATIONS, {"ordering": "-rule"}))
        assert [r["rule"] for r in rows] == sorted((r["rule"] for r in rows), reverse=True)

    def test_one_violation_reads_by_id(self, api, data, manager):
        violation = Violation.objects.filter(characteristic=data.dia).first()
        body = api(manager).get(f"{VIOLATIONS}{violation.pk}/").json()
        assert (body["id"], body["rule"], body["points"]) == (violation.pk, violation.rule, violation.points)

    def test_who_reads_them(self, api, data, manager, operations_lead):
        count = Violation.objects.count()
        for user in (manager, operations_lead):
            assert api(user).get(VIOLATIONS).json()["count"] == count
        error_of(api(data.plant.tester).get(VIOLATIONS), 403)
        violation = Violation.objects.first()
        error_of(api(data.plant.tester).get(f"{VIOLATIONS}{violation.pk}/"), 403)

    def test_the_query_count_does_not_grow_with_violations(
        self, api, data, quality_specialist, django_assert_max_num_queries
    ):
        client = api(quality_specialist)
        with django_assert_max_num_queries(6):
            before = client.get(VIOLATIONS).json()
        subgroups_store(data.dia, [[74.1], [73.9], [74.1]], lot=data.lot2, user=quality_specialist)
        with django_assert_max_num_queries(6):
            after = client.get(VIOLATIONS).json()
        assert after["count"] > before["count"] + 3
        assert len(after["results"]) == after["count"]
        assert ControlLimits.objects.filter(characteristic=data.dia).count() == 1

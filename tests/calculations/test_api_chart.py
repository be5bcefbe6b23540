"""GET /api/v1/characteristics/{id}/chart-data/: points, limits, zones and violations in one answer."""

import itertools
import math

import numpy as np
import pytest

from apps.calculations.models import Violation
from apps.config.choices import TestKind
from apps.observations.models import Sample
from tests.calculations.api_helpers import characteristic_url, dia_of, historical, sized, subgroups_store
from tests.config.helpers import error_of
from tests.factories import LotFactory

pytestmark = pytest.mark.django_db

DIA_VALUES = [74.001, 73.998, 74.004, 73.995, 74.002, 74.0, 73.997, 74.006, 74.001, 74.05, 73.999, 74.003]


def _chart(client, characteristic, **params):
    return client.get(characteristic_url(characteristic, "chart-data"), params)


@pytest.fixture
def dia(plant, quality_specialist):
    """DIA (I-MR) with limits 74 ± 0.03 and twelve samples; sample 10 is 5 σ high."""
    characteristic = dia_of(plant)
    historical(characteristic, center=74.0, sigma=0.01)
    subgroups_store(characteristic, [[v] for v in DIA_VALUES], lot=plant.lot, user=quality_specialist)
    return characteristic


def _zones(center, sigma):
    return {
        f"sigma_{k}": [
            pytest.approx(center - k * sigma, rel=1e-12),
            pytest.approx(center + k * sigma, rel=1e-12),
        ]
        for k in (1, 2, 3)
    }


class IndividualsChartTests:
    def test_the_last_points_with_moving_ranges_limits_zones_and_violations(
        self, api, dia, quality_specialist
    ):
        response = _chart(api(quality_specialist), dia, limit=5)
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["characteristic"], body["chart_type"], body["subgroup_size"]) == (dia.pk, "imr", 1)
        points = body["points"]
        assert [p["sequence"] for p in points] == [8, 9, 10, 11, 12]
        assert [p["statistic"] for p in points] == DIA_VALUES[7:]
        # The first point shown has its moving range: the sample before it is read too.
        moving = [abs(b - a) for a, b in itertools.pairwise(DIA_VALUES[6:])]
        assert [p["dispersion"] for p in points] == pytest.approx(moving, rel=1e-12)
        assert [p["in_control"] for p in points] == [True, True, False, False, True]
        stored = Sample.objects.filter(characteristic=dia, sequence__gte=8).order_by("sequence")
        assert [p["id"] for p in points] == [s.pk for s in stored]
        assert (body["limits"]["version"], body["limits"]["center"], body["limits"]["sigma"]) == (
            1,
            74.0,
            0.01,
        )
        assert body["limits"]["ucl"] == pytest.approx(74.03, rel=1e-12)
        assert body["zones"] == _zones(74.0, 0.01)

        expected = Violation.objects.filter(sample__sequence__gte=8, characteristic=dia).order_by(
            "sample__sequence", "rule", "chart"
        )
        assert [(v["sequence"], v["rule"], v["chart"], v["points"]) for v in body["violations"]] == [
            (v.sample.sequence, v.rule, v.chart, v.points) for v in expected
        ]
        # 74.05 is beyond the UCL, and so are the moving ranges into and out of it.
        assert {(v["rule"], v["chart"], tuple(v["points"])) for v in body["violations"]} >= {
            (1, "location", (10,)), (1, "dispersion", (9, 10)), (1, "dispersion", (10, 11)),
        }  # fmt: skip

    def test_the_first_sample_has_no_moving_range(self, api, dia, quality_specialist):
        points = _chart(api(quality_specialist), dia).json()["points"]
        assert [p["sequence"] for p in points] == list(range(1, 13))
        assert points[0]["dispersion"] is None
        assert points[1]["dispersion"] == pytest.approx(abs(DIA_VALUES[1] - DIA_VALUES[0]), rel=1e-12)

    def test_violations_of_points_not_shown_are_left_out(self, api, dia, quality_specialist):
        body = _chart(api(quality_specialist), dia, limit=2).json()
        assert [p["sequence"] for p in body["points"]] == [11, 12]
        assert {v["sequence"] for v in body["violations"]} <= {11, 12}
        assert Violation.objects.filter(characteristic=dia, sample__sequence=10).exists()

    def test_one_lot_only(self, api, plant, dia, quality_specialist):
        other = LotFactory(product=plant.product, number="L-2")
        subgroups_store(dia, [[74.01], [73.99]], lot=other, user=quality_specialist)
        body = _chart(api(quality_specialist), dia, lot=other.pk).json()
        assert [(p["sequence"], p["lot"]) for p in body["points"]] == [(13, other.pk), (14, other.pk)]
        # The moving range is taken within the lot: the first of the lot has none.
        assert body["points"][0]["dispersion"] is None
        assert body["points"][1]["dispersion"] == pytest.approx(0.02, rel=1e-9)


class SubgroupChartTests:
    def test_xbar_r_points_are_means_with_their_ranges_and_zones_use_sigma_over_root_n(
        self, api, plant, quality_specialist
    ):
        five = sized(plant, 5)
        historical(five, center=10.0, sigma=0.5)
        rng = np.random.default_rng(5)
        data = [[float(v) for v in row] for row in 10.0 + 0.5 * rng.standard_normal((6, 5))]
        subgroups_store(five, data, lot=plant.lot, user=quality_specialist)
        body = _chart(api(quality_specialist), five).json()
        assert body["chart_type"] == "xbar_r"
        assert [p["statistic"] for p in body["points"]] == pytest.approx(
            [np.mean(r) for r in data], rel=1e-12
        )
        assert [p["dispersion"] for p in body["points"]] == pytest.approx(
            [np.ptp(r) for r in data], rel=1e-12
        )
        assert [p["n"] for p in body["points"]] == [5] * 6
        assert body["zones"] == _zones(10.0, 0.5 / math.sqrt(5))
        assert body["limits"]["ucl"] == pytest.approx(10.0 + 3 * 0.5 / math.sqrt(5), rel=1e-12)
        assert body["zones"]["sigma_3"][1] == pytest.approx(body["limits"]["ucl"], rel=1e-12)

    def test_xbar_s_points_carry_their_sd(self, api, plant, quality_specialist):
        twelve = sized(plant, 12)
        historical(twelve, center=0.0, sigma=2.0)
        rng = np.random.default_rng(12)
        data = [[float(v) for v in row] for row in 2.0 * rng.standard_normal((3, 12))]
        subgroups_store(twelve, data, lot=plant.lot, user=quality_specialist)
        body = _chart(api(quality_specialist), twelve).json()
        assert body["chart_type"] == "xbar_s"
        assert [p["dispersion"] for p in body["points"]] == pytest.approx(
            [np.std(r, ddof=1) for r in data], rel=1e-12
        )
        assert body["zones"] == _zones(0.0, 2.0 / math.sqrt(12))

    def test_a_p_chart_plots_the_proportion(self, api, plant, quality_specialist):
        cracks = sized(plant, 20, code="CRACK", kind=TestKind.DEFECTIVES)
        historical(cracks, center=0.1, sigma=1.0)  # sigma follows from p for attributes
        subgroups_store(cracks, [[2.0], [0.0], [7.0]], lot=plant.lot, user=quality_specialist)
        body = _chart(api(quality_specialist), cracks).json()
        assert body["chart_type"] == "p"
        assert [p["statistic"] for p in body["points"]] == [0.1, 0.0, 0.35]
        assert [p["dispersion"] for p in body["points"]] == [None, None, None]
        sigma = math.sqrt(0.1 * 0.9 / 20)
        assert body["limits"]["sigma"] == pytest.approx(sigma, rel=1e-12)
        assert body["zones"] == _zones(0.1, sigma)
        assert [(v["sequence"], v["rule"]) for v in body["violations"]] == [(3, 1)]  # 0.35 > 0.1 + 3σ = 0.30


class NoLimitsTests:
    def test_points_without_limits_zones_or_judgement(self, api, plant, quality_specialist):
        fresh = sized(plant, 1)
        subgroups_store(fresh, [[1.0], [2.0], [40.0]], lot=plant.lot, user=quality_specialist)
        body = _chart(api(quality_specialist), fresh).json()
        assert (body["limits"], body["zones"], body["violations"]) == (None, None, [])
        assert [(p["statistic"], p["in_control"], p["limits_version"]) for p in body["points"]] == [
            (1.0, None, None), (2.0, None, None), (40.0, None, None),
        ]  # fmt: skip
        assert [p["dispersion"] for p in body["points"]] == [None, 1.0, 38.0]

    def test_no_samples_yet(self, api, plant, quality_specialist):
        fresh = sized(plant, 1)
        body = _chart(api(quality_specialist), fresh).json()
        assert (body["points"], body["limits"], body["zones"], body["violations"]) == ([], None, None, [])


class ChartQueryTests:
    @pytest.mark.parametrize("limit", ["0", "5001", "-1", "abc"])
    def test_the_limit_is_bounded(self, api, dia, quality_specialist, limit):
        error = error_of(_chart(api(quality_specialist), dia, limit=limit), 400, "limit")
        assert error["code"] == "validation_error"

    def test_the_largest_limit_is_accepted(self, api, dia, quality_specialist):
        assert len(_chart(api(quality_specialist), dia, limit=5000).json()["points"]) == 12

    def test_a_bad_lot_is_refused(self, api, dia, quality_specialist):
        error_of(_chart(api(quality_specialist), dia, lot="x"), 400, "lot")

    def test_who_reads_charts(self, api, plant, dia, manager, operations_lead):
        for user in (manager, operations_lead):
            assert _chart(api(user), dia).status_code == 200
        error_of(_chart(api(plant.tester), dia), 403)
        error_of(_chart(api(None), dia), 401)

    def test_an_unknown_characteristic_is_404(self, api, quality_specialist):
        error_of(api(quality_specialist).get("/api/v1/characteristics/99999999/chart-data/"), 404)

    def test_the_query_count_does_not_grow_with_points_or_violations(
        self, api, dia, quality_specialist, django_assert_max_num_queries
    ):
        client = api(quality_specialist)
        with django_assert_max_num_queries(8):
            few = _chart(client, dia, limit=2).json()
        with django_assert_max_num_queries(8):
            many = _chart(client, dia, limit=500).json()
        assert (len(few["points"]), len(many["points"])) == (2, 12)
        assert len(many["violations"]) > len(few["violations"])

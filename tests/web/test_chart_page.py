"""The characteristic chart page as the server renders it (the region static/js/chart.js draws
into, with the counts browser tests wait on, its controls and scripts), and the data it reads
from the API carrying every field static/js/chart.logic.js maps."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from apps.calculations import services as calculations
from apps.config import services as config_services
from apps.observations import services as observations
from tests.support.pages import chart_html
from tests.support.signing import limits_signer

pytestmark = pytest.mark.django_db


class ChartPageTests:
    def test_one_chart_region_starts_with_no_points_and_no_pulses(self, dia, operations_lead):
        html = chart_html(operations_lead, dia)
        regions = re.findall(r"<div [^>]*data-points=[^>]*>", html)
        assert len(regions) == 1, "browser tests find the chart by [data-points]"
        region = regions[0]
        assert 'data-points="0"' in region
        assert 'data-pulsing="0"' in region
        # Keyboard: the region takes focus and says how to move between points.
        assert 'tabindex="0"' in region
        assert 'aria-describedby="chart-help"' in region
        assert 'id="chart-help"' in html

    def test_it_says_it_is_loading_until_the_script_has_the_data(self, dia, operations_lead):
        html = chart_html(operations_lead, dia)
        status = re.search(
            r'<div class="loading" data-chart-status role="status"[^>]*>(.*?)</div>', html, re.S
        )
        assert status is not None
        assert "Loading the chart…" in status.group(1)

    def test_it_offers_the_last_50_100_500_and_5000_points_and_a_zoom_reset(self, dia, operations_lead):
        html = chart_html(operations_lead, dia)
        assert re.findall(r'data-range="(\d+)" aria-pressed="(\w+)"', html) == [
            ("50", "false"), ("100", "true"), ("500", "false"), ("5000", "false"),
        ]  # fmt: skip
        assert re.search(r"<button [^>]*data-zoom-reset disabled>Reset zoom</button>", html)

    def test_capability_starts_as_dashes(self, dia, operations_lead):
        html = chart_html(operations_lead, dia)
        indices = re.findall(r'<dt>(\w+)</dt><dd data-index="(\w+)">(.*?)</dd>', html)
        assert indices == [("Cp", "cp", "—"), ("Cpk", "cpk", "—"), ("Pp", "pp", "—"), ("Ppk", "ppk", "—")]

    def test_uplot_loads_before_the_page_module(self, dia, operations_lead):
        html = chart_html(operations_lead, dia)
        uplot = html.index('<script src="/static/vendor/uplot/uPlot.iife.min.js"></script>')
        module = html.index('<script type="module" src="/static/js/chart.js"></script>')
        assert uplot < module
        assert '<link rel="stylesheet" href="/static/vendor/uplot/uPlot.min.css">' in html
        assert '<link rel="stylesheet" href="/static/css/chart.css">' in html

    def test_the_characteristics_own_decimals_win_over_its_tests(self, dia, operations_lead):
        assert 'data-decimals="3"' in chart_html(operations_lead, dia)  # the test's (factory default)
        dia = config_services.characteristic_update(characteristic=dia, data={"decimals": 1})
        assert 'data-decimals="1"' in chart_html(operations_lead, dia)

    def test_an_unknown_characteristic_is_not_found(self, dia, operations_lead):
        client = Client()
        client.force_login(operations_lead)
        assert client.get(reverse("web-chart", args=[dia.pk + 1000])).status_code == 404

    def test_every_script_and_style_of_ours_is_served(self):
        for name in (
            "js/chart.js",
            "js/chart.logic.js",
            "js/capability.js",
            "js/api.js",
            "js/live.js",
            "css/chart.css",
        ):
            assert finders.find(name), f"static/{name} is missing"


class ChartDataContractTests:
    """What chart.js reads, from a real calculation: limits set, three values, the last beyond UCL."""

    @pytest.fixture
    def judged(self, plant, dia, quality_specialist):
        calculations.limits_set_historical(
            signer=limits_signer(),
            characteristic=dia,
            center=74.0,
            sigma=0.01,
            reason="historical",
            user=quality_specialist,
        )
        ids = plant.record(
            *(
                {"item": item, "test": plant.dia, "values": [value]}
                for item, value in zip(plant.items, [74.001, 73.995, 74.5], strict=True)
            )
        )
        observations.observations_process(ids=ids)
        calculations.characteristic_calculate(characteristic_id=dia.pk)
        return dia

    def test_chart_data_has_every_field_the_page_maps(self, api, judged, operations_lead):
        response = api(operations_lead).get(f"/api/v1/characteristics/{judged.pk}/chart-data/?limit=100")
        assert response.status_code == 200
        data = response.json()
        assert (data["chart_type"], data["subgroup_size"]) == ("imr", 1)
        assert {"lsl", "usl", "target"} <= data.keys()
        limits = data["limits"]
        assert (limits["center"], limits["version"], limits["frozen"]) == (74.0, 1, False)
        assert {
            "ucl",
            "lcl",
            "sigma",
            "dispersion_center",
            "dispersion_ucl",
            "dispersion_lcl",
        } <= limits.keys()
        assert data["zones"]["sigma_1"] == pytest.approx([73.99, 74.01])
        assert data["zones"]["sigma_2"] == pytest.approx([73.98, 74.02])
        points = data["points"]
        assert [p["sequence"] for p in points] == [1, 2, 3]
        assert [p["statistic"] for p in points] == [74.001, 73.995, 74.5]
        assert points[0]["dispersion"] is None
        assert points[2]["dispersion"] == pytest.approx(0.505)
        assert [p["in_control"] for p in points] == [True, True, False]
        for key in ("id", "lot", "n", "mean", "range", "sd", "undersized", "created_at"):
            assert key in points[0], key
        violations = data["violations"]
        assert {(v["sequence"], v["rule"], v["chart"]) for v in violations} == {
            (3, 1, "location"),
            (3, 1, "dispersion"),
        }
        for violation in violations:
            assert 3 in violation["points"]
            assert violation["requires_acknowledgement"] is True
            assert violation["acknowledged_at"] is None

    def test_the_catch_up_after_a_reconnect_lists_what_came_since(self, api, judged, operations_lead):
        response = api(operations_lead).get(
            f"/api/v1/samples/?characteristic={judged.pk}&since=1&page_size=1000"
        )
        assert response.status_code == 200
        rows = response.json()["results"]
        assert [(r["sequence"], r["statistic"], r["in_control"]) for r in rows] == [
            (2, 73.995, True), (3, 74.5, False),
        ]  # fmt: skip

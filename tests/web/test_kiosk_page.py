"""The wall screen (kiosk) of one line through Django's test client: who may open it, which tiles
it shows, the overview's link to it, and that opening it keeps the session alive."""

import re
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from django.urls import reverse

from apps.config import services as config_services
from apps.config.models import Characteristic
from apps.web.overview import KIOSK_MAX_CHARTS
from tests.factories import ProductFactory, TestFactory, characteristic_for

pytestmark = pytest.mark.django_db

LINE_3 = {"site": "Plant 1", "area": "Machining", "line": "Line 3"}
KIOSK_LINE_3 = f"{reverse('web-kiosk')}?{urlencode(LINE_3)}"


def signed_in(user: AbstractBaseUser) -> Client:
    client = Client()
    client.force_login(user)
    return client


def tile_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li class="kiosk-tile" data-characteristic-id="(\d+)"', html)]


@pytest.fixture
def line_3(plant: Any) -> list[Characteristic]:
    """RING-74's DIA and WALL on Line 3 (in two cells); another product's characteristic on Line 4."""
    Characteristic.objects.filter(product=plant.product, test=plant.dia).update(**LINE_3, cell="Bore")
    Characteristic.objects.filter(product=plant.product, test=plant.wall).update(**LINE_3, cell="Wall")
    characteristic_for(ProductFactory(), TestFactory(), **{**LINE_3, "line": "Line 4"})
    return list(Characteristic.objects.filter(**LINE_3).order_by("cell"))


class KioskPageTests:
    def test_it_shows_every_characteristic_of_the_line_and_nothing_else(self, line_3, operations_lead):
        html = signed_in(operations_lead).get(KIOSK_LINE_3).content.decode()
        assert tile_ids(html) == [c.pk for c in line_3]
        assert '<h1 id="kiosk-title">Plant 1 / Machining / Line 3</h1>' in html
        assert 'data-count="2"' in html

    def test_a_wall_screen_has_no_navigation_or_header(self, line_3, operations_lead):
        html = signed_in(operations_lead).get(KIOSK_LINE_3).content.decode()
        assert 'class="site-header"' not in html
        assert 'class="site-nav"' not in html
        assert "Sign out" not in html
        # …but it says whether it is live (kiosk.js's badge), and loads its scripts in order.
        assert re.search(r'<span class="live-status" data-live-status data-status="connecting"', html)
        uplot = html.index('<script src="/static/vendor/uplot/uPlot.iife.min.js"></script>')
        assert uplot < html.index('<script type="module" src="/static/js/kiosk.js"></script>')

    def test_each_tile_starts_with_its_state_value_and_no_points(self, line_3, operations_lead):
        html = signed_in(operations_lead).get(KIOSK_LINE_3).content.decode()
        tile = re.search(
            rf'<li class="kiosk-tile" data-characteristic-id="{line_3[0].pk}".*?</li>', html, re.S
        )
        assert tile is not None
        text = tile.group(0)
        assert 'data-state="no_data"' in text
        assert 'data-points="0"' in text
        assert '<span data-field="state-label">No data yet</span>' in text
        assert '<span data-field="last-value">—</span>' in text
        assert f'href="{reverse("web-chart", args=[line_3[0].pk])}"' in text

    def test_a_line_without_characteristics_says_so_and_loads_no_script(self, line_3, operations_lead):
        url = f"{reverse('web-kiosk')}?{urlencode({**LINE_3, 'line': 'Line 9'})}"
        response = signed_in(operations_lead).get(url)
        assert response.status_code == 200
        html = response.content.decode()
        assert tile_ids(html) == []
        assert "No characteristics on Plant 1 / Machining / Line 9 that you may see." in html
        assert "kiosk.js" not in html

    def test_more_than_it_can_show_are_counted_and_left_to_the_overview(self, plant, operations_lead):
        product = ProductFactory()
        for _ in range(KIOSK_MAX_CHARTS + 2):
            characteristic_for(product, TestFactory(), **LINE_3)
        html = signed_in(operations_lead).get(KIOSK_LINE_3).content.decode()
        assert len(tile_ids(html)) == KIOSK_MAX_CHARTS
        assert f"{KIOSK_MAX_CHARTS} charts shown; 2 more on the" in html

    def test_inactive_characteristics_are_left_out(self, line_3, operations_lead):
        config_services.characteristic_update(characteristic=line_3[1], data={"active": False})
        html = signed_in(operations_lead).get(KIOSK_LINE_3).content.decode()
        assert tile_ids(html) == [line_3[0].pk]


class KioskAccessTests:
    def test_the_anonymous_are_sent_to_sign_in_and_back(self, line_3):
        response = Client().get(KIOSK_LINE_3)
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('web-login')}?{urlencode({'next': KIOSK_LINE_3}, safe='/')}"

    def test_a_device_user_gets_403(self, line_3):
        device, _ = config_services.device_create(name="gauge-11")
        assert signed_in(device.user).get(KIOSK_LINE_3).status_code == 403

    @pytest.mark.parametrize("role", ["operations_lead", "manager", "quality_specialist"])
    def test_the_roles_that_read_charts_may_open_it(self, line_3, role, request):
        assert signed_in(request.getfixturevalue(role)).get(KIOSK_LINE_3).status_code == 200

    def test_every_load_saves_the_session_so_a_wall_screen_stays_signed_in(self, line_3, operations_lead):
        client = signed_in(operations_lead)
        response = client.get(KIOSK_LINE_3)
        cookie = response.cookies.get(settings.SESSION_COOKIE_NAME)
        assert cookie is not None, "the kiosk must refresh the session cookie"
        assert int(cookie["max-age"]) == settings.SESSION_COOKIE_AGE
        # Every page slides the session (SESSION_IDLE_MINUTES); the screen reloads three times
        # within that, so one slow or failed reload does not sign it out.
        assert settings.SESSION_COOKIE_NAME in client.get(reverse("web-overview")).cookies
        keep_alive = re.search(r'data-keep-alive-ms="(\d+)"', response.content.decode())
        assert keep_alive is not None
        assert int(keep_alive.group(1)) == settings.SESSION_COOKIE_AGE * 1000 // 3 == 10 * 60 * 1000


class OverviewLinkTests:
    def test_each_group_heading_links_to_its_lines_wall_screen(self, line_3, operations_lead):
        html = signed_in(operations_lead).get(reverse("web-overview")).content.decode()
        links = re.findall(
            r'<a class="group-kiosk" href="([^"]+)" aria-label="([^"]+)">Wall screen</a>', html
        )
        kiosk = KIOSK_LINE_3.replace("&", "&amp;")
        assert (kiosk, "Wall screen of Plant 1 / Machining / Line 3") in links
        assert len(links) == 3  # Line 3's two cells and Line 4's

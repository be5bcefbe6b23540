"""The must-show of the wall screen: a line's kiosk, opened from the overview's line heading, shows a
live chart per characteristic without scrolling (1366×768 and 1920×1080); an observation the tester
posts through the API raises that chart's point count and turns its tile to "Unacknowledged
violation", without a reload.

A real daphne serves the pages, the API and the WebSocket; a real Celery worker turns the
observation into a sample and publishes it. The other tiles' samples are written through the ORM
(tests/e2e/seed.py): the kiosk reads them through chart-data like any other."""

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from apps.calculations import services as calculations
from apps.config.models import Characteristic, Product, Test
from tests.e2e.scene import CALM, CENTER, LIVE_WITHIN_MS, SIGMA, calm_chart, post_live
from tests.e2e.seed import samples_seed
from tests.factories import TestFactory, characteristic_for
from tests.support.browser import (
    record_websocket_messages,
    screenshot_for_docs,
    signed_in,
    wait_until_live,
    wait_until_subscribed,
)
from tests.support.daphne import Daphne
from tests.support.signing import limits_signer
from tests.support.workers import CeleryWorkers

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

LINE = {"site": "Plant 1", "area": "Machining", "line": "Line 3"}
MORE = [
    "Groove width",
    "Ring gap",
    "Flatness",
    "Roundness",
    "Hardness",
    "Surface roughness",
    "Tangential force",
]


def fits_without_scrolling(page: Page) -> dict[str, float]:
    """The page's size against the viewport's, and the lowest tile's bottom edge."""
    return page.evaluate(
        """() => ({
             scrollHeight: document.documentElement.scrollHeight,
             scrollWidth: document.documentElement.scrollWidth,
             innerHeight: window.innerHeight,
             innerWidth: window.innerWidth,
             lowestTile: Math.max(...[...document.querySelectorAll(".kiosk-tile")]
               .map((t) => t.getBoundingClientRect().bottom)),
           })"""
    )


def assert_fits(page: Page) -> None:
    size = fits_without_scrolling(page)
    assert size["scrollHeight"] <= size["innerHeight"], size
    assert size["scrollWidth"] <= size["innerWidth"], size
    assert size["lowestTile"] <= size["innerHeight"], size


@pytest.mark.timeout(150)
def test_the_wall_screen_shows_a_posted_value_on_its_chart_without_a_reload(
    plant, tester, operations_lead, quality_specialist, server: Daphne, worker: CeleryWorkers,
    context: BrowserContext, screenshot, page_errors,
):  # fmt: skip
    Product.objects.filter(pk=plant.product.pk).update(name="Piston ring 74 mm")
    Test.objects.filter(pk=plant.dia.pk).update(name="Bore diameter")
    Test.objects.filter(pk=plant.wall.pk).update(name="Wall thickness")
    # Nine characteristics on the line: DIA and WALL of the plan, seven more with seeded samples.
    for index, name in enumerate(MORE):
        other = characteristic_for(plant.product, TestFactory(name=name, unit="mm"), usl=CENTER + 5 * SIGMA)
        calculations.limits_set_historical(
            signer=limits_signer(),
            characteristic=other,
            center=CENTER,
            sigma=SIGMA,
            reason="historical",
            user=quality_specialist,
        )
        values = [CENTER + SIGMA * ((i * 7 + index) % 11 - 5) / 3 for i in range(40)]
        if name == "Flatness":
            values[-1] = CENTER + 6 * SIGMA  # beyond the USL: the tile says "Out of spec"
        samples_seed(characteristic=other, lot=plant.lot, values=values)
    Characteristic.objects.filter(product=plant.product).update(**LINE, cell="Bore cell")
    scene = calm_chart(plant, worker, user=quality_specialist)
    dia = scene.dia
    assert Characteristic.objects.filter(product=plant.product, **LINE).count() == 9

    record_websocket_messages(context)
    page = signed_in(context, operations_lead)
    page.get_by_role("link", name="Wall screen of Plant 1 / Machining / Line 3").click()
    expect(page).to_have_url(re.compile(r"/kiosk/\?site=Plant\+1&area=Machining&line=Line\+3$"))
    expect(page.locator(".site-header")).to_have_count(0)  # no navigation on a wall screen
    expect(page.get_by_role("heading", level=1)).to_have_text("Plant 1 / Machining / Line 3")
    tiles = page.locator(".kiosk-tile")
    expect(tiles).to_have_count(9)
    tile = page.locator(f'.kiosk-tile[data-characteristic-id="{dia.pk}"]')
    expect(tile).to_have_attribute("data-points", str(len(CALM)))
    expect(tile).to_have_attribute("data-state", "in_control")
    flatness = tiles.filter(has_text="Flatness")
    expect(flatness).to_have_attribute("data-state", "out_of_spec")
    expect(flatness.locator('[data-field="state-label"]')).to_have_text("Out of spec")
    for name in MORE:  # every seeded tile drew its chart from chart-data
        expect(tiles.filter(has_text=name)).to_have_attribute("data-points", "40")
    expect(tiles.filter(has_text="Wall thickness")).to_have_attribute("data-state", "no_data")
    wait_until_live(page)
    wait_until_subscribed(page, dia.pk)
    assert_fits(page)
    screenshot(page, "kiosk-1366x768")
    page.evaluate("window.notReloaded = true")

    post_live(server, tester, plant, scene, key="kiosk-live-1")

    expect(tile).to_have_attribute("data-points", str(len(CALM) + 1), timeout=LIVE_WITHIN_MS)
    expect(tile).to_have_attribute("data-state", "unacknowledged", timeout=LIVE_WITHIN_MS)
    unit = f" {plant.dia.unit}" if plant.dia.unit else ""
    expect(tile.locator('[data-field="last-value"]')).to_have_text(f"74.040{unit}")
    assert page.evaluate("window.notReloaded === true"), "the page reloaded to show the new point"
    screenshot(page, "kiosk-live-1366x768")
    screenshot_for_docs(page, "kiosk")

    page.set_viewport_size({"width": 1920, "height": 1080})
    page.wait_for_timeout(300)  # the charts follow their tiles' new size (debounced 100 ms)
    assert_fits(page)
    screenshot(page, "kiosk-1920x1080")
    assert page_errors == []

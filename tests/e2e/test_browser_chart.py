"""The must-show of the browser pages: an operator watches a characteristic's chart; an observation
the tester posts through the API appears on it, live, without a reload, and its violation pulses.

A real daphne serves the pages, the API and the WebSocket; a real Celery worker turns observations
into samples and publishes them; Chromium shows the page. The chart region exposes what it draws:
`data-points` (samples on the chart) and `data-pulsing` (samples whose violations await
acknowledgement). The overview and chart screenshots are the docs' (DOCS_SCREENSHOTS=1)."""

import re

import pytest
from playwright.sync_api import BrowserContext, expect

from apps.config.models import Characteristic, Product, Test
from tests.e2e.scene import CALM, LIVE_WITHIN_MS, calm_chart, post_live
from tests.support.browser import (
    record_websocket_messages,
    screenshot_for_docs,
    signed_in,
    wait_until_live,
    wait_until_subscribed,
)
from tests.support.daphne import Daphne
from tests.support.workers import CeleryWorkers

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.mark.timeout(120)
def test_a_value_posted_through_the_api_appears_on_the_open_chart_without_a_reload(
    plant, tester, operations_lead, quality_specialist, server: Daphne, worker: CeleryWorkers,
    context: BrowserContext, screenshot, page_errors,
):  # fmt: skip
    # Names a reader of the docs' pictures understands (the factories number theirs).
    Product.objects.filter(pk=plant.product.pk).update(name="Piston ring 74 mm")
    Test.objects.filter(pk=plant.dia.pk).update(name="Bore diameter")
    Test.objects.filter(pk=plant.wall.pk).update(name="Wall thickness")
    Characteristic.objects.filter(product=plant.product).update(
        site="Plant 1", area="Machining", line="Line 3", cell="Bore cell"
    )
    scene = calm_chart(plant, worker, user=quality_specialist)
    dia = scene.dia

    record_websocket_messages(context)
    page = signed_in(context, operations_lead)
    wait_until_live(page)
    screenshot(page, "overview")
    screenshot_for_docs(page, "overview")

    page.get_by_role("link", name="Bore diameter").click()
    expect(page).to_have_url(re.compile(rf"/charts/{dia.pk}/$"))
    chart = page.locator("[data-points]")
    expect(chart).to_have_attribute("data-points", str(len(CALM)))
    expect(chart).to_have_attribute("data-pulsing", "0")
    wait_until_live(page)
    wait_until_subscribed(page, dia.pk)
    screenshot(page, "chart-before")
    page.evaluate("window.notReloaded = true")  # a reload or a navigation would lose it

    post_live(server, tester, plant, scene, key="browser-live-1")

    expect(chart).to_have_attribute("data-points", str(len(CALM) + 1), timeout=LIVE_WITHIN_MS)
    expect(chart).to_have_attribute("data-pulsing", "1", timeout=LIVE_WITHIN_MS)
    assert page.evaluate("window.notReloaded === true"), "the page reloaded to show the new point"
    screenshot(page, "chart")
    screenshot_for_docs(page, "chart")

    # The keyboard walks the points: End shows the last (the new one, with its rule), the tooltip
    # says what it is, a screen reader hears the same; Escape hides it.
    last = int(chart.get_attribute("data-last-sequence") or 0)
    tooltip = page.locator("[data-chart-tooltip]")
    chart.focus()
    page.keyboard.press("End")
    expect(tooltip).to_be_visible()
    expect(tooltip.locator("strong")).to_have_text(f"Sample {last}")
    expect(tooltip.locator(".chart-tooltip__rules li")).not_to_have_count(0)
    expect(page.locator("[data-chart-announce]")).to_contain_text(f"Sample {last}: Time ")
    page.keyboard.press("ArrowLeft")
    expect(tooltip.locator("strong")).to_have_text(f"Sample {last - 1}")
    expect(tooltip).to_contain_text("In control")
    box = tooltip.bounding_box()
    region = chart.bounding_box()
    assert box is not None
    assert region is not None
    assert region["x"] <= box["x"]
    assert box["x"] + box["width"] <= region["x"] + region["width"] + 1
    page.keyboard.press("Escape")
    expect(tooltip).to_be_hidden()
    assert page_errors == []

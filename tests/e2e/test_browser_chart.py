"""The must-show of the browser pages: an operator watches a characteristic's chart; an observation
the tester posts through the API appears on it, live, without a reload, and its violation pulses.

A real daphne serves the pages, the API and the WebSocket; a real Celery worker turns observations
into samples and publishes them; Chromium shows the page. The chart region exposes what it draws:
`data-points` (samples on the chart) and `data-pulsing` (samples whose violations await
acknowledgement). The overview and chart screenshots are the README's (DOCS_SCREENSHOTS=1)."""

import re

import pytest
from playwright.sync_api import BrowserContext, expect

from apps.config.models import Characteristic, Product, Test
from apps.observations.models import Sample
from tests.calculations.workers import CeleryWorkers, pipeline_idle
from tests.e2e.browser import (
    record_websocket_messages,
    screenshot_for_docs,
    signed_in,
    wait_until_live,
    wait_until_subscribed,
)
from tests.subscriptions.helpers import Daphne, access_token

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CENTER, SIGMA = 74.0, 0.01
# The chart before: twelve values, in σ from the centre, that set off no Nelson rule.
CALM = [0.3, -0.8, 1.1, -0.2, 0.6, -1.2, 0.1, 0.9, -0.5, 0.4, -0.9, 0.7]
LIVE = 4.0  # σ: the value posted while the page is open is beyond the UCL (rule 1)
LIVE_WITHIN_MS = 20_000  # post -> worker -> channel layer -> WebSocket -> drawn; ~1 s when warm


@pytest.mark.timeout(120)
def test_a_value_posted_through_the_api_appears_on_the_open_chart_without_a_reload(
    plant, tester, operations_lead, quality_specialist, server: Daphne, worker: CeleryWorkers,
    context: BrowserContext, screenshot, page_errors,
):  # fmt: skip
    # Names a reader of the README's pictures understands (the factories number theirs).
    Product.objects.filter(pk=plant.product.pk).update(name="Piston ring 74 mm")
    Test.objects.filter(pk=plant.dia.pk).update(name="Bore diameter")
    Test.objects.filter(pk=plant.wall.pk).update(name="Wall thickness")
    Characteristic.objects.filter(product=plant.product).update(
        site="Plant 1", area="Machining", line="Line 3", cell="Bore cell"
    )
    dia = plant.dia_judged(center=CENTER, sigma=SIGMA, user=quality_specialist)
    items = plant.items_total(len(CALM) + 1)
    calm_items = items[: len(CALM)]
    plant.record(
        *(
            {"item": item, "test": plant.dia, "values": [CENTER + z * SIGMA]}
            for item, z in zip(calm_items, CALM, strict=True)
        )
    )
    worker.wait_for(pipeline_idle, timeout=60, what="the first samples")
    assert Sample.objects.filter(characteristic=dia).count() == len(CALM)

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

    status, answer = server.http(
        "POST", "/api/v1/observations/", token=access_token(tester),
        body=[{"item": items[-1].pk, "test": plant.dia.pk, "values": [CENTER + LIVE * SIGMA],
               "idempotency_key": "browser-live-1"}],
    )  # fmt: skip
    assert status == 202, answer

    expect(chart).to_have_attribute("data-points", str(len(CALM) + 1), timeout=LIVE_WITHIN_MS)
    expect(chart).to_have_attribute("data-pulsing", "1", timeout=LIVE_WITHIN_MS)
    assert page.evaluate("window.notReloaded === true"), "the page reloaded to show the new point"
    screenshot(page, "chart")
    screenshot_for_docs(page, "chart")
    assert page_errors == []

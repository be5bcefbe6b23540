"""The must-show of the tester worklist (/work/): a tester signs in, opens their work, types a value
that cannot be right and is stopped with a plain message (nothing is posted); a good value is sent
and confirmed by the worker. And a post that fails (offline, or an answer lost on the way) is kept
on the device, shown waiting, and sent once when the connection is back: one Observation row.

A real daphne serves the page and the API; a real Celery worker checks the observation."""

import json
import re

import pytest
from playwright.sync_api import BrowserContext, Page, Request, Route, expect

from apps.config.models import Characteristic, Test
from apps.observations.choices import ObservationStatus
from apps.observations.models import Observation
from tests.support.browser import screenshot_for_docs, signed_in
from tests.support.daphne import Daphne
from tests.support.workers import CeleryWorkers

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

CHECKED_WITHIN_MS = 20_000  # post -> worker -> status read by the page; ~1-2 s when warm
OBSERVATIONS = "**/api/v1/observations/"


def record_posts(page: Page) -> list[str]:
    """The bodies of the observation posts the page makes."""
    posts: list[str] = []

    def seen(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/api/v1/observations/"):
            posts.append(request.post_data or "")

    page.on("request", seen)
    return posts


def open_worklist(context: BrowserContext, plant) -> Page:
    Characteristic.objects.filter(product=plant.product, test=plant.dia).update(lsl=73.9, usl=74.1)
    Test.objects.filter(pk=plant.dia.pk).update(
        name="Bore diameter", instructions="Air gauge, mid-height of the ring. Zero the gauge first."
    )
    Test.objects.filter(pk=plant.wall.pk).update(name="Wall thickness", unit="mm")
    page = signed_in(context, plant.tester)
    page.get_by_role("link", name="My work").click()
    expect(page).to_have_url(re.compile(r"/work/$"))
    expect(page.get_by_role("heading", name=re.compile(r"^Lot L-1"))).to_be_visible()
    return page


def entry(page: Page, item, test):
    return page.locator(f'form[data-item="{item.pk}"][data-test="{test.pk}"]')


@pytest.mark.timeout(120)
def test_a_value_that_cannot_be_right_is_stopped_and_a_good_one_is_confirmed(
    plant, server: Daphne, worker: CeleryWorkers, context: BrowserContext, screenshot, page_errors
):
    page = open_worklist(context, plant)
    posts = record_posts(page)
    dia = entry(page, plant.items[0], plant.dia)
    expect(dia).to_contain_text("Air gauge, mid-height of the ring.")
    expect(page.locator("form.entry")).to_have_count(6)  # 3 items × (DIA, WALL)
    value = dia.get_by_label("Value (mm)")
    feedback = dia.locator(".entry__feedback")

    value.fill("7.402")  # a slipped decimal point: outside the plausible 70–78 mm
    expect(feedback).to_have_text(
        "7.402 mm cannot be right: this test reads 70.000 to 78.000 mm. Check the value and type it again."
    )
    expect(value).to_have_attribute("aria-invalid", "true")
    value.press("Enter")  # the keyboard's way to send: refused on the page
    expect(value).to_be_focused()
    screenshot(page, "bad-value")
    screenshot_for_docs(page, "worklist")
    assert posts == []
    assert Observation.objects.count() == 0

    value.fill("74,15")  # a decimal comma; outside spec but possible: a warning, sending allowed
    expect(feedback).to_have_text(
        "Above the upper spec limit (74.100 mm). If it is what you measured, send it."
    )
    expect(value).not_to_have_attribute("aria-invalid", "true")
    value.fill("74.02")
    expect(feedback).to_be_hidden()
    dia.get_by_role("button", name="Send").click()

    status = dia.locator("[data-entry-status]")
    expect(status).to_have_text("✓ Confirmed.", timeout=CHECKED_WITHIN_MS)
    observation = Observation.objects.get()
    assert (observation.item_id, observation.test_id, observation.values) == (
        plant.items[0].pk, plant.dia.pk, [74.02],
    )  # fmt: skip
    assert observation.status == ObservationStatus.CONFIRMED
    # The page's key, which the server scopes to the user.
    assert re.fullmatch(rf"{plant.tester.pk}:web-[0-9a-f]{{32}}", observation.idempotency_key)
    assert len(posts) == 1
    screenshot(page, "confirmed")

    page.set_viewport_size({"width": 375, "height": 812})
    wall = entry(page, plant.items[1], plant.wall)
    wall.get_by_label("Value 1 of 3 (mm)").fill("2.5")
    wall.scroll_into_view_if_needed()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, "it scrolls sideways on a phone"
    screenshot(page, "phone")
    assert page_errors == []


@pytest.mark.timeout(120)
def test_a_post_that_fails_waits_on_the_device_and_is_sent_once_when_back(
    plant, server: Daphne, context: BrowserContext, screenshot, page_errors
):
    page = open_worklist(context, plant)
    posts = record_posts(page)
    outbox = page.locator("[data-outbox]")
    pending_key = f"openspc.worklist.pending.{plant.tester.pk}"

    # 1. Offline: the post fails; the values wait, on the page and in the device's storage.
    wall = entry(page, plant.items[1], plant.wall)
    for n, text in enumerate(["2.51", "2.49", "2.50"], start=1):
        wall.get_by_label(f"Value {n} of 3 (mm)").fill(text)
    context.set_offline(True)
    wall.get_by_role("button", name="Send").click()
    expect(wall.locator("[data-entry-status]")).to_have_text(
        "Waiting to send (no connection to the server). It is kept on this device."
    )
    expect(outbox).to_be_visible()
    expect(outbox).to_contain_text("Waiting to send (1)")
    expect(outbox).to_contain_text("Lot L-1, item 0002: WALL — 2.510, 2.490, 2.500 mm")
    kept = json.loads(page.evaluate("(key) => localStorage.getItem(key)", pending_key))
    assert [(e["item"], e["test"], e["values"]) for e in kept] == [
        (plant.items[1].pk, plant.wall.pk, [2.51, 2.49, 2.5])
    ]
    screenshot(page, "waiting")
    outbox.scroll_into_view_if_needed()
    screenshot(page, "waiting-outbox")
    assert Observation.objects.count() == 0

    # 2. Back online: sent by itself (the `online` event), once.
    context.set_offline(False)
    expect(wall.locator("[data-entry-status]")).to_have_text("Sent. Being checked…")
    expect(outbox).to_be_hidden()
    assert page.evaluate("(key) => localStorage.getItem(key)", pending_key) is None
    assert list(Observation.objects.values_list("item", "test", "values")) == [
        (plant.items[1].pk, plant.wall.pk, [2.51, 2.49, 2.5])
    ]

    # 3. The server stores a post but its answer is lost on the way: the retry (the button) with
    # the same key makes no second row.
    def answer_lost(route: Route) -> None:
        route.fetch()  # reaches the server, which stores the observation
        route.abort("connectionreset")

    page.route(OBSERVATIONS, answer_lost)
    dia = entry(page, plant.items[2], plant.dia)
    dia.get_by_label("Value (mm)").fill("74.01")
    dia.get_by_role("button", name="Send").click()
    expect(dia.locator("[data-entry-status]")).to_contain_text("Waiting to send")
    # Stored, though the page does not know it.
    assert Observation.objects.filter(item=plant.items[2]).count() == 1
    page.unroute(OBSERVATIONS)
    outbox.get_by_role("button", name="Send now").click()
    expect(dia.locator("[data-entry-status]")).to_have_text("Sent. Being checked…")
    assert Observation.objects.filter(item=plant.items[2]).count() == 1
    assert Observation.objects.count() == 2
    keys = [json.loads(body)["idempotency_key"] for body in posts]
    assert len(set(keys)) == 2, keys  # two entries: the retries reuse their keys
    assert len(keys) >= 3, keys
    screenshot(page, "sent")
    assert [e for e in page_errors if "ERR_" not in e] == []

"""The must-show of violation events (issue #21): a long run stays one pulsing event on the chart and
one notification in the inbox; one acknowledgement stops it for every watcher; the open inbox asks
the server for its unread count once, when it connects, and never again while the run goes on.

A real daphne serves the pages, the API and the WebSockets; a real Celery worker turns the values
into samples, violations, events and the manager's notification; Chromium shows two browsers: the
manager's (inbox and chart) and an operations lead's chart."""

import re
import time

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from apps.calculations.models import Violation, ViolationEvent
from apps.subscriptions.models import Notification
from apps.subscriptions.services import subscription_create
from tests.e2e.scene import CALM, CENTER, LIVE_WITHIN_MS, SIGMA
from tests.support.browser import (
    TIMEOUT_MS,
    VIEWPORT,
    record_websocket_messages,
    signed_in,
    wait_until_live,
    wait_until_subscribed,
    watch,
)
from tests.support.daphne import Daphne
from tests.support.workers import CeleryWorkers, pipeline_idle

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

# In σ above the centre, repeated: only rule 2 (nine on one side) signals, on the I chart only
# (never 4 of 5 beyond 1σ, 15 within 1σ, alternating or trending; moving ranges both sides of MR̄).
RUN = [0.1, 1.4, 0.6, 0.3]
RUN_LENGTH = 24  # with the last calm value (+0.7σ): a run of 25 points, 17 rule 2 signals
WATCHED_S = 30  # how long the inbox is watched for requests of the unread count


def chart_of(page: Page, points: int):
    chart = page.locator("[data-points]")
    expect(chart).to_have_attribute("data-points", str(points), timeout=LIVE_WITHIN_MS)
    return chart


@pytest.mark.timeout(240)
def test_a_long_run_is_one_pulsing_event_acknowledged_once_for_every_watcher(
    plant, manager, operations_lead, quality_specialist, server: Daphne, worker: CeleryWorkers,
    browser: Browser, context: BrowserContext, screenshot, page_errors,
):  # fmt: skip
    dia = plant.dia_judged(center=CENTER, sigma=SIGMA, user=quality_specialist)
    items = plant.items_total(len(CALM) + RUN_LENGTH)
    calm = zip(items[: len(CALM)], CALM, strict=True)
    plant.record(*({"item": i, "test": plant.dia, "values": [CENTER + z * SIGMA]} for i, z in calm))
    worker.wait_for(pipeline_idle, timeout=60, what="the calm samples")
    subscription_create(user=manager, scope="product", product=plant.product.pk, events=["violations"])
    path = f"/charts/{dia.pk}/"

    # The manager's inbox, open, with every request it makes logged.
    record_websocket_messages(context)
    inbox = signed_in(context, manager, path="/notifications/")
    asked: list[float] = []
    inbox.on("request", lambda r: asked.append(time.monotonic()) if "/unread-count/" in r.url else None)
    wait_until_live(inbox)
    watched_from = time.monotonic()
    notifications = inbox.locator("[data-notification-id]")
    expect(notifications).to_have_count(0)

    other = browser.new_context(base_url=server.origin, viewport=VIEWPORT)  # type: ignore[arg-type]
    other.set_default_timeout(TIMEOUT_MS)
    other.on("page", lambda page: watch(page, page_errors))
    try:
        record_websocket_messages(other)
        watcher = signed_in(other, operations_lead, path=path)
        watched = chart_of(watcher, len(CALM))
        wait_until_live(watcher)
        wait_until_subscribed(watcher, dia.pk)

        # The run, in three parts, as a line sends it: the event grows, the pulse stays one.
        values = [CENTER + RUN[n % len(RUN)] * SIGMA for n in range(RUN_LENGTH)]
        for start in range(0, RUN_LENGTH, 8):
            part = range(len(CALM) + start, len(CALM) + start + 8)
            plant.record(
                *({"item": items[n], "test": plant.dia, "values": [values[n - len(CALM)]]} for n in part)
            )
            worker.wait_for(pipeline_idle, timeout=60, what="the run's samples")
        expect(watched).to_have_attribute("data-points", str(len(CALM) + RUN_LENGTH), timeout=LIVE_WITHIN_MS)
        expect(watched).to_have_attribute("data-pulsing", "1")
        (event,) = ViolationEvent.objects.filter(characteristic=dia)
        assert (event.rule, event.first_point, event.last_point, event.violations_count) == (2, 12, 36, 17)

        expect(notifications).to_have_count(1, timeout=LIVE_WITHIN_MS)
        expect(notifications.first).to_contain_text(
            "25 points (samples 12–36), going on.", timeout=LIVE_WITHIN_MS
        )
        expect(inbox.locator("[data-unread-badge]")).to_have_attribute("data-unread-count", "1")
        assert Notification.objects.filter(user=manager).count() == 1
        screenshot(inbox, "inbox-one-event")

        # One acknowledgement, in the manager's chart: the pulse stops there and for the watcher.
        page = context.new_page()
        page.goto(path)
        chart = chart_of(page, len(CALM) + RUN_LENGTH)
        expect(chart).to_have_attribute("data-pulsing", "1")
        wait_until_live(page)
        chart.focus()
        page.keyboard.press("End")
        page.keyboard.press("Enter")
        dialog = page.locator("dialog[data-ack-dialog]")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("(warning) — with its whole pattern, as it goes on")
        dialog.locator("#ack-reason").select_option("assignable-cause")
        dialog.get_by_role("button", name="Acknowledge").click()
        expect(dialog).to_be_hidden()
        expect(chart).to_have_attribute("data-pulsing", "0")
        expect(watched).to_have_attribute("data-pulsing", "0", timeout=LIVE_WITHIN_MS)
        screenshot(watcher, "watcher-after-event-acknowledged")
    finally:
        other.close()

    event.refresh_from_db()
    assert event.acknowledged_by == manager
    assert not Violation.objects.filter(characteristic=dia, acknowledged_at__isnull=True).exists()

    # The inbox watched for 30 s: its unread count came pushed; it asked once, when it connected.
    remaining = WATCHED_S - (time.monotonic() - watched_from)
    if remaining > 0:
        inbox.wait_for_timeout(remaining * 1000)
    assert len(asked) <= 1, f"the inbox asked for its unread count {len(asked)} times"
    expect(inbox.locator("[data-unread-badge]")).to_have_attribute(
        "data-unread-count", re.compile(r"^[12]$")
    )  # the event, and (as a subscriber) its acknowledgement
    assert page_errors == []

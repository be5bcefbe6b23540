"""The must-show of the inbox: a manager subscribes to a product on the subscriptions page; an
observation a tester then posts through the API breaks a Nelson rule, and its notification appears
in the open inbox, live, without a reload, while the unread count beside the navigation link rises.

A real daphne serves the pages, the API and the WebSockets; a real Celery worker turns the
observation into a sample, the sample into a violation and the violation into the manager's
notification (subscriptions.fanout); Chromium shows the page. The inbox and subscriptions
screenshots are for the docs too (DOCS_SCREENSHOTS=1)."""

import re

import pytest
from playwright.sync_api import BrowserContext, expect

from apps.config.models import Product, Test
from apps.subscriptions.models import Notification, Subscription
from tests.e2e.scene import LIVE_WITHIN_MS, calm_chart, post_live
from tests.support.browser import record_websocket_messages, screenshot_for_docs, signed_in, wait_until_live
from tests.support.daphne import Daphne
from tests.support.workers import CeleryWorkers

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.mark.timeout(120)
def test_a_violation_on_a_subscribed_product_arrives_in_the_open_inbox_without_a_reload(
    plant, tester, manager, quality_specialist, server: Daphne, worker: CeleryWorkers,
    context: BrowserContext, screenshot, page_errors,
):  # fmt: skip
    Product.objects.filter(pk=plant.product.pk).update(name="Piston ring 74 mm")
    Test.objects.filter(pk=plant.dia.pk).update(name="Bore diameter")
    scene = calm_chart(plant, worker, user=quality_specialist)
    dia = scene.dia

    # Subscribe through the page.
    record_websocket_messages(context)
    page = signed_in(context, manager)
    badge = page.locator("[data-unread-badge]")
    expect(badge).to_have_attribute("data-unread-count", "0")
    expect(badge).to_be_hidden()
    page.get_by_role("link", name="Notifications", exact=True).click()
    expect(page).to_have_url(re.compile(r"/notifications/$"))
    expect(page.get_by_text("No notifications yet.")).to_be_visible()
    page.get_by_role("link", name="Subscriptions", exact=True).click()
    expect(page).to_have_url(re.compile(r"/notifications/subscriptions/$"))
    expect(page.get_by_label("Subscribe to")).to_have_value("product")
    expect(page.get_by_label("Violations")).to_be_checked()
    page.get_by_label("Which one").select_option(label="RING-74 — Piston ring 74 mm")
    page.get_by_role("button", name="Subscribe", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Subscribed to RING-74")).to_be_visible()
    rows = page.locator("[data-subscription-id]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("RING-74 — Piston ring 74 mm")
    expect(rows.first).to_contain_text("Violations")
    subscription = Subscription.objects.get(user=manager)
    assert (subscription.scope, subscription.product_id, subscription.events) == (
        "product", plant.product.pk, ["violations"],
    )  # fmt: skip
    screenshot(page, "subscriptions")
    screenshot_for_docs(page, "subscriptions")

    # The inbox, open and live.
    page.get_by_role("link", name="Inbox", exact=True).click()
    expect(page).to_have_url(re.compile(r"/notifications/$"))
    wait_until_live(page)
    page.wait_for_function(
        # A function, not an expression: Playwright evaluates an expression with eval in the page,
        # which the Content-Security-Policy (no unsafe-eval) refuses.
        "() => window.webSocketMessages !== undefined && document.querySelector('[data-inbox-status]').hidden"
    )
    notifications = page.locator("[data-notification-id]")
    expect(notifications).to_have_count(0)
    page.evaluate("window.notReloaded = true")  # a reload or a navigation would lose it

    post_live(server, tester, plant, scene, key="browser-inbox-1")

    expect(notifications).to_have_count(1, timeout=LIVE_WITHIN_MS)
    arrived = notifications.first
    expect(arrived).to_have_attribute("data-read", "false")
    expect(arrived).to_contain_text("Violation")
    expect(arrived).to_contain_text("New")
    # One notification per violation event (issue #21), which this violation starts.
    title = arrived.get_by_role(
        "link", name=re.compile(r"^Rule 1 event, high priority, on DIA Bore diameter of RING-74")
    )
    expect(title).to_have_attribute("href", f"/charts/{dia.pk}/")
    expect(badge).to_be_visible()
    expect(badge).to_have_attribute("data-unread-count", "1")
    expect(badge).to_have_text(re.compile(r"^1\s*unread$"))
    assert page.evaluate("window.notReloaded === true"), "the page reloaded to show the notification"
    stored = Notification.objects.get(user=manager)
    assert (stored.event, stored.data["characteristic"]) == ("violation_event.updated", dia.pk)
    assert stored.read_at is None
    screenshot(page, "inbox")
    screenshot_for_docs(page, "inbox")

    arrived.get_by_role("button", name=re.compile(r"^Mark read")).click()
    expect(arrived).to_have_attribute("data-read", "true")
    expect(badge).to_have_attribute("data-unread-count", "0")
    expect(badge).to_be_hidden()
    stored.refresh_from_db()
    assert stored.read_at is not None
    screenshot(page, "inbox-read")
    assert page_errors == []

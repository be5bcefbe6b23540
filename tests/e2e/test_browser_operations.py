"""The must-show of the operations pages: an operations lead opens a lot of 3 items through the
form, hands them to a tester in bulk, and the lot's progress shows the 3 items and the tests due;
the tester's worklist (GET /api/v1/me/items/) then lists them.

A real daphne serves the pages and the API; Chromium fills in the forms. The data the page shows
is checked against the database and the API the tester's client uses."""

import re

import pytest
from playwright.sync_api import BrowserContext, expect

from apps.config.models import Product
from apps.observations.models import Item, Lot
from openspc.roles import Role
from tests.factories import UserFactory
from tests.support.browser import screenshot_for_docs, signed_in
from tests.support.daphne import Daphne, access_token

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.mark.timeout(120)
def test_a_lead_opens_a_lot_of_three_items_and_hands_them_to_a_tester(
    plant, operations_lead, server: Daphne, context: BrowserContext, screenshot, page_errors
):
    Product.objects.filter(pk=plant.product.pk).update(name="Piston ring 74 mm")
    tess = UserFactory(username="tess", first_name="Tess", last_name="Ng", roles=[Role.TESTER])

    page = signed_in(context, operations_lead, path="/lots/")
    expect(page).to_have_url(re.compile(r"/lots/$"))
    expect(page.locator(f'tr[data-lot-id="{plant.lot.pk}"]')).to_be_visible()
    page.get_by_role("link", name="Open a lot").click()

    # The form: the product's only released plan is chosen with the product.
    page.get_by_label("Product").select_option(label="RING-74 — Piston ring 74 mm")
    page.get_by_label("Lot number").fill("L-100")
    page.get_by_label("How many items").fill("3")
    expect(page.get_by_role("checkbox", name=re.compile(r"^RING v1"))).to_be_checked()
    screenshot(page, "open-a-lot")
    page.get_by_role("button", name="Open the lot").click()

    lot = Lot.objects.get(product=plant.product, number="L-100")
    expect(page).to_have_url(re.compile(rf"/lots/{lot.pk}/$"))
    expect(page.get_by_role("status").filter(has_text="Lot L-100 is open with 3 items.")).to_be_visible()
    progress = page.locator("[data-progress]")
    # Plan RING asks DIA and WALL of each item: 6 tests due, none assigned yet.
    expect(progress.locator('[data-progress-field="items"]')).to_have_text("3")
    expect(progress.locator('[data-progress-field="tests_due"]')).to_have_text("6")
    expect(progress.locator('[data-progress-field="items_assigned"]')).to_have_text("0")
    assert sorted(Item.objects.filter(lot=lot).values_list("serial", flat=True)) == ["0001", "0002", "0003"]
    screenshot(page, "lot-opened")

    # Assign in bulk: select all, choose the tester.
    page.get_by_label("Select every item").check()
    expect(page.locator("[data-selected-count]")).to_have_text("3 of 3 items selected")
    page.get_by_label("Hand to").select_option(label="Tess Ng")
    page.get_by_role("button", name="Assign").click()
    expect(page.locator("[data-selected-count]")).to_have_text("3 items assigned to Tess Ng.")
    expect(page.locator("[data-item-tester]")).to_have_text(["Tess Ng"] * 3)
    expect(progress.locator('[data-progress-field="items_assigned"]')).to_have_text("3")
    expect(progress.locator('[data-progress-field="tests_due"]')).to_have_text("6")
    screenshot(page, "lot-assigned")
    screenshot_for_docs(page, "lot")

    assert set(Item.objects.filter(lot=lot).values_list("tester__username", flat=True)) == {"tess"}
    status, worklist = server.http("GET", "/api/v1/me/items/", token=access_token(tess))
    assert status == 200, worklist
    assert sorted((row["lot_number"], row["serial"]) for row in worklist["results"]) == [
        ("L-100", "0001"), ("L-100", "0002"), ("L-100", "0003"),
    ]  # fmt: skip
    assert all([t["code"] for t in row["tests_due"]] == ["DIA", "WALL"] for row in worklist["results"])

    # Testing starts: asked first, then the page shows the new status and what it allows.
    page.get_by_role("button", name="Start testing").click()
    expect(page.get_by_text("Start testing lot L-100?")).to_be_visible()
    page.get_by_role("button", name="Yes, go ahead").click()
    expect(page.locator("[data-lot-status]")).to_have_text("In testing")
    # A release is a quality specialist's signed disposition (#18): the lead asks for it.
    expect(page.get_by_role("button", name="Request release")).to_be_visible()
    expect(page.get_by_role("button", name="Start testing")).to_have_count(0)
    assert Lot.objects.get(pk=lot.pk).status == "in_testing"

    # The lots list shows the new lot with its progress.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Lots").click()
    row = page.locator(f'tr[data-lot-id="{lot.pk}"]')
    expect(row.locator('[data-field="items"]')).to_have_text("3")
    expect(row.locator('[data-field="items_assigned"]')).to_have_text("3")
    expect(row.locator('[data-field="tests_due"]')).to_have_text("6")
    screenshot(page, "lots")
    screenshot_for_docs(page, "lots")
    assert page_errors == []

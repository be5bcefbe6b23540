"""The must-show of lot release (#18): a tester enters results on their worklist; the same tester
trying to verify them is refused in the server's words and nothing is verified; a second tester
verifies them, signing with their password; a quality specialist releases the lot in the
disposition dialog, signing with user name, password and the meaning "released"; the manifest
(printed name, date and time with zone, meaning) is then on the lot page.

A real daphne serves the pages and the API; a real Celery worker confirms the results."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import BrowserContext, Page, expect

from apps.config.models import Characteristic, Test, TestPlanEntry
from apps.observations import services as observation_services
from apps.observations.choices import LotStatus, ObservationStatus
from apps.observations.models import Item, Lot, Observation
from apps.records.models import LotDisposition
from apps.signatures.models import Signature
from tests.support.browser import PASSWORD, screenshot_for_docs, signed_in
from tests.support.daphne import Daphne
from tests.support.workers import CeleryWorkers

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

CHECKED_WITHIN_MS = 20_000  # post -> worker -> status read by the page; ~1-2 s when warm
REFUSED = "status of 403"  # the browser's console line for the refused request, and only that one


def name(user, first: str, last: str) -> None:
    user.first_name, user.last_name = first, last
    user.save(update_fields=["first_name", "last_name"])


def lab_lot(plant) -> None:
    """Lot L-1 in testing with one item on plan RING: DIA (its test requires verification) and
    WALL ×3 (its plan entry requires it), DIA specified 73.9–74.1 mm."""
    Item.objects.filter(pk__in=[item.pk for item in plant.items[1:]]).delete()
    Test.objects.filter(pk=plant.dia.pk).update(requires_verification=True)
    TestPlanEntry.objects.filter(plan=plant.ring, test=plant.wall).update(requires_verification=True)
    Characteristic.objects.filter(product=plant.product, test=plant.dia).update(lsl=73.9, usl=74.1)
    observation_services.lot_status_set(lot=plant.lot, status=LotStatus.IN_TESTING)


def enter_results(page: Page, plant) -> None:
    """On the worklist: DIA 74.02 and WALL 2.51, 2.49, 2.50 of item 0001, each confirmed."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My work").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Lot L-1"))).to_be_visible()
    item = plant.items[0]
    dia = page.locator(f'form[data-item="{item.pk}"][data-test="{plant.dia.pk}"]')
    dia.get_by_label("Value (mm)").fill("74.02")
    dia.get_by_role("button", name="Send").click()
    wall = page.locator(f'form[data-item="{item.pk}"][data-test="{plant.wall.pk}"]')
    for n, text in enumerate(["2.51", "2.49", "2.50"], start=1):
        wall.get_by_label(f"Value {n} of 3 (mm)").fill(text)
    wall.get_by_role("button", name="Send").click()
    for form in (dia, wall):
        expect(form.locator("[data-entry-status]")).to_have_text("✓ Confirmed.", timeout=CHECKED_WITHIN_MS)


def open_lot_to_verify(page: Page) -> None:
    """From the worklist's "Results to verify" to the lot page."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My work").click()
    page.reload()  # the list is drawn by the server: the results just confirmed are in it now
    to_verify = page.locator("[data-to-verify]")
    to_verify.get_by_role("link", name="Lot L-1 · RING-74").click()
    expect(page.get_by_role("heading", name="Review and release")).to_be_visible()


def sign_verification(page: Page, username: str) -> None:
    """Select every result to verify, "Verify selected", sign in the dialog."""
    boxes = page.locator("[data-verify-check]")
    expect(boxes).to_have_count(2)
    for index in range(2):
        boxes.nth(index).check()
    expect(page.locator("[data-verify-count]")).to_have_text("2 results selected")
    page.get_by_role("button", name="Verify selected").click()
    dialog = page.locator("[data-verify-dialog]")
    expect(dialog.get_by_text("You verify 2 results.")).to_be_visible()
    dialog.get_by_label("User name").fill(username)
    dialog.get_by_label("Password", exact=True).fill(PASSWORD)
    dialog.get_by_role("button", name="Sign and verify").click()


@pytest.mark.timeout(180)
def test_results_are_verified_by_another_person_and_the_lot_released_with_a_signed_manifest(
    plant, other_tester, quality_specialist, server: Daphne, worker: CeleryWorkers,
    context: BrowserContext, screenshot, page_errors,
):  # fmt: skip
    tester = plant.tester
    name(tester, "Tara", "Ames")
    name(other_tester, "Ben", "Berg")
    name(quality_specialist, "Quinn", "Quality")
    lab_lot(plant)

    # 1. Tester A enters the results on their worklist.
    page = signed_in(context, tester)
    enter_results(page, plant)
    results = list(Observation.objects.order_by("pk"))
    assert [(r.test_id, r.values, r.status) for r in results] == [
        (plant.dia.pk, [74.02], ObservationStatus.CONFIRMED),
        (plant.wall.pk, [2.51, 2.49, 2.5], ObservationStatus.CONFIRMED),
    ]  # fmt: skip
    ids = [r.pk for r in results]

    # 2. Tester A tries to verify their own results: refused in the server's words; nothing verified.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My work").click()
    page.reload()
    expect(page.locator(f'[data-to-verify-lot="{plant.lot.pk}"]')).to_have_text(
        "Lot L-1 · RING-74: 2 results waiting (2 entered by you, for another person)"
    )
    screenshot(page, "results-to-verify")
    open_lot_to_verify(page)
    expect(page.locator('[data-verdict="to_be_verified"]')).to_have_count(2)
    sign_verification(page, tester.get_username())
    refusal = page.locator("[data-verify-error]")
    expect(refusal).to_have_text(
        f"Nothing was verified: You entered results {ids[0]}, {ids[1]} yourself; "
        "another person must verify them."
    )
    expect(page.locator("[data-verify-dialog]").get_by_label("Password", exact=True)).to_have_value("")
    screenshot(page, "own-results-refused")
    assert list(Observation.objects.filter(verified_by__isnull=False)) == []
    assert not Signature.objects.filter(action="verification").exists()
    assert len([e for e in page_errors if REFUSED in e]) == 1, page_errors

    # 3. Tester B verifies them, signing with user name and password.
    context.clear_cookies()
    page.close()
    page = signed_in(context, other_tester)
    open_lot_to_verify(page)
    expect(page.locator("[data-verify-dialog]")).to_be_hidden()
    sign_verification(page, other_tester.get_username())
    expect(page.locator('[data-verdict="pass"]')).to_have_count(2)  # the page reloaded with the verdicts
    expect(page.locator("[data-verify-check]")).to_have_count(0)
    expect(page.locator("[data-releasable]")).to_have_text("Nothing blocks the release of this lot.")
    expect(page.locator(".verdict-values")).to_have_text(["74.020", "2.510, 2.490, 2.500"])  # as entered
    expect(page.locator(".verdict-who").first).to_have_text("entered by Tara Ames, verified by Ben Berg")
    screenshot(page, "verified")
    verified = Observation.objects.order_by("pk")
    assert [(r.pk, r.verified_by_id) for r in verified] == [(pk, other_tester.pk) for pk in ids]
    verifications = list(Signature.objects.filter(action="verification").order_by("pk"))
    assert [(s.object_id, s.user_id, s.full_name, s.meaning, s.action) for s in verifications] == [
        (str(pk), other_tester.pk, "Ben Berg", "verified", "verification") for pk in ids
    ]

    # 4. The quality specialist releases the lot in the disposition dialog.
    context.clear_cookies()
    page.close()
    page = signed_in(context, quality_specialist)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Lots").click()
    page.locator(f'tr[data-lot-id="{plant.lot.pk}"]').get_by_role("link", name=re.compile("L-1")).click()
    expect(page.locator("[data-lot-status]")).to_have_text("In testing")
    expect(page.get_by_text("The lot has no signed disposition yet.")).to_be_visible()
    page.get_by_role("button", name="Disposition…").click()
    dialog = page.locator("[data-disposition-dialog]")
    expect(dialog.get_by_label("Decision", exact=True)).to_have_value("release")
    meaning = dialog.get_by_label("Meaning of your signature")
    expect(meaning).to_have_value("released")  # follows the decision
    meaning.select_option("released")
    dialog.get_by_label("User name").fill(quality_specialist.get_username())
    dialog.get_by_label("Password", exact=True).fill(PASSWORD)
    screenshot(page, "disposition-dialog")
    before = timezone.now().replace(second=0, microsecond=0)
    dialog.get_by_role("button", name="Sign", exact=True).click()
    signed = dialog.locator("[data-disposition-manifests] li")
    expect(signed).to_have_count(1)
    manifest = re.compile(r"^Released by Quinn Quality on (\d{4}-\d\d-\d\d \d\d:\d\d) UTC$")
    expect(signed).to_have_text(manifest)
    screenshot(page, "signed")
    dialog.get_by_role("button", name="Close").click()

    # The page reloads: the new status, and the manifest among the signatures.
    expect(page.locator("[data-lot-status]")).to_have_text("Released")
    shown = page.locator("[data-manifests] li")
    expect(shown).to_have_count(1)
    expect(shown).to_have_text(manifest)
    expect(shown).to_have_attribute("data-manifest-state", "valid")
    expect(page.locator("[data-final]")).to_have_text("Lot L-1 is released: its disposition is final.")
    expect(page.get_by_role("button", name="Disposition…")).to_have_count(0)  # nothing left to decide
    expect(page.get_by_role("button", name="Verify selected")).to_have_count(0)
    screenshot(page, "released")
    screenshot_for_docs(page, "lot-release")

    lot = Lot.objects.get(pk=plant.lot.pk)
    assert lot.status == LotStatus.RELEASED
    disposition = LotDisposition.objects.get(lot=lot)
    assert disposition.decision == "release"
    release = Signature.objects.get(action="lot_disposition")
    assert (release.object_id, release.user_id, release.full_name, release.meaning, release.action) == (
        str(disposition.pk), quality_specialist.pk, "Quinn Quality", "released", "lot_disposition",
    )  # fmt: skip
    assert release.time_zone == "UTC"
    assert release.signed_at >= before
    when = manifest.match(shown.inner_text()).group(1)
    assert when == timezone.localtime(release.signed_at).strftime("%Y-%m-%d %H:%M")
    # The one console error of the whole run is the refused verification (403).
    assert [e for e in page_errors if REFUSED not in e] == []
    assert len(page_errors) == 1, page_errors

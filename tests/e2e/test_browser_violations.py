"""The must-show of the violations list and the audit log: a manager filters the list to what awaits
acknowledgement, selects two violations and acknowledges them in one batch with a reason; both are
marked acknowledged on the page and in the database. A third, acknowledged by someone else while
it was selected, is reported as such, row by row. Then a quality specialist opens the audit log
and finds the acknowledgements, each with its before and after.

A real daphne serves the pages and the API; Chromium shows them. The violations are stored rows
(as the calculation worker leaves them); tests/e2e/test_browser_chart.py covers the pipeline."""

import re
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect

from apps.audit.models import AuditAction, AuditEntry
from apps.calculations import services
from apps.calculations.choices import Severity
from apps.calculations.models import AcknowledgementReason, Violation
from apps.config.models import Characteristic, Product, Test
from apps.observations.models import Sample
from tests.support.browser import screenshot_for_docs, signed_in
from tests.support.daphne import Daphne, access_token

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def violations_on_the_chart(plant: Any, quality_specialist: Any) -> dict[str, Violation]:
    """Bore diameter of RING-74, points #1–#5: three violations await acknowledgement (#1, #2 rule 1,
    #3 rule 5), #4 is informational (rule 2 needs none), #5 was acknowledged before."""
    Product.objects.filter(pk=plant.product.pk).update(name="Piston ring 74 mm")
    Test.objects.filter(pk=plant.dia.pk).update(name="Bore diameter", unit="mm")
    dia = Characteristic.objects.get(product=plant.product, test=plant.dia)

    def violation(sequence: int, rule: int, **fields: Any) -> Violation:
        sample = Sample.objects.create(
            characteristic=dia, sequence=sequence, lot=plant.lot, values=[74.05], observation_ids=[], n=1,
            mean=74.05, in_control=False,
        )  # fmt: skip
        fields.setdefault("severity", Severity.CRITICAL)
        return Violation.objects.create(
            characteristic=dia, sample=sample, rule=rule, points=[sequence], limits_version=1, **fields
        )

    made = {
        "first": violation(1, 1),
        "second": violation(2, 1),
        "third": violation(3, 5, severity=Severity.WARNING),
        "informational": violation(4, 2, severity=Severity.WARNING, requires_acknowledgement=False),
        "earlier": violation(5, 1),
    }
    services.violations_acknowledge(
        violations=[made["earlier"]], user=quality_specialist,
        reason=AcknowledgementReason.objects.get(code="measurement-error"), comment="Gauge re-zeroed",
    )  # fmt: skip
    return made


def listed(page: Any) -> list[int]:
    return [int(i) for i in page.locator("tr[data-violation-id]").evaluate_all(
        "rows => rows.map((row) => row.dataset.violationId)"
    )]  # fmt: skip


@pytest.mark.timeout(120)
def test_a_manager_acknowledges_two_violations_in_one_batch_and_the_audit_log_shows_it(
    plant, manager, quality_specialist, server: Daphne, context: BrowserContext, screenshot, page_errors
):
    v = violations_on_the_chart(plant, quality_specialist)

    page = signed_in(context, manager)
    page.get_by_role("link", name="Violations").click()
    expect(page).to_have_url(re.compile(r"/violations/$"))
    expect(page.locator("tr[data-violation-id]")).to_have_count(5)
    # The acknowledged one says by whom and why, in words.
    earlier = page.locator(f'tr[data-violation-id="{v["earlier"].pk}"]')
    expect(earlier).to_have_attribute("data-status", "acknowledged")
    expect(earlier).to_contain_text("by qs · Measurement or gauge error")
    expect(earlier.get_by_role("checkbox")).to_be_disabled()

    # Filter to what awaits acknowledgement: the filter goes into the URL (a bookmark keeps it).
    page.get_by_label("Status").select_option(label="Awaiting acknowledgement")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/violations/\?.*status=awaiting"))
    expect(page.locator("tr[data-violation-id]")).to_have_count(3)
    assert sorted(listed(page)) == sorted(v[k].pk for k in ("first", "second", "third"))
    expect(page.locator("[data-summary]")).to_have_text("3 violations, newest first")
    first = page.locator(f'tr[data-violation-id="{v["first"].pk}"]')
    expect(first.get_by_role("link", name="RING-74 / DIA")).to_have_attribute(
        "href", f"/charts/{v['first'].characteristic_id}/"
    )
    screenshot(page, "filtered")

    # Select two and acknowledge them with a reason, a comment and the corrective action.
    submit = page.locator("[data-acknowledge-submit]")
    expect(submit).to_be_disabled()
    for key in ("first", "second"):
        page.locator(f'tr[data-violation-id="{v[key].pk}"]').get_by_role("checkbox").check()
    expect(submit).to_have_text("Acknowledge 2 violations")
    page.get_by_label("Reason").select_option("assignable-cause")
    page.get_by_label("Comment").fill("Worn boring bar")
    page.get_by_label("Corrective action").fill("Bar replaced, first-off checked")
    screenshot(page, "selected")
    submit.click()

    result = page.locator("[data-acknowledge-result]")
    expect(result).to_have_text("2 violations acknowledged.")
    for key in ("first", "second"):
        row = page.locator(f'tr[data-violation-id="{v[key].pk}"]')
        expect(row).to_have_attribute("data-outcome", "acknowledged")
        expect(row).to_have_attribute("data-status", "acknowledged")
        expect(row.locator('[data-field="status-label"]')).to_have_text("✓ Acknowledged")
        expect(row).to_contain_text("by manager · Assignable cause found and removed")
        expect(row).to_contain_text("Corrective action: Bar replaced, first-off checked")
        expect(row.get_by_role("checkbox")).to_be_disabled()
    expect(page.locator(f'tr[data-violation-id="{v["third"].pk}"]')).to_have_attribute(
        "data-status", "awaiting"
    )
    screenshot(page, "acknowledged")
    screenshot_for_docs(page, "violations")

    for key in ("first", "second"):
        row = Violation.objects.select_related("acknowledgement_reason").get(pk=v[key].pk)
        assert row.acknowledged_at is not None
        assert row.acknowledged_by_id == manager.pk
        assert row.acknowledgement_reason is not None
        assert row.acknowledgement_reason.code == "assignable-cause"
        assert (row.acknowledgement_comment, row.corrective_action) == (
            "Worn boring bar", "Bar replaced, first-off checked",
        )  # fmt: skip
    assert Violation.objects.get(pk=v["third"].pk).acknowledged_at is None

    # The third is selected, but the quality specialist acknowledges it first (through the API):
    # the row says so, in words, instead of failing the whole batch.
    page.locator(f'tr[data-violation-id="{v["third"].pk}"]').get_by_role("checkbox").check()
    status, answer = server.http(
        "POST", f"/api/v1/violations/{v['third'].pk}/acknowledge/", token=access_token(quality_specialist),
        body={"reason": "process-adjusted"},
    )  # fmt: skip
    assert status == 200, answer
    page.get_by_label("Reason").select_option("no-action")
    submit.click()
    third = page.locator(f'tr[data-violation-id="{v["third"].pk}"]')
    expect(third).to_have_attribute("data-outcome", "already")
    expect(third.locator('[data-field="outcome"]')).to_contain_text(
        "Not acknowledged again: it had been acknowledged already"
    )
    expect(third.locator('[data-field="outcome"]')).to_contain_text("by qs · Process adjusted")
    expect(result).to_have_text(
        "Nothing was acknowledged. 1 was acknowledged already by someone else and left as it was."
    )
    assert Violation.objects.filter(
        pk=v["third"].pk, acknowledged_by=quality_specialist, acknowledgement_reason__code="process-adjusted"
    ).exists()
    screenshot(page, "already-acknowledged")

    # Reloaded, the bookmarked filter finds nothing left to acknowledge.
    page.reload()
    expect(page.locator(".empty")).to_contain_text("No violations match these filters.")
    expect(page.get_by_label("Status")).to_have_value("awaiting")

    # The audit log is the quality specialist's: the manager has no link to it.
    expect(page.get_by_role("link", name="Audit log")).to_have_count(0)
    page.get_by_role("button", name="Sign out").click()
    page = signed_in(context, quality_specialist)
    page.get_by_role("link", name="Audit log").click()
    expect(page).to_have_url(re.compile(r"/audit/$"))
    page.get_by_label("Action").select_option(label="Acknowledged")
    page.get_by_label("Who").select_option(label="manager")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"action=acknowledge"))
    entries = page.locator("li[data-audit-id]")
    expect(entries).to_have_count(2)
    ids = entries.evaluate_all("items => items.map((item) => Number(item.dataset.objectId))")
    assert sorted(ids) == sorted([v["first"].pk, v["second"].pk])
    entry = page.locator(f'li[data-object-id="{v["first"].pk}"]')
    expect(entry).to_contain_text("Acknowledged")
    expect(entry).to_contain_text("Why: assignable-cause: Worn boring bar")
    expect(entry.locator('[data-diff-field="acknowledged_by"] .diff-before')).to_have_text("—")
    # In words: the person and the reason code by name, not by id.
    expect(entry.locator('[data-diff-field="acknowledged_by"] .diff-after')).to_have_text("manager")
    expect(entry.locator('[data-diff-field="corrective_action"] .diff-after')).to_have_text(
        "Bar replaced, first-off checked"
    )
    reason = AcknowledgementReason.objects.get(code="assignable-cause")
    expect(entry.locator('[data-diff-field="acknowledgement_reason"] .diff-after')).to_have_text(reason.label)
    expect(entry.get_by_role("link", name="History of this record")).to_have_attribute(
        "href", f"/audit/?object_type=calculations.violation&object_id={v['first'].pk}"
    )
    screenshot(page, "audit-log")
    assert AuditEntry.objects.filter(action=AuditAction.ACKNOWLEDGE, user=manager).count() == 2

    # The 409 of the batch is the browser's only complaint (it logs every failed request), but for
    # the unread count the navigation badge may have asked for just as the manager signed out (the
    # acknowledgements' notifications arrive about then): a 401 when the sign-out came first, a 400
    # when it came while that request ran (Django's SessionInterrupted: the session it was about to
    # save had been deleted). Seen once in CI.
    signing_out = ("401 (Unauthorized) (http://127.0.0.1", "400 (Bad Request) (http://127.0.0.1")
    assert [
        e
        for e in page_errors
        if "409" not in e and not (any(s in e for s in signing_out) and "/unread-count/" in e)
    ] == []

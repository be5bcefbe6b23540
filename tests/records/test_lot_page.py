"""The lot page's review (#18): which item failed, what blocks the release, the investigations, the
signatures, and the signed actions offered by role."""

import re

import pytest
from django.urls import reverse

from apps.observations.choices import LotStatus
from apps.observations.models import Lot, Observation
from apps.records.models import OosInvestigation
from openspc.roles import Role
from tests.factories import UserFactory
from tests.support.pages import signed_in
from tests.support.records import Review, signature

pytestmark = pytest.mark.django_db


def page(user, review: Review) -> str:
    response = signed_in(user).get(reverse("web-lot", args=[review.lot.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_matrix_shows_the_failed_item_and_every_blocking_reason(review, plant, quality_specialist):
    done = review.complete()
    out = review.enter(1, "DIA", [76.2])  # a second DIA result on item 0002: the one that counts
    OosInvestigation.objects.create(
        lot=review.lot, observation_id=out, characteristic=review.dia, test=plant.dia
    )
    html = page(quality_specialist, review)
    row = re.search(rf'<tr data-review-item="{plant.items[1].pk}".*?</tr>', html, re.S).group(0)
    assert 'data-verdict="out_of_spec"' in row
    assert '<span class="verdict-values">76.200</span>' in row  # with the test's 3 decimals
    assert f"#{done[(1, 'DIA')]} 72.000 (confirmed)" in row  # the earlier result, listed under it
    reasons = re.findall(r'<li data-reason="(\w+)">', html)
    assert reasons == ["out_of_spec", "investigation_open"]
    assert "DIA on item 0002" in html
    assert re.search(r'data-investigation="\d+">#\d+ · DIA on item 0002 · <strong>Open</strong>', html)
    assert "data-disposition-open" in html
    assert re.findall(r'<option value="(\w+)" data-meaning="(\w+)">', html) == [
        ("release", "released"), ("reject", "rejected"), ("quarantine", "reviewed"),
    ]  # fmt: skip
    assert "data-request-release" not in html  # approvers decide; they do not ask
    # What static/js/lot.js sets when the decision changes: the meaning select, and nothing else
    # (it once took the first decision option, carrying data-meaning, and renamed "release").
    assert re.findall(r"<(\w+) [^>]*data-sign-meaning", html) == ["select"]


def test_an_operations_lead_requests_the_release_and_may_only_quarantine(review, operations_lead):
    html = page(operations_lead, review)
    assert "data-request-release" in html
    assert re.findall(r'<option value="(\w+)" data-meaning', html) == ["quarantine"]
    assert "data-verify-form" not in html


def test_verify_selected_is_offered_to_verifiers_on_results_to_be_verified(
    review, plant, quality_specialist, manager
):
    plant.wall.requires_verification = True
    plant.wall.save(update_fields=["requires_verification"])
    wall = review.enter(0, "WALL", [2.0, 2.1, 2.0])
    assert "data-verify-form" not in page(manager, review)  # reads the review, may not verify
    html = page(quality_specialist, review)  # verify_observation comes with the role
    assert "data-verify-form" in html
    assert re.findall(r'data-verify-check value="(\d+)"', html) == [str(wall)]


def test_a_signed_lot_changed_afterwards_says_so(api, review, quality_specialist):
    done = review.complete()
    body = {"decision": "release", "signature": signature(quality_specialist)}
    response = api(quality_specialist).post(f"/api/v1/lots/{review.lot.pk}/disposition/", body, format="json")
    assert response.status_code == 201
    assert 'data-manifest-state="valid"' in page(quality_specialist, review)
    Observation.objects.filter(pk=done[(0, "WALL")]).update(values=[2.0, 2.1, 2.9])
    html = page(quality_specialist, review)
    assert 'data-manifest-state="changed_after_signing"' in html
    assert "changed after signing" in html


# --- A tester verifies on the lot page, which their role opens only for that ----------------------


def test_a_tester_opens_a_lot_with_results_to_verify_and_finds_it_on_their_worklist(
    review, plant, tester, other_tester
):
    client = signed_in(other_tester)
    url = reverse("web-lot", args=[review.lot.pk])
    assert client.get(url).status_code == 403  # nothing to verify yet: no reason to open it
    assert "data-to-verify" not in client.get(reverse("web-worklist")).content.decode()

    plant.wall.requires_verification = True
    plant.wall.save(update_fields=["requires_verification"])
    wall = review.enter(0, "WALL", [2.0, 2.1, 2.0])
    review.enter(1, "DIA", [72.0])  # needs no verification: no box
    html = page(other_tester, review)
    assert re.findall(r'data-verify-check value="(\d+)"', html) == [str(wall)]
    assert "data-verify-form" in html
    for action in (
        "data-assign-form",
        "data-disposition-open",
        "data-status-actions",
        "data-request-release",
    ):
        assert action not in html
    assert '<a href="/work/">My work</a> /' in html  # the lots list is not theirs
    # Their role reads only the items assigned to them: none here, said so (not "no items").
    assert "No item of this lot is assigned to you." in html
    assert 'data-item-id="' not in html

    worklist = client.get(reverse("web-worklist")).content.decode()
    link = re.search(rf'<li data-to-verify-lot="{review.lot.pk}">(.*?)</li>', worklist, re.S).group(1)
    assert f'href="{url}"' in link
    assert re.sub(r"<[^>]+>", "", link) == "Lot L-1 · RING-74: 1 result waiting"
    # The tester who entered it reads that another person must verify it.
    mine = signed_in(tester).get(reverse("web-worklist")).content.decode()
    assert "1 result waiting (1 entered by you, for another person)" in mine


def test_a_tester_is_refused_the_page_of_a_lot_no_longer_worked_on(review, plant, other_tester):
    plant.wall.requires_verification = True
    plant.wall.save(update_fields=["requires_verification"])
    review.enter(0, "WALL", [2.0, 2.1, 2.0])
    client = signed_in(other_tester)
    url = reverse("web-lot", args=[review.lot.pk])
    assert client.get(url).status_code == 200
    Lot.objects.filter(pk=review.lot.pk).update(status=LotStatus.REJECTED)
    assert client.get(url).status_code == 403
    assert "data-to-verify" not in client.get(reverse("web-worklist")).content.decode()


def test_a_released_lot_offers_no_decision_and_nothing_to_verify(api, review, plant, quality_specialist):
    plant.wall.requires_verification = True
    plant.wall.save(update_fields=["requires_verification"])
    html = page(quality_specialist, review)
    assert "data-verify-form" not in html  # nothing entered yet: nothing to verify
    assert re.findall(r'<option value="(\w+)" data-meaning', html) == ["release", "reject", "quarantine"]
    done = review.complete()
    walls = [done[(index, "WALL")] for index in range(3)]
    assert re.findall(r'data-verify-check value="(\d+)"', page(quality_specialist, review)) == [
        str(pk) for pk in walls
    ]
    # Verified by another person, then released.
    verifier = UserFactory(username="lab2", roles=[Role.TESTER])
    body = {"observations": walls, "signature": signature(verifier, "verified")}
    assert api(verifier).post("/api/v1/observations/verify/", body, format="json").status_code == 200
    body = {"decision": "release", "signature": signature(quality_specialist)}
    response = api(quality_specialist).post(f"/api/v1/lots/{review.lot.pk}/disposition/", body, format="json")
    assert response.status_code == 201, response.json()

    html = page(quality_specialist, review)
    assert "Lot L-1 is released: its disposition is final." in html
    for gone in ("data-blocking", "data-releasable", "data-disposition-open", "data-verify-form"):
        assert gone not in html
    assert re.search(r'data-manifest-state="valid">Released by [^<]+ UTC</li>', html)


def test_an_open_lot_cannot_be_released_so_release_is_not_offered(plant, quality_specialist):
    html = signed_in(quality_specialist).get(reverse("web-lot", args=[plant.lot.pk])).content.decode()
    assert re.findall(r'<option value="(\w+)" data-meaning', html) == ["reject", "quarantine"]
    assert '<li data-reason="lot_status">' in html  # why not, in words

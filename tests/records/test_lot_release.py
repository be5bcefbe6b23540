"""The lot review and the release policy (#18): the matrix's verdicts, every reason a release is
refused (409, nothing changed), release under deviation, who may release, the request to release,
and a signed lot whose results change afterwards."""

from typing import Any

import pytest
from django.utils import timezone

from apps.observations.choices import LotStatus, ObservationStatus
from apps.observations.models import Invalidation, Lot, Observation
from apps.records import selectors
from apps.records.models import LotDisposition, OosInvestigation
from apps.signatures.models import Signature
from apps.subscriptions.models import Notification
from openspc.roles import Role
from tests.config.helpers import error_of
from tests.factories import ItemFactory, SampleFactory, UserFactory, ViolationFactory
from tests.support.records import Review, signature

pytestmark = pytest.mark.django_db


def url(lot: Lot, what: str) -> str:
    return f"/api/v1/lots/{lot.pk}/{what}/"


def release(client: Any, review: Review, user: Any, **body: Any) -> Any:
    return client.post(
        url(review.lot, "disposition"),
        {"decision": "release", "signature": signature(user), **body},
        format="json",
    )


def cells(body: dict[str, Any]) -> dict[tuple[str, str], str]:
    codes = [c["code"] for c in body["columns"]]
    return {
        (row["serial"], codes[i]): cell["verdict"]
        for row in body["rows"]
        for i, cell in enumerate(row["cells"])
        if cell is not None
    }


def blocked(response: Any) -> dict[str, Any]:
    """The 409 of a blocked release: the one error format, with the reasons added."""
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields", "reasons"}
    assert error["code"] == "release_blocked"
    assert all(set(reason) == {"code", "message"} and reason["message"] for reason in error["reasons"])
    return error


def unchanged(review: Review) -> None:
    review.lot.refresh_from_db()
    assert review.lot.status == LotStatus.IN_TESTING
    assert not LotDisposition.objects.exists()
    assert not Signature.objects.filter(action="lot_disposition").exists()


class ReviewTests:
    def test_the_matrix_says_which_item_failed_and_what_waits(self, api, review, quality_specialist, plant):
        plant.wall.requires_verification = True
        plant.wall.save(update_fields=["requires_verification"])
        review.enter(0, "DIA", [72.0])
        review.enter(1, "DIA", [76.2])  # out of spec: item 0002 failed
        review.enter(0, "WALL", [2.0, 2.1, 2.0])  # needs verification
        invalid = review.enter(2, "DIA", [71.0])
        Observation.objects.filter(pk=invalid).update(status=ObservationStatus.INVALIDATED)
        Invalidation.objects.create(
            observation_id=invalid, reason="gauge not zeroed", requested_by=quality_specialist,
            status="approved", decided_by=quality_specialist, decided_at=timezone.now(),
            retest_requested=True,
        )  # fmt: skip
        response = api(quality_specialist).get(url(review.lot, "review"))
        assert response.status_code == 200, response.content
        body = response.json()
        assert cells(body) == {
            ("0001", "DIA"): "pass",
            ("0001", "WALL"): "to_be_verified",
            ("0002", "DIA"): "out_of_spec",
            ("0002", "WALL"): "pending",
            ("0003", "DIA"): "retest",
            ("0003", "WALL"): "pending",
        }
        failed = body["rows"][1]["cells"][0]["current"]
        assert (failed["values"], failed["out_of_spec"], failed["entered_by"]) == ([76.2], True, "tester")
        assert body["columns"][0]["lsl"] == 70.0
        assert body["columns"][0]["unit"] == "mm"
        counts = ("tests_required", "tests_done", "results_to_verify", "out_of_spec")
        assert [body[name] for name in counts] == [6, 3, 1, 1]
        assert body["releasable"] is False
        codes = [r["code"] for r in body["reasons"]]
        assert codes == ["tests_not_done", "not_verified", "out_of_spec"]
        messages = " ".join(r["message"] for r in body["reasons"])
        assert "DIA on item 0002" in messages
        assert "WALL on item 0001" in messages
        assert "DIA on item 0003 (retest due)" in messages

    def test_a_complete_lot_in_spec_can_be_released(self, api, review, quality_specialist):
        review.complete()
        body = api(quality_specialist).get(url(review.lot, "review")).json()
        assert (body["releasable"], body["reasons"], body["tests_done"]) == (True, [], 6)

    def test_the_review_runs_a_fixed_number_of_queries(self, review, plant, django_assert_num_queries):
        review.complete()
        lot = Lot.objects.select_related("product").get(pk=review.lot.pk)
        with django_assert_num_queries(9):
            selectors.lot_review(lot=lot)
        for n in range(4, 9):
            item = ItemFactory(lot=review.lot, serial=f"00{n:02d}", plans=[plant.ring], tester=plant.tester)
            plant.items.append(item)
            review.enter(n - 1, "DIA", [73.0])
        with django_assert_num_queries(9):
            selectors.lot_review(lot=lot)

    def test_with_signatures_two_queries_more(
        self, api, review, quality_specialist, django_assert_num_queries
    ):
        review.complete()
        assert release(api(quality_specialist), review, quality_specialist).status_code == 201
        lot = Lot.objects.select_related("product").get(pk=review.lot.pk)
        selectors.lot_review(lot=lot)  # the content type is cached from here on, as in a running server
        with django_assert_num_queries(11):
            (shown,) = selectors.lot_review(lot=lot).signatures
        assert shown.state == "valid"

    def test_testers_do_not_read_the_review(self, api, review, tester):
        error_of(api(tester).get(url(review.lot, "review")), 403)


class ReleaseRefusedTests:
    @pytest.mark.parametrize(
        "reason", ["tests_not_done", "not_verified", "investigation_open", "violations_unacknowledged"]
    )
    def test_each_reason_refuses_the_release_with_409_and_changes_nothing(
        self, api, review, plant, quality_specialist, reason
    ):
        if reason == "tests_not_done":
            review.complete(skip=(1, "WALL"))
        else:
            done = review.complete()
        if reason == "not_verified":
            plant.dia.requires_verification = True
            plant.dia.save(update_fields=["requires_verification"])
        if reason == "investigation_open":
            OosInvestigation.objects.create(
                lot=review.lot, observation_id=done[(0, "DIA")], characteristic=review.dia, test=plant.dia
            )
        if reason == "violations_unacknowledged":
            sample = SampleFactory(characteristic=review.dia, lot=review.lot)
            ViolationFactory(characteristic=review.dia, sample=sample)
        response = release(api(quality_specialist), review, quality_specialist)
        error = blocked(response)
        assert [r["code"] for r in error["reasons"]] == [reason]
        assert "cannot be released" in error["message"]
        unchanged(review)

    def test_every_reason_is_listed_at_once(self, api, review, plant, quality_specialist):
        review.enter(0, "DIA", [76.0])
        sample = SampleFactory(characteristic=review.dia, lot=review.lot)
        ViolationFactory(characteristic=review.dia, sample=sample)
        error = blocked(release(api(quality_specialist), review, quality_specialist))
        assert [r["code"] for r in error["reasons"]] == [
            "tests_not_done",
            "out_of_spec",
            "violations_unacknowledged",
        ]
        unchanged(review)

    def test_the_status_endpoint_no_longer_releases_or_rejects(self, api, review, operations_lead):
        review.complete()
        for status in ("released", "rejected", "quarantined"):
            error = error_of(
                api(operations_lead).post(url(review.lot, "status"), {"status": status}), 400, "status"
            )
            assert "signed disposition" in error["fields"]["status"][0]
        unchanged(review)


class ReleaseTests:
    def test_a_withdrawn_violation_does_not_block(self, api, review, quality_specialist):
        """A correction withdraws a violation that no longer holds (kept, marked): it waits for nobody."""
        review.complete()
        sample = SampleFactory(characteristic=review.dia, lot=review.lot)
        ViolationFactory(
            characteristic=review.dia,
            sample=sample,
            withdrawn_at=timezone.now(),
            withdrawn_reason="invalidated",
        )
        response = release(api(quality_specialist), review, quality_specialist, reason="all in spec")
        assert response.status_code == 201, response.content

    def test_an_approver_releases_a_complete_lot_signed(self, api, review, quality_specialist):
        review.complete()
        response = release(api(quality_specialist), review, quality_specialist, reason="all in spec")
        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["decision"], body["deviation"], body["blocking_reasons"]) == ("release", "", [])
        (manifest,) = body["signatures"]
        assert (manifest["meaning"], manifest["state"], manifest["username"]) == ("released", "valid", "qs")
        review.lot.refresh_from_db()
        assert review.lot.status == LotStatus.RELEASED
        signed = Signature.objects.get(action="lot_disposition")
        assert signed.content["number"] == "L-1"
        assert len(signed.content["results"]) == 6

    def test_release_under_deviation_needs_its_justification(self, api, review, quality_specialist):
        review.complete(skip=(2, "DIA"))
        client = api(quality_specialist)
        error_of(release(client, review, quality_specialist, deviation="  "), 400, "deviation")
        unchanged(review)
        response = release(
            client, review, quality_specialist, deviation="DEV-12: customer accepts item 0003 untested"
        )
        assert response.status_code == 201, response.content
        disposition = LotDisposition.objects.get()
        assert disposition.deviation == "DEV-12: customer accepts item 0003 untested"
        assert [r["code"] for r in disposition.blocking_reasons] == ["tests_not_done"]
        review.lot.refresh_from_db()
        assert review.lot.status == LotStatus.RELEASED

    def test_a_deviation_is_for_releases_only(self, api, review, quality_specialist):
        response = api(quality_specialist).post(
            url(review.lot, "disposition"),
            {
                "decision": "reject",
                "deviation": "why not",
                "signature": signature(quality_specialist, "rejected"),
            },
            format="json",
        )
        error_of(response, 400, "deviation")
        unchanged(review)

    @pytest.mark.parametrize("decision", ["release", "reject"])
    def test_only_approvers_release_or_reject(self, api, review, operations_lead, manager, decision):
        review.complete()
        for user in (operations_lead, manager):
            response = api(user).post(
                url(review.lot, "disposition"),
                {
                    "decision": decision,
                    "signature": signature(user, {"release": "released"}.get(decision, "rejected")),
                },
                format="json",
            )
            error = error_of(response, 403)
            assert "approvers" in error["message"]
        unchanged(review)

    def test_a_disposition_needs_a_signature(self, api, review, quality_specialist):
        review.complete()
        response = api(quality_specialist).post(
            url(review.lot, "disposition"), {"decision": "release"}, format="json"
        )
        error_of(response, 400, "signature")
        unchanged(review)

    def test_a_wrong_password_signs_nothing(self, api, review, quality_specialist):
        review.complete()
        body = {"decision": "release", "signature": {**signature(quality_specialist), "password": "wrong"}}
        error_of(api(quality_specialist).post(url(review.lot, "disposition"), body, format="json"), 403)
        unchanged(review)

    def test_an_operations_lead_quarantines_and_takes_the_lot_back_into_testing(
        self, api, review, operations_lead
    ):
        client = api(operations_lead)
        response = client.post(
            url(review.lot, "disposition"),
            {
                "decision": "quarantine",
                "reason": "suspect raw material",
                "signature": signature(operations_lead, "reviewed"),
            },
            format="json",
        )
        assert response.status_code == 201, response.content
        review.lot.refresh_from_db()
        assert review.lot.status == LotStatus.QUARANTINED
        assert client.post(url(review.lot, "status"), {"status": "in_testing"}).status_code == 200

    def test_a_signed_lot_changed_afterwards_shows_it(self, api, review, quality_specialist):
        done = review.complete()
        assert release(api(quality_specialist), review, quality_specialist).status_code == 201
        client = api(quality_specialist)
        (shown,) = client.get(url(review.lot, "review")).json()["signatures"]
        assert (shown["state"], shown["counts"]) == ("valid", True)
        Observation.objects.filter(pk=done[(1, "DIA")]).update(values=[74.9])
        (shown,) = client.get(url(review.lot, "review")).json()["signatures"]
        assert (shown["state"], shown["counts"]) == ("changed_after_signing", False)
        assert shown["text"].endswith("changed after signing")


class ReleaseRequestTests:
    def test_an_operations_lead_asks_and_every_approver_is_told(
        self, api, review, operations_lead, quality_specialist, manager, sent_tasks,
        django_capture_on_commit_callbacks,
    ):  # fmt: skip
        other_approver = UserFactory(username="qs2", roles=[Role.QUALITY_SPECIALIST])
        review.complete(skip=(0, "WALL"))
        with django_capture_on_commit_callbacks(execute=True):
            response = api(operations_lead).post(
                url(review.lot, "request-release"), {"note": "urgent"}, format="json"
            )
        assert response.status_code == 201, response.content
        assert [r["code"] for r in response.json()["reasons"]] == ["tests_not_done"]
        told = Notification.objects.filter(event="lot.release_requested").order_by("user__username")
        assert [n.user.username for n in told] == ["qs", "qs2"]
        note = told[0]
        assert note.title == "Release of lot L-1 of RING-74 requested"
        assert "urgent" in note.message
        assert "WALL on item 0001" in note.message
        assert note.subscription is None
        assert note.link == f"/lots/{review.lot.pk}/"
        assert not Notification.objects.filter(user__in=[manager, operations_lead]).exists()
        assert other_approver.notifications.count() == 1
        review.lot.refresh_from_db()
        assert review.lot.status == LotStatus.IN_TESTING

    def test_approvers_and_testers_do_not_request_releases(self, api, review, tester, manager):
        for user in (tester, manager):
            error_of(api(user).post(url(review.lot, "request-release"), {}, format="json"), 403)

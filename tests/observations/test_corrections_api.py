"""The API of corrections and verification (issue #18): who may do what, signatures, and refusals
that change nothing."""

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from apps.audit.choices import AuditAction
from apps.audit.models import AuditEntry
from apps.config.models import TestPlanEntry
from apps.observations import selectors, services
from apps.observations.choices import InvalidationStatus, ObservationStatus
from apps.observations.models import Invalidation, Observation
from apps.signatures.models import Signature
from tests.config.helpers import error_of
from tests.factories import ItemFactory
from tests.support.plant import Plant, rows

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-only"
Api = Callable[[User | None], APIClient]


def signature(user: User, meaning: str) -> dict[str, str]:
    return {"password": PASSWORD, "meaning": meaning, "username": user.get_username()}


def confirmed(
    plant: Plant, value: float = 74.0, *, item: Any = None, user: User | None = None
) -> Observation:
    (pk,) = plant.record({"item": item or plant.items[0], "test": plant.dia, "values": [value]}, user=user)
    services.observations_process(ids=[pk])
    return Observation.objects.get(pk=pk)


def snapshot() -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    return rows(), list(Invalidation.objects.values()), Signature.objects.count()


# --- Invalidation ----------------------------------------------------------------------------------


def test_a_quality_specialist_invalidates_at_once_with_a_signature(
    api: Api, plant: Plant, quality_specialist: User
) -> None:
    observation = confirmed(plant)
    url = f"/api/v1/observations/{observation.pk}/invalidate/"
    client = api(quality_specialist)
    before = snapshot()
    error_of(client.post(url, {"reason": "gauge dropped"}, format="json"), 400)  # no signature
    wrong = {
        "reason": "gauge dropped",
        "signature": {**signature(quality_specialist, "approved"), "password": "x"},
    }
    error_of(client.post(url, wrong, format="json"), 403)
    assert snapshot() == before  # only the failed signature is audited
    assert AuditEntry.objects.filter(action=AuditAction.SIGN_FAILED).count() == 1

    body = {"reason": "gauge dropped", "retest": True, "signature": signature(quality_specialist, "approved")}
    response = client.post(url, body, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["status"] == "invalidated"
    assert data["values"] == [74.0]
    assert {k: data["invalidation"][k] for k in ("reason", "status", "requested_by", "retest_requested")} == {
        "reason": "gauge dropped",
        "status": "approved",
        "requested_by": "qs",
        "retest_requested": True,
    }
    assert Signature.objects.filter(action="invalidation_approval").count() == 1
    error_of(client.post(url, body, format="json"), 409)  # invalidated already


def test_a_tester_asks_a_quality_specialist_approves(
    api: Api, plant: Plant, quality_specialist: User
) -> None:
    observation = confirmed(plant)
    response = api(plant.tester).post(
        f"/api/v1/observations/{observation.pk}/invalidate/", {"reason": "wrong item"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["invalidation"]["status"]) == (
        "confirmed",
        "requested",
    )
    waiting = api(quality_specialist).get(
        "/api/v1/invalidations/", {"status": "requested", "lot": plant.lot.pk}
    )
    assert [row["observation"] for row in waiting.json()["results"]] == [observation.pk]
    invalidation = Invalidation.objects.get()
    url = f"/api/v1/invalidations/{invalidation.pk}/"

    error_of(api(plant.tester).post(url + "approve/", {}, format="json"), 403)
    error_of(api(quality_specialist).post(url + "approve/", {}, format="json"), 400)  # unsigned
    error_of(api(quality_specialist).post(url + "refuse/", {}, format="json"), 400)  # no note
    assert Invalidation.objects.get().status == InvalidationStatus.REQUESTED

    body = {"note": "checked", "signature": signature(quality_specialist, "approved")}
    response = api(quality_specialist).post(url + "approve/", body, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["decided_by"]) == ("approved", "qs")
    assert Observation.objects.get(pk=observation.pk).status == ObservationStatus.INVALIDATED

    # The tester retests it: a new result linked to the invalidated one.
    response = api(plant.tester).post(
        f"/api/v1/observations/{observation.pk}/retest/", {"values": [74.01]}, format="json"
    )
    assert response.status_code == 202, response.content
    (new,) = response.json()["ids"]
    assert api(plant.tester).get(f"/api/v1/observations/{new}/").json()["retest_of"] == observation.pk


def test_a_tester_cannot_touch_anothers_result(api: Api, plant: Plant, other_tester: User) -> None:
    item = ItemFactory(lot=plant.lot, serial="0042", plans=[plant.ring], tester=other_tester)
    theirs = confirmed(plant, item=item, user=other_tester)
    before = snapshot()
    for verb, body in (("invalidate", {"reason": "x"}), ("amend", {"reason": "x", "values": [74.0]})):
        error_of(
            api(plant.tester).post(f"/api/v1/observations/{theirs.pk}/{verb}/", body, format="json"), 404
        )
    assert snapshot() == before


def test_amend_waits_with_its_values_for_approval(api: Api, plant: Plant) -> None:
    observation = confirmed(plant, 74.9)
    response = api(plant.tester).post(
        f"/api/v1/observations/{observation.pk}/amend/", {"values": [74.09], "reason": "typo"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["invalidation"]["amended_values"] == [74.09]
    assert not Observation.objects.filter(retest_of=observation).exists()


def test_roles_without_the_right_are_refused_in_words(api: Api, plant: Plant, manager: User) -> None:
    observation = confirmed(plant)
    response = api(manager).post(f"/api/v1/observations/{observation.pk}/invalidate/", {"reason": "x"})
    assert error_of(response, 403)["message"] == "Your role does not correct or verify results."


# --- Verification ----------------------------------------------------------------------------------


@pytest.fixture
def to_verify(plant: Plant) -> Observation:
    plant.dia.requires_verification = True
    plant.dia.save()
    return confirmed(plant)


def test_the_server_refuses_a_user_verifying_their_own_result(
    api: Api, plant: Plant, to_verify: Observation
) -> None:
    shown = api(plant.tester).get(f"/api/v1/observations/{to_verify.pk}/").json()
    assert (shown["needs_verification"], shown["to_be_verified"], shown["verified_by"]) == (True, True, None)
    before = snapshot()
    body = {"observations": [to_verify.pk], "signature": signature(plant.tester, "verified")}
    response = api(plant.tester).post("/api/v1/observations/verify/", body, format="json")
    assert error_of(response, 403)["message"] == (
        f"You entered result {to_verify.pk} yourself; another person must verify it."
    )
    assert snapshot() == before


def test_another_person_verifies_signed(
    api: Api, plant: Plant, to_verify: Observation, quality_specialist: User
) -> None:
    annotated = selectors.observations_with_verification(Observation.objects.filter(pk=to_verify.pk)).get()
    assert (annotated.needs_verification, annotated.to_be_verified) == (True, True)
    client = api(quality_specialist)
    error_of(
        client.post("/api/v1/observations/verify/", {"observations": [to_verify.pk]}, format="json"), 400
    )
    body = {"observations": [to_verify.pk], "signature": signature(quality_specialist, "verified")}
    response = client.post("/api/v1/observations/verify/", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()[0]["verified_by"] == "qs"
    assert (response.json()[0]["needs_verification"], response.json()[0]["to_be_verified"]) == (True, False)
    to_verify.refresh_from_db()
    assert to_verify.verified_by == quality_specialist
    assert Signature.objects.get(action="verification").meaning == "verified"
    assert (
        not selectors.observations_with_verification(Observation.objects.filter(pk=to_verify.pk))
        .get()
        .to_be_verified
    )
    error_of(client.post("/api/v1/observations/verify/", body, format="json"), 409)  # verified already


def test_batch_verification_is_all_or_none(
    api: Api, plant: Plant, to_verify: Observation, other_tester: User
) -> None:
    item = ItemFactory(lot=plant.lot, serial="0042", plans=[plant.ring], tester=other_tester)
    own = confirmed(plant, item=item, user=other_tester)
    plain = Observation.objects.get(
        pk=plant.record({"item": plant.items[1], "test": plant.wall, "values": [1.0, 1.1, 1.2]})[0]
    )
    services.observations_process(ids=[plain.pk])
    before = snapshot()
    client = api(other_tester)
    sign = signature(other_tester, "verified")
    response = client.post(
        "/api/v1/observations/verify/",
        {"observations": [to_verify.pk, own.pk], "signature": sign},
        format="json",
    )
    assert "yourself" in error_of(response, 403)["message"]
    response = client.post(
        "/api/v1/observations/verify/",
        {"observations": [to_verify.pk, plain.pk], "signature": sign},
        format="json",
    )
    assert f"result {plain.pk} needs no verification" in error_of(response, 409)["message"]
    assert snapshot() == before


def test_a_plan_entry_can_require_verification(plant: Plant) -> None:
    observation = Observation.objects.get(
        pk=plant.record({"item": plant.items[1], "test": plant.wall, "values": [1.0, 1.1, 1.2]})[0]
    )
    assert not selectors.observation_needs_verification(observation)
    TestPlanEntry.objects.filter(plan=plant.ring, test=plant.wall).update(requires_verification=True)
    assert selectors.observation_needs_verification(observation)


def test_invalidation_and_verification_are_told_after_commit(
    plant: Plant,
    to_verify: Observation,
    quality_specialist: User,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from apps.signatures.services import signer_check
    from openspc import events

    sent: list[Any] = []
    monkeypatch.setattr(events, "events_send", sent.extend)
    verifier = signer_check(
        user=quality_specialist, action="verification", meaning="verified", password=PASSWORD
    )
    approval = signer_check(
        user=quality_specialist, action="invalidation_approval", meaning="approved", password=PASSWORD
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.results_verify(observations=[to_verify], user=quality_specialist, signer=verifier)
        services.invalidation_request(
            observation=to_verify, user=quality_specialist, reason="x", signer=approval
        )
        assert sent == []  # nothing before the commit
    told = {message["type"]: (groups, message) for groups, message in sent}
    groups, message = told["result.verified"]
    assert f"lot.{plant.lot.pk}" in groups
    assert (message["observation"], message["verified_by"]) == (to_verify.pk, "qs")
    groups, message = told["result.invalidated"]
    assert (message["observation"], message["reason"]) == (to_verify.pk, "x")


def test_the_chart_data_marks_an_invalidated_point(api: Api, plant: Plant, quality_specialist: User) -> None:
    from apps.calculations import services as calculations
    from apps.config.models import Characteristic

    dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
    confirmed(plant, 74.0)
    bad = confirmed(plant, 73.5)
    calculations.characteristic_calculate(characteristic_id=dia.pk)
    body = {"reason": "gauge dropped", "signature": signature(quality_specialist, "approved")}
    api(quality_specialist).post(f"/api/v1/observations/{bad.pk}/invalidate/", body, format="json")
    calculations.characteristic_calculate(characteristic_id=dia.pk)
    points = api(quality_specialist).get(f"/api/v1/characteristics/{dia.pk}/chart-data/").json()["points"]
    assert [(p["statistic"], p["invalidated"], p["invalidation_reason"]) for p in points] == [
        (74.0, False, ""),
        (73.5, True, "gauge dropped"),
    ]

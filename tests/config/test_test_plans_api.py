"""Test plans through the API: ordered entries, the draft → released → retired life, and versions."""

import threading

import pytest
from django.db import close_old_connections, connection, transaction

from apps.audit.choices import AuditAction
from apps.audit.models import AuditEntry
from apps.config import services
from apps.config.choices import PlanStatus
from apps.config.models import TestPlan, TestPlanEntry
from apps.signatures.choices import SignedAction
from apps.signatures.models import Signature
from tests.config.helpers import error_of
from tests.factories import TestFactory, TestPlanFactory, released_plan
from tests.support.signing import signature_body, signer_for

pytestmark = pytest.mark.django_db

PLANS = "/api/v1/test-plans/"


@pytest.fixture
def qs_api(api, quality_specialist):
    return api(quality_specialist)


def _entries(plan: TestPlan) -> list[tuple[str, int, int]]:
    """(test code, position, replicates) of the plan's stored entries, in order."""
    return [
        (e.test.code, e.position, e.replicates)
        for e in TestPlanEntry.objects.filter(plan=plan).select_related("test").order_by("position")
    ]


def _plan_state(plan: TestPlan) -> tuple[object, ...]:
    fresh = TestPlan.objects.get(pk=plan.pk)
    return (fresh.name, fresh.description, fresh.status, fresh.version, _entries(fresh))


class CreateTests:
    def test_create_with_ordered_tests_and_replicates(self, qs_api):
        wall, dia, surf = TestFactory(code="WALL"), TestFactory(code="DIA"), TestFactory(code="SURF")
        data = {
            "code": "RING-FINAL",
            "name": "Ring final inspection",
            "tests": [
                {"test": dia.pk, "replicates": 1},
                {"test": wall.pk, "replicates": 3},
                {"test": surf.pk},
            ],
        }
        response = qs_api.post(PLANS, data)
        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["code"], body["version"], body["status"], body["released_at"]) == (
            "RING-FINAL",
            1,
            "draft",
            None,
        )
        assert "tests" not in body  # write-only
        assert [(e["position"], e["test"], e["test_code"], e["replicates"]) for e in body["entries"]] == [
            (1, dia.pk, "DIA", 1),
            (2, wall.pk, "WALL", 3),
            (3, surf.pk, "SURF", 1),
        ]
        plan = TestPlan.objects.get(code="RING-FINAL")
        assert _entries(plan) == [("DIA", 1, 1), ("WALL", 2, 3), ("SURF", 3, 1)]

    def test_an_entry_may_require_verification(self, qs_api):
        wall, dia = TestFactory(code="WALL"), TestFactory(code="DIA")
        data = {
            "code": "RING-FINAL", "name": "Ring final inspection",
            "tests": [{"test": dia.pk, "requires_verification": True}, {"test": wall.pk}],
        }  # fmt: skip
        response = qs_api.post(PLANS, data)
        assert response.status_code == 201, response.content
        assert [(e["test_code"], e["requires_verification"]) for e in response.json()["entries"]] == [
            ("DIA", True), ("WALL", False),
        ]  # fmt: skip
        plan = TestPlan.objects.get(code="RING-FINAL")
        assert list(plan.entries.values_list("test__code", "requires_verification")) == [
            ("DIA", True), ("WALL", False),
        ]  # fmt: skip
        entry = AuditEntry.objects.get(object_id=str(plan.pk), action="create")
        assert entry.after["tests"][0] == {"test": dia.pk, "replicates": 1, "requires_verification": True}

    def test_create_without_tests(self, qs_api):
        response = qs_api.post(PLANS, {"code": "EMPTY", "name": "Empty"})
        assert response.status_code == 201, response.content
        assert response.json()["entries"] == []
        assert TestPlan.objects.get(code="EMPTY").entries.count() == 0

    def test_unknown_test_is_400_naming_tests_and_writes_nothing(self, qs_api):
        test = TestFactory()
        data = {"code": "P", "name": "P", "tests": [{"test": test.pk}, {"test": 999999}]}
        error_of(qs_api.post(PLANS, data), 400, "tests")
        assert not TestPlan.objects.exists()
        assert not TestPlanEntry.objects.exists()

    def test_duplicate_test_is_400_and_writes_nothing(self, qs_api):
        test = TestFactory(code="DIA")
        data = {"code": "P", "name": "P", "tests": [{"test": test.pk}, {"test": test.pk, "replicates": 2}]}
        error = error_of(qs_api.post(PLANS, data), 400, "tests")
        assert "DIA is listed twice" in error["message"]
        assert not TestPlan.objects.exists()
        assert not TestPlanEntry.objects.exists()

    @pytest.mark.parametrize("replicates", [0, 26])
    def test_replicates_out_of_range_is_400(self, qs_api, replicates):
        data = {"code": "P", "name": "P", "tests": [{"test": TestFactory().pk, "replicates": replicates}]}
        error_of(qs_api.post(PLANS, data), 400, "tests")
        assert not TestPlan.objects.exists()

    def test_existing_code_is_400_naming_code(self, qs_api):
        existing = released_plan(TestFactory(), code="RING-FINAL")
        error = error_of(qs_api.post(PLANS, {"code": "RING-FINAL", "name": "Again"}), 400, "code")
        assert "new version" in error["message"]
        assert list(TestPlan.objects.values_list("pk", flat=True)) == [existing.pk]

    def test_version_and_status_cannot_be_set(self, qs_api):
        response = qs_api.post(PLANS, {"code": "P", "name": "P", "version": 7, "status": "released"})
        assert response.status_code == 201, response.content
        plan = TestPlan.objects.get(code="P")
        assert (plan.version, plan.status) == (1, PlanStatus.DRAFT)


class EditDraftTests:
    def test_set_tests_reorders_adds_and_removes(self, qs_api):
        a, b, c, d = (TestFactory(code=code) for code in "ABCD")
        plan = TestPlanFactory(tests=[a, (b, 2), c])
        body = {"tests": [{"test": c.pk, "replicates": 5}, {"test": a.pk}, {"test": d.pk, "replicates": 2}]}
        response = qs_api.post(f"{PLANS}{plan.pk}/tests/", body)
        assert response.status_code == 200, response.content
        assert [(e["position"], e["test_code"], e["replicates"]) for e in response.json()["entries"]] == [
            (1, "C", 5),
            (2, "A", 1),
            (3, "D", 2),
        ]
        assert _entries(plan) == [("C", 1, 5), ("A", 2, 1), ("D", 3, 2)]

    def test_set_tests_with_a_duplicate_keeps_the_old_entries(self, qs_api):
        a, b = TestFactory(code="A"), TestFactory(code="B")
        plan = TestPlanFactory(tests=[a, b])
        response = qs_api.post(f"{PLANS}{plan.pk}/tests/", {"tests": [{"test": b.pk}, {"test": b.pk}]})
        error_of(response, 400, "tests")
        assert _entries(plan) == [("A", 1, 1), ("B", 2, 1)]

    def test_set_tests_with_an_unknown_test_keeps_the_old_entries(self, qs_api):
        plan = TestPlanFactory(tests=[TestFactory(code="A")])
        error_of(qs_api.post(f"{PLANS}{plan.pk}/tests/", {"tests": [{"test": 999999}]}), 400, "tests")
        assert _entries(plan) == [("A", 1, 1)]

    def test_patch_name_and_tests_of_a_draft(self, qs_api):
        a, b = TestFactory(code="A"), TestFactory(code="B")
        plan = TestPlanFactory(tests=[a])
        body = {"name": "Renamed", "tests": [{"test": b.pk, "replicates": 2}]}
        response = qs_api.patch(f"{PLANS}{plan.pk}/", body)
        assert response.status_code == 200, response.content
        plan.refresh_from_db()
        assert plan.name == "Renamed"
        assert _entries(plan) == [("B", 1, 2)]

    def test_put_tests_with_default_replicates(self, qs_api):
        plan = TestPlanFactory(code="P", tests=[TestFactory(code="A")])
        b = TestFactory(code="B")
        response = qs_api.put(f"{PLANS}{plan.pk}/", {"code": "P", "name": "P", "tests": [{"test": b.pk}]})
        assert response.status_code == 200, response.content
        assert _entries(plan) == [("B", 1, 1)]

    def test_patch_tests_with_default_replicates(self, qs_api):
        plan = TestPlanFactory(tests=[TestFactory(code="A")])
        b = TestFactory(code="B")
        response = qs_api.patch(f"{PLANS}{plan.pk}/", {"tests": [{"test": b.pk}]})
        assert response.status_code == 200, response.content
        assert _entries(plan) == [("B", 1, 1)]

    def test_patch_an_entry_without_its_test_is_400(self, qs_api):
        plan = TestPlanFactory(tests=[TestFactory(code="A")])
        error_of(qs_api.patch(f"{PLANS}{plan.pk}/", {"tests": [{"replicates": 2}]}), 400, "tests")
        assert _entries(plan) == [("A", 1, 1)]

    def test_patch_without_tests_keeps_the_entries(self, qs_api):
        plan = TestPlanFactory(tests=[TestFactory(code="A")])
        assert qs_api.patch(f"{PLANS}{plan.pk}/", {"description": "new"}).status_code == 200
        assert _entries(plan) == [("A", 1, 1)]

    def test_code_cannot_change(self, qs_api):
        plan = TestPlanFactory(code="OLD")
        error_of(qs_api.patch(f"{PLANS}{plan.pk}/", {"code": "NEW"}), 400, "code")
        assert TestPlan.objects.get(pk=plan.pk).code == "OLD"

    def test_delete_a_draft(self, qs_api):
        plan = TestPlanFactory(tests=[TestFactory()])
        assert qs_api.delete(f"{PLANS}{plan.pk}/").status_code == 204
        assert not TestPlan.objects.filter(pk=plan.pk).exists()
        assert not TestPlanEntry.objects.exists()


class ReleaseTests:
    def test_release_a_draft(self, qs_api, quality_specialist):
        plan = TestPlanFactory(tests=[TestFactory()])
        response = qs_api.post(
            f"{PLANS}{plan.pk}/release/",
            {"reason": "Validated", "signature": signature_body("qs", "released")},
        )
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "released"
        assert response.json()["released_at"] is not None
        plan.refresh_from_db()
        assert plan.status == PlanStatus.RELEASED
        assert plan.released_by == quality_specialist
        assert plan.released_at is not None
        (manifest,) = response.json()["signatures"]
        assert (manifest["username"], manifest["meaning"], manifest["action"], manifest["state"]) == (
            "qs", "released", "plan_release", "valid",
        )  # fmt: skip
        assert qs_api.get(f"{PLANS}{plan.pk}/").json()["signatures"] == [manifest]


class ReleaseSignatureTests:
    """Releasing a plan is signed (21 CFR Part 11): the signature binds the plan and its tests."""

    def test_a_release_without_a_signature_is_400_and_the_plan_stays_a_draft(self, qs_api):
        plan = TestPlanFactory(tests=[TestFactory()])
        error = error_of(qs_api.post(f"{PLANS}{plan.pk}/release/", {"reason": "Validated"}), 400, "signature")
        assert "electronic signature" in error["message"]
        assert TestPlan.objects.get(pk=plan.pk).status == PlanStatus.DRAFT
        assert not Signature.objects.exists()

    def test_a_wrong_password_is_403_audited_and_nothing_changes(self, qs_api, quality_specialist):
        plan = TestPlanFactory(tests=[TestFactory()])
        body = {"reason": "Validated", "signature": {**signature_body("qs"), "password": "not-mine"}}
        error = error_of(qs_api.post(f"{PLANS}{plan.pk}/release/", body), 403)
        assert error["message"] == "Wrong password: nothing was signed."
        assert TestPlan.objects.get(pk=plan.pk).status == PlanStatus.DRAFT
        assert not Signature.objects.exists()
        failed = AuditEntry.objects.get(action=AuditAction.SIGN_FAILED)
        assert (failed.user, failed.reason, failed.after) == (
            quality_specialist,
            "wrong password",
            {"action": "plan_release"},
        )
        assert not AuditEntry.objects.filter(action=AuditAction.SIGN).exists()

    def test_a_meaning_the_release_does_not_take_is_400(self, qs_api):
        plan = TestPlanFactory(tests=[TestFactory()])
        body = {"reason": "Validated", "signature": signature_body("qs", "verified")}
        error = error_of(qs_api.post(f"{PLANS}{plan.pk}/release/", body), 400, "signature.meaning")
        assert "approved, released" in error["message"]
        assert TestPlan.objects.get(pk=plan.pk).status == PlanStatus.DRAFT

    def test_the_signature_binds_the_plan_and_its_tests_not_its_status(self, qs_api, quality_specialist):
        wall, dia = TestFactory(code="WALL"), TestFactory(code="DIA")
        plan = TestPlanFactory(code="RING", tests=[(wall, 3), dia])
        response = qs_api.post(
            f"{PLANS}{plan.pk}/release/", {"reason": "Validated", "signature": signature_body("qs")}
        )
        assert response.status_code == 200, response.content
        signature = Signature.objects.get(object_id=str(plan.pk), action="plan_release")
        assert signature.user == quality_specialist
        assert signature.content == {
            "plan": plan.pk, "code": "RING", "version": 1, "name": plan.name, "description": plan.description,
            "entries": [
                {"test": "WALL", "position": 1, "replicates": 3, "requires_verification": False},
                {"test": "DIA", "position": 2, "replicates": 1, "requires_verification": False},
            ],
        }  # fmt: skip
        assert AuditEntry.objects.filter(action=AuditAction.SIGN, object_id=str(plan.pk)).count() == 1
        # Retiring the plan is not a change of what was signed.
        assert qs_api.post(f"{PLANS}{plan.pk}/retire/").status_code == 200
        assert qs_api.get(f"{PLANS}{plan.pk}/").json()["signatures"][0]["state"] == "valid"

    def test_a_plan_changed_behind_the_application_shows_changed_after_signing(self, qs_api):
        plan = TestPlanFactory(tests=[TestFactory()])
        body = {"reason": "Validated", "signature": signature_body("qs")}
        assert qs_api.post(f"{PLANS}{plan.pk}/release/", body).status_code == 200
        TestPlanEntry.objects.filter(plan=plan).update(replicates=5)  # not through the application
        (manifest,) = qs_api.get(f"{PLANS}{plan.pk}/").json()["signatures"]
        assert (manifest["state"], manifest["counts"]) == ("changed_after_signing", False)
        assert manifest["text"].endswith("changed after signing")

    def test_release_needs_a_test(self, qs_api):
        plan = TestPlanFactory()
        error = error_of(qs_api.post(f"{PLANS}{plan.pk}/release/"), 400, "tests")
        assert "at least one test" in error["message"]
        assert TestPlan.objects.get(pk=plan.pk).status == PlanStatus.DRAFT

    def test_release_twice_is_400(self, qs_api):
        plan = released_plan(TestFactory())
        released_at = plan.released_at
        error_of(qs_api.post(f"{PLANS}{plan.pk}/release/"), 400)
        assert TestPlan.objects.get(pk=plan.pk).released_at == released_at


class ReleasedPlanIsFrozenTests:
    @pytest.fixture
    def plan(self):
        return released_plan(TestFactory(code="A"), TestFactory(code="B"), code="RING-FINAL")

    def _assert_locked(self, response, plan, before):
        error = error_of(response, 400)
        assert "RING-FINAL v1 is released" in error["message"]
        assert "Create a new version" in error["message"]
        assert _plan_state(plan) == before

    def test_patch_name(self, qs_api, plan):
        before = _plan_state(plan)
        self._assert_locked(qs_api.patch(f"{PLANS}{plan.pk}/", {"name": "Changed"}), plan, before)

    def test_patch_tests(self, qs_api, plan):
        before = _plan_state(plan)
        body = {"tests": [{"test": TestFactory().pk, "replicates": 1}]}
        self._assert_locked(qs_api.patch(f"{PLANS}{plan.pk}/", body), plan, before)

    def test_post_tests(self, qs_api, plan):
        before = _plan_state(plan)
        body = {"tests": [{"test": plan.entries.last().test_id}]}
        self._assert_locked(qs_api.post(f"{PLANS}{plan.pk}/tests/", body), plan, before)

    def test_delete(self, qs_api, plan):
        before = _plan_state(plan)
        self._assert_locked(qs_api.delete(f"{PLANS}{plan.pk}/"), plan, before)

    def test_retired_plan_is_frozen_too(self, qs_api, plan):
        services.test_plan_retire(plan=plan)
        error = error_of(qs_api.patch(f"{PLANS}{plan.pk}/", {"name": "Changed"}), 400)
        assert "is retired" in error["message"]
        assert TestPlan.objects.get(pk=plan.pk).name != "Changed"


class VersionTests:
    def test_new_version_is_a_draft_copy(self, qs_api):
        a, b = TestFactory(code="A"), TestFactory(code="B")
        v1 = released_plan(a, b, code="RING-FINAL")
        TestPlanEntry.objects.filter(plan=v1, test=b).update(replicates=3)
        response = qs_api.post(f"{PLANS}{v1.pk}/new-version/")
        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["code"], body["version"], body["status"], body["name"]) == (
            "RING-FINAL",
            2,
            "draft",
            v1.name,
        )
        v2 = TestPlan.objects.get(code="RING-FINAL", version=2)
        assert body["id"] == v2.pk
        assert _entries(v2) == [("A", 1, 1), ("B", 2, 3)]
        assert TestPlan.objects.get(pk=v1.pk).status == PlanStatus.RELEASED  # v1 is untouched
        assert _entries(v1) == [("A", 1, 1), ("B", 2, 3)]

    def test_new_version_keeps_which_results_need_verification(self, qs_api, quality_specialist):
        a, b = TestFactory(code="A"), TestFactory(code="B")
        entries = [
            services.PlanEntryInput(test=a),
            services.PlanEntryInput(test=b, requires_verification=True),
        ]
        draft = services.test_plan_create(code="RING-FINAL", name="Ring", entries=entries)
        assert list(draft.entries.order_by("position").values_list("requires_verification", flat=True)) == [
            False,
            True,
        ]
        signer = signer_for(SignedAction.PLAN_RELEASE, quality_specialist)
        v1 = services.test_plan_release(plan=draft, user=quality_specialist, reason="v1", signer=signer)
        v2_id = qs_api.post(f"{PLANS}{v1.pk}/new-version/").json()["id"]
        copied = TestPlanEntry.objects.filter(plan=v2_id).order_by("position")
        assert list(copied.values_list("test__code", "requires_verification")) == [("A", False), ("B", True)]

    def test_new_version_can_be_edited_and_released(self, qs_api):
        a, b = TestFactory(code="A"), TestFactory(code="B")
        v1 = released_plan(a, code="RING-FINAL")
        v2_id = qs_api.post(f"{PLANS}{v1.pk}/new-version/").json()["id"]
        assert qs_api.post(f"{PLANS}{v2_id}/tests/", {"tests": [{"test": b.pk}]}).status_code == 200
        body = {"reason": "v2", "signature": signature_body("qs")}
        assert qs_api.post(f"{PLANS}{v2_id}/release/", body).status_code == 200
        assert _entries(TestPlan.objects.get(pk=v2_id)) == [("B", 1, 1)]
        assert _entries(v1) == [("A", 1, 1)]

    def test_new_version_of_an_old_version_takes_the_next_number(self, qs_api):
        v1 = released_plan(TestFactory(), code="RING-FINAL")
        services.test_plan_new_version(plan=v1)
        response = qs_api.post(f"{PLANS}{v1.pk}/new-version/")
        assert response.json()["version"] == 3
        assert sorted(TestPlan.objects.filter(code="RING-FINAL").values_list("version", flat=True)) == [
            1,
            2,
            3,
        ]

    def test_retire_a_released_plan(self, qs_api):
        plan = released_plan(TestFactory())
        response = qs_api.post(f"{PLANS}{plan.pk}/retire/")
        assert response.status_code == 200
        assert response.json()["status"] == "retired"
        assert TestPlan.objects.get(pk=plan.pk).status == PlanStatus.RETIRED

    def test_retire_a_draft_is_400(self, qs_api):
        plan = TestPlanFactory(tests=[TestFactory()])
        error = error_of(qs_api.post(f"{PLANS}{plan.pk}/retire/"), 400)
        assert "Only a released plan" in error["message"]
        assert TestPlan.objects.get(pk=plan.pk).status == PlanStatus.DRAFT


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locking needs PostgreSQL")
# serialized_rollback: restores the role groups afterwards, and keeps content type ids stable
# for the other transactional tests (see tests/conftest.py).
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_new_versions_get_consecutive_numbers():
    v1 = released_plan(TestFactory(), code="RING-FINAL")
    outcome: dict[str, object] = {}

    def second() -> None:
        try:
            outcome["version"] = services.test_plan_new_version(plan=v1).version
        except Exception as exc:
            outcome["error"] = exc
        finally:
            close_old_connections()
            connection.close()

    with transaction.atomic():
        assert services.test_plan_new_version(plan=v1).version == 2
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=1)  # it waits for this transaction, on a lock or on the unique index
    thread.join(timeout=10)
    assert outcome == {"version": 3}


class ListTests:
    def test_filter_by_status_code_and_test(self, qs_api):
        a, b = TestFactory(), TestFactory()
        released_plan(a, code="R")
        TestPlanFactory(code="D", tests=[b])
        codes = lambda params: [row["code"] for row in qs_api.get(PLANS, params).json()["results"]]  # noqa: E731
        assert codes({"status": "released"}) == ["R"]
        assert codes({"status": "draft"}) == ["D"]
        assert codes({"code": "r"}) == ["R"]
        assert codes({"test": b.pk}) == ["D"]

    def test_versions_are_listed_newest_first(self, qs_api):
        v1 = released_plan(TestFactory(), code="R")
        services.test_plan_new_version(plan=v1)
        rows = qs_api.get(PLANS).json()["results"]
        assert [(row["code"], row["version"]) for row in rows] == [("R", 2), ("R", 1)]

    def test_search(self, qs_api):
        TestPlanFactory(code="RING-FINAL", name="Ring")
        TestPlanFactory(code="SHAFT-FINAL", name="Shaft")
        rows = qs_api.get(PLANS, {"search": "shaft"}).json()["results"]
        assert [row["code"] for row in rows] == ["SHAFT-FINAL"]

    def test_list_query_count(self, qs_api, django_assert_max_num_queries):
        for _ in range(6):
            released_plan(TestFactory(), TestFactory(), TestFactory())
        with django_assert_max_num_queries(7):
            response = qs_api.get(PLANS)
        results = response.json()["results"]
        assert len(results) == 6
        assert all(len(row["entries"]) == 3 for row in results)

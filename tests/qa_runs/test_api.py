"""The QA API: packages (the credential written, never read back), starting a run (202, queued on
commit), its status and events after a sequence, cancel, per-role access."""

import json
from typing import Any

import pytest
from django.contrib.auth.models import AbstractBaseUser
from django.urls import reverse

from apps.qa_runs.choices import AuthKind, EventType, RunStatus
from apps.qa_runs.models import QaEvent, QaPackage, QaPackageRun
from apps.qa_runs.services import (
    event_publish,
    qa_package_create,
    qa_package_secret,
    qa_run_request,
    qa_run_transition,
)
from tests.support.qa_spec import things_spec

pytestmark = pytest.mark.django_db

PACKAGES = "/api/v1/qa/packages/"


def package_body(**extra: Any) -> dict[str, Any]:
    return {
        "name": "things",
        "target_base_url": "https://things.example.com/api",
        "spec_text": json.dumps(things_spec()),
        **extra,
    }


class PackageTests:
    def test_the_credential_is_stored_encrypted_and_never_echoed(self, api, quality_specialist):
        client = api(quality_specialist)
        response = client.post(PACKAGES, package_body(auth_kind="bearer", auth_secret="s3cret-token"))
        assert response.status_code == 201, response.json()
        body = response.json()
        assert "s3cret-token" not in response.content.decode()
        assert "auth_secret" not in body
        assert body["auth"] == "set"
        package = QaPackage.objects.get(pk=body["id"])
        assert package.auth_kind == AuthKind.BEARER
        assert "s3cret-token" not in package.auth_secret_encrypted
        assert qa_package_secret(package=package) == "s3cret-token"
        shown = client.get(f"{PACKAGES}{package.pk}/")
        assert "s3cret-token" not in shown.content.decode()
        assert shown.json()["auth"] == "set"

    def test_a_change_without_the_credential_keeps_it_and_an_env_name_replaces_it(
        self, api, quality_specialist
    ):
        client = api(quality_specialist)
        created = client.post(PACKAGES, package_body(auth_kind="bearer", auth_secret="first")).json()
        response = client.patch(f"{PACKAGES}{created['id']}/", {"description": "now described"})
        assert response.status_code == 200
        package = QaPackage.objects.get(pk=created["id"])
        assert package.description == "now described"
        assert qa_package_secret(package=package) == "first"
        response = client.patch(f"{PACKAGES}{created['id']}/", {"auth_secret_env": "THINGS_TOKEN"})
        assert response.json()["auth"] == "env: THINGS_TOKEN"
        package.refresh_from_db()
        assert package.auth_secret_encrypted == ""

    def test_a_bearer_package_without_a_credential_is_refused_in_words(self, api, quality_specialist):
        response = api(quality_specialist).post(PACKAGES, package_body(auth_kind="bearer"))
        assert response.status_code == 400
        assert "credential" in response.json()["error"]["message"]
        assert not QaPackage.objects.exists()

    def test_a_package_needs_a_spec(self, api, quality_specialist):
        response = api(quality_specialist).post(PACKAGES, package_body(spec_text=""))
        assert response.status_code == 400
        assert response.json()["error"]["fields"].keys() == {"spec_url"}

    @pytest.mark.parametrize("role", ["manager", "operations_lead", "tester"])
    def test_other_roles_may_not_read_or_write_packages(self, request, api, role, package):
        client = api(request.getfixturevalue(role))
        assert client.get(PACKAGES).status_code == 403
        assert client.post(PACKAGES, package_body(name="other")).status_code == 403
        assert client.post(f"{PACKAGES}{package.pk}/run/").status_code == 403
        assert not QaPackageRun.objects.exists()


class SafetyTests:
    """What a package lets a run send, what it covers, and this system as a target, in the API."""

    def test_a_package_is_read_only_unless_it_says_otherwise_and_can_be_limited(
        self, api, quality_specialist
    ):
        client = api(quality_specialist)
        created = client.post(PACKAGES, package_body()).json()
        assert created["allow_unsafe_methods"] is False
        assert (created["include_tags"], created["path_prefix"]) == ([], "")
        changed = client.patch(
            f"{PACKAGES}{created['id']}/",
            {"allow_unsafe_methods": True, "include_tags": ["things"], "path_prefix": "/things"},
        )
        assert changed.status_code == 200, changed.json()
        package = QaPackage.objects.get(pk=created["id"])
        assert (package.allow_unsafe_methods, package.include_tags, package.path_prefix) == (
            True, ["things"], "/things",
        )  # fmt: skip

    def test_a_path_prefix_is_a_path(self, api, quality_specialist):
        response = api(quality_specialist).post(PACKAGES, package_body(path_prefix="things"))
        assert response.status_code == 400
        assert response.json()["error"]["fields"].keys() == {"path_prefix"}

    def test_this_system_as_the_target_is_refused_in_words(self, api, quality_specialist, settings):
        settings.ALLOWED_HOSTS = ["spc.plant.example"]
        client = api(quality_specialist)
        body = package_body(target_base_url="https://spc.plant.example/api/v1")
        response = client.post(PACKAGES, body, HTTP_HOST="spc.plant.example")
        assert response.status_code == 400
        message = response.json()["error"]["fields"]["target_base_url"][0]
        assert "this system itself" in message
        assert "QA_ALLOW_SELF_TARGET" in message
        assert not QaPackage.objects.exists()
        settings.QA_ALLOW_SELF_TARGET = True
        response = client.post(PACKAGES, body, HTTP_HOST="spc.plant.example")
        assert response.status_code == 201

    def test_a_run_against_this_system_is_not_started(self, api, quality_specialist, settings):
        package = qa_package_create(
            name="self", target_base_url="https://spc.plant.example:8443/", spec_text="{}"
        )
        settings.ALLOWED_HOSTS = ["spc.plant.example"]
        response = api(quality_specialist).post(
            f"{PACKAGES}{package.pk}/run/", HTTP_HOST="spc.plant.example:8443"
        )
        assert response.status_code == 409
        assert "this system was reached as spc.plant.example:8443" in response.json()["error"]["message"]
        assert not QaPackageRun.objects.exists()

    def test_a_run_that_may_write_needs_a_confirmation_naming_the_target(self, api, quality_specialist):
        client = api(quality_specialist)
        package = qa_package_create(
            name="writes",
            target_base_url="https://things.example.com/api",
            spec_text="{}",
            allow_unsafe_methods=True,
        )
        refused = client.post(f"{PACKAGES}{package.pk}/run/")
        assert refused.status_code == 400
        (message,) = refused.json()["error"]["fields"]["confirm_unsafe"]
        assert "https://things.example.com/api" in message
        assert "confirm_unsafe: true" in message
        assert not QaPackageRun.objects.exists()
        started = client.post(f"{PACKAGES}{package.pk}/run/", {"confirm_unsafe": True}, format="json")
        assert started.status_code == 202
        assert started.json()["allow_unsafe_methods"] is True
        assert "https://things.example.com/api" in started.json()["warning"]
        run = QaPackageRun.objects.get()
        assert run.requested_host == "testserver"

    def test_a_read_only_run_needs_no_confirmation(self, api, quality_specialist, package):
        response = api(quality_specialist).post(f"{PACKAGES}{package.pk}/run/")
        assert response.status_code == 202
        assert (response.json()["allow_unsafe_methods"], response.json()["warning"]) == (False, "")

    def test_the_page_says_what_a_package_sends_and_marks_the_one_that_writes(
        self, client, quality_specialist, package
    ):
        writes = qa_package_create(
            name="writes", target_base_url="https://w.example.com/", spec_text="{}", allow_unsafe_methods=True
        )
        client.force_login(quality_specialist)
        listing = client.get(reverse("web-qa-runs")).content.decode()
        assert f'data-start-run="{writes.pk}" data-unsafe-target="https://w.example.com/"' in listing
        assert f'data-start-run="{package.pk}">' in listing
        assert "read-only: GET, HEAD, OPTIONS" in listing
        assert "data-unsafe-dialog" in listing
        assert "<script>" not in listing  # the confirmation is static/js/qa_runs.js, no inline script


class RunTests:
    def test_starting_a_run_answers_202_with_the_plan_and_where_to_poll(
        self, api, quality_specialist, package, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = api(quality_specialist).post(f"{PACKAGES}{package.pk}/run/")
        assert response.status_code == 202
        body = response.json()
        run = QaPackageRun.objects.get()
        assert body["plan_id"] == str(run.plan_id)
        assert body["status"] == RunStatus.REQUESTED
        assert body["status_url"] == f"/api/v1/qa/runs/{run.plan_id}/"
        assert body["events_url"] == f"/api/v1/qa/runs/{run.plan_id}/events/"
        assert run.requested_by == quality_specialist
        assert len(callbacks) == 2  # the task is queued, the REQUESTED event pushed: after commit

    def test_status_and_events_after_a_sequence(self, api, quality_specialist, package):
        run = qa_run_request(package=package, requested_by=quality_specialist)
        run = qa_run_transition(run=run, to=RunStatus.SPEC_FETCHED, operations_total=4)
        event_publish(run=run, type=EventType.SCENARIO_CREATED, payload={"name": "x"})
        client = api(quality_specialist)
        status = client.get(f"/api/v1/qa/runs/{run.plan_id}/").json()
        assert status["status"] == RunStatus.SPEC_FETCHED
        assert status["operations_total"] == 4
        assert status["finished"] is False
        assert status["links"]["junit_url"] == f"/api/v1/qa/runs/{run.plan_id}/report/junit/"
        events = client.get(f"/api/v1/qa/runs/{run.plan_id}/events/?after=1").json()
        assert [(e["sequence"], e["type"]) for e in events["events"]] == [
            (2, EventType.SPEC_FETCHED),
            (3, EventType.SCENARIO_CREATED),
        ]
        assert events["last_sequence"] == 3
        nothing = client.get(f"/api/v1/qa/runs/{run.plan_id}/events/?after=3").json()
        assert nothing["events"] == []
        assert nothing["last_sequence"] == 3
        bad = client.get(f"/api/v1/qa/runs/{run.plan_id}/events/?after=-1")
        assert bad.status_code == 400

    def test_cancel_while_queued_ends_the_run_at_once(self, api, quality_specialist, package):
        run = qa_run_request(package=package, requested_by=None)
        response = api(quality_specialist).post(f"/api/v1/qa/runs/{run.plan_id}/cancel/")
        assert response.status_code == 202
        assert response.json()["status"] == RunStatus.CANCELLED
        types = list(QaEvent.objects.filter(run=run).values_list("type", flat=True))
        assert types == [EventType.REQUESTED, EventType.CANCELLED]

    def test_cancel_while_running_is_a_request_the_pipeline_carries_out(
        self, api, quality_specialist, package
    ):
        run = qa_run_transition(
            run=qa_run_request(package=package, requested_by=None), to=RunStatus.SPEC_FETCHED
        )
        response = api(quality_specialist).post(f"/api/v1/qa/runs/{run.plan_id}/cancel/")
        assert response.status_code == 202
        assert response.json()["status"] == RunStatus.SPEC_FETCHED
        assert response.json()["cancel_requested"] is True
        run.refresh_from_db()
        assert run.cancel_requested_at is not None

    def test_cancel_after_the_end_is_a_conflict(self, api, quality_specialist, package):
        run = qa_run_transition(run=qa_run_request(package=package, requested_by=None), to=RunStatus.FAILED)
        response = api(quality_specialist).post(f"/api/v1/qa/runs/{run.plan_id}/cancel/")
        assert response.status_code == 409
        assert "already ended" in response.json()["error"]["message"]

    @pytest.mark.parametrize("role", ["manager", "operations_lead", "tester"])
    def test_other_roles_may_not_see_runs(self, request, api, role, package):
        run = qa_run_request(package=package, requested_by=None)
        client = api(request.getfixturevalue(role))
        assert client.get(f"/api/v1/qa/runs/{run.plan_id}/").status_code == 403
        assert client.get(f"/api/v1/qa/runs/{run.plan_id}/events/").status_code == 403
        assert client.post(f"/api/v1/qa/runs/{run.plan_id}/cancel/").status_code == 403

    def test_an_unknown_plan_is_404(self, api, quality_specialist):
        response = api(quality_specialist).get("/api/v1/qa/runs/00000000-0000-0000-0000-000000000000/")
        assert response.status_code == 404


class PageTests:
    def test_the_run_page_for_a_quality_specialist(
        self, client, quality_specialist: AbstractBaseUser, package
    ):
        run = qa_run_request(package=package, requested_by=None)
        client.force_login(quality_specialist)
        html = client.get(reverse("web-qa-run", args=[run.plan_id])).content.decode()
        assert f'data-plan-id="{run.plan_id}"' in html
        assert "data-cancel" in html
        assert f"/api/v1/qa/runs/{run.plan_id}/report/junit/" in html
        listing = client.get(reverse("web-qa-runs")).content.decode()
        assert f'data-start-run="{package.pk}"' in listing
        assert '<a href="/qa/" aria-current="page">QA runs</a>' in listing

    @pytest.mark.parametrize("role", ["manager", "operations_lead", "tester"])
    def test_other_roles_get_403(self, request, client, role, package):
        run = qa_run_request(package=package, requested_by=None)
        client.force_login(request.getfixturevalue(role))
        assert client.get(reverse("web-qa-runs")).status_code == 403
        assert client.get(reverse("web-qa-run", args=[run.plan_id])).status_code == 403


class ResultsTests:
    def test_operations_scenarios_and_reports_of_a_run(self, api, quality_specialist, package):
        from apps.qa_runs.choices import ScenarioKind, ScenarioSource
        from apps.qa_runs.generate import Expect, GeneratedScenario, Step
        from apps.qa_runs.services import scenario_store

        run = qa_run_request(package=package, requested_by=None)
        step = Step(method="GET", path="/ping", expect=Expect((200,)), operation_id="ping")
        for position, kind in enumerate([ScenarioKind.POSITIVE, ScenarioKind.NEGATIVE], start=1):
            scenario = GeneratedScenario(
                name=f"ping {kind}", operation_id="ping", method="GET", path="/ping", kind=kind,
                source=ScenarioSource.GENERATED, steps=(step,),
            )  # fmt: skip
            scenario_store(run=run, scenario=scenario, position=position)
        run.scenarios.filter(position=1).update(passed=True)
        run.scenarios.filter(position=2).update(passed=False)
        client = api(quality_specialist)
        operations = client.get(f"/api/v1/qa/runs/{run.plan_id}/operations/")
        assert operations.status_code == 200, operations.content
        assert operations.json() == [
            {"operation_id": "ping", "method": "GET", "path": "/ping", "scenarios": 2, "passed": 1,
             "failed": 1, "skipped": 0, "pending": 0}
        ]  # fmt: skip
        failed = client.get(f"/api/v1/qa/runs/{run.plan_id}/scenarios/?passed=false").json()
        assert [s["name"] for s in failed["results"]] == ["ping negative"]
        junit = client.get(f"/api/v1/qa/runs/{run.plan_id}/report/junit/")
        assert junit.status_code == 200
        assert junit["Content-Type"].startswith("application/xml")
        assert b"<testsuite" in junit.content
        html = client.get(f"/api/v1/qa/runs/{run.plan_id}/report/html/", HTTP_ACCEPT="text/html")
        assert html.status_code == 200
        assert b"ping negative" in html.content

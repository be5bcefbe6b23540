"""Out-of-spec investigations (#18): opened by the pipeline for a tester's confirmed result outside
its specification limits (never for device data), worked open → phase I → closed, and blocking
the lot's release until closed."""

import datetime

import pytest
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.observations import services as observation_services
from apps.observations.choices import ObservationStatus
from apps.observations.models import Observation
from apps.records import tasks
from apps.records.models import OosInvestigation
from tests.config.helpers import error_of
from tests.factories import ItemFactory
from tests.support.records import Review

pytestmark = pytest.mark.django_db
OPEN = "records.oos_open"


def confirm(review: Review, sent_tasks, capture, item: int, values: list[float]) -> int:
    """A tester's DIA result confirmed by the pipeline, its on-commit work run; its id."""
    (pk,) = review.plant.record(
        {"item": review.plant.items[item], "test": review.plant.dia, "values": values}
    )
    with capture(execute=True):
        observation_services.observations_process(ids=[pk])
    return pk


class OpeningTests:
    def test_a_confirmed_manual_result_out_of_spec_opens_one(
        self, review, sent_tasks, django_capture_on_commit_callbacks
    ):
        pk = confirm(review, sent_tasks, django_capture_on_commit_callbacks, 1, [76.2])
        confirm(review, sent_tasks, django_capture_on_commit_callbacks, 0, [72.0])  # in spec: nothing
        queued = [kwargs for name, kwargs in sent_tasks if name == OPEN]
        assert queued == [{"observation_ids": [pk]}]
        assert tasks.records_oos_open_task(**queued[0]) == 1
        assert tasks.records_oos_open_task(**queued[0]) == 0  # redelivered: nothing new
        investigation = OosInvestigation.objects.get()
        assert (investigation.lot, investigation.observation_id, investigation.test) == (
            review.lot, pk, review.plant.dia,
        )  # fmt: skip
        assert (investigation.status, investigation.outcome) == ("open", "")
        assert AuditEntry.objects.filter(object_id=str(investigation.pk), action="create").exists()

    def test_a_value_on_the_limit_is_in_spec(self, review, sent_tasks, django_capture_on_commit_callbacks):
        confirm(review, sent_tasks, django_capture_on_commit_callbacks, 1, [75.0])
        assert [name for name, _ in sent_tasks if name == OPEN] == []

    def test_device_data_out_of_spec_opens_none(
        self, review, device_client, sent_tasks, django_capture_on_commit_callbacks
    ):
        observed = (timezone.now() - datetime.timedelta(seconds=5)).isoformat()
        common = {
            "product": "RING-74",
            "test": "DIA",
            "lot": "L-1",
            "values": [77.0],
            "observed_at": observed,
        }
        ItemFactory(lot=review.lot, serial="0009", plans=[review.plant.ring])  # not handed to a tester
        body = [common, {**common, "item": "0009"}]  # lot-level, and on an item
        response = device_client.post("/api/v1/device/observations/", body, format="json")
        assert response.status_code == 202, response.content
        ids = list(Observation.objects.values_list("pk", flat=True))
        with django_capture_on_commit_callbacks(execute=True):
            observation_services.observations_process(ids=ids)
        statuses = set(Observation.objects.values_list("status", flat=True))
        assert statuses == {ObservationStatus.CONFIRMED}
        assert [name for name, _ in sent_tasks if name == OPEN] == []
        assert not OosInvestigation.objects.exists()


class WorkingTests:
    @pytest.fixture
    def investigation(self, review, sent_tasks, django_capture_on_commit_callbacks):
        pk = confirm(review, sent_tasks, django_capture_on_commit_callbacks, 1, [76.2])
        tasks.records_oos_open_task(observation_ids=[pk])
        return OosInvestigation.objects.get()

    def test_start_note_close_confirmed(self, api, quality_specialist, investigation):
        client = api(quality_specialist)
        base = f"/api/v1/oos-investigations/{investigation.pk}/"
        error_of(
            client.post(f"{base}close/", {"outcome": "confirmed_oos", "summary": "x"}, format="json"), 409
        )
        started = client.post(f"{base}start/")
        assert started.status_code == 200, started.content
        assert (started.json()["status"], started.json()["owner"]) == ("phase_one", quality_specialist.pk)
        error_of(client.post(f"{base}notes/", {"text": " "}, format="json"), 400, "text")
        noted = client.post(f"{base}notes/", {"text": "balance calibrated; standard in range"}, format="json")
        assert [n["text"] for n in noted.json()["notes"]] == ["balance calibrated; standard in range"]
        assert noted.json()["notes"][0]["written_by_name"] == "qs"
        closed = client.post(
            f"{base}close/", {"outcome": "confirmed_oos", "summary": "no lab cause"}, format="json"
        )
        assert closed.status_code == 200, closed.content
        body = closed.json()
        assert (body["status"], body["outcome"], body["closed_by"]) == (
            "closed",
            "confirmed_oos",
            quality_specialist.pk,
        )
        listed = client.get("/api/v1/oos-investigations/?status=closed").json()
        assert [row["id"] for row in listed["results"]] == [investigation.pk]

    def test_a_lab_error_needs_the_result_invalidated_first(self, api, quality_specialist, investigation):
        client = api(quality_specialist)
        base = f"/api/v1/oos-investigations/{investigation.pk}/"
        client.post(f"{base}start/")
        body = {"outcome": "lab_error", "summary": "pipette out of calibration"}
        error = error_of(client.post(f"{base}close/", body, format="json"), 409)
        assert "invalidate" in error["message"]
        Observation.objects.filter(pk=investigation.observation_id).update(
            status=ObservationStatus.INVALIDATED
        )
        assert client.post(f"{base}close/", body, format="json").json()["outcome"] == "lab_error"

    def test_only_quality_specialists_work_them(self, api, operations_lead, tester, investigation):
        base = f"/api/v1/oos-investigations/{investigation.pk}/"
        assert api(operations_lead).get(base).status_code == 200
        error_of(api(operations_lead).post(f"{base}start/"), 403)
        error_of(api(tester).get(base), 403)
        investigation.refresh_from_db()
        assert investigation.status == "open"

"""The one error shape: its message names what failed, whatever the number of fields."""

import pytest
from rest_framework.request import Request

from apps.calculations.services import AlreadyAcknowledged, LimitsFrozen
from apps.qa_runs.net import TargetRefused
from apps.qa_runs.services import RunTransitionError
from openspc.api import exception_handler

pytestmark = pytest.mark.django_db


def test_several_failing_fields_give_a_message_naming_the_first_and_counting_others(api, quality_specialist):
    response = api(quality_specialist).post("/api/v1/products/", {"code": "", "name": ""}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"] == "code: This field may not be blank. (and 1 more field; see fields)"
    assert set(error["fields"]) == {"code", "name"}


def test_one_failing_field_is_named_alone(api, quality_specialist):
    response = api(quality_specialist).post("/api/v1/products/", {"code": "", "name": "Ring"}, format="json")

    assert response.json()["error"]["message"] == "code: This field may not be blank."


def test_a_batch_with_errors_in_several_entries_names_the_first_entry(api, tester):
    body = [{"item": "x", "test": "y", "values": "z"}, {"item": "x", "values": "z"}]

    error = api(tester).post("/api/v1/observations/", body, format="json").json()["error"]

    assert error["message"].startswith("[0].item: A valid integer is required. (and 5 more fields")
    assert "None" not in error["message"]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            AlreadyAcknowledged("Violation 7 was acknowledged already.", [7]),
            "Violation 7 was acknowledged already.",
        ),
        (LimitsFrozen("The limits are frozen."), "The limits are frozen."),
        (RunTransitionError("The run has ended."), "The run has ended."),
        (TargetRefused("http://testserver/", "it is this system itself"), "It is this system itself."),
    ],
)
def test_a_domain_conflict_is_a_409_from_the_one_exception_handler(rf, error, message):
    """Views call the service and let its refusal through; the handler answers 409 `conflict`."""
    response = exception_handler(error, {"request": Request(rf.post("/")), "view": None})
    assert response is not None
    assert response.status_code == 409
    assert response.data == {"error": {"code": "conflict", "message": message, "fields": {}}}

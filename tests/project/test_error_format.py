"""The one error shape: its message names what failed, whatever the number of fields."""

import pytest

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

"""GET /api/v1/ping/: {"ok": true} for anyone authenticated, with no work beyond authentication (the
no-op ceiling bench/samples_sync.py measures the API against)."""

import pytest
from rest_framework.test import APIClient

from tests.config.helpers import error_of

pytestmark = pytest.mark.django_db

PING = "/api/v1/ping/"


@pytest.mark.parametrize("role", ["tester", "manager", "operations_lead", "quality_specialist"])
def test_every_role_gets_ok(api, request, role):
    response = api(request.getfixturevalue(role)).get(PING)
    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_a_device_token_gets_ok(device_api):
    response = device_api.get(PING)
    assert (response.status_code, response.json()) == (200, {"ok": True})


def test_anonymous_is_401():
    error = error_of(APIClient().get(PING), 401)
    assert error["code"] == "not_authenticated"


def test_a_jwt_ping_reads_the_user_and_nothing_else(api, tester, django_assert_num_queries):
    client = api(tester)
    with django_assert_num_queries(1) as captured:  # the token's user (JWTAuthentication)
        assert client.get(PING).json() == {"ok": True}
    assert "auth_user" in captured.captured_queries[0]["sql"]


def test_ping_is_read_only(api, tester):
    error_of(api(tester).post(PING, {}), 405)

"""Sign-in lockout (django-axes) at every password entry point, and the token endpoints' rate limit.

LOGIN_FAILURE_LIMIT (5 by default) wrong passwords for one user name from one address lock that
pair out for LOGIN_LOCKOUT_MINUTES: then even the right password is refused (429), another
address is not, and a success before the limit clears the count.
"""

import datetime
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from openspc.roles import Role
from openspc.signin import client_ip
from tests.config.helpers import error_of
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

RIGHT, WRONG = "pw-for-tests-only", "not-the-password"
TOKEN = "/api/v1/auth/token/"
LIMIT = 5


@pytest.fixture(autouse=True)
def _no_counts_from_other_tests() -> None:
    cache.clear()  # the rate limit's counters (Redis); the lockout's are rows, rolled back


@pytest.fixture
def operator() -> Any:
    return UserFactory(username="operator", roles=[Role.QUALITY_SPECIALIST], is_staff=True)


def token_post(password: str, *, address: str = "10.0.0.7", username: str = "operator", **extra: str) -> Any:
    return APIClient(REMOTE_ADDR=address, **extra).post(
        TOKEN, {"username": username, "password": password}, format="json"
    )


class TokenEndpointTests:
    def test_after_the_limit_even_the_right_password_is_refused_429_in_the_error_format(self, operator):
        answers = [token_post(WRONG) for _ in range(LIMIT)]
        assert [a.status_code for a in answers[:-1]] == [401] * (LIMIT - 1)
        # The failure that reaches the limit already says so.
        assert error_of(answers[-1], 429)["code"] == "locked_out"
        error = error_of(token_post(RIGHT), 429)
        assert error["code"] == "locked_out"
        assert "15 minutes" in error["message"]
        attempt = AccessAttempt.objects.get(username="operator", ip_address="10.0.0.7")
        assert attempt.failures_since_start == LIMIT

    def test_the_lock_is_for_the_user_name_and_address_pair(self, operator):
        for _ in range(LIMIT):
            token_post(WRONG)
        # Someone else typing this name elsewhere cannot lock the operator out everywhere.
        assert token_post(RIGHT, address="10.0.0.8").status_code == 200
        # Another user at the locked address is not affected either.
        UserFactory(username="second")
        assert token_post(RIGHT, username="second").status_code == 200

    def test_a_success_clears_the_count(self, operator):
        for _ in range(LIMIT - 1):
            assert token_post(WRONG).status_code == 401
        assert token_post(RIGHT).status_code == 200
        assert not AccessAttempt.objects.filter(username="operator").exists()
        for _ in range(LIMIT - 1):
            assert token_post(WRONG).status_code == 401
        assert token_post(RIGHT).status_code == 200

    def test_the_lock_ends_after_the_cool_off(self, operator):
        for _ in range(LIMIT):
            token_post(WRONG)
        assert token_post(RIGHT).status_code == 429
        # Move the lockout 16 minutes into the past (LOGIN_LOCKOUT_MINUTES is 15).
        AccessAttempt.objects.update(
            attempt_time=datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=16)
        )
        assert token_post(RIGHT).status_code == 200

    def test_a_forged_forwarded_for_header_does_not_escape_the_lock(self, operator):
        for _ in range(LIMIT):
            token_post(WRONG)
        # Not behind a proxy (BEHIND_TLS_PROXY off): the header is the client's, so it is ignored.
        answer = token_post(RIGHT, HTTP_X_FORWARDED_FOR="203.0.113.9")
        assert error_of(answer, 429)["code"] == "locked_out"

    def test_the_limit_is_a_setting(self, operator, settings):
        settings.AXES_FAILURE_LIMIT = 2
        assert token_post(WRONG).status_code == 401
        assert token_post(WRONG).status_code == 429
        assert token_post(RIGHT).status_code == 429


def test_behind_the_proxy_the_client_address_is_the_last_forwarded_one(settings, rf):
    request = rf.get("/", REMOTE_ADDR="10.1.1.1", HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9")
    settings.BEHIND_TLS_PROXY = False
    assert client_ip(request) == "10.1.1.1"
    settings.BEHIND_TLS_PROXY = True
    assert client_ip(request) == "203.0.113.9"
    assert client_ip(rf.get("/", REMOTE_ADDR="10.1.1.1")) == "10.1.1.1"


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/login/", {}),
        ("/admin/login/", {"next": "/admin/"}),
        ("/api-auth/login/", {"next": "/api/v1/"}),
    ],
)
def test_every_sign_in_page_locks_and_says_why(operator, path, fields):
    client = Client(REMOTE_ADDR="10.0.0.7")
    for _ in range(LIMIT - 1):
        answer = client.post(path, {"username": "operator", "password": WRONG, **fields})
        assert answer.status_code == 200  # the form again, with Django's error
    answer = client.post(path, {"username": "operator", "password": WRONG, **fields})
    assert answer.status_code == 429
    answer = client.post(path, {"username": "operator", "password": RIGHT, **fields})
    assert answer.status_code == 429
    page = answer.content.decode()
    assert "Too many failed sign-ins for this user from this address" in page
    assert "blocked for 15 minutes" in page
    assert SESSION_KEY not in client.session  # not signed in
    # From another address the right password still signs in.
    other = Client(REMOTE_ADDR="10.0.0.8")
    assert other.post(path, {"username": "operator", "password": RIGHT, **fields}).status_code == 302
    assert other.session[SESSION_KEY] == str(operator.pk)


def test_a_sign_in_on_the_page_clears_the_count(operator):
    client = Client(REMOTE_ADDR="10.0.0.7")
    for _ in range(LIMIT - 1):
        client.post("/login/", {"username": "operator", "password": WRONG})
    assert client.post("/login/", {"username": "operator", "password": RIGHT}).status_code == 302
    assert not AccessAttempt.objects.filter(username="operator").exists()


class RateLimitTests:
    def test_the_token_endpoint_answers_429_after_the_rate(self, operator, settings):
        # 20 a minute per address (AUTH_THROTTLE_PER_MINUTE); other addresses are not held up.
        answers = [token_post(RIGHT) for _ in range(20)]
        assert {a.status_code for a in answers} == {200}
        error = error_of(token_post(RIGHT), 429)
        assert error["code"] == "throttled"
        assert token_post(RIGHT, address="10.0.0.8").status_code == 200

    def test_the_refresh_endpoint_is_rate_limited_too(self, operator):
        client = APIClient(REMOTE_ADDR="10.0.0.9")
        refresh = token_post(RIGHT, address="10.0.0.9").json()["refresh"]
        for _ in range(19):
            answer = client.post(f"{TOKEN}refresh/", {"refresh": refresh}, format="json")
            assert answer.status_code == 200, answer.content
            refresh = answer.json()["refresh"]
        assert error_of(client.post(f"{TOKEN}refresh/", {"refresh": refresh}, format="json"), 429)[
            "code"
        ] == ("throttled")

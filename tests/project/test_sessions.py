"""Browser sessions end after SESSION_IDLE_MINUTES without a request, and SESSION_MAX_HOURS after
the sign-in however busy; time is moved by patching django.utils.timezone.now."""

import datetime
from collections.abc import Callable

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.utils import timezone

from openspc.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def move_time(monkeypatch) -> Callable[[datetime.timedelta], None]:
    real_now = timezone.now

    def move(by: datetime.timedelta) -> None:
        start = real_now()
        monkeypatch.setattr(timezone, "now", lambda: start + by)

    return move


@pytest.fixture
def signed_in() -> Client:
    UserFactory(username="operator", roles=[Role.MANAGER])
    client = Client()
    answer = client.post("/login/", {"username": "operator", "password": "pw-for-tests-only"})
    assert answer.status_code == 302
    assert client.get("/").status_code == 200
    return client


def test_the_defaults_are_30_idle_minutes_and_12_hours(settings):
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST is True
    assert settings.SESSION_MAX_HOURS == 12


def test_an_idle_session_ends(signed_in, move_time):
    move_time(datetime.timedelta(minutes=29))
    assert signed_in.get("/").status_code == 200
    # 29 minutes after the last request, not after the sign-in: still signed in.
    move_time(datetime.timedelta(minutes=29 + 29))
    assert signed_in.get("/").status_code == 200
    move_time(datetime.timedelta(minutes=29 + 29 + 31))
    answer = signed_in.get("/")
    assert answer.status_code == 302
    assert answer["Location"].startswith("/login/")


def test_a_busy_session_ends_after_the_maximum(signed_in, move_time):
    minutes = 0
    while minutes < 12 * 60 - 20:  # a request every 20 minutes for just under 12 hours
        minutes += 20
        move_time(datetime.timedelta(minutes=minutes))
        assert signed_in.get("/").status_code == 200, minutes
    move_time(datetime.timedelta(hours=12, minutes=1))
    answer = signed_in.get("/")
    assert answer.status_code == 302
    assert answer["Location"].startswith("/login/")
    assert SESSION_KEY not in signed_in.session


def test_the_maximum_is_a_setting(signed_in, move_time, settings):
    settings.SESSION_MAX_HOURS = 1
    for minutes in (20, 40, 59):
        move_time(datetime.timedelta(minutes=minutes))
        assert signed_in.get("/").status_code == 200
    move_time(datetime.timedelta(minutes=61))
    assert signed_in.get("/").status_code == 302


def test_a_session_from_before_the_rule_is_signed_out():
    user = UserFactory(username="old", roles=[Role.MANAGER])
    client = Client()
    client.force_login(user)
    session = client.session
    del session["openspc_signed_in_at"]
    session.save()
    assert client.get("/").status_code == 302

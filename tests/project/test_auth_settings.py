"""The sign-in, session and token settings come from the environment and are validated."""

import pytest

from tests.support.settings_env import GOOD_KEY, load_settings

SHOW = (
    "from django.conf import settings as s;"
    "print(s.AXES_FAILURE_LIMIT, int(s.AXES_COOLOFF_TIME.total_seconds()), s.AXES_LOCKOUT_PARAMETERS,"
    " s.AUTH_PASSWORD_VALIDATORS[1]['OPTIONS']['min_length'], s.SESSION_COOKIE_AGE, s.SESSION_MAX_HOURS,"
    " s.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['auth'], s.REST_FRAMEWORK.get('NUM_PROXIES'))"
)


def test_defaults(tmp_path):
    result = load_settings(tmp_path, SHOW, SECRET_KEY=GOOD_KEY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "5",
        "900",
        "[['username',",
        "'ip_address']]",
        "12",
        "1800",
        "12",
        "20/min",
        "None",
    ]


def test_each_is_set_from_its_variable(tmp_path):
    env = {
        "LOGIN_FAILURE_LIMIT": "3",
        "LOGIN_LOCKOUT_MINUTES": "30",
        "PASSWORD_MIN_LENGTH": "16",
        "SESSION_IDLE_MINUTES": "10",
        "SESSION_MAX_HOURS": "8",
        "AUTH_THROTTLE_PER_MINUTE": "5",
        "BEHIND_TLS_PROXY": "1",
    }
    result = load_settings(tmp_path, SHOW, SECRET_KEY=GOOD_KEY, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "3",
        "1800",
        "[['username',",
        "'ip_address']]",
        "16",
        "600",
        "8",
        "5/min",
        "1",
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PASSWORD_MIN_LENGTH": "6"}, "PASSWORD_MIN_LENGTH must be at least 8"),
        ({"LOGIN_FAILURE_LIMIT": "0"}, "LOGIN_FAILURE_LIMIT must be at least 1"),
        ({"LOGIN_LOCKOUT_MINUTES": "soon"}, "LOGIN_LOCKOUT_MINUTES must be a whole number"),
        ({"SESSION_IDLE_MINUTES": "0"}, "SESSION_IDLE_MINUTES must be at least 1"),
        ({"SESSION_MAX_HOURS": "-1"}, "SESSION_MAX_HOURS must be at least 1"),
        ({"AUTH_THROTTLE_PER_MINUTE": "0"}, "AUTH_THROTTLE_PER_MINUTE must be at least 1"),
    ],
)
def test_a_bad_value_stops_start_up(tmp_path, env, message):
    result = load_settings(tmp_path, SECRET_KEY=GOOD_KEY, **env)
    assert result.returncode != 0
    assert message in result.stderr

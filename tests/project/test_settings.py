"""Settings are validated at start-up: a bad value stops it with a message naming the variable."""

import pytest

from tests.support.settings_env import BASE_DIR, GOOD_KEY, load_settings


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe", "SECRET_KEY": GOOD_KEY}, "DEBUG must be one of"),
        ({}, "SECRET_KEY must be set unless DEBUG is on"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY must be at least 32 characters"),
        (
            {"SECRET_KEY": GOOD_KEY, "DATABASE_URL": "mysql://db/x"},
            "DATABASE_URL must be a URL starting with",
        ),
        ({"SECRET_KEY": GOOD_KEY, "REDIS_URL": "http://cache"}, "REDIS_URL must be a URL starting with"),
        ({"SECRET_KEY": GOOD_KEY, "MQTT_URL": "tcp://broker"}, "MQTT_URL must be a URL starting with"),
        ({"SECRET_KEY": GOOD_KEY, "LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be"),
        ({"SECRET_KEY": GOOD_KEY, "JWT_ACCESS_MINUTES": "ten"}, "JWT_ACCESS_MINUTES must be a whole number"),
        ({"SECRET_KEY": GOOD_KEY, "SECURE_HSTS_SECONDS": "-1"}, "SECURE_HSTS_SECONDS must be at least 0"),
        ({"SECRET_KEY": GOOD_KEY, "DATABASE_POOL_SIZE": "-2"}, "DATABASE_POOL_SIZE must be at least 0"),
        (
            {"SECRET_KEY": GOOD_KEY, "WS_IDLE_TIMEOUT_SECONDS": "0"},
            "WS_IDLE_TIMEOUT_SECONDS must be at least 1",
        ),
        (
            {"SECRET_KEY": GOOD_KEY, "CHANNEL_LAYER_SOCKET_TIMEOUT_SECONDS": "5"},
            "CHANNEL_LAYER_SOCKET_TIMEOUT_SECONDS must be at least 10",
        ),
    ],
)
def test_bad_value_stops_start_up_naming_the_variable(tmp_path, env, message):
    result = load_settings(tmp_path, **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_defaults_are_sqlite_under_var_and_debug_off(tmp_path):
    result = load_settings(tmp_path, SECRET_KEY=GOOD_KEY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "False"]


def test_postgres_url_selects_postgresql(tmp_path):
    result = load_settings(tmp_path, SECRET_KEY=GOOD_KEY, DATABASE_URL="postgres://u@db:5432/openspc")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "django.db.backends.postgresql"


POOL = (
    "from django.conf import settings; d = settings.DATABASES['default'];"
    "print(d['CONN_MAX_AGE'], d.get('OPTIONS', {}).get('pool', {}).get('max_size'))"
)


@pytest.mark.parametrize(
    ("entry", "env", "expected"),
    [
        # A worker or command keeps its one connection for CONN_MAX_AGE seconds.
        ("", {}, ["60", "None"]),
        # The ASGI process pools (a request has a thread of its own), sized by DATABASE_POOL_SIZE.
        ("import openspc.asgi; ", {}, ["0", "20"]),
        ("import openspc.asgi; ", {"DATABASE_POOL_SIZE": "5"}, ["0", "5"]),
        ("import openspc.asgi; ", {"DATABASE_POOL_SIZE": "0"}, ["60", "None"]),
        ("", {"DATABASE_POOL_SIZE": "3"}, ["0", "3"]),
    ],
)
def test_the_web_process_pools_postgresql_connections(tmp_path, entry, env, expected):
    result = load_settings(
        tmp_path, entry + POOL, SECRET_KEY=GOOD_KEY, DATABASE_URL="postgres://u@db:5432/openspc", **env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == expected


def test_sqlite_is_never_pooled(tmp_path):
    result = load_settings(tmp_path, "import openspc.asgi; " + POOL, SECRET_KEY=GOOD_KEY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "None"]


def test_debug_without_key_keeps_a_generated_key_under_var(tmp_path):
    first = load_settings(tmp_path, DEBUG="1")
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "secret_key"
    key = key_file.read_text()
    assert len(key) >= 50
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert load_settings(tmp_path, DEBUG="true").returncode == 0
    assert key_file.read_text() == key


TASK_LINES_SHOWN = (
    "import django, logging; django.setup(); "
    "print([logging.getLogger(name).isEnabledFor(level) for name in "
    "('celery.app.trace', 'celery.worker.strategy') for level in (logging.INFO, logging.ERROR)])"
)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "[False, True, False, True]"),
        ({"LOG_TASKS": "1"}, "[True, True, True, True]"),
        ({"LOG_LEVEL": "DEBUG"}, "[True, True, True, True]"),
    ],
)
def test_per_task_lines_only_when_asked_for_errors_always(tmp_path, env, expected):
    """A worker at a few hundred tasks a minute wrote two INFO lines per task (11 MB in 22 minutes
    of the demo); a task's failure is still an ERROR line."""
    result = load_settings(tmp_path, TASK_LINES_SHOWN, SECRET_KEY=GOOD_KEY, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_the_documented_production_workers_consume_every_routed_queue():
    """The worker commands in docs/operations.md, run as printed, leave no task waiting on a queue
    nobody consumes (QA runs stayed REQUESTED until the sweep failed them when qa_runs was missing)."""
    import re

    from django.conf import settings

    operations = (BASE_DIR / "docs" / "operations.md").read_text()
    commands = re.findall(r"^\.venv/bin/celery -A openspc worker -Q (\S+)", operations, flags=re.MULTILINE)
    consumed = {queue for command in commands for queue in command.split(",")}
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert commands, "docs/operations.md shows no worker command"
    assert routed <= consumed, f"queues no documented worker consumes: {sorted(routed - consumed)}"

"""OpenSPC settings, driven by environment variables.

Every variable is validated when the settings load: a bad value stops start-up
with ImproperlyConfigured naming the variable. With nothing set, the project
uses SQLite under var/; `make run` and `make test` also start an embedded
Redis and MQTT broker and set REDIS_URL / MQTT_URL for the processes they run.
"""

import contextlib
import datetime
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from openspc import env, queues
from openspc.api_tags import tag_list
from openspc.env import envbool, envhostsnets, envint, envlist, envurl, envurls, secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("OPENSPC_VAR_DIR", BASE_DIR / "var"))

DEBUG = envbool("DEBUG", False)
SECRET_KEY = secret_key(debug=DEBUG, var_dir=VAR_DIR)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
CSRF_FAILURE_VIEW = "openspc.api.csrf_failure"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    # Refresh tokens are recorded and blacklisted once used or revoked (SIMPLE_JWT below).
    "rest_framework_simplejwt.token_blacklist",
    # Sign-in lockout after repeated failures (AXES_* below).
    "axes",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "csp",
    "apps.audit",
    "apps.signatures",
    "apps.config",
    "apps.observations",
    "apps.calculations",
    "apps.subscriptions",
    "apps.records",
    "apps.mqtt_bridge",
    "apps.qa_runs",
    "apps.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "openspc.csp.WebSocketCSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "openspc.sessions.SessionLifetimeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A page whose database connection is lost answers 503 with Retry-After (openspc/middleware.py).
    "openspc.middleware.DatabaseUnavailableMiddleware",
    # Last, as django-axes asks: it turns a lockout into its response (openspc/signin.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "openspc.urls"
ASGI_APPLICATION = "openspc.asgi.application"
WSGI_APPLICATION = "openspc.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.web.context.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------

_database_url = envurl(
    "DATABASE_URL",
    f"sqlite:///{VAR_DIR / 'openspc.sqlite3'}",
    schemes={"postgres", "postgresql", "sqlite"},
)
DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Workers and the web process share the file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
# PostgreSQL connections pooled per process (psycopg_pool). Under ASGI every request runs in a
# thread of its own, so a persistent connection never serves a second request and each request
# would start a PostgreSQL server process; openspc/asgi.py therefore makes the web process
# default to a pool. Workers and commands run one thread and keep one connection (0, no pool).
DATABASE_POOL_SIZE = envint("DATABASE_POOL_SIZE", 0, minimum=0)
if DATABASE_POOL_SIZE and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # one that broke while idle is replaced
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(2, DATABASE_POOL_SIZE),
        "max_size": DATABASE_POOL_SIZE,
        "timeout": 10,  # seconds a request waits for a free connection before failing
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker, cache, channel layer -----------------------------

REDIS_URL = envurl("REDIS_URL", "redis://127.0.0.1:6379/0", schemes={"redis", "rediss", "unix"})
MQTT_URL = envurl("MQTT_URL", "mqtt://127.0.0.1:1883", schemes={"mqtt", "mqtts"})

CACHES = {
    "default": {
        "BACKEND": "openspc.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "openspc",
    }
}
# A live consumer waits for its events in a blocking Redis read that returns empty every 5 s
# (channels_redis's RedisChannelLayer.brpop_timeout). redis-py's default socket timeout is also 5 s,
# so that read timed out, the receive raised, and every connection idle for 5 s closed with 1011
# (channels_redis #422). The socket timeout must stay above the blocking read, but not be None: a
# Redis that stops answering (a cut network leaves the connection half-open, no reset arrives)
# would then hang every consumer forever instead of closing its socket so the client reconnects.
CHANNEL_LAYER_SOCKET_TIMEOUT_SECONDS = envint("CHANNEL_LAYER_SOCKET_TIMEOUT_SECONDS", 15, minimum=10)
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT_SECONDS,
                    # Connecting never blocks: an unreachable Redis fails fast, as before.
                    "socket_connect_timeout": 5,
                }
            ],
            "prefix": "openspc:channels",
        },
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A task is acknowledged after it ran, so a killed worker's task is delivered again.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Without this, Celery's Django fixup closes the database connection before and after every
# task: a new PostgreSQL server process per task (three per ingested batch, measured, and most
# of PostgreSQL's CPU). Connections are kept the way Django's request cycle keeps them instead:
# openspc/celery.py closes unusable ones, and ones older than CONN_MAX_AGE, around each task.
CELERY_DB_REUSE_MAX = 1_000_000
# Observations are checked on their own queue, so a backlog of other work never delays them.
# Calculations have their own queue too; per-characteristic order comes from a row lock
# (apps/calculations/services/calculate.py), so any number of workers may share it.
CELERY_TASK_ROUTES = {
    queues.OBSERVATIONS_PROCESS: {"queue": queues.OBSERVATIONS_QUEUE},
    queues.CALCULATIONS_APPLY: {"queue": queues.CALCULATIONS_QUEUE},
    queues.CALCULATIONS_WARM_UP: {"queue": queues.CALCULATIONS_QUEUE},
    # The fan-out of calculation events into notifications; the default queue every worker reads.
    queues.SUBSCRIPTIONS_FANOUT: {"queue": queues.DEFAULT_QUEUE},
    queues.SUBSCRIPTIONS_EMAIL_DIGEST: {"queue": queues.DEFAULT_QUEUE},
    # Out-of-spec investigations opened for confirmed manual results (rare: never device data).
    queues.RECORDS_OOS_OPEN: {"queue": queues.DEFAULT_QUEUE},
}
# The worker rejects an observation measured (observed_at) more than this after it was received: a
# device clock set wrong, or a time in the year 9999, would sort after every real point for good.
OBSERVATION_MAX_FUTURE_SECONDS = envint("OBSERVATION_MAX_FUTURE_SECONDS", 300, minimum=0)
# ... or more than this many days before it was received (a clock reset to 1970, a typo in the year).
OBSERVATION_HORIZON_DAYS = envint("OBSERVATION_HORIZON_DAYS", 3650, minimum=1)
# Rows left `received` longer than this are queued again (broker down, worker killed).
OBSERVATIONS_REQUEUE_AFTER_SECONDS = envint("OBSERVATIONS_REQUEUE_AFTER_SECONDS", 300, minimum=10)
# Subscriptions that e-mail get one message per user per interval, however many notifications.
NOTIFICATION_EMAIL_INTERVAL_SECONDS = envint("NOTIFICATION_EMAIL_INTERVAL_SECONDS", 300, minimum=10)
# New alarm notifications (violation events, data rejected) one user gets in an hour; past that,
# they are folded into one "N more alarms" notification (EEMUA 191: about 6 alarms an hour is
# manageable; the budget is per person, across every line they follow).
NOTIFICATION_ALARMS_PER_HOUR = envint("NOTIFICATION_ALARMS_PER_HOUR", 12, minimum=1)
# How often unfinished subgroups are checked against their characteristic's subgroup_timeout, so
# one ends at most this long after its timeout.
SUBGROUP_TIMEOUT_SWEEP_SECONDS = envint("SUBGROUP_TIMEOUT_SWEEP_SECONDS", 5, minimum=1)
# Capability is trusted from this many values (individuals) or subgroups (n > 1) on (AIAG SPC manual);
# below, the pages show the indices greyed, "too few values" (docs/alarms.md, "Honest capability").
CAPABILITY_MIN_VALUES = envint("CAPABILITY_MIN_VALUES", 100, minimum=2)
CAPABILITY_MIN_SUBGROUPS = envint("CAPABILITY_MIN_SUBGROUPS", 25, minimum=2)
# Data health (docs/alarms.md): how often it is checked, over how long a window, and when a
# characteristic counts as having its values rejected (a share of its values, and at least so many).
DATA_HEALTH_INTERVAL_SECONDS = envint("DATA_HEALTH_INTERVAL_SECONDS", 60, minimum=1)
DATA_HEALTH_WINDOW_SECONDS = envint("DATA_HEALTH_WINDOW_SECONDS", 3600, minimum=60)
DATA_HEALTH_REJECTED_PERCENT = envint("DATA_HEALTH_REJECTED_PERCENT", 20, minimum=1)
DATA_HEALTH_MIN_REJECTED = envint("DATA_HEALTH_MIN_REJECTED", 3, minimum=1)
# Sampling schedules (docs/alarms.md): how often due and overdue samples are checked, and when the
# plant's shifts start (local times in TIME_ZONE) for schedules "once per shift".
SCHEDULE_CHECK_SECONDS = envint("SCHEDULE_CHECK_SECONDS", 60, minimum=1)
SHIFT_STARTS = os.environ.get("SHIFT_STARTS", "06:00,14:00,22:00")
try:
    if not [datetime.time.fromisoformat(part.strip()) for part in SHIFT_STARTS.split(",")]:
        raise ValueError
except ValueError:
    raise ImproperlyConfigured(
        f"SHIFT_STARTS must be times like 06:00,14:00,22:00; got {SHIFT_STARTS!r}"
    ) from None
CELERY_BEAT_SCHEDULE = {
    "observations-schedules": {
        "task": queues.OBSERVATIONS_SCHEDULES,
        "schedule": float(SCHEDULE_CHECK_SECONDS),
        "options": {"expires": float(SCHEDULE_CHECK_SECONDS)},
    },
    "observations-requeue-stale": {"task": queues.OBSERVATIONS_REQUEUE_STALE, "schedule": 60.0},
    "observations-data-health": {
        "task": queues.OBSERVATIONS_DATA_HEALTH,
        "schedule": float(DATA_HEALTH_INTERVAL_SECONDS),
        "options": {"expires": float(DATA_HEALTH_INTERVAL_SECONDS)},
    },
    "observations-subgroups-timeout": {
        "task": queues.OBSERVATIONS_SUBGROUPS_TIMEOUT,
        "schedule": float(SUBGROUP_TIMEOUT_SWEEP_SECONDS),
        # Workers down for a while: one sweep does the work of all missed ones, so none piles up.
        "options": {"expires": float(SUBGROUP_TIMEOUT_SWEEP_SECONDS)},
    },
    "calculations-catch-up": {"task": queues.CALCULATIONS_CATCH_UP, "schedule": 60.0},
    "subscriptions-email-digest": {
        "task": queues.SUBSCRIPTIONS_EMAIL_DIGEST,
        "schedule": float(NOTIFICATION_EMAIL_INTERVAL_SECONDS),
    },
}

# WebSocket connections (openspc/sockets.py) with no message from the client for this
# long are closed (code 4408); clients send {"type": "ping"} to stay connected.
WS_IDLE_TIMEOUT_SECONDS = envint("WS_IDLE_TIMEOUT_SECONDS", 300, minimum=1)

# Largest request body Django reads (a batch of 5,000 device observations is ~1 MB); the API
# answers a larger one 413 in its error format, before parsing it.
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("MAX_REQUEST_BYTES", 4 * 1024 * 1024, minimum=64 * 1024)

# --- E-mail (notification digests) ----------------------------------------------------------

_email_backends = {
    "console": "django.core.mail.backends.console.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
    "dummy": "django.core.mail.backends.dummy.EmailBackend",
}
_email_backend = os.environ.get("EMAIL_BACKEND", "").strip() or "console"
if _email_backend not in _email_backends and _email_backend not in _email_backends.values():
    _names = ", ".join(_email_backends)
    raise ImproperlyConfigured(
        f"EMAIL_BACKEND must be one of {_names} (or its Django path); got {_email_backend!r}"
    )
EMAIL_BACKEND = _email_backends.get(_email_backend, _email_backend)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost").strip()
EMAIL_PORT = envint("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
EMAIL_FILE_PATH = VAR_DIR / "mail"
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "").strip() or "openspc@localhost"
# Put before the links in e-mails (e.g. https://spc.example.com); notifications store paths.
NOTIFICATION_LINK_BASE_URL = os.environ.get("NOTIFICATION_LINK_BASE_URL", "").strip().rstrip("/")

# --- MQTT bridge (`manage.py mqtt_listen`, apps/mqtt_bridge) ------------------------------

_mqtt_protocol = os.environ.get("MQTT_PROTOCOL", "").strip() or "3.1.1"
if _mqtt_protocol not in {"3.1.1", "5"}:
    raise ImproperlyConfigured(f"MQTT_PROTOCOL must be 3.1.1 or 5; got {_mqtt_protocol!r}")
MQTT_PROTOCOL = _mqtt_protocol
# The listener's client id: with it the broker keeps the session (subscriptions and the QoS 1
# messages that arrive while the listener is down). Two listeners need two ids.
MQTT_CLIENT_ID = os.environ.get("MQTT_CLIENT_ID", "").strip() or "openspc-mqtt-listen"
# mqtts://: the broker's CA (empty: the system's), a client certificate and key; user:password in MQTT_URL.
MQTT_CA_FILE = os.environ.get("MQTT_CA_FILE", "").strip()
MQTT_CERT_FILE = os.environ.get("MQTT_CERT_FILE", "").strip()
MQTT_KEY_FILE = os.environ.get("MQTT_KEY_FILE", "").strip()
# Listeners with the same group split the JSON topics between them ($share/<group>/<topic>).
MQTT_SHARED_GROUP = env.topic_level("MQTT_SHARED_GROUP", "")
# MQTT 5: how long the broker keeps the session of a listener that is gone.
MQTT_SESSION_EXPIRY_SECONDS = envint("MQTT_SESSION_EXPIRY_SECONDS", 7 * 24 * 3600, minimum=0)
# Messages stored per transaction, and how long the listener waits to fill a batch.
MQTT_BATCH_SIZE = envint("MQTT_BATCH_SIZE", 500, minimum=1)
MQTT_BATCH_WAIT_MS = envint("MQTT_BATCH_WAIT_MS", 50, minimum=0)
# How often the listener looks for characteristics added, changed or removed.
MQTT_RELOAD_SECONDS = envint("MQTT_RELOAD_SECONDS", 5, minimum=1)
# Bad messages are logged once per topic per interval (and all of them stored).
MQTT_BAD_LOG_INTERVAL_SECONDS = envint("MQTT_BAD_LOG_INTERVAL_SECONDS", 60, minimum=1)
# The least time between two Sparkplug rebirth requests to one edge node (until it births again).
MQTT_REBIRTH_INTERVAL_SECONDS = envint("MQTT_REBIRTH_INTERVAL_SECONDS", 5, minimum=1)
# The Sparkplug B host application's id: its STATE is on spBv1.0/STATE/<id> ("": no STATE published).
MQTT_SPARKPLUG_HOST_ID = env.topic_level("MQTT_SPARKPLUG_HOST_ID", "openspc")
# How long a Sparkplug message that arrives out of order waits for the ones before it (0: not at all).
MQTT_SPARKPLUG_REORDER_TIMEOUT_MS = envint("MQTT_SPARKPLUG_REORDER_TIMEOUT_MS", 2000, minimum=0)
# Violations are published to spc/violations/... (QoS 1); how often new ones are looked for (two
# indexed reads a look; at 500 ms the wait was most of a violation's way back to the plant, #20).
MQTT_PUBLISH_VIOLATIONS = envbool("MQTT_PUBLISH_VIOLATIONS", True)
MQTT_PUBLISH_INTERVAL_MS = envint("MQTT_PUBLISH_INTERVAL_MS", 100, minimum=50)
# Each characteristic's statistics (capability) to spc/stats/..., retained, when they change.
MQTT_PUBLISH_STATISTICS = envbool("MQTT_PUBLISH_STATISTICS", False)
# The device (and its service user) the listener records observations as; created if missing.
MQTT_DEVICE = os.environ.get("MQTT_DEVICE", "").strip() or "mqtt-bridge"
# A larger message is not decoded but kept as a dead letter (too_large), so one huge message cannot
# balloon the listener. Readings are a few hundred bytes; a large node's Sparkplug BIRTH some tens of kB.
MQTT_MAX_PAYLOAD_BYTES = envint("MQTT_MAX_PAYLOAD_BYTES", 256 * 1024, minimum=1)
# How much of a dead letter's payload is kept (its size and SHA-256 are kept whole).
MQTT_DEAD_LETTER_KEEP_BYTES = envint("MQTT_DEAD_LETTER_KEEP_BYTES", 4096, minimum=0)
# A page of GET /api/v1/mqtt/dead-letters/ stops adding rows once their payloads pass this.
MQTT_DEAD_LETTER_PAGE_BYTES = envint("MQTT_DEAD_LETTER_PAGE_BYTES", 1024 * 1024, minimum=1)
# The broker's own counters of messages it dropped (Mosquitto: a client's queue was full, so QoS 1 messages
# it acknowledged are lost), watched in $SYS: a data health alarm when one moves. "off": no watch.
MQTT_BROKER_DROPPED_TOPICS = (
    []
    if os.environ.get("MQTT_BROKER_DROPPED_TOPICS", "").strip().lower() == "off"
    else envlist("MQTT_BROKER_DROPPED_TOPICS", ["$SYS/broker/publish/messages/dropped"])
)
if any(
    not topic.startswith("$SYS/") or any(c in topic for c in "+#") for topic in MQTT_BROKER_DROPPED_TOPICS
):
    raise ImproperlyConfigured(
        "MQTT_BROKER_DROPPED_TOPICS must be $SYS/... topics without wildcards, or off; "
        f"got {MQTT_BROKER_DROPPED_TOPICS!r}"
    )

# --- QA package runs (apps/qa_runs) ----------------------------------------------------------

# QA runs send requests to a target's spec URL and base URL; every address those resolve to must be
# public (apps/qa_runs/net.py refuses private, loopback, link-local incl. 169.254.169.254, ...), except
# for the hosts and networks listed here by the administrator, e.g. `qa-target.plant.local,10.20.0.0/16`.
# Loopback is no exception in production: it is allowed only by listing it. With DEBUG on and the
# variable unset, the default lists loopback (localhost, 127.0.0.0/8, ::1) so a target running on the
# developer's machine can be tested; tests set the setting themselves, per test.
QA_TARGET_ALLOWLIST = envhostsnets(
    "QA_TARGET_ALLOWLIST", ["localhost", "127.0.0.0/8", "::1/128"] if DEBUG else []
)
# This system's own addresses, which a QA package may not target unless QA_ALLOW_SELF_TARGET is on
# (apps/qa_runs/safety.py): a run against the live system's own API once started runs of itself and
# changed live records. Besides these URLs (its public address behind a proxy, e.g.
# `https://spc.plant.local`), the system knows itself by ALLOWED_HOSTS (any port: a proxy may publish
# any), the host a run was started through, and loopback with the port daphne listens on (PORT).
QA_SELF_URLS = envurls("QA_SELF_URLS", schemes={"http", "https"})
QA_SELF_PORT = envint("PORT", 8000, minimum=1)
# On: a package may target this system itself (a test of its own API, as tests/qa_runs/test_own_api.py
# does). A setting, not a package field: it is the administrator's call, like QA_TARGET_ALLOWLIST,
# not one for whoever edits packages. Even then a run never calls this system's run start/cancel.
QA_ALLOW_SELF_TARGET = envbool("QA_ALLOW_SELF_TARGET", False)
# A response body (the spec, or a step's response) is read up to this many bytes; the rest is
# dropped and the response marked truncated, so a huge or endless answer cannot fill the memory.
QA_MAX_RESPONSE_BYTES = envint("QA_MAX_RESPONSE_BYTES", 5 * 1024 * 1024, minimum=1024)
# The longest one request (a step, or the spec fetch) may take, connecting and reading included.
QA_STEP_TIMEOUT_SECONDS = envint("QA_STEP_TIMEOUT_SECONDS", 30, minimum=1)
# Requests of one run in flight at once (threads in the worker running it).
QA_CONCURRENCY = envint("QA_CONCURRENCY", 4, minimum=1)
# Key(s) the target credentials of QA packages are encrypted with (Fernet). Comma-separated to
# rotate: the first encrypts, all decrypt. Unset: derived from SECRET_KEY, so changing SECRET_KEY
# without setting this to the old one makes stored credentials unreadable (they must be entered again).
QA_SECRET_KEYS = envlist("QA_SECRET_KEY", [SECRET_KEY])
# Largest OpenAPI document (bytes) a package may use, fetched or uploaded.
QA_SPEC_MAX_BYTES = envint("QA_SPEC_MAX_BYTES", 5 * 1024 * 1024, minimum=1024)
# AI scenario generation (apps/qa_runs/ai.py), for packages that ask for it: an OpenAI-compatible
# chat completions endpoint (https://api.openai.com/v1, or a local server such as vLLM or Ollama's
# /v1), its key and model. Unset: packages fall back to the deterministic generator. The endpoint is
# chosen by the administrator, so it is not held to QA_TARGET_ALLOWLIST; the replies are (every step
# must be a path under the target's base URL). A server that takes no key still needs some value here.
QA_AI_BASE_URL = (
    envurl("QA_AI_BASE_URL", "", schemes={"http", "https"}).rstrip("/")
    if os.environ.get("QA_AI_BASE_URL", "").strip()
    else ""
)
QA_AI_API_KEY = os.environ.get("QA_AI_API_KEY", "").strip()
QA_AI_MODEL = os.environ.get("QA_AI_MODEL", "").strip()
if QA_AI_BASE_URL and not (QA_AI_API_KEY and QA_AI_MODEL):
    raise ImproperlyConfigured("QA_AI_BASE_URL is set: set QA_AI_API_KEY and QA_AI_MODEL too")
# The longest one chat completion may take; a slower answer counts as a failed attempt.
QA_AI_TIMEOUT_SECONDS = envint("QA_AI_TIMEOUT_SECONDS", 30, minimum=1)
# Attempts per operation (timeout, HTTP error, or a reply that is not a valid scenario list) before
# the operation's scenarios come from the deterministic generator instead.
QA_AI_ATTEMPTS = envint("QA_AI_ATTEMPTS", 3, minimum=1)
# A QA run (apps/qa_runs/tasks.py) takes minutes: on a queue of its own, with a worker of its own
# (`make run` starts one), so it never holds up observations or calculations.
CELERY_TASK_ROUTES[queues.QA_RUNS_RUN] = {"queue": queues.QA_RUNS_QUEUE}
CELERY_TASK_ROUTES[queues.QA_RUNS_SWEEP_STALE] = {"queue": queues.DEFAULT_QUEUE}
# Runs whose worker died are marked FAILED once they are well past their package's time limit.
CELERY_BEAT_SCHEDULE["qa-runs-sweep-stale"] = {
    "task": queues.QA_RUNS_SWEEP_STALE,
    "schedule": 60.0,
    "options": {"expires": 60.0},
}

# --- Auth -------------------------------------------------------------------

# Checked wherever a password is set: the admin, createsuperuser, changepassword, demo_setup.
PASSWORD_MIN_LENGTH = envint("PASSWORD_MIN_LENGTH", 12, minimum=8)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": PASSWORD_MIN_LENGTH},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out sign-in before the password is checked. Every
# password entry point (/login/, /admin/login/, /api-auth/login/, POST /api/v1/auth/token/) goes
# through authenticate() with the request, which is what axes counts failures by.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "web-login"
LOGIN_REDIRECT_URL = "web-overview"
LOGOUT_REDIRECT_URL = "web-login"

# Sessions end after SESSION_IDLE_MINUTES without a request (the expiry moves on with every
# request), and SESSION_MAX_HOURS after sign-in whatever the activity
# (openspc/sessions.py), instead of Django's two weeks.
SESSION_IDLE_MINUTES = envint("SESSION_IDLE_MINUTES", 30, minimum=1)
SESSION_MAX_HOURS = envint("SESSION_MAX_HOURS", 12, minimum=1)
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60
SESSION_SAVE_EVERY_REQUEST = True

# Sign-in lockout (django-axes). LOGIN_FAILURE_LIMIT wrong passwords for one user name from one
# client address lock that pair out for LOGIN_LOCKOUT_MINUTES, counted from the lockout (more
# tries during it do not extend it). By the pair, not the user name alone: otherwise anyone
# could lock every operator out by typing their names; not the address alone: a plant's
# terminals often share one address. Spraying many names from one address is slowed by the
# token endpoints' rate limit (AUTH_THROTTLE_PER_MINUTE) and shows in the admin's access attempts.
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=envint("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# No start-up banner in every process (it broke tools that read their first line); failures and
# lockouts are still logged.
AXES_VERBOSE = False
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "openspc.signin.lockout_response"
AXES_CLIENT_IP_CALLABLE = "openspc.signin.client_ip"
# Electronic signatures (apps/signatures): the actions that need one (a comma-separated list of
# lot_disposition, invalidation_approval, verification, control_limits, plan_release; default all),
# and the lock after wrong passwords: this many failures within the minutes lock signing that long.
SIGNATURES_REQUIRED_FOR = envlist(
    "SIGNATURES_REQUIRED_FOR",
    ["lot_disposition", "invalidation_approval", "verification", "control_limits", "plan_release"],
)
SIGNING_FAILURE_LIMIT = envint("SIGNING_FAILURE_LIMIT", 5, minimum=1)
SIGNING_LOCKOUT_MINUTES = envint("SIGNING_LOCKOUT_MINUTES", 15, minimum=1)

# Requests per minute and client address to the token and refresh endpoints.
AUTH_THROTTLE_PER_MINUTE = envint("AUTH_THROTTLE_PER_MINUTE", 20, minimum=1)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "apps.config.authentication.DeviceTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["openspc.permissions.RoleModelPermissions"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    # JSON in, JSON out: one format for clients to get right (others get a 415 in the error format).
    "DEFAULT_PARSER_CLASSES": ["openspc.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "openspc.api.Pagination",
    "DEFAULT_SCHEMA_CLASS": "openspc.schema.AutoSchema",
    "EXCEPTION_HANDLER": "openspc.api.exception_handler",
    "PAGE_SIZE": 50,
    # The token endpoints' rate limit (openspc/signin.py); the client address as for the lockout.
    "DEFAULT_THROTTLE_RATES": {"auth": f"{AUTH_THROTTLE_PER_MINUTE}/min"},
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=envint("JWT_ACCESS_MINUTES", 30, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=envint("JWT_REFRESH_DAYS", 7, minimum=1)),
    "UPDATE_LAST_LOGIN": True,
    # A used refresh token is replaced and blacklisted, so a stolen one works once at most.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    # Tokens carry a hash of the user's password hash: a password change revokes every token
    # issued before it, access tokens included (refresh: openspc/signin.py).
    "CHECK_REVOKE_TOKEN": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "OpenSPC API",
    "DESCRIPTION": (
        "Statistical process control and lab quality. Authenticate with a JWT from "
        "`/api/v1/auth/token/` (`Authorization: Bearer <access>`), a device token "
        "(`Authorization: Device <token>`), or the browser session. Errors always have "
        'the shape `{"error": {"code", "message", "fields"}}`.'
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Tags start collapsed: Swagger UI stopped drawing the page part way through once the schema
    # passed 140 operations expanded at once (only its first nine rows were ever shown).
    "SWAGGER_UI_SETTINGS": {"docExpansion": "none", "deepLinking": True},
    "REDOC_DIST": "SIDECAR",
    # The site's own fonts: ReDoc's (Montserrat, Roboto) would come from Google Fonts, and the API
    # docs load nothing from another host (templates/api_docs/redoc.html).
    "REDOC_UI_SETTINGS": {
        "theme": {
            "typography": {
                "fontFamily": 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
                "headings": {"fontFamily": 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'},
                "code": {"fontFamily": "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"},
            }
        }
    },
    "COMPONENT_SPLIT_REQUEST": True,
    "TAGS": tag_list(),
    # Several models have a `status`; name each set of choices after its model.
    "ENUM_NAME_OVERRIDES": {
        "LotStatusEnum": "apps.observations.choices.LotStatus",
        "ObservationStatusEnum": "apps.observations.choices.ObservationStatus",
        "InvalidationStatusEnum": "apps.observations.choices.InvalidationStatus",
        "TestPlanStatusEnum": "apps.config.choices.PlanStatus",
        # QA scenarios have a kind and a source too; the older names stay with their first owners.
        "KindEnum": "apps.config.choices.TestKind",
        "SourceEnum": "apps.observations.choices.ObservationSource",
        "ScenarioKindEnum": "apps.qa_runs.choices.ScenarioKind",
        "ScenarioSourceEnum": "apps.qa_runs.choices.ScenarioSource",
        "QaEventTypeEnum": "apps.qa_runs.choices.EventType",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "openspc.api.add_error_responses",
    ],
}

# --- Static files, i18n, logging -------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
# WhiteNoise warns about a missing root even though it serves from the finders.
with contextlib.suppress(OSError):
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# Served by WhiteNoise from the app directories directly, so no collectstatic step is needed.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL; got {LOG_LEVEL!r}"
    )
# LOG_TASKS=1 keeps Celery's per-task lines (received, succeeded) at INFO.
_TASK_LOG_LEVEL = "INFO" if envbool("LOG_TASKS", False) or LOG_LEVEL == "DEBUG" else "WARNING"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"client_error_without_traceback": {"()": "openspc.logs.ClientErrorWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own console handler (DEBUG) would print each of its records a second time.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.request": {"filters": ["client_error_without_traceback"]},
        "django.db.backends": {"level": "INFO"},
        # Celery logs two INFO lines per task (received, succeeded), and beat one per task it
        # sends: at a few hundred tasks a minute they buried everything else. They show with
        # LOG_TASKS=1 or LOG_LEVEL=DEBUG; a task that fails still logs its error.
        **{
            name: {"level": _TASK_LOG_LEVEL}
            for name in ("celery.app.trace", "celery.worker.strategy", "celery.beat")
        },
    },
}

# --- Production hardening (on unless DEBUG; each can be turned off behind a proxy) ---

BEHIND_TLS_PROXY = envbool("BEHIND_TLS_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
# Behind the proxy, the client address (sign-in lockout, rate limits) is the last one the proxy
# added to X-Forwarded-For; without one that header is the client's to invent, so it is ignored.
if BEHIND_TLS_PROXY:
    REST_FRAMEWORK["NUM_PROXIES"] = 1
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp; openspc/csp.py adds ws:// and wss:// of the request's host
# to connect-src). No inline script and no inline style anywhere: the pages load their own
# static/js and static/css, and data for a script comes in json_script blocks, which are not run.
# Scripts may still set element.style (uPlot sizes its chart that way): CSP does not restrict that.
# The API docs pages widen it for themselves only (openspc/api_docs.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
    },
}

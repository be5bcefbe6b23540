"""`make test-fast` runs the tests in parallel (pytest-xdist, one process per core): each worker
gets its own test database (pytest-django adds `_gw0`, `_gw1` to its name) and, from here, its own
Redis database, so that one worker's cache keys, channel-layer groups and queued tasks never reach
another's tests (both have a characteristic 1, a group `characteristic.1`, ...)."""

import os
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

# Worker n uses Redis database `base + FIRST_OFFSET + n`: the base and base + 1 stay free for a
# serial run beside it (CI's soak uses base + 1).
FIRST_OFFSET = 2
REDIS_DATABASES = 16  # redis-server's default `databases`


def worker_index() -> int | None:
    """This process's xdist worker number (gw3 -> 3), or None outside a parallel run."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker.removeprefix("gw")) if worker.startswith("gw") else None


def redis_url_for_worker(url: str, index: int) -> str:
    """The URL with the worker's database number: redis://host:6379/0 -> redis://host:6379/2 for gw0."""
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    database = base + FIRST_OFFSET + index
    if database >= REDIS_DATABASES:
        raise RuntimeError(f"xdist worker gw{index} would need Redis database {database}: use fewer workers")
    return urlunsplit(parts._replace(path=f"/{database}"))


def isolate_worker() -> None:
    """Point this worker's Redis users at its own database, before any of them connects; also
    REDIS_URL, for the processes a test starts (Celery workers, daphne)."""
    index = worker_index()
    if index is None or urlsplit(settings.REDIS_URL).scheme == "unix":
        return
    url = redis_url_for_worker(settings.REDIS_URL, index)
    os.environ["REDIS_URL"] = settings.REDIS_URL = settings.CELERY_BROKER_URL = url
    settings.CACHES["default"]["LOCATION"] = url
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"] = url

    from openspc.celery import app

    app.conf.broker_url = url

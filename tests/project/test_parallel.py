"""The parallel run's isolation (tests/support/parallel.py): each xdist worker its own Redis database."""

import os

import pytest
from django.conf import settings

from tests.support.parallel import redis_url_for_worker, worker_index


@pytest.mark.parametrize(
    ("url", "index", "expected"),
    [
        ("redis://127.0.0.1:6379/0", 0, "redis://127.0.0.1:6379/2"),
        ("redis://127.0.0.1:6379", 1, "redis://127.0.0.1:6379/3"),
        ("redis://:secret@redis.plant:6380/8", 1, "redis://:secret@redis.plant:6380/11"),
        ("rediss://cache:6379/4?ssl_cert_reqs=none", 0, "rediss://cache:6379/6?ssl_cert_reqs=none"),
    ],
)
def test_a_worker_gets_its_own_database(url: str, index: int, expected: str) -> None:
    assert redis_url_for_worker(url, index) == expected


def test_too_many_workers_for_the_databases_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="gw6 would need Redis database 16"):
        redis_url_for_worker("redis://127.0.0.1:6379/8", 6)


def test_every_redis_user_of_this_process_uses_one_url() -> None:
    """Serial or parallel, the cache, the channel layer, Celery and started processes agree."""
    from openspc.celery import app

    url = settings.REDIS_URL
    assert settings.CACHES["default"]["LOCATION"] == url
    assert settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"] == url
    assert settings.CELERY_BROKER_URL == app.conf.broker_url == url
    if worker_index() is not None:
        assert os.environ["REDIS_URL"] == url  # what a Celery worker or daphne started by a test reads

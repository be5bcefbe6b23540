"""The Redis cache shares one client, and its connection pool, among the threads of a process.

Under ASGI every request runs in a new thread, and Django keeps a cache object per thread: with a
pool per cache object, each request opened (and dropped) a Redis connection of its own."""

import threading

import pytest
from django.conf import settings
from django.core.cache import cache, caches

from openspc.cache import RedisCache

pytestmark = pytest.mark.skipif(
    not settings.CACHES["default"]["BACKEND"].endswith("RedisCache"), reason="the cache is not Redis"
)


def client_of_a_new_thread() -> object:
    seen: list[object] = []

    def run() -> None:
        backend = caches["default"]
        assert isinstance(backend, RedisCache)
        backend.get("openspc-test:any")  # a real round trip, on this thread's cache object
        seen.append((backend, backend._cache.get_client()))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return seen[0]


def test_the_cache_objects_of_different_threads_share_one_client_and_pool():
    (first_backend, first_client), (second_backend, second_client) = (
        client_of_a_new_thread(),
        client_of_a_new_thread(),
    )
    assert first_backend is not second_backend  # Django's: one per thread
    assert first_client is second_client
    assert first_client.connection_pool is cache._cache.get_client().connection_pool

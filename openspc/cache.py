"""Django's Redis cache backend, with one redis.Redis client per server in each process.

Django's RedisCacheClient.get_client builds a new redis.Redis for every call, and with it
redis-py's table of response callbacks: about as much CPU as the round trip itself. The
calculation worker makes a dozen cache calls per ingested batch (pending marks, rolling
windows), so the client is made once here. Django keeps one cache object per thread, each with
connection pools of its own, and under ASGI every request runs in a new thread: each request
opened a new Redis connection (TCP, handshake, close), about a tenth of the web process's time
for a synchronous sample (profiled, issue #20). So the client, and its pool, is shared by every
thread of the process: a redis.Redis is safe to share between threads (each command takes a
connection from the pool), and redis-py's pool starts afresh in a forked child.
"""

import threading
from collections.abc import Sequence
from typing import Any

from django.core.cache import caches
from django.core.cache.backends import redis as django_redis

# The process's clients, by server URL and pool options: shared by the cache objects of all threads.
_clients: dict[tuple[str, str], Any] = {}
_clients_lock = threading.Lock()


class RedisCacheClient(django_redis.RedisCacheClient):
    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        server = self._servers[self._get_connection_pool_index(write)]  # type: ignore[attr-defined]
        shared = (server, repr(sorted(self._pool_options.items())))  # type: ignore[attr-defined]
        client = _clients.get(shared)
        if client is None:
            with _clients_lock:
                client = _clients.get(shared)
                if client is None:
                    pool = self._pool_class.from_url(server, **self._pool_options)  # type: ignore[attr-defined]
                    client = _clients[shared] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient

    def add_many(self, keys: Sequence[str], value: Any, timeout: int) -> list[str]:
        """`add` for many keys, each kept `timeout` seconds (more than 0), in one round trip (a
        pipeline of SET NX EX): the keys it set, those that were not set before. The calculation
        hand-off marks every characteristic of a batch (the 50 of a Sparkplug message): a round
        trip per key cost as much as the rest of the hand-off."""
        if not keys:
            return []
        made = [self.make_and_validate_key(key) for key in keys]
        client = self._cache.get_client(made[0], write=True)
        dumped = self._cache._serializer.dumps(value)  # type: ignore[attr-defined]
        pipeline = client.pipeline(transaction=False)
        for key in made:
            pipeline.set(key, dumped, ex=timeout, nx=True)
        return [key for key, added in zip(keys, pipeline.execute(), strict=True) if added]


def cache_add_many(keys: Sequence[str], value: Any, timeout: int) -> list[str]:
    """`cache.add` for each key, in one round trip on this project's Redis cache: the keys set."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        return backend.add_many(keys, value, timeout)
    return [key for key in keys if backend.add(key, value, timeout)]

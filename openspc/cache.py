"""Django's Redis cache backend, with one redis.Redis client per connection pool.

Django's RedisCacheClient.get_client builds a new redis.Redis for every call, and with it
redis-py's table of response callbacks: about as much CPU as the round trip itself. The
calculation worker makes a dozen cache calls per ingested batch (pending marks, rolling
windows), so the client is made once per pool here. A redis.Redis is safe to share between
threads (each command takes a connection from the pool); Django keeps one cache object per
thread anyway.
"""

from typing import Any

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, servers: Any, **options: Any) -> None:
        super().__init__(servers, **options)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)  # type: ignore[attr-defined]
        client = self._clients.get(index)
        if client is None:
            pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
            client = self._clients[index] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient

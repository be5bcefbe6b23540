"""The channel layer as settings configure it, on the real Redis: a receive on a channel nobody
sends to waits as long as it must. channels_redis blocks on Redis for 5 s at a time; with redis-py's
default socket timeout (also 5 s) that read timed out and the receive raised, which ended a live
consumer (its socket closed with 1011) every 5 s."""

import asyncio
from urllib.parse import urlsplit

import pytest
import redis
from channels_redis.core import RedisChannelLayer
from django.conf import settings

pytestmark = pytest.mark.services

IDLE_SECONDS = 12  # two of channels_redis's blocking reads and more


def layer_from_settings() -> RedisChannelLayer:
    config = settings.CHANNEL_LAYERS["default"]
    assert config["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    return RedisChannelLayer(**config["CONFIG"])


@pytest.mark.timeout(60)
@pytest.mark.slow
def test_a_receive_on_an_idle_channel_waits_and_then_gets_the_message():
    async def scenario() -> tuple[bool, dict[str, object]]:
        layer = layer_from_settings()
        channel = await layer.new_channel()
        receiving = asyncio.ensure_future(layer.receive(channel))
        try:
            await asyncio.sleep(IDLE_SECONDS)
            still_waiting = not receiving.done()
            if receiving.done():
                receiving.result()  # raises what ended it (a TimeoutError reading from Redis)
            await layer.send(channel, {"type": "sample.created", "id": 7})
            message = await asyncio.wait_for(receiving, timeout=10)
        finally:
            receiving.cancel()
            await layer.close_pools()
        return still_waiting, message

    still_waiting, message = asyncio.run(scenario())
    assert still_waiting
    assert message == {"type": "sample.created", "id": 7}


def test_the_socket_timeout_outlasts_the_layers_blocking_read():
    """A dead or unreachable Redis is still noticed: reads time out, just later than the blocking read
    returns on its own."""
    (host,) = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
    assert host["socket_timeout"] is not None
    assert host["socket_timeout"] >= RedisChannelLayer.brpop_timeout + 5
    assert 0 < host["socket_connect_timeout"] <= host["socket_timeout"]


class Blackhole:
    """A TCP proxy to Redis that, once `cut()`, forwards nothing more and closes nothing: a network
    that drops packets, where no reset ever arrives."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.open = True
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        self.open = False

    async def stop(self) -> None:
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        redis_reader, redis_writer = await asyncio.open_connection(*self.target)
        try:
            await asyncio.gather(
                self._pipe(client_reader, redis_writer), self._pipe(redis_reader, client_writer)
            )
        finally:
            redis_writer.close()
            client_writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if not self.open:
                await asyncio.Event().wait()  # swallowed, and the connection stays up
            writer.write(data)
            await writer.drain()


@pytest.mark.timeout(90)
@pytest.mark.slow
def test_a_redis_that_stops_answering_ends_the_receive_within_the_socket_timeout():
    """The other half of the choice: a cut network is noticed (the consumer ends, its client
    reconnects) rather than leaving the receive waiting forever."""
    url = urlsplit(settings.REDIS_URL)
    if url.scheme != "redis":
        pytest.skip("the proxy speaks plain TCP to Redis")
    (host,) = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]

    async def scenario() -> tuple[float, BaseException | None]:
        proxy = Blackhole(url.hostname or "127.0.0.1", url.port or 6379)
        port = await proxy.start()
        address = url._replace(netloc=f"127.0.0.1:{port}").geturl()
        layer = RedisChannelLayer(hosts=[{**host, "address": address}], prefix="openspc:test-cut")
        channel = await layer.new_channel()
        receiving = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(1)  # connected, blocked in Redis
        proxy.cut()
        started = asyncio.get_running_loop().time()
        try:
            await asyncio.wait_for(asyncio.shield(receiving), timeout=host["socket_timeout"] + 30)
        except (redis.exceptions.TimeoutError, redis.exceptions.ConnectionError) as error:
            return asyncio.get_running_loop().time() - started, error
        finally:
            receiving.cancel()
            await proxy.stop()
        return asyncio.get_running_loop().time() - started, None

    waited, error = asyncio.run(scenario())
    assert isinstance(error, redis.exceptions.TimeoutError), error
    assert waited <= host["socket_timeout"] + 1

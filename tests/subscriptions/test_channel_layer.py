"""The channel layer as settings configure it, on the real Redis: a receive on a channel nobody
sends to waits as long as it must. channels_redis blocks on Redis for 5 s at a time; with redis-py's
default socket timeout (also 5 s) that read timed out and the receive raised, which ended a live
consumer (its socket closed with 1011) every 5 s."""

import asyncio

import pytest
from channels_redis.core import RedisChannelLayer
from django.conf import settings

pytestmark = pytest.mark.services

IDLE_SECONDS = 12  # two of channels_redis's blocking reads and more


def layer_from_settings() -> RedisChannelLayer:
    config = settings.CHANNEL_LAYERS["default"]
    assert config["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    return RedisChannelLayer(**config["CONFIG"])


@pytest.mark.timeout(60)
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

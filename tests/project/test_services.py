"""The real services the settings point at answer: Redis (cache, channel layer, Celery broker) and MQTT.

Under `make test` with nothing configured these are the embedded servers; in CI, the
machine's Redis and Mosquitto.
"""

import queue
import uuid
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache

from openspc.celery import app as celery_app

pytestmark = pytest.mark.services


def test_cache_round_trip_through_redis():
    key = f"test:{uuid.uuid4()}"
    cache.set(key, {"value": 74.001}, timeout=30)
    assert cache.get(key) == {"value": 74.001}
    cache.delete(key)
    assert cache.get(key) is None


def test_channel_layer_delivers_a_group_message():
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    group = f"test-{uuid.uuid4().hex}"
    async_to_sync(layer.group_add)(group, channel)
    async_to_sync(layer.group_send)(group, {"type": "sample.created", "sample_id": 7})
    message = async_to_sync(layer.receive)(channel)
    assert message == {"type": "sample.created", "sample_id": 7}
    async_to_sync(layer.group_discard)(group, channel)


def test_celery_broker_stores_and_delivers_a_message():
    name = f"openspc-test-{uuid.uuid4().hex}"
    with celery_app.connection_for_write() as connection:
        simple = connection.SimpleQueue(name)
        try:
            simple.put({"observation_id": 1})
            message = simple.get(timeout=5)
            assert message.payload == {"observation_id": 1}
            message.ack()
        finally:
            simple.queue.delete()
            simple.close()


def test_mqtt_broker_delivers_a_qos1_message():
    url = urlsplit(settings.MQTT_URL)
    topic = f"openspc/test/{uuid.uuid4().hex}"
    received: queue.Queue[bytes] = queue.Queue()
    subscribed = queue.Queue[int]()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}")
    client.on_message = lambda _c, _u, msg: received.put(msg.payload)
    client.on_subscribe = lambda _c, _u, mid, _rc, _p: subscribed.put(mid)
    client.connect(url.hostname or "127.0.0.1", url.port or 1883)
    client.loop_start()
    try:
        client.subscribe(topic, qos=1)
        subscribed.get(timeout=5)
        client.publish(topic, b'{"value": 354.8}', qos=1).wait_for_publish(timeout=5)
        assert received.get(timeout=5) == b'{"value": 354.8}'
    finally:
        client.loop_stop()
        client.disconnect()

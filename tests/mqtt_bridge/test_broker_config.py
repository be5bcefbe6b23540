"""deploy/mosquitto/openspc.conf: the Mosquitto settings the listener needs. With them, a session
whose client is away keeps thousands of acknowledged messages, through a broker restart, and the
broker drops none; with Mosquitto's defaults it keeps 1,000 and drops the rest."""

import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.support.mqtt import Client, PrivateMosquitto, broker_address, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.skipif(not PrivateMosquitto.available(), reason="the mosquitto binary is missing"),
]

CONF = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "openspc.conf"
DROPPED = "$SYS/broker/publish/messages/dropped"
COUNT = 3000


def shipped_options(store: Path) -> dict[str, str]:
    """The file's settings, with the persistence file in the test's directory."""
    options = {}
    for line in CONF.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, value = line.split(None, 1)
            options[name] = value
    return {**options, "persistence_location": f"{store}/"}


class Session:
    """A QoS 1 subscriber with a persistent session: subscribes, goes away, comes back."""

    def __init__(self, url: str, topic: str) -> None:
        self.url, self.topic = url, topic
        self.client_id = f"test-away-{uuid.uuid4().hex[:8]}"
        self.received: list[bytes] = []
        self._lock = threading.Lock()

    def _client(self) -> mqtt.Client:
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,
        )
        client.on_message = self._on_message
        return client

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append(bytes(message.payload))

    def subscribe_and_leave(self) -> None:
        subscribed = threading.Event()
        client = self._client()
        client.on_subscribe = lambda *args: subscribed.set()
        client.connect(*broker_address(self.url))
        client.loop_start()
        client.subscribe(self.topic, 1)
        assert subscribed.wait(5)
        client.disconnect()
        client.loop_stop()

    def come_back(self, *, expect: int) -> list[bytes]:
        """Reconnect and take what the session kept (until `expect` arrived, or 2 s of nothing more)."""
        client = self._client()
        client.connect(*broker_address(self.url))
        client.loop_start()
        try:
            last, since = -1, time.monotonic()
            while len(self.received) < expect and time.monotonic() - since < 2:
                if len(self.received) != last:
                    last, since = len(self.received), time.monotonic()
                time.sleep(0.1)
        finally:
            client.disconnect()
            client.loop_stop()
        return list(self.received)


def dropped(url: str) -> int:
    watcher = Client(url=url, subscribe=[DROPPED])
    try:
        wait_until(lambda: bool(watcher.messages(DROPPED)), timeout=15, what="the dropped counter")
        return int(bytes(watcher.messages(DROPPED)[-1].payload))
    finally:
        watcher.close()


def flood(url: str, topic: str) -> list[bytes]:
    payloads = [f'{{"value": 74, "id": "m-{k}"}}'.encode() for k in range(COUNT)]
    publisher = Client(url=url)
    publisher.publish_all([(topic, payload) for payload in payloads])  # each acknowledged by the broker
    publisher.close()
    return payloads


@pytest.mark.timeout(120)
def test_with_the_shipped_settings_an_absent_session_keeps_every_message_through_a_broker_restart(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    topic = f"test/{uuid.uuid4().hex[:8]}/dia"
    options = {**shipped_options(store), "sys_interval": "1"}  # the counter within a second
    with PrivateMosquitto(log_dir=tmp_path, options=options) as broker:
        session = Session(broker.url, topic)
        session.subscribe_and_leave()
        payloads = flood(broker.url, topic)
        time.sleep(1.5)
        assert dropped(broker.url) == 0
        broker.stop()  # saves the sessions and their queues
        broker.start(broker.port)
        assert sorted(session.come_back(expect=COUNT)) == sorted(payloads)


@pytest.mark.timeout(120)
def test_with_mosquittos_defaults_an_absent_session_keeps_1000_and_the_rest_is_dropped(tmp_path):
    topic = f"test/{uuid.uuid4().hex[:8]}/dia"
    defaults = {"max_queued_messages": "1000", "max_inflight_messages": "20", "sys_interval": "1"}
    with PrivateMosquitto(log_dir=tmp_path, options=defaults) as broker:
        session = Session(broker.url, topic)
        session.subscribe_and_leave()
        flood(broker.url, topic)
        assert len(session.come_back(expect=COUNT)) == 1000
        time.sleep(1.5)
        assert dropped(broker.url) == COUNT - 1000

"""A message that trips a fault of ours must not stop the line: handling or storing it fails, it is
kept as a dead letter (reason `failed`, with the error), and the rest of its batch is stored."""

import json
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from apps.config.models import Characteristic
from apps.mqtt_bridge import listener as listener_module
from apps.mqtt_bridge import services
from apps.mqtt_bridge.listener import Listener, Options
from apps.mqtt_bridge.models import DeadLetter, DeadLetterReason
from apps.mqtt_bridge.selectors import mqtt_feeds
from apps.mqtt_bridge.services import Stored, bridge_device
from apps.observations.models import Observation
from tests.support.mqtt import fed_by

pytestmark = pytest.mark.django_db
POISON = 666.0


def message(topic: str, payload: bytes) -> mqtt.MQTTMessage:
    m = mqtt.MQTTMessage(mid=1, topic=topic.encode())
    m.payload = payload
    m.qos = 1
    return m


@pytest.fixture
def fed(plant: Any) -> tuple[Listener, Characteristic]:
    dia = fed_by(plant, source="tag", tag="plant/line1/dia")
    listener = Listener(Options(url="mqtt://127.0.0.1:1883", client_id="t"))
    listener.feeds = mqtt_feeds()
    return listener, dia


def values(listener: Listener, *numbers: float) -> list[mqtt.MQTTMessage]:
    return [message("plant/line1/dia", json.dumps({"value": v, "id": f"m{v}"}).encode()) for v in numbers]


class StoreFaultTests:
    def test_a_reading_that_fails_to_store_becomes_a_dead_letter_and_the_rest_is_stored(
        self, fed, monkeypatch
    ):
        listener, dia = fed
        record = services.observations_record

        def fussy(*, entries: Any, **kwargs: Any) -> Any:
            if any(POISON in entry.values for entry in entries):
                raise ValueError("a fault of ours")
            return record(entries=entries, **kwargs)

        monkeypatch.setattr(services, "observations_record", fussy)
        batch = listener.handle(values(listener, 1.0, POISON, 2.0))
        stored = listener.store(batch, bridge_device(name="mqtt-bridge"), retry=False)

        assert stored == Stored(observations=2, duplicates=0, dead_letters=1)
        assert sorted(o.values[0] for o in Observation.objects.filter(lot__product=dia.product)) == [1.0, 2.0]
        (dead,) = DeadLetter.objects.all()
        assert (dead.reason, dead.topic) == (DeadLetterReason.FAILED, "plant/line1/dia")
        assert json.loads(bytes(dead.payload)) == {"value": POISON, "id": f"m{POISON}"}
        assert dead.message == "storing it failed: ValueError: a fault of ours"

    def test_with_the_database_away_nothing_is_stored_and_nothing_becomes_a_dead_letter(
        self, fed, monkeypatch
    ):
        listener, _ = fed

        def down(**kwargs: Any) -> Any:
            raise ConnectionError("database down")

        monkeypatch.setattr(listener_module, "bridge_store", down)
        monkeypatch.setattr(listener_module, "_database_answers", lambda: False)
        batch = listener.handle(values(listener, 1.0))
        assert listener.store(batch, bridge_device(name="mqtt-bridge"), retry=False) is None
        assert not Observation.objects.exists()
        assert not DeadLetter.objects.exists()


class HandleFaultTests:
    def test_a_message_that_fails_to_be_read_becomes_a_dead_letter(self, fed, monkeypatch):
        listener, _ = fed
        read = listener_module.json_reading

        def fussy(fed: Any, topic: str, payload: bytes) -> Any:
            if b"666" in payload:
                raise KeyError("surprise")
            return read(fed, topic, payload)

        monkeypatch.setattr(listener_module, "json_reading", fussy)
        batch = listener.handle(values(listener, 1.0, POISON, 2.0))
        assert [r.values for r in batch.readings] == [[1.0], [2.0]]
        (dead,) = batch.dead
        assert (dead.reason, dead.message) == (DeadLetterReason.FAILED, "KeyError: 'surprise'")

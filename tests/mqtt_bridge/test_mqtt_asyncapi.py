"""docs/mqtt.asyncapi.yaml documents what the listener reads and writes on the plant's broker; these
tests keep it in step with apps/mqtt_bridge (message fields, topics, Sparkplug message types)."""

import json
from pathlib import Path

import yaml

from apps.mqtt_bridge.listener import SPARKPLUG_FILTERS
from apps.mqtt_bridge.publisher import statistics_message, violation_message, violation_topic
from apps.mqtt_bridge.sparkplug import REBIRTH_METRIC, payload_decode, rebirth_request
from tests.support.plant import Violations

ROOT = Path(__file__).resolve().parents[2]
DOC = yaml.safe_load((ROOT / "docs" / "mqtt.asyncapi.yaml").read_text())
MESSAGES = DOC["components"]["messages"]


def test_the_violation_message_has_exactly_the_documented_fields(world: Violations) -> None:
    violation = world.violation()
    body = json.loads(violation_message(violation))
    schema = MESSAGES["violation"]["payload"]
    assert set(body) == set(schema["required"]) == set(schema["properties"])
    assert body["rule"] == violation.rule


def test_the_statistics_message_has_exactly_the_documented_fields(world: Violations) -> None:
    from apps.calculations.models import ProductStatistics

    body = json.loads(statistics_message(ProductStatistics.objects.create(characteristic=world.dia, n=1)))
    schema = MESSAGES["statistics"]["payload"]
    assert set(body) == set(schema["required"]) == set(schema["properties"])
    assert body["scope"] == schema["properties"]["scope"]["const"]


def test_the_violation_topic_has_the_documented_levels(world: Violations) -> None:
    (channel,) = [name for name in DOC["channels"] if name.startswith("spc/violations/")]
    documented = channel.split("/")
    actual = violation_topic(world.violation()).split("/")
    assert len(actual) == len(documented)
    assert actual[:2] == documented[:2] == ["spc", "violations"]


def test_the_sparkplug_message_types_read_are_the_documented_ones() -> None:
    read = {topic.split("/")[2] for topic in SPARKPLUG_FILTERS}
    channel = DOC["channels"]["spBv1.0/{group}/{messageType}/{node}"]
    assert read == set(channel["parameters"]["messageType"]["schema"]["enum"])


def test_the_rebirth_request_is_what_the_document_says() -> None:
    (metric,) = payload_decode(rebirth_request(timestamp=1)).metrics
    assert (metric.name, metric.value) == (REBIRTH_METRIC, True)
    assert REBIRTH_METRIC in MESSAGES["rebirthRequest"]["summary"]


def test_the_broker_counters_watched_by_default_are_documented() -> None:
    from django.conf import settings

    assert set(settings.MQTT_BROKER_DROPPED_TOPICS) <= set(DOC["channels"])


def test_the_host_state_is_what_the_document_says() -> None:
    """Sparkplug 3.0 STATE (issue #19): the topic and the payload's fields."""
    from apps.mqtt_bridge.listener import Listener, Options

    listener = Listener(Options(url="mqtt://127.0.0.1:1883", client_id="t", host_id="plant-host"))
    assert listener.state_topic == "spBv1.0/STATE/plant-host"
    assert "spBv1.0/STATE/{hostId}" in DOC["channels"]
    schema = MESSAGES["hostState"]["payload"]
    for online in (True, False):
        body = json.loads(listener._state(online))
        assert set(body) == set(schema["required"]) == set(schema["properties"])
        assert body["online"] is online
        assert type(body["timestamp"]) is int
    assert Listener(Options(url="mqtt://127.0.0.1:1883", client_id="t", host_id="")).state_topic == ""


def test_the_plant_alarms_have_the_documented_topics_and_fields(world: Violations) -> None:
    from apps.mqtt_bridge.publisher import plant_message_payload, plant_message_topic
    from apps.observations.models import PlantMessage

    schema = MESSAGES["plantAlarm"]["payload"]
    for name in schema["properties"]["event"]["enum"]:
        message = PlantMessage.objects.create(
            event=name, characteristic=world.dia, data={"characteristic": 1}
        )
        body = json.loads(plant_message_payload(message))
        assert set(schema["required"]) <= set(body), name
        assert body["event"] == name
        root = "/".join(plant_message_topic(message).split("/")[:2])
        (channel,) = [c for c in DOC["channels"] if c.startswith(f"{root}/")]
        assert len(channel.split("/")) == len(plant_message_topic(message).split("/")), name

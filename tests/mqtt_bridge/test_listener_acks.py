"""The listener logs a subscription when the broker acknowledges it, and an error for each topic
the broker refuses (Mosquitto 2.0 grants every subscription and applies its ACL per message, so no
broker here refuses one: the acknowledgements are handed in as paho hands them over)."""

import logging

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from apps.mqtt_bridge.listener import Listener, Options

GRANTED = ReasonCode(PacketTypes.SUBACK, identifier=1)
REFUSED = ReasonCode(PacketTypes.SUBACK, identifier=0x87)


def listener() -> Listener:
    return Listener(Options(url="mqtt://127.0.0.1:1883", client_id="t"))


def logged(caplog) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "openspc.mqtt"]


def test_a_refused_topic_is_an_error_naming_it_and_the_broker_reason(caplog):
    caplog.set_level(logging.INFO, logger="openspc.mqtt")
    host = listener()
    host._await_ack(7, "subscribed: a/b, c/d", ["a/b", "c/d"])
    assert logged(caplog) == []  # not before the acknowledgement

    host._on_acknowledged(host.client, None, 7, [GRANTED, REFUSED], None)

    assert logged(caplog) == [("ERROR", "the broker refused: c/d (Not authorized)")]


def test_an_acknowledgement_that_comes_before_its_packet_id_is_noted_is_not_lost(caplog):
    caplog.set_level(logging.INFO, logger="openspc.mqtt")
    host = listener()
    host._on_acknowledged(host.client, None, 8, [GRANTED], None)  # paho's thread was quicker
    assert logged(caplog) == []

    host._await_ack(8, "subscribed: a/b", ["a/b"])

    assert logged(caplog) == [("INFO", "subscribed: a/b")]
    assert (host._early_acks, host._unacknowledged) == ({}, {})


def test_the_counters_refresh_leaves_no_acknowledgement_behind(caplog):
    """It subscribes every few minutes: an acknowledgement nobody waited for was kept for good."""
    host = Listener(Options(url="mqtt://127.0.0.1:1883", client_id="t", dropped_topics=("$SYS/x",)))
    host._connected.set()
    sent: list[int] = []
    host.client.subscribe = lambda topics, *args, **kwargs: (0, sent.append(len(sent) + 1) or len(sent))

    for _ in range(3):
        host._counters_refresh()
        host._on_acknowledged(host.client, None, sent[-1], [GRANTED], None)

    assert (host._early_acks, host._unacknowledged) == ({}, {})

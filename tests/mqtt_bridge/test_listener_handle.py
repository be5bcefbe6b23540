"""Listener.handle: MQTT messages sorted into readings, dead letters and node changes, without a broker
(the paho client is built but never connected; its publish is replaced by a recorder). And BadLog."""

import datetime
import logging
import math
import time
from typing import Any

import paho.mqtt.client as mqtt
import pysparkplug as psp
import pytest
from pysparkplug import _protobuf as tahu  # their generated schema: DATA metrics without a datatype

from apps.mqtt_bridge.listener import Listener, Options
from apps.mqtt_bridge.models import DeadLetterReason
from apps.mqtt_bridge.readings import BadLog, message_key
from apps.mqtt_bridge.selectors import Fed, Feeds
from apps.mqtt_bridge.sparkplug import (
    BDSEQ_METRIC,
    REBIRTH_METRIC,
    DataType,
    Metric,
    Payload,
    payload_decode,
    payload_encode,
)

JSON_TOPIC = "plant/line1/dia"
DIA = Fed(1, 2, 3, JSON_TOPIC)
SP_DIA = Fed(4, 2, 5, "Cell1/Diameter")
SP_WALL = Fed(6, 2, 7, "Cell1/Wall")
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms
AT = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
BASE = "spBv1.0/G1"


def message(topic: str, payload: bytes, qos: int = 1) -> mqtt.MQTTMessage:
    m = mqtt.MQTTMessage(mid=1, topic=topic.encode())
    m.payload = payload
    m.qos = qos
    return m


class Published:
    """Stands in for client.publish: records what the listener sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, int]] = []

    def __call__(self, topic: str, payload: bytes, qos: int = 0, **kwargs: Any) -> None:
        self.sent.append((topic, payload, qos))


@pytest.fixture
def published() -> Published:
    return Published()


def make_listener(published: Published, **options: Any) -> Listener:
    listener = Listener(Options(url="mqtt://127.0.0.1:1883", client_id="t", **options))
    listener.feeds = Feeds(topics={JSON_TOPIC: DIA}, metrics={SP_DIA.tag: SP_DIA, SP_WALL.tag: SP_WALL})
    listener.client.publish = published  # type: ignore[method-assign]
    return listener


@pytest.fixture
def listener(published: Published) -> Listener:
    return make_listener(published)


def nbirth(node: str = "Line1") -> mqtt.MQTTMessage:
    payload = Payload(
        timestamp=T0, seq=0, metrics=(Metric(name=BDSEQ_METRIC, datatype=DataType.Int64, value=3),)
    )
    return message(f"{BASE}/NBIRTH/{node}", payload_encode(payload))


def dbirth(node: str = "Line1") -> mqtt.MQTTMessage:
    payload = Payload(timestamp=T0, seq=1, metrics=(
        Metric(name=SP_DIA.tag, alias=7, datatype=DataType.Double, value=74.0),
        Metric(name=SP_WALL.tag, alias=8, datatype=DataType.Int32, value=3),
        Metric(name="Cell1/Temperature", alias=9, datatype=DataType.Float, value=21.5),
    ))  # fmt: skip
    return message(f"{BASE}/DBIRTH/{node}/Gauge3", payload_encode(payload))


def ddata(seq: int, *metrics: Metric, node: str = "Line1", timestamp: int | None = T0) -> mqtt.MQTTMessage:
    return message(
        f"{BASE}/DDATA/{node}/Gauge3", payload_encode(Payload(timestamp=timestamp, seq=seq, metrics=metrics))
    )


def reasons(batch: Any) -> list[tuple[str, str]]:
    return [(d.reason, d.message) for d in batch.dead]


class JsonTests:
    def test_a_value_on_a_fed_topic(self, listener: Listener) -> None:
        batch = listener.handle([message(JSON_TOPIC, b'{"value": 74.01, "id": "m-1"}')])
        (reading,) = batch.readings
        assert (reading.fed, reading.values, reading.key) == (
            DIA, [74.01], message_key(JSON_TOPIC, b'{"value": 74.01, "id": "m-1"}'),
        )  # fmt: skip
        assert batch.dead == []

    def test_an_unknown_topic_is_a_dead_letter(self, listener: Listener) -> None:
        m = message("plant/line1/unknown", b'{"value": 74.01}')
        batch = listener.handle([m])
        assert batch.readings == []
        (dead,) = batch.dead
        assert (dead.topic, dead.payload, dead.reason, dead.message) == (
            "plant/line1/unknown", b'{"value": 74.01}', DeadLetterReason.UNKNOWN_TOPIC,
            "no characteristic is fed by this topic",
        )  # fmt: skip
        assert batch.messages == [m]

    @pytest.mark.parametrize(
        ("payload", "reason"),
        [(b"garbage", DeadLetterReason.NOT_JSON), (b'{"val": 1}', DeadLetterReason.BAD_SHAPE),
         (b'{"value": 1, "ts": 1' + b"0" * 400 + b"}", DeadLetterReason.BAD_SHAPE)],
    )  # fmt: skip
    def test_a_bad_payload_is_a_dead_letter(self, listener: Listener, payload: bytes, reason: str) -> None:
        batch = listener.handle([message(JSON_TOPIC, payload), message(JSON_TOPIC, b"74.5")])
        assert [d.reason for d in batch.dead] == [reason]
        assert [r.values for r in batch.readings] == [[74.5]]  # the next message is not lost


class SparkplugTopicTests:
    @pytest.mark.parametrize(
        "topic", [f"{BASE}/NDATA", f"{BASE}/DDATA/Line1", f"{BASE}/XDATA/Line1", "spBv1.0/STATE/host",
                  f"{BASE}/NDATA/Line1/Gauge3"],
    )  # fmt: skip
    def test_a_malformed_topic_is_not_sparkplug(self, listener: Listener, topic: str) -> None:
        batch = listener.handle([message(topic, payload_encode(Payload(seq=0)))])
        assert reasons(batch) == [(DeadLetterReason.NOT_SPARKPLUG, "not a Sparkplug B topic")]

    def test_garbage_on_a_sparkplug_topic(self, listener: Listener, published: Published) -> None:
        batch = listener.handle([message(f"{BASE}/DDATA/Line1/Gauge3", b"\xff\xff\xff garbage")])
        (dead,) = batch.dead
        assert dead.reason == DeadLetterReason.NOT_SPARKPLUG
        assert dead.message.startswith("not a Sparkplug B payload")
        assert (batch.readings, batch.changes, published.sent) == ([], [], [])

    def test_an_unreadable_ndeath_still_kills_the_node(self, listener: Listener) -> None:
        batch = listener.handle([nbirth(), message(f"{BASE}/NDEATH/Line1", b"\xff\xff")])
        assert [d.reason for d in batch.dead] == [DeadLetterReason.NOT_SPARKPLUG]
        assert [(c.node, c.online) for c in batch.changes] == [("Line1", True), ("Line1", False)]


class SparkplugDataTests:
    def test_alias_only_data_after_birth(self, listener: Listener, published: Published) -> None:
        data = ddata(
            2,
            Metric(alias=7, timestamp=T0 + 1500, datatype=DataType.Double, value=74.25),
            Metric(alias=8, timestamp=T0 + 2000, datatype=DataType.Int32, value=4),  # stored as a float
            Metric(alias=9, timestamp=T0 + 2000, datatype=DataType.Float, value=22.0),  # not charted
            Metric(alias=7, datatype=DataType.Double, value=74.5),  # no metric timestamp: the payload's
        )
        batch = listener.handle([nbirth(), dbirth(), data])
        assert [(r.fed, r.values, r.observed_at) for r in batch.readings] == [
            (SP_DIA, [74.25], AT + datetime.timedelta(seconds=1.5)),
            (SP_WALL, [4.0], AT + datetime.timedelta(seconds=2)),
            (SP_DIA, [74.5], AT),
        ]
        assert all(type(r.values[0]) is float for r in batch.readings)
        raw = bytes(data.payload)
        assert [r.key for r in batch.readings] == [message_key(data.topic, raw, i) for i in (0, 1, 3)]
        assert len({r.key for r in batch.readings}) == 3
        assert {(r.topic, r.payload) for r in batch.readings} == {(data.topic, raw)}
        assert listener.counts["ignored"] == 1
        assert (batch.dead, published.sent) == ([], [])
        assert [(c.device, c.online, c.metrics) for c in batch.changes] == [
            ("", True, (BDSEQ_METRIC,)), ("Gauge3", True, (SP_DIA.tag, SP_WALL.tag, "Cell1/Temperature")),
        ]  # fmt: skip

    def test_null_and_unmapped_metrics_are_ignored(self, listener: Listener) -> None:
        data = ddata(
            2,
            Metric(alias=7, is_null=True),
            Metric(name="Cell1/Unknown", datatype=DataType.Double, value=1.0),
            Metric(alias=8, datatype=DataType.Int32, value=5),
        )
        batch = listener.handle([nbirth(), dbirth(), data])
        assert [(r.fed, r.values) for r in batch.readings] == [(SP_WALL, [5.0])]
        assert listener.counts["ignored"] == 2

    def test_from_pysparkplug(self, listener: Listener) -> None:
        """The same, with payloads built by a library that is not ours."""
        birth = psp.DBirth(timestamp=T0, seq=1, metrics=(
            psp.Metric(timestamp=T0, name=SP_DIA.tag, alias=7, datatype=psp.DataType.FLOAT, value=74.0),
        ))  # fmt: skip
        data = psp.DData(timestamp=T0, seq=2, metrics=(
            psp.Metric(timestamp=T0 + 10, name=None, alias=7, datatype=psp.DataType.FLOAT, value=74.5),
        ))  # fmt: skip
        batch = listener.handle([
            nbirth(), message(f"{BASE}/DBIRTH/Line1/Gauge3", birth.encode()),
            message(f"{BASE}/DDATA/Line1/Gauge3", data.encode()),
        ])  # fmt: skip
        (reading,) = batch.readings
        assert (reading.fed, reading.values, reading.observed_at) == (
            SP_DIA, [74.5], AT + datetime.timedelta(milliseconds=10),
        )  # fmt: skip

    def test_data_without_datatypes_uses_the_births(self, listener: Listener) -> None:
        """Alias-only metrics that leave the datatype to the BIRTH: Int32 -1 travels as 2**32 - 1."""
        data = tahu.Payload(timestamp=T0, seq=2)
        data.metrics.add(alias=8, int_value=2**32 - 1)
        data.metrics.add(alias=7, double_value=74.125)
        data.metrics.add(alias=7, string_value="abc")  # no number: kept as text, the pipeline rejects it
        raw = data.SerializeToString()
        batch = listener.handle([nbirth(), dbirth(), message(f"{BASE}/DDATA/Line1/Gauge3", raw)])
        assert [(r.fed, r.values) for r in batch.readings] == [
            (SP_WALL, [-1.0]), (SP_DIA, [74.125]), (SP_DIA, ["abc"]),
        ]  # fmt: skip

    def test_a_metric_timestamp_that_is_no_time_is_a_dead_letter_not_a_crash(
        self, listener: Listener
    ) -> None:
        data = ddata(2, Metric(alias=7, timestamp=2**63, datatype=DataType.Double, value=74.0),
                     Metric(alias=8, timestamp=T0, datatype=DataType.Int32, value=5))  # fmt: skip
        batch = listener.handle([nbirth(), dbirth(), data])
        assert [(r.fed, r.values) for r in batch.readings] == [(SP_WALL, [5.0])]
        (dead,) = batch.dead
        assert dead.reason == DeadLetterReason.NOT_SPARKPLUG
        assert str(2**63) in dead.message
        assert SP_DIA.tag in dead.message

    def test_unknown_alias(self, listener: Listener, published: Published) -> None:
        batch = listener.handle(
            [nbirth(), dbirth(), ddata(2, Metric(alias=42, datatype=DataType.Double, value=1.0))]
        )
        assert reasons(batch) == [(DeadLetterReason.UNKNOWN_ALIAS, "metric aliases 42 unknown")]
        assert [topic for topic, _, _ in published.sent] == [f"{BASE}/NCMD/Line1"]


def rebirths(published: Published) -> list[str]:
    topics = []
    for topic, payload, qos in published.sent:
        (metric,) = payload_decode(payload).metrics
        assert (metric.name, metric.value, qos) == (REBIRTH_METRIC, True, 0)
        topics.append(topic)
    return topics


class RebirthTests:
    def test_a_gap_asks_for_rebirth_once_per_interval_per_node(self, published: Published) -> None:
        listener = make_listener(published, rebirth_interval=3600, reorder_timeout=0)
        value = Metric(alias=7, datatype=DataType.Double, value=74.0)
        batch = listener.handle([nbirth(), dbirth(), ddata(2, value), ddata(9, value)])
        assert rebirths(published) == [f"{BASE}/NCMD/Line1"]
        assert len(batch.readings) == 2  # the values around the gap still count
        listener.handle([ddata(20, value), nbirth("Line2"), ddata(5, value, node="Line2")])
        assert rebirths(published) == [f"{BASE}/NCMD/Line1", f"{BASE}/NCMD/Line2"]
        assert listener.counts["rebirths"] == 2

    def test_asked_again_after_the_interval(self, published: Published) -> None:
        listener = make_listener(published, rebirth_interval=0, reorder_timeout=0)
        value = Metric(alias=7, datatype=DataType.Double, value=74.0)
        listener.handle([nbirth(), dbirth(), ddata(9, value), ddata(20, value)])
        assert rebirths(published) == [f"{BASE}/NCMD/Line1"] * 2

    def test_data_before_birth_asks_for_rebirth(self, listener: Listener, published: Published) -> None:
        batch = listener.handle([ddata(17, Metric(alias=7, datatype=DataType.Double, value=74.0))])
        assert rebirths(published) == [f"{BASE}/NCMD/Line1"]
        assert reasons(batch) == [
            (
                DeadLetterReason.NOT_BORN,
                "no NBIRTH seen from G1/Line1 since the listener started; asked it to rebirth",
            )
        ]

    def test_named_data_from_a_node_not_born_is_kept_apart(
        self, listener: Listener, published: Published
    ) -> None:
        """Issue #19, item 5: named metrics do not make a node trusted; its values wait as dead letters."""
        named = ddata(4, Metric(name=SP_DIA.tag, datatype=DataType.Double, value=74.0))
        batch = listener.handle([named])
        assert (batch.readings, [d.reason for d in batch.dead]) == ([], [DeadLetterReason.NOT_BORN])
        assert batch.messages == [named]  # dead-lettered, so acknowledged
        assert rebirths(published) == [f"{BASE}/NCMD/Line1"]
        after = listener.handle(
            [nbirth(), dbirth(), ddata(2, Metric(alias=7, datatype=DataType.Double, value=74.5))]
        )
        assert [(r.fed, r.values) for r in after.readings] == [(SP_DIA, [74.5])]

    def test_asked_again_at_once_after_the_node_answered(self, published: Published) -> None:
        """Issue #19, item 6: a second gap soon after a rebirth is asked again (the interval holds only
        while a request is unanswered), once its reorder timeout has passed."""
        listener = make_listener(published, rebirth_interval=3600, reorder_timeout=0)
        value = Metric(alias=7, datatype=DataType.Double, value=74.0)
        listener.handle([nbirth(), dbirth(), ddata(5, value)])
        listener.handle([ddata(9, value)])  # unanswered: not asked again
        assert rebirths(published) == [f"{BASE}/NCMD/Line1"]
        listener.handle([nbirth(), dbirth(), ddata(7, value)])
        assert rebirths(published) == [f"{BASE}/NCMD/Line1"] * 2

    def test_a_node_whose_births_keep_failing_is_not_asked_in_a_storm(self, published: Published) -> None:
        """A refused NBIRTH does not count as an answer: the interval holds."""
        listener = make_listener(published, rebirth_interval=3600, reorder_timeout=0)
        clash = Payload(timestamp=T0, seq=0, metrics=(
            Metric(name=SP_DIA.tag, alias=7, datatype=DataType.Double, value=74.0),
            Metric(name=SP_WALL.tag, alias=7, datatype=DataType.Int32, value=3),
        ))  # fmt: skip
        bad_birth = message(f"{BASE}/NBIRTH/Line1", payload_encode(clash))
        for _ in range(5):
            listener.handle([bad_birth])
        assert rebirths(published) == [f"{BASE}/NCMD/Line1"]

    def test_after_an_answer_asked_again_only_after_the_reorder_timeout(self, published: Published) -> None:
        listener = make_listener(published, rebirth_interval=3600, reorder_timeout=0.2)
        unknown = Metric(alias=42, datatype=DataType.Double, value=1.0)
        listener.handle([nbirth(), dbirth(), ddata(2, unknown)])
        listener.handle([nbirth(), dbirth(), ddata(2, unknown)])  # answered, but too soon to ask again
        assert rebirths(published) == [f"{BASE}/NCMD/Line1"]
        time.sleep(0.2)
        listener.handle([ddata(3, unknown)])
        assert rebirths(published) == [f"{BASE}/NCMD/Line1"] * 2


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class BadLogTests:
    def test_once_per_topic_per_interval_then_how_many_more(self, caplog: pytest.LogCaptureFixture) -> None:
        clock = Clock()
        bad = BadLog(60, clock=clock)
        with caplog.at_level(logging.WARNING, logger="openspc.mqtt"):
            bad.bad("a", "not_json", "the payload is not JSON")
            clock.now += 10
            bad.bad("a", "not_json", "the payload is not JSON")
            bad.bad("a", "bad_shape", "no value")
            bad.bad("b", "not_json", "the payload is not JSON")  # another topic: its own report
            clock.now += 51
            bad.bad("a", "bad_shape", "no value")
            clock.now += 61
            bad.bad("a", "not_json", "x")
        assert [r.getMessage() for r in caplog.records] == [
            "bad message on a: not_json: the payload is not JSON",
            "bad message on b: not_json: the payload is not JSON",
            "bad message on a: bad_shape: no value (2 more on this topic since the last report)",
            "bad message on a: not_json: x",
        ]
        assert {r.levelno for r in caplog.records} == {logging.WARNING}

    def test_the_listener_logs_bad_messages_through_it(
        self, listener: Listener, caplog: pytest.LogCaptureFixture
    ):
        with caplog.at_level(logging.WARNING, logger="openspc.mqtt"):
            listener.handle([message("nowhere", b"1"), message("nowhere", b"2")])
        assert [r.getMessage() for r in caplog.records] == [
            "bad message on nowhere: unknown_topic: no characteristic is fed by this topic"
        ]


class HostTests:
    """Issue #19: the listener as a Sparkplug host, message by message."""

    def test_one_bad_metric_spoils_only_itself(self, listener: Listener) -> None:
        """Item 3: a datatype 99, 0 or an extension value on one metric; its siblings are stored."""
        data = tahu.Payload(timestamp=T0, seq=2)
        data.metrics.add(alias=7, datatype=99, int_value=1)
        data.metrics.add(alias=8, datatype=0, int_value=1)
        data.metrics.add(alias=7, datatype=10, double_value=74.5)
        data.metrics.add(name=SP_WALL.tag, datatype=3).extension_value.SetInParent()
        data.metrics.add(alias=8, datatype=3, int_value=5)
        raw = data.SerializeToString()
        batch = listener.handle([nbirth(), dbirth(), message(f"{BASE}/DDATA/Line1/Gauge3", raw)])
        assert [(r.fed, r.values) for r in batch.readings] == [(SP_DIA, [74.5]), (SP_WALL, [5.0])]
        assert reasons(batch) == [(DeadLetterReason.BAD_METRIC,
            "metric 'alias 7': unknown datatype 99; metric 'alias 8': unknown datatype 0; metric "
            f"'{SP_WALL.tag}' carries an extension value, which OpenSPC does not read "
            "(the other metrics were read)",
        )]  # fmt: skip

    def test_a_dead_lettered_message_takes_its_sequence_number(self, published: Published) -> None:
        """Item 4: garbage with seq 2, then seq 3: no gap, no rebirth."""
        listener = make_listener(published, reorder_timeout=0)
        value = Metric(alias=7, datatype=DataType.Double, value=74.0)
        garbage = message(f"{BASE}/DDATA/Line1/Gauge3", b"\xff\xff\xff garbage")
        batch = listener.handle([nbirth(), dbirth(), garbage, ddata(3, value)])
        assert [d.reason for d in batch.dead] == [DeadLetterReason.NOT_SPARKPLUG]
        assert [r.values for r in batch.readings] == [[74.0]]
        assert published.sent == []

    def test_a_message_out_of_order_waits_unacknowledged(self, published: Published) -> None:
        """Item 6: held, not acknowledged, until the missing one comes; then all in order."""
        listener = make_listener(published, reorder_timeout=60)
        first = listener.handle([nbirth(), dbirth()])
        late = ddata(3, Metric(alias=7, datatype=DataType.Double, value=3.0))
        held = listener.handle([late])
        assert (held.readings, held.messages, held.dead) == ([], [], [])
        assert listener.nodes.holding()
        missing = ddata(2, Metric(alias=7, datatype=DataType.Double, value=2.0))
        batch = listener.handle([missing])
        assert [r.values for r in batch.readings] == [[2.0], [3.0]]
        assert batch.messages == [missing, late]
        assert (published.sent, len(first.messages)) == ([], 2)

    def test_after_the_reorder_timeout_the_held_go_and_a_rebirth_is_asked(self, published: Published) -> None:
        listener = make_listener(published, reorder_timeout=0.05)
        listener.handle([nbirth(), dbirth()])
        late = ddata(4, Metric(alias=7, datatype=DataType.Double, value=4.0))
        assert listener.handle([late]).readings == []
        time.sleep(0.06)
        batch = listener.handle([])
        assert ([r.values for r in batch.readings], batch.messages) == ([[4.0]], [late])
        assert rebirths(published) == [f"{BASE}/NCMD/Line1"]

    def test_stopping_takes_the_held_messages(self, published: Published) -> None:
        listener = make_listener(published, reorder_timeout=60)
        listener.handle([nbirth(), dbirth()])
        listener.handle([ddata(4, Metric(alias=7, datatype=DataType.Double, value=4.0))])
        assert [r.values for r in listener.handle([], flush=True).readings] == [[4.0]]

    def test_a_birth_with_one_alias_for_two_metrics_is_refused(
        self, listener: Listener, published: Published
    ) -> None:
        """Item 8: the bore value is not stored as a temperature."""
        birth = Payload(timestamp=T0, seq=1, metrics=(
            Metric(name=SP_DIA.tag, alias=7, datatype=DataType.Double, value=74.0),
            Metric(name=SP_WALL.tag, alias=7, datatype=DataType.Int32, value=3),
        ))  # fmt: skip
        data = ddata(2, Metric(alias=7, datatype=DataType.Double, value=74.5))
        batch = listener.handle(
            [nbirth(), message(f"{BASE}/DBIRTH/Line1/Gauge3", payload_encode(birth)), data]
        )
        assert batch.readings == []
        assert [d.reason for d in batch.dead] == [DeadLetterReason.BAD_BIRTH, DeadLetterReason.NOT_BORN]
        assert batch.dead[0].message == (
            f"alias 7 is given to both {SP_DIA.tag!r} and {SP_WALL.tag!r}; asked to rebirth"
        )
        assert rebirths(published) == [f"{BASE}/NCMD/Line1"]

    def test_a_stale_ndeath_is_logged_once_and_counted(
        self, listener: Listener, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Item 9."""
        stale = Payload(timestamp=T0, metrics=(Metric(name=BDSEQ_METRIC, datatype=DataType.Int64, value=2),))
        death = message(f"{BASE}/NDEATH/Line1", payload_encode(stale))
        with caplog.at_level(logging.WARNING, logger="openspc.mqtt"):
            batch = listener.handle([nbirth(), death, death])
        assert [r.getMessage() for r in caplog.records] == [
            "NDEATH of G1/Line1 ignored: its bdSeq 2 is not the NBIRTH's (3) "
            "(logged once; counted on the edge node)"
        ]
        assert listener.counts["stale deaths"] == 2
        assert [(c.online, c.stale_death) for c in batch.changes] == [
            (True, False),
            (True, True),
            (True, True),
        ]

    def test_values_that_are_no_number_are_kept_readable(self, listener: Listener) -> None:
        """Item 10: not Python representations, and never a whole megabyte."""
        data = ddata(
            2,
            Metric(name=SP_DIA.tag, datatype=DataType.String, value="hot"),
            Metric(name=SP_DIA.tag, datatype=DataType.Double, value=math.nan),
            Metric(name=SP_DIA.tag, datatype=DataType.Boolean, value=True),
            Metric(name=SP_DIA.tag, datatype=DataType.String, value="y" * 300_000),
            Metric(name=SP_DIA.tag, datatype=DataType.Float, value=354.8),
        )
        batch = make_listener(Published(), max_payload=1024 * 1024).handle([nbirth(), dbirth(), data])
        assert [r.values for r in batch.readings] == [
            ["hot"], ["NaN"], [True], ["y" * 200 + "… (300000 characters)"], [354.8],
        ]  # fmt: skip

    def test_historical_values_are_marked(self, listener: Listener) -> None:
        earlier = Metric(
            alias=7, timestamp=T0 - 3_600_000, datatype=DataType.Double, value=1.0, is_historical=True
        )
        data = ddata(2, earlier, Metric(alias=7, datatype=DataType.Double, value=2.0))
        batch = listener.handle([nbirth(), dbirth(), data])
        assert [(r.values, r.historical, r.observed_at) for r in batch.readings] == [
            ([1.0], True, AT - datetime.timedelta(hours=1)), ([2.0], False, AT),
        ]  # fmt: skip

"""How the plant simulator publishes: the value streams over MQTT, as plain JSON and as Sparkplug B
edge nodes, paced, counting what the broker acknowledged.
"""

from __future__ import annotations

import datetime
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import paho.mqtt.client as mqtt
from django.utils.text import slugify

from apps.config.choices import DataSource, TestKind
from apps.mqtt_bridge.broker import BrokerAddress, broker_address
from apps.mqtt_bridge.simulator.streams import ProcessModel, ValueStream
from apps.mqtt_bridge.sparkplug import (
    BDSEQ_METRIC,
    REBIRTH_METRIC,
    DataType,
    DecodeError,
    MessageType,
    Metric,
    Payload,
    Topic,
    payload_decode,
    payload_encode,
)

logger = logging.getLogger(__name__)

# --- Publishing ---------------------------------------------------------------------------------------


def iso_ms(moment: datetime.datetime) -> str:
    """ISO 8601 in UTC with milliseconds: 2026-11-24T00:23:08.123Z."""
    utc = moment.astimezone(datetime.UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


class AckLedger:
    """Which measurement messages the broker acknowledged (PUBACK at QoS 1, PUBCOMP at 2; at QoS 0,
    sent), counted per characteristic and written to the acked log, one id per line.

    A PUBACK may come back before publish() has returned the message id to the publishing thread,
    so an early acknowledgement is kept until the message is registered."""

    def __init__(self, log: IO[str] | None) -> None:
        self.acked: Counter[int] = Counter()
        self._log = log
        self._lock = threading.Lock()
        self._pending: dict[tuple[int, int], tuple[str, int] | None] = {}
        self._early: set[tuple[int, int]] = set()

    def sent(self, key: tuple[int, int], what: tuple[str, int] | None) -> None:
        """`key` is (connection, mid); `what` (ack id, characteristic id), None for births and deaths."""
        with self._lock:
            if key in self._early:
                self._early.discard(key)
                self._confirm(what)
            else:
                self._pending[key] = what

    def acknowledged(self, key: tuple[int, int]) -> None:
        with self._lock:
            if key in self._pending:
                self._confirm(self._pending.pop(key))
            else:
                self._early.add(key)

    def _confirm(self, what: tuple[str, int] | None) -> None:
        if what is None:
            return
        ack_id, characteristic_id = what
        self.acked[characteristic_id] += 1
        if self._log is not None:
            self._log.write(f"{ack_id}\n")

    @property
    def outstanding(self) -> int:
        with self._lock:
            return len(self._pending)


class Connection:
    """One MQTT client: the JSON feed's, or one Sparkplug B edge node's (a node is a session: its will
    is its NDEATH). paho reconnects by itself; `births_due` is set on every connect and on a rebirth
    request, for the publishing thread to act on."""

    def __init__(
        self,
        *,
        number: int,
        address: BrokerAddress,
        client_id: str,
        ledger: AckLedger,
        will: tuple[str, bytes] | None = None,
        commands: str | None = None,
    ) -> None:
        self.number = number
        self.client_id = client_id
        self.connected = threading.Event()
        self.births_due = threading.Event()
        self._address = address
        self._ledger = ledger
        self._commands = commands
        client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        client.max_inflight_messages_set(1000)  # the default 20 would throttle 500 msg/s to the RTT
        client.max_queued_messages_set(0)
        if address.tls:
            client.tls_set()
        if address.username:
            client.username_pw_set(address.username, address.password)
        if will is not None:
            client.will_set(will[0], will[1], qos=1)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self.client = client

    def start(self) -> None:
        self.client.connect_async(self._address.host, self._address.port, keepalive=30)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, qos: int, what: tuple[str, int] | None = None) -> None:
        info = self.client.publish(topic, payload, qos=qos)
        self._ledger.sent((self.number, info.mid), what)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            logger.warning("the broker refused %s: %s", self.client_id, reason)
            return
        if self._commands:
            client.subscribe(self._commands, qos=1)
        self.births_due.set()
        self.connected.set()

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _p: Any) -> None:
        if self.connected.is_set() and reason.is_failure:
            logger.warning("lost the broker (%s); reconnecting", reason)
        self.connected.clear()

    def _on_publish(self, _client: mqtt.Client, _userdata: Any, mid: int, _reason: Any, _p: Any) -> None:
        self._ledger.acknowledged((self.number, mid))

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            payload = payload_decode(bytes(message.payload))
        except DecodeError:
            logger.warning("ignored an undecodable command on %s", message.topic)
            return
        if any(m.name == REBIRTH_METRIC and m.value is True for m in payload.metrics):
            logger.info("rebirth requested on %s", message.topic)
            self.births_due.set()


def _ms(moment: datetime.datetime) -> int:
    return int(moment.timestamp() * 1000)


class SparkplugNode:
    """One edge node per line, one device per cell; each characteristic a Double metric named by its
    tag, with an alias announced in the DBIRTH. `seq` counts every message of the node but NDEATH,
    0–255, and restarts at 0 with each NBIRTH."""

    def __init__(self, *, group: str, node: str, streams: Sequence[ValueStream]) -> None:
        self.group = group
        self.node = node
        self.devices: dict[str, list[ValueStream]] = {}
        for stream in streams:
            self.devices.setdefault(slugify(stream.model.cell) or "dev", []).append(stream)
        self.aliases = {stream.model.characteristic_id: alias for alias, stream in enumerate(streams, 1)}
        self.bd_seq = random.SystemRandom().randrange(256)  # differs per run: an old will is told apart
        self._seq = 0

    def _topic(self, kind: MessageType, device: str | None = None) -> str:
        return str(Topic(self.group, kind, self.node, device))

    def _next_seq(self) -> int:
        seq, self._seq = self._seq, (self._seq + 1) % 256
        return seq

    def _bd_seq(self) -> Metric:
        return Metric(name=BDSEQ_METRIC, datatype=DataType.UInt64, value=self.bd_seq)

    def will(self) -> tuple[str, bytes]:
        return self._topic(MessageType.NDEATH), payload_encode(Payload(metrics=(self._bd_seq(),)))

    def births(self, moment: datetime.datetime) -> list[tuple[str, bytes]]:
        """NBIRTH (seq 0) and a DBIRTH per device. Metrics are announced null: a birth carries no
        measurement, so a rebirth adds no observation."""
        now, self._seq = _ms(moment), 0
        rebirth = Metric(name=REBIRTH_METRIC, timestamp=now, datatype=DataType.Boolean, value=False)
        node = Payload(timestamp=now, seq=self._next_seq(), metrics=(self._bd_seq(), rebirth))
        messages = [(self._topic(MessageType.NBIRTH), payload_encode(node))]
        for device, streams in self.devices.items():
            metrics = tuple(
                Metric(
                    name=stream.model.tag,
                    alias=self.aliases[stream.model.characteristic_id],
                    timestamp=now,
                    datatype=DataType.Double,
                    is_null=True,
                )
                for stream in streams
            )
            payload = Payload(timestamp=now, seq=self._next_seq(), metrics=metrics)
            messages.append((self._topic(MessageType.DBIRTH, device), payload_encode(payload)))
        return messages

    def data(self, stream: ValueStream, value: float, moment: datetime.datetime) -> tuple[str, bytes, str]:
        """A DDATA with the one value under its alias; also the id the acked log keeps for it."""
        device = slugify(stream.model.cell) or "dev"
        now, seq = _ms(moment), self._next_seq()
        metric = Metric(
            alias=self.aliases[stream.model.characteristic_id],
            timestamp=now,
            datatype=DataType.Double,
            value=value,
        )
        payload = payload_encode(Payload(timestamp=now, seq=seq, metrics=(metric,)))
        return self._topic(MessageType.DDATA, device), payload, f"{self.node}/{device}:{seq}:{now}"

    def deaths(self, moment: datetime.datetime) -> list[tuple[str, bytes]]:
        now = _ms(moment)
        messages = [
            (
                self._topic(MessageType.DDEATH, device),
                payload_encode(Payload(timestamp=now, seq=self._next_seq())),
            )
            for device in self.devices
        ]
        return [*messages, self.will()]


# --- The run ------------------------------------------------------------------------------------------

CONNECT_TIMEOUT = 10.0  # seconds to wait for the broker at the start
DRAIN_TIMEOUT = 5.0  # seconds to wait for outstanding acknowledgements at the end


@dataclass(frozen=True)
class Options:
    url: str
    run_id: str
    rate: float = 10.0  # messages per second, all characteristics together
    seconds: float | None = None
    count: int | None = None
    seed: int | None = None
    special_every: float | None = 20.0  # mean seconds between special causes per characteristic
    qos: int = 1
    lot: str | None = None
    # Per characteristic, the lot its JSON messages name (--open-lots: the simulator's own lots).
    lots: Mapping[int, str] = field(default_factory=dict)
    group: str = "OpenSPC"


@dataclass
class Report:
    """What a run did, for the summary table."""

    streams: list[ValueStream]
    published: Counter[int] = field(default_factory=Counter)
    acked: Counter[int] = field(default_factory=Counter)
    skipped: int = 0  # values not sent because their edge node was offline
    elapsed: float = 0.0


class Simulator:
    """Publishes the streams round-robin at `rate` messages per second, paced from one clock (a late
    loop catches up, it does not drift), until stopped, `seconds` passed or `count` were sent."""

    def __init__(
        self, models: Sequence[ProcessModel], options: Options, *, acked_log: IO[str] | None
    ) -> None:
        self.options = options
        self.address = broker_address(options.url)
        per_stream = options.rate / max(len(models), 1)  # values per second of one characteristic
        self.streams = [
            ValueStream(
                model,
                rng=random.Random(f"{options.seed}:{model.characteristic_id}"),
                calm_points=(
                    None
                    if options.special_every is None
                    else options.special_every * per_stream / model.subgroup_size
                ),
            )
            for model in models
        ]
        self.ledger = AckLedger(acked_log)
        self.report = Report(self.streams)
        self._counter = 0
        self.json: Connection | None = None
        self.nodes: list[tuple[SparkplugNode, Connection]] = []
        self._node_of: dict[int, tuple[SparkplugNode, Connection]] = {}
        self._build_connections()

    def _build_connections(self) -> None:
        prefix = f"openspc-sim-{self.options.run_id}"
        if any(s.model.source == DataSource.TAG for s in self.streams):
            self.json = Connection(number=0, address=self.address, client_id=prefix, ledger=self.ledger)
        by_line: dict[str, list[ValueStream]] = {}
        for stream in self.streams:
            if stream.model.source == DataSource.SPARKPLUG:
                by_line.setdefault(slugify(stream.model.line) or "sim", []).append(stream)
        for number, (name, streams) in enumerate(by_line.items(), 1):
            node = SparkplugNode(group=self.options.group, node=name, streams=streams)
            connection = Connection(
                number=number,
                address=self.address,
                client_id=f"{prefix}-{name}",
                ledger=self.ledger,
                will=node.will(),
                commands=str(Topic(self.options.group, MessageType.NCMD, name)),
            )
            self.nodes.append((node, connection))
            self._node_of.update({s.model.characteristic_id: (node, connection) for s in streams})

    @property
    def connections(self) -> list[Connection]:
        return ([self.json] if self.json else []) + [connection for _, connection in self.nodes]

    def run(self, stop: threading.Event) -> Report:
        for connection in self.connections:
            connection.start()
        try:
            deadline = time.monotonic() + CONNECT_TIMEOUT
            while not all(c.connected.is_set() for c in self.connections) and not stop.wait(0.05):
                if time.monotonic() > deadline:
                    raise ConnectionError(f"{self.address.display} did not answer in {CONNECT_TIMEOUT:.0f} s")
            self._publish_until(stop)
            self._drain()
        finally:
            for connection in self.connections:
                connection.stop()
        self.report.acked = Counter(self.ledger.acked)
        return self.report

    def _publish_until(self, stop: threading.Event) -> None:
        options = self.options
        started = time.monotonic()
        sent = 0
        while not stop.is_set():
            elapsed = time.monotonic() - started
            if options.seconds is not None and elapsed >= options.seconds:
                break
            if options.count is not None and sent >= options.count:
                break
            self._births()
            due = int(elapsed * options.rate) + 1 - sent
            if options.count is not None:
                due = min(due, options.count - sent)
            if due <= 0:
                stop.wait(max(0.0, sent / options.rate - elapsed))
                continue
            for _ in range(min(due, 1000)):  # a bounded batch keeps births and stop requests prompt
                self._publish(self.streams[sent % len(self.streams)])
                sent += 1
        self.report.elapsed = time.monotonic() - started

    def _births(self) -> None:
        for node, connection in self.nodes:
            self._birth(node, connection)

    def _birth(self, node: SparkplugNode, connection: Connection) -> None:
        if connection.births_due.is_set():
            connection.births_due.clear()
            for topic, payload in node.births(datetime.datetime.now(datetime.UTC)):
                connection.publish(topic, payload, self.options.qos)

    def _publish(self, stream: ValueStream) -> None:
        value = stream.next_value()
        model = stream.model
        moment = datetime.datetime.now(datetime.UTC)
        if model.source == DataSource.SPARKPLUG:
            node, connection = self._node_of[model.characteristic_id]
            if not connection.connected.is_set():  # no store-and-forward: an offline node loses values
                self.report.skipped += 1
                return
            self._birth(node, connection)  # a reconnect in the middle of a batch: births first
            topic, payload, ack_id = node.data(stream, value, moment)
        else:
            assert self.json is not None
            connection, topic = self.json, model.tag
            self._counter += 1
            ack_id = f"{self.options.run_id}-{self._counter}"
            message: dict[str, Any] = {
                "value": value if model.kind == TestKind.VARIABLE else int(value),
                "ts": iso_ms(moment),
                "id": ack_id,
            }
            lot = self.options.lot or self.options.lots.get(model.characteristic_id)
            if lot is not None:
                message["lot"] = lot
            payload = json.dumps(message).encode()
        connection.publish(topic, payload, self.options.qos, (ack_id, model.characteristic_id))
        self.report.published[model.characteristic_id] += 1

    def _drain(self) -> None:
        """Wait (bounded) for outstanding acknowledgements, then say goodbye as Sparkplug asks."""
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while self.ledger.outstanding and time.monotonic() < deadline:
            time.sleep(0.02)
        moment = datetime.datetime.now(datetime.UTC)
        for node, connection in self.nodes:
            if connection.connected.is_set():
                for topic, payload in node.deaths(moment):
                    connection.publish(topic, payload, max(self.options.qos, 1))
        while self.ledger.outstanding and time.monotonic() < deadline + 2:
            time.sleep(0.02)

"""The plant simulator behind `manage.py simulate_plant`: realistic measurement streams for the
characteristics fed over MQTT, as plain JSON and as Sparkplug B, with special causes injected so that
every Nelson rule fires now and then.

Three parts: the process model of a characteristic (read from its limits and specification), a value
stream (in-control noise with episodes of special causes), and the publisher (paced, counting what the
broker acknowledged). The first two are pure and seeded, so tests run them through the SPC engine.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from django.utils.text import slugify

from apps.config.choices import MQTT_SOURCES, DataSource, TestKind
from apps.config.models import Characteristic
from apps.config.selectors import current_limits_prefetch
from apps.mqtt_bridge import sparkplug as sp

logger = logging.getLogger(__name__)

# --- Process model ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessModel:
    """How one characteristic's process behaves when nothing special happens."""

    characteristic_id: int
    name: str
    source: str  # DataSource.TAG or DataSource.SPARKPLUG
    tag: str
    kind: str  # TestKind
    mean: float
    sigma: float  # of individual values
    subgroup_size: int = 1
    decimals: int = 4
    low: float | None = None  # the test's plausible range: a gauge reads nothing outside it
    high: float | None = None
    line: str = ""
    cell: str = ""


def _mean(characteristic: Characteristic, center: float | None) -> float:
    test = characteristic.test
    candidates = [
        center,
        characteristic.target,
        _midpoint(characteristic.lsl, characteristic.usl),
        _midpoint(test.plausible_min, test.plausible_max),
        characteristic.usl if characteristic.lsl is None else characteristic.lsl,
    ]
    return next((value for value in candidates if value is not None), 0.0)


def _midpoint(low: float | None, high: float | None) -> float | None:
    return None if low is None or high is None else (low + high) / 2


def process_model_of(characteristic: Characteristic) -> ProcessModel:
    """Mean: the current limits' centre, else the target, else the spec midpoint. Sigma: the limits',
    else a quarter of the spec half-width (Cp 1.33), else 1 % of the mean. Needs `limit_versions`
    (current_limits_prefetch) and the test loaded."""
    versions = getattr(characteristic, "limit_versions", None)
    limits = versions[0] if versions else characteristic.limits.order_by("-version").first()
    mean = _mean(characteristic, limits.center if limits else None)
    if limits is not None:
        sigma = limits.sigma
    elif characteristic.lsl is not None and characteristic.usl is not None:
        sigma = (characteristic.usl - characteristic.lsl) / 8
    else:
        sigma = abs(mean) / 100 or 1.0
    test = characteristic.test
    return ProcessModel(
        characteristic_id=characteristic.pk,
        name=str(characteristic),
        source=characteristic.data_source,
        tag=characteristic.tag or "",
        kind=test.kind,
        mean=mean,
        sigma=sigma,
        subgroup_size=characteristic.subgroup_size,
        decimals=test.decimals + 1 if test.kind == TestKind.VARIABLE else 0,
        low=test.plausible_min,
        high=test.plausible_max,
        line=characteristic.line,
        cell=characteristic.cell,
    )


def simulated_models() -> list[ProcessModel]:
    """The active characteristics fed over MQTT (JSON topic or Sparkplug B metric), by id."""
    characteristics = (
        Characteristic.objects.filter(active=True, data_source__in=MQTT_SOURCES)
        .select_related("product", "test")
        .prefetch_related(current_limits_prefetch())
        .order_by("pk")
    )
    return [process_model_of(characteristic) for characteristic in characteristics]


# --- Special causes -----------------------------------------------------------------------------------


class Episode(StrEnum):
    SPIKE = "spike"
    SHIFT = "shift"
    TREND = "trend"
    ALTERNATION = "alternation"
    STRATIFICATION = "stratification"
    MIXTURE = "mixture"


# The Nelson rules (default parameters) each episode is built to trigger on the location chart.
EPISODE_RULES: dict[Episode, tuple[int, ...]] = {
    Episode.SPIKE: (1,),
    Episode.SHIFT: (2, 5, 6),
    Episode.TREND: (3,),
    Episode.ALTERNATION: (4,),
    Episode.STRATIFICATION: (7,),
    Episode.MIXTURE: (8,),
}

# In-control points between two episodes at least: long enough for the rule 2 window (9) to clear.
MIN_CALM_POINTS = 10


def episode_points(kind: Episode, rng: random.Random) -> list[float]:
    """Where the plotted points of one episode lie, in sigmas of the plotted statistic from the mean.

    Each pattern clears its rule's threshold with a margin, so the default Nelson rules see it every
    time: a shift of 12 points at 1.6–2.9σ (rule 2: 9 on one side; rule 5: 2 of 3 beyond 2σ; rule 6:
    4 of 5 beyond 1σ), a trend of 8 points rising by 0.55σ ± 0.2σ a step (rule 3: 6 points) without
    leaving the limits, 16 alternating points (rule 4: 14), 16 points within 0.3σ (rule 7: 15 within
    1σ) and 10 points at 1.5–2.5σ on either side (rule 8: 8 beyond 1σ)."""
    sign = rng.choice((-1.0, 1.0))
    if kind is Episode.SPIKE:
        return [sign * rng.uniform(4.0, 5.0)]
    if kind is Episode.SHIFT:
        return [sign * rng.uniform(1.6, 2.9) for _ in range(12)]
    if kind is Episode.TREND:
        return [sign * (-1.0 + 0.55 * step + rng.uniform(-0.1, 0.1)) for step in range(8)]
    if kind is Episode.ALTERNATION:
        return [sign * (-1) ** step * rng.uniform(0.4, 1.4) for step in range(16)]
    if kind is Episode.STRATIFICATION:
        return [rng.uniform(-0.3, 0.3) for _ in range(16)]
    return [rng.choice((-1.0, 1.0)) * rng.uniform(1.5, 2.5) for _ in range(10)]


@dataclass(frozen=True)
class EpisodeSpan:
    """An episode of a stream: its kind, first subgroup (0-based) and length in subgroups."""

    kind: Episode
    start: int
    length: int


class ValueStream:
    """The values of one characteristic, one at a time, as a gauge would read them.

    Values come a subgroup at a time (the pipeline groups consecutive values by `subgroup_size`).
    In control they are independent normal draws. During an episode each subgroup is placed so its
    mean lands on the episode's point: the X̄ chart (σ/√n) sees the same pattern an I chart sees
    for n = 1, and the ranges keep their usual spread. Episodes start after an exponentially
    distributed calm stretch (mean `calm_points` subgroups, at least MIN_CALM_POINTS) and run through
    the kinds in a shuffled order, so each shows up within a round of six; `calm_points` None turns
    them off. Attribute characteristics (counts, pass/fail) stay in control.
    """

    def __init__(self, model: ProcessModel, *, rng: random.Random, calm_points: float | None) -> None:
        self.model = model
        self.episodes: list[EpisodeSpan] = []
        self.subgroups = 0  # subgroups drawn so far
        self._rng = rng
        self._calm_points = calm_points if model.kind == TestKind.VARIABLE else None
        self._pending: deque[float] = deque()
        self._episode: deque[float] = deque()
        self._kinds: list[Episode] = []
        self._calm_left = self._calm_stretch()

    @property
    def injected(self) -> Counter[Episode]:
        return Counter(span.kind for span in self.episodes)

    def next_value(self) -> float:
        if not self._pending:
            self._pending.extend(self._subgroup())
        return self._pending.popleft()

    def values(self, count: int) -> list[float]:
        return [self.next_value() for _ in range(count)]

    def _calm_stretch(self) -> int:
        if self._calm_points is None:
            return -1
        return max(MIN_CALM_POINTS, round(self._rng.expovariate(1 / max(self._calm_points, 1e-9))))

    def _subgroup(self) -> list[float]:
        if not self._episode and self._calm_left == 0:
            if not self._kinds:
                self._kinds = list(Episode)
                self._rng.shuffle(self._kinds)
            kind = self._kinds.pop()
            self._episode.extend(episode_points(kind, self._rng))
            self.episodes.append(EpisodeSpan(kind, self.subgroups, len(self._episode)))
            self._calm_left = self._calm_stretch()
        self.subgroups += 1
        if self._episode:
            return self._placed(self._episode.popleft())
        if self._calm_left > 0:
            self._calm_left -= 1
        return [self._in_control() for _ in range(self.model.subgroup_size)]

    def _in_control(self) -> float:
        model = self.model
        if model.kind == TestKind.DEFECTS:
            return float(_poisson(self._rng, max(model.mean, 0.1)))
        if model.kind == TestKind.DEFECTIVES:
            rate = model.mean if 0 < model.mean < 1 else 0.05
            return 1.0 if self._rng.random() < rate else 0.0
        return self._reading(self._rng.gauss(model.mean, model.sigma))

    def _placed(self, point: float) -> list[float]:
        model = self.model
        n = model.subgroup_size
        noise = [self._rng.gauss(0.0, model.sigma) for _ in range(n)]
        centre = model.mean + point * model.sigma / math.sqrt(n) - sum(noise) / n
        return [self._reading(centre + e) for e in noise]

    def _reading(self, value: float) -> float:
        model = self.model
        if model.low is not None:
            value = max(value, model.low)
        if model.high is not None:
            value = min(value, model.high)
        return round(value, model.decimals)


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the small means of defect counts."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


# --- Publishing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    @property
    def display(self) -> str:
        """The URL without the password, for logs."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def broker_address(url: str) -> BrokerAddress:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"the broker URL must look like mqtt://host:port or mqtts://…, got {url!r}")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


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
            payload = sp.payload_decode(bytes(message.payload))
        except sp.DecodeError:
            logger.warning("ignored an undecodable command on %s", message.topic)
            return
        if any(m.name == sp.REBIRTH_METRIC and m.value is True for m in payload.metrics):
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

    def _topic(self, kind: sp.MessageType, device: str | None = None) -> str:
        return str(sp.Topic(self.group, kind, self.node, device))

    def _next_seq(self) -> int:
        seq, self._seq = self._seq, (self._seq + 1) % 256
        return seq

    def _bd_seq(self) -> sp.Metric:
        return sp.Metric(name=sp.BDSEQ_METRIC, datatype=sp.DataType.UInt64, value=self.bd_seq)

    def will(self) -> tuple[str, bytes]:
        return self._topic(sp.MessageType.NDEATH), sp.payload_encode(sp.Payload(metrics=(self._bd_seq(),)))

    def births(self, moment: datetime.datetime) -> list[tuple[str, bytes]]:
        """NBIRTH (seq 0) and a DBIRTH per device. Metrics are announced null: a birth carries no
        measurement, so a rebirth adds no observation."""
        now, self._seq = _ms(moment), 0
        rebirth = sp.Metric(name=sp.REBIRTH_METRIC, timestamp=now, datatype=sp.DataType.Boolean, value=False)
        node = sp.Payload(timestamp=now, seq=self._next_seq(), metrics=(self._bd_seq(), rebirth))
        messages = [(self._topic(sp.MessageType.NBIRTH), sp.payload_encode(node))]
        for device, streams in self.devices.items():
            metrics = tuple(
                sp.Metric(
                    name=stream.model.tag,
                    alias=self.aliases[stream.model.characteristic_id],
                    timestamp=now,
                    datatype=sp.DataType.Double,
                    is_null=True,
                )
                for stream in streams
            )
            payload = sp.Payload(timestamp=now, seq=self._next_seq(), metrics=metrics)
            messages.append((self._topic(sp.MessageType.DBIRTH, device), sp.payload_encode(payload)))
        return messages

    def data(self, stream: ValueStream, value: float, moment: datetime.datetime) -> tuple[str, bytes, str]:
        """A DDATA with the one value under its alias; also the id the acked log keeps for it."""
        device = slugify(stream.model.cell) or "dev"
        now, seq = _ms(moment), self._next_seq()
        metric = sp.Metric(
            alias=self.aliases[stream.model.characteristic_id],
            timestamp=now,
            datatype=sp.DataType.Double,
            value=value,
        )
        payload = sp.payload_encode(sp.Payload(timestamp=now, seq=seq, metrics=(metric,)))
        return self._topic(sp.MessageType.DDATA, device), payload, f"{self.node}/{device}:{seq}:{now}"

    def deaths(self, moment: datetime.datetime) -> list[tuple[str, bytes]]:
        now = _ms(moment)
        messages = [
            (
                self._topic(sp.MessageType.DDEATH, device),
                sp.payload_encode(sp.Payload(timestamp=now, seq=self._next_seq())),
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
                commands=str(sp.Topic(self.options.group, sp.MessageType.NCMD, name)),
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
            if self.options.lot is not None:
                message["lot"] = self.options.lot
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

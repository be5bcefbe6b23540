"""bench/mqtt_ingest.py's MQTT and WebSocket ends: the Sparkplug B edge node and JSON publisher, the
violation subscriber, the WebSocket client, and the broker's ceiling to a bare subscriber."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest_common import (  # noqa: E402
    CENTER,
    SIGMA,
    BenchError,
)
from bench.mqtt_listen import Broker  # noqa: E402

METRICS = 50
JSON_TOPICS = 4
REST_CHARACTERISTICS = 4
GROUP, NODE, DEVICE = "bench", "node-1", "gauges"
JSON_TOPIC = "bench/json/{}"
CEILING_TOPIC = "bench/ceiling"
SEED = CENTER + 30 * SIGMA  # one value this far out puts its subgroup's mean beyond the limits
SEED_EVERY = 200  # about one measurement in this many is a seeded special cause
VIOLATIONS = "spc/violations/#"
REST_RATE = 2000
OUTSTANDING = 20_000  # messages the publisher lets wait for their PUBACK at most


def metric_name(index: int) -> str:
    return f"m{index + 1:02d}"


# --- The edge node and the publisher ------------------------------------------------------------


class EdgeNode:
    """One Sparkplug B edge node with one device of METRICS Double metrics, alias = index + 1."""

    def __init__(self) -> None:
        self.bd_seq = random.SystemRandom().randrange(256)
        self.seq = 0

    def _topic(self, kind: str, device: str | None = None) -> str:
        from apps.mqtt_bridge.sparkplug import MessageType, Topic

        return str(Topic(GROUP, MessageType(kind), NODE, device))

    def _next_seq(self) -> int:
        seq, self.seq = self.seq, (self.seq + 1) % 256
        return seq

    def will(self) -> tuple[str, bytes]:
        from apps.mqtt_bridge.sparkplug import BDSEQ_METRIC, DataType, Metric, Payload, payload_encode

        bd_seq = Metric(name=BDSEQ_METRIC, datatype=DataType.UInt64, value=self.bd_seq)
        return self._topic("NDEATH"), payload_encode(Payload(metrics=(bd_seq,)))

    def births(self) -> list[tuple[str, bytes]]:
        from apps.mqtt_bridge.sparkplug import (
            BDSEQ_METRIC,
            REBIRTH_METRIC,
            DataType,
            Metric,
            Payload,
            payload_encode,
        )

        now, self.seq = int(time.time() * 1000), 0
        node = Payload(timestamp=now, seq=self._next_seq(), metrics=(
            Metric(name=BDSEQ_METRIC, datatype=DataType.UInt64, value=self.bd_seq),
            Metric(name=REBIRTH_METRIC, timestamp=now, datatype=DataType.Boolean, value=False),
        ))  # fmt: skip
        metrics = tuple(
            Metric(name=metric_name(i), alias=i + 1, timestamp=now, datatype=DataType.Double, is_null=True)
            for i in range(METRICS)
        )
        device = Payload(timestamp=now, seq=self._next_seq(), metrics=metrics)
        return [(self._topic("NBIRTH"), payload_encode(node)),
                (self._topic("DBIRTH", DEVICE), payload_encode(device))]  # fmt: skip

    def data(self, values: Sequence[float]) -> tuple[str, bytes]:
        """DDATA: every metric by alias, each with the publish time as its timestamp."""
        from apps.mqtt_bridge.sparkplug import DataType, Metric, Payload, payload_encode

        now = int(time.time() * 1000)
        metrics = tuple(
            Metric(alias=i + 1, timestamp=now, datatype=DataType.Double, value=value)
            for i, value in enumerate(values)
        )
        return self._topic("DDATA", DEVICE), payload_encode(Payload(timestamp=now, seq=self._next_seq(),
                                                                    metrics=metrics))  # fmt: skip


class Values:
    """The simulated process, with a seeded special cause about every SEED_EVERY values."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seeded = 0

    def next(self) -> float:
        if self.rng.randrange(SEED_EVERY) == 0:
            self.seeded += 1
            return SEED
        return round(self.rng.gauss(CENTER, SIGMA), 4)


Message = Callable[[int], tuple[str, bytes]]  # message index -> (topic, payload)


class Publisher:
    """paho-mqtt, QoS 1, up to 1,000 in flight, unlimited queue; counts acknowledgements."""

    def __init__(self, broker: Broker, *, will: tuple[str, bytes] | None = None) -> None:
        import paho.mqtt.client as mqtt

        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"openspc-bench-ingest-{secrets.token_hex(3)}")  # fmt: skip
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1)
        self.acked = 0
        self.client.on_publish = self._on_publish
        self.client.connect(*broker.address)
        self.client.loop_start()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self.acked += 1

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        if info.rc != 0:
            raise BenchError(f"paho refused to publish: rc {info.rc}")

    def publish_at(
        self, rate: float, seconds: float, message: Message, gate: Callable[[int], None] | None = None
    ) -> tuple[int, float, float]:
        """`rate` messages a second (0: as fast as paho takes them) for `seconds`: the count, and the
        wall-clock times of the first and the last publish. At a rate, exactly rate x seconds messages,
        each at its slot (a late one at once)."""
        start, first = time.monotonic(), time.time()
        count = round(rate * seconds) if rate > 0 else None
        index, acked_before = 0, self.acked
        while index != count:
            # paho numbers messages 1-65535: far more waiting for their PUBACK would reuse an id.
            while index - (self.acked - acked_before) >= OUTSTANDING:
                time.sleep(0.001)
            now = time.monotonic()
            if count is None and now - start >= seconds:
                break
            if rate > 0:
                delay = start + index / rate - now
                if delay > 0:
                    time.sleep(delay)
            if gate is not None:
                gate(index)  # may wait
            self.publish(*message(index))
            index += 1
        return index, first, time.time()

    def wait_acked(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.acked < count and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Subscriber:
    """A bare paho subscriber: when each message arrived (wall clock) and, optionally, its payload."""

    def __init__(self, broker: Broker, topic: str, *, keep: bool) -> None:
        import paho.mqtt.client as mqtt

        self.keep = keep
        self.arrivals: list[float] = []
        self.payloads: list[bytes] = []
        self.lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"openspc-bench-sub-{secrets.token_hex(3)}")  # fmt: skip
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect(*broker.address)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise BenchError(f"the test subscriber could not subscribe to {topic}")

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        now = time.time()
        with self.lock:
            self.arrivals.append(now)
            if self.keep:
                self.payloads.append(bytes(message.payload))

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)

    def violations(self) -> dict[int, float]:
        """Sample id -> the first arrival of a violation of it."""
        first: dict[int, float] = {}
        with self.lock:
            for arrived, payload in zip(self.arrivals, self.payloads, strict=True):
                sample = json.loads(payload).get("sample")
                if isinstance(sample, int) and sample not in first:
                    first[sample] = arrived
        return first

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class WsClient:
    """One WebSocket client of ws/samples/, reading in a thread of its own (its own asyncio loop):
    when the first `violation` message of each sample arrived (wall clock)."""

    def __init__(self, port: int, token: str, characteristic_ids: Sequence[int]) -> None:
        self.first: dict[int, float] = {}
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.ws: Any = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, args=(port, token, list(characteristic_ids)),
                                       name="ws-client", daemon=True)  # fmt: skip
        self.thread.start()
        if not self.ready.wait(30) or self.error is not None:
            raise BenchError(f"the WebSocket client did not subscribe: {self.error!r}")

    def _run(self, port: int, token: str, ids: list[int]) -> None:
        try:
            self.loop.run_until_complete(self._read(port, token, ids))
        except BaseException as exc:  # the main thread reports it
            self.error = exc
        finally:
            self.ready.set()

    async def _read(self, port: int, token: str, ids: list[int]) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        url = f"ws://127.0.0.1:{port}/ws/samples/?token={token}"
        async with connect(url, origin=f"http://127.0.0.1:{port}", max_queue=None) as ws:
            self.ws = ws
            await ws.send(json.dumps({"type": "subscribe", "characteristic_ids": ids}))
            answer = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
            if answer.get("type") != "subscribed" or sorted(answer.get("characteristic_ids", [])) != sorted(
                ids
            ):
                raise BenchError(f"subscribe answered {answer}")
            self.ready.set()
            try:
                async for raw in ws:
                    now = time.time()
                    message = json.loads(raw)
                    if message.get("type") == "violation":
                        sample = message.get("payload", {}).get("sample")
                        with self.lock:
                            self.first.setdefault(sample, now)
            except ConnectionClosed:
                pass

    def violations(self) -> dict[int, float]:
        if self.error is not None:
            raise BenchError(f"the WebSocket client failed: {self.error!r}")
        with self.lock:
            return dict(self.first)

    def close(self) -> None:
        if self.ws is not None and self.thread.is_alive():
            closing = asyncio.run_coroutine_threadsafe(self.ws.close(), self.loop)
            try:
                closing.result(timeout=5)
            except Exception:  # the socket is gone either way once the benchmark ends
                closing.cancel()
        self.thread.join(timeout=5)


def ceiling(broker: Broker, message: Message, seconds: float) -> float:
    """Messages/s a bare subscriber received of what one publisher sent as fast as it could. The
    payloads are encoded before (200 of them, sent in turn): the publisher's encoding is no part of
    what the broker carries."""
    payloads = [message(i)[1] for i in range(200)]
    subscriber = Subscriber(broker, CEILING_TOPIC, keep=False)
    publisher = Publisher(broker)
    try:
        count, first, _ = publisher.publish_at(0, seconds, lambda i: (CEILING_TOPIC, payloads[i % 200]))
        deadline, last_count, last_change = time.monotonic() + 120, -1, time.monotonic()
        while (
            subscriber.count() < count and time.monotonic() < deadline and time.monotonic() - last_change < 5
        ):
            if subscriber.count() != last_count:
                last_count, last_change = subscriber.count(), time.monotonic()
            time.sleep(0.05)
        arrivals = subscriber.arrivals
        return round(len(arrivals) / (max(arrivals) - first), 1) if arrivals else 0.0
    finally:
        publisher.close()
        subscriber.close()

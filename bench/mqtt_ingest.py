"""The plant loop over MQTT: Sparkplug B and JSON values from publish to stored, calculated and
violation out, with 2 Celery workers, against the broker's own ceiling.

Run from the repository root against real services (never the embedded ones):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/8 \\
        .venv/bin/python bench/mqtt_ingest.py [--rates 2000,10000] [--json-rates 1000,3000] \\
        [--seconds 10] [--saturation] [--listeners 1|2] [--rest-seconds 10]

Sets up (as bench/mqtt_listen.py and bench/ingest_rest.py do, reusing their code): a private
Mosquitto (mqtt_listen.Broker; needs `mosquitto`), the database `openspc_mqtt_ingest_bench`
(created, migrated, dropped), the plant of bench/ingest_common.py with 50 characteristics fed by
Sparkplug B metrics (data source "sparkplug", tag = metric name `m01`..`m50`), 4 fed by JSON topics
(`bench/json/1`..`4`, data source "tag") and 4 left to REST; 2 Celery workers
(ingest_rest.Processes: queues celery, observations.in, calculations) and `manage.py
mqtt_listen` (MQTT_PUBLISH_INTERVAL_MS=50; with --listeners 2, two in the shared group
MQTT_SHARED_GROUP=bench).

The publisher is one paho client, QoS 1, up to 1,000 messages in flight, an edge node
`spBv1.0/bench/.../node-1/gauges`: NBIRTH (bdSeq, Rebirth) and DBIRTH with the 50 metrics (names and
aliases, Double), then DDATA with the 50 metrics by alias, each with its timestamp (the publish time,
ms), seq 0-255 wrapping. JSON: `{"value", "id", "ts"}` (ts: the publish time, us) round robin
over the 4 topics. Each run publishes at a fixed offered rate (measurements/s: DDATA messages are
rate / 50 a second) for --seconds; --saturation adds a run per kind that publishes as fast as it
can while at most --saturation-backlog measurements are published but not yet judged (closed loop:
the figure is what the pipeline takes, not a queue that grows for as long as the run lasts). One
value in ~200 is a seeded special cause (CENTER + 30 sigma: its subgroup's mean is far beyond the
limits).

Definitions, per run (every time is the same machine's clock):

* stored: Observation.received_at - its publish time (observed_at, which the publisher set).
* calculated: the sample's Sample.evaluated_at (the calculation worker judged it: in_control set)
  - the publish time of the sample's LAST value (a sample can be judged only once its subgroup of 5
  is complete, which takes 5 DDATA messages: that wait is the publisher's, not the pipeline's).
* violation out: when a test subscriber on `spc/violations/#` received the first violation of a
  sample holding a seeded value - the publish time of that sample's last value.
* measurements/s: values in judged samples / (first publish -> last evaluated_at).
* lost: measurements the broker acknowledged to the publisher - observation rows stored, once no
  new row came for --stall s. uncalculated: stored values not in a judged sample, beyond the (at
  most 4 per characteristic) left in an incomplete subgroup. missing violations: seeded samples
  judged but whose violation never reached the subscriber.
* ceiling: the same publisher, the same DDATA (and JSON) payloads, as fast as it can, on a topic only
  a bare paho subscriber (QoS 1) reads, in the same run: messages/s that subscriber received.
  ceiling_ratio: Sparkplug messages/s calculated (best run) / the DDATA ceiling.
* first after restart: the listener stopped (SIGTERM) and started again; once it is connected, DDATA
  at 2,000 measurements/s; the first sample judged after the restart, from its last value's publish
  to evaluated_at.
* REST: batches of 100 through daphne at 2,000 observations/s offered (ingest_rest's clients and
  poller, on the 4 REST characteristics), p99 from POST to stored (ChartState moved).

* WebSocket: a client of daphne's `ws/samples/` (a manager's JWT, subscribed to the 54 MQTT-fed
  characteristics, in a thread of this process) times the `violation` message of the same seeded
  samples, from the same moment (p99_ws_ms; missing ws: seeded samples it never got).

A figure that could not be measured is null in the JSON and "-" in the table.

Prints a table for people; the LAST line is one line of JSON: sparkplug_measurements_per_s and
json_measurements_per_s (the best run of each kind, to calculated), p50_ms / p99_ms (publish to
violation out) and p50_ws_ms / p99_ws_ms of the Sparkplug run at 2,000/s (null without one),
ceiling_messages_per_s (DDATA), ceiling_ratio, first_after_restart_ms, rest_p99_ms_at_2000, lost,
and every run under "runs" (with the cores each part kept busy and the database's wait events).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import random
import secrets
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest_common import (  # noqa: E402
    CENTER,
    SIGMA,
    SUBGROUP,
    BenchError,
    Plant,
    bench_database_url,
    database_recreate,
    django_start,
    migrate,
    plant_setup,
    queues_check,
    queues_clear,
    services_check,
)
from bench.ingest_rest import (  # noqa: E402
    LOG_DIR,
    Feeder,
    Processes,
    Tracker,
    machine_busy,
    percentile,
    post_batches,
    runs_measured,
    wait_stored,
)
from bench.mqtt_listen import Broker, Cpu, Listener, mosquitto_binary  # noqa: E402
from bench.ws_fanout import manager_token  # noqa: E402

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


# --- The plant -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Feeds:
    plant: Plant
    sparkplug: list[int]  # characteristic ids, metric index order
    json: list[int]  # topic index order
    rest: list[int]


def plant_feed() -> Feeds:
    from apps.config import services as config
    from apps.config.models import Characteristic

    plant = plant_setup(characteristics=METRICS + JSON_TOPICS + REST_CHARACTERISTICS)
    ids = plant.characteristic_ids
    sparkplug, json_fed, rest = (
        ids[:METRICS],
        ids[METRICS : METRICS + JSON_TOPICS],
        ids[METRICS + JSON_TOPICS :],
    )
    for index, pk in enumerate(sparkplug):
        config.characteristic_update(
            characteristic=Characteristic.objects.get(pk=pk),
            data={"data_source": "sparkplug", "tag": metric_name(index)},
        )
    for index, pk in enumerate(json_fed):
        config.characteristic_update(
            characteristic=Characteristic.objects.get(pk=pk),
            data={"data_source": "tag", "tag": JSON_TOPIC.format(index + 1)},
        )
    return Feeds(plant=plant, sparkplug=sparkplug, json=json_fed, rest=rest)


# --- What the database shows ---------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One stored observation of a run: times in epoch seconds."""

    published: float
    received: float
    sample: int | None
    evaluated: float | None
    seeded: bool


def rows_of(characteristics: Sequence[int], since: datetime.datetime) -> list[Row]:
    from apps.observations.models import Observation

    rows = Observation.objects.filter(
        source="mqtt", characteristic_id__in=characteristics, observed_at__gte=since
    ).values_list("observed_at", "received_at", "sample_id", "sample__evaluated_at", "values")
    return [
        Row(observed.timestamp(), received.timestamp(), sample, evaluated.timestamp() if evaluated else None,
            SEED in values)
        for observed, received, sample, evaluated, values in rows
    ]  # fmt: skip


def counts_of(characteristics: Sequence[int], since: datetime.datetime) -> tuple[int, int]:
    """(stored, in a judged sample)."""
    from apps.observations.models import Observation

    rows = Observation.objects.filter(
        source="mqtt", characteristic_id__in=characteristics, observed_at__gte=since
    )
    return rows.count(), rows.filter(sample__evaluated_at__isnull=False).count()


def wait_settled(characteristics: Sequence[int], since: datetime.datetime, acked: int, stall: float,
                 timeout: float, alive: Callable[[], None]) -> None:  # fmt: skip
    """Until every acknowledged value is stored and all but incomplete subgroups are judged, or
    nothing moved for `stall` seconds."""
    tail = (SUBGROUP - 1) * len(characteristics)
    last, last_change = (-1, -1), time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and time.monotonic() - last_change < stall:
        alive()
        now = counts_of(characteristics, since)
        if now != last:
            last, last_change = now, time.monotonic()
        if now[0] >= acked and now[1] >= now[0] - tail:
            return
        time.sleep(0.1)


class DatabaseWaits:
    """What the bench database's server processes are doing, sampled every 20 ms from
    pg_stat_activity (this benchmark's own connection left out): the share of samples of an active
    backend per wait event ("cpu": active, waiting on nothing). Lock waits are workers queued behind
    each other's row locks; much "cpu" with few cores free is PostgreSQL itself."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.counts: dict[str, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="db-waits", daemon=True)

    def _backends(self, cursor: Any) -> list[tuple[int, str, str]]:
        cursor.execute(
            "SELECT pid, state, coalesce(wait_event_type || ':' || wait_event, 'cpu') FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [self.database],
        )
        return cursor.fetchall()

    def _run(self) -> None:
        from django.db import connection

        try:
            with connection.cursor() as cursor:
                while not self.stop.wait(0.02):
                    for _, state, event in self._backends(cursor):
                        if state == "active" and event != "Client:ClientRead":
                            self.counts[event] = self.counts.get(event, 0) + 1
        finally:
            connection.close()

    def cpu(self) -> dict[int, float]:
        """CPU seconds so far of each server process of the bench database."""
        from django.db import connection

        from bench.ingest_rest import cpu_seconds

        seconds = {}
        with connection.cursor() as cursor:
            for pid, _, _ in self._backends(cursor):
                with contextlib.suppress(OSError, ValueError, IndexError):  # gone, or no Linux /proc
                    seconds[pid] = cpu_seconds(pid)
        return seconds

    def cpu_since(self, before: dict[int, float]) -> float:
        """CPU seconds the server processes used since `before` (those that were there then)."""
        now = self.cpu()
        return sum(now[pid] - before[pid] for pid in now if pid in before)

    def shares(self) -> dict[str, float]:
        total = sum(self.counts.values())
        top = sorted(self.counts.items(), key=lambda item: -item[1])[:6]
        return {event: round(count / total, 2) for event, count in top} if total else {}


# --- One run -------------------------------------------------------------------------------------


@dataclass
class Run:
    kind: str  # sparkplug | json
    rate: int  # offered measurements/s; 0: saturation
    published: int  # measurements
    acked: int
    stored: int
    calculated: int
    stored_per_s: float
    measurements_per_s: float  # to calculated
    stored_p50_ms: float | None
    stored_p99_ms: float | None
    calc_p50_ms: float | None
    calc_p99_ms: float | None
    seeded_samples: int
    violation_p50_ms: float | None
    violation_p99_ms: float | None
    missing_violations: int
    ws_p50_ms: float | None
    ws_p99_ms: float | None
    missing_ws: int
    lost: int
    uncalculated: int
    cores: dict[str, float] = field(default_factory=dict)
    db_waits: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.kind}_{self.rate or 'saturation'}"


def ms(values: Sequence[float], q: float) -> float | None:
    return round(percentile([v * 1000 for v in values], q), 1) if values else None


def summarise(
    kind: str,
    rate: int,
    published: int,
    acked: int,
    first: float,
    rows: Sequence[Row],
    violations: dict[int, float],
    characteristics: int,
    cores: dict[str, float],
    ws: dict[int, float] | None = None,
) -> Run:
    """The run's figures (see the module docstring) from its stored rows."""
    samples: dict[int, list[Row]] = {}
    for row in rows:
        if row.sample is not None and row.evaluated is not None:
            samples.setdefault(row.sample, []).append(row)
    ws = ws or {}
    calc, seeded_lat, ws_lat, seeded, missing, missing_ws = [], [], [], 0, 0, 0
    for sample, members in samples.items():
        if len(members) < SUBGROUP:  # a subgroup begun in the run before: not this run's alone
            continue
        last = max(r.published for r in members)
        calc.append((members[0].evaluated or 0.0) - last)
        if any(r.seeded for r in members):
            seeded += 1
            if sample in violations:
                seeded_lat.append(violations[sample] - last)
            else:
                missing += 1
            if sample in ws:
                ws_lat.append(ws[sample] - last)
            else:
                missing_ws += 1
    calculated = sum(len(m) for m in samples.values())
    last_received = max((r.received for r in rows), default=first)
    last_evaluated = max((r.evaluated or 0.0 for r in rows), default=first)
    stored_lat = [r.received - r.published for r in rows]
    return Run(
        kind=kind, rate=rate, published=published, acked=acked, stored=len(rows), calculated=calculated,
        stored_per_s=round(len(rows) / (last_received - first), 1) if last_received > first else 0.0,
        measurements_per_s=round(calculated / (last_evaluated - first), 1) if last_evaluated > first else 0.0,
        stored_p50_ms=ms(stored_lat, 50), stored_p99_ms=ms(stored_lat, 99), calc_p50_ms=ms(calc, 50),
        calc_p99_ms=ms(calc, 99), seeded_samples=seeded, violation_p50_ms=ms(seeded_lat, 50),
        violation_p99_ms=ms(seeded_lat, 99), missing_violations=missing,
        ws_p50_ms=ms(ws_lat, 50), ws_p99_ms=ms(ws_lat, 99), missing_ws=missing_ws,
        lost=max(0, acked - len(rows)),
        uncalculated=max(0, len(rows) - calculated - (SUBGROUP - 1) * characteristics), cores=cores,
    )  # fmt: skip


class Loop:
    """Everything a run needs: the broker, the plant, the workers, the listener(s), the subscriber."""

    def __init__(self, args: argparse.Namespace, broker: Broker, env: dict[str, str]) -> None:
        self.args, self.broker = args, broker
        self.env = {**env, "MQTT_PUBLISH_INTERVAL_MS": "50"}
        if args.listeners > 1:
            self.env["MQTT_SHARED_GROUP"] = "bench"
        self.feeds = plant_feed()
        self.processes = Processes(self.env, args.profile, "mqtt-ingest")
        self.listeners: list[Listener] = []
        self.node = EdgeNode()
        self.values = Values(7)
        self.restarts = 0
        self.processes.start_workers(2)
        self.processes.wait_workers_ready()
        self.web = Processes(self.env, None, "mqtt-ingest-web")
        self.port = self.web.start_web()
        self.ws = WsClient(self.port, manager_token(), [*self.feeds.sparkplug, *self.feeds.json])
        self.listeners_start()
        self.violations = Subscriber(broker, VIOLATIONS, keep=True)
        self.publisher = Publisher(broker, will=self.node.will())

    def listeners_start(self) -> None:
        self.restarts += 1
        self.listeners = [
            Listener(self.env, broker=self.broker, protocol="3.1.1", label=f"ingest-{self.restarts}-{n}")
            for n in range(1, self.args.listeners + 1)
        ]
        for listener in self.listeners:
            listener.wait_connected()

    def listeners_stop(self) -> None:
        for listener in self.listeners:
            listener.stop()
            self.broker.session_clear(listener.client_id)

    def alive(self) -> None:
        self.processes.check_alive()
        for listener in self.listeners:
            listener.check_alive()

    def pids(self) -> dict[str, int | None]:
        pids: dict[str, int | None] = {
            f"listener-{n}": lis.process.pid for n, lis in enumerate(self.listeners, 1)
        }
        pids.update({f"worker-{n}": pid for n, pid in enumerate(self.processes.pids("worker"), 1)})
        pids["broker"] = self.broker.pid()
        return pids

    def ddata(self, index: int) -> tuple[str, bytes]:
        return self.node.data([self.values.next() for _ in range(METRICS)])

    def json_message(self, index: int) -> tuple[str, bytes]:
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")
        topic = JSON_TOPIC.format(index % JSON_TOPICS + 1)
        key = f"{self.restarts}-{secrets.token_hex(6)}"
        return topic, json.dumps({"value": self.values.next(), "id": key, "ts": now}).encode()

    def births(self, timeout: float = 30) -> None:
        """NBIRTH and DBIRTH, then DDATA until one is stored (again births every second till then)."""
        since = datetime.datetime.now(datetime.UTC)
        deadline = time.monotonic() + timeout
        while counts_of(self.feeds.sparkplug, since)[0] == 0:
            self.alive()
            if time.monotonic() > deadline:
                raise BenchError(
                    f"no Sparkplug value was stored in {timeout:.0f} s; see {self.listeners[0].log}"
                )
            for message in self.node.births():
                self.publisher.publish(*message)
            for _ in range(5):
                self.publisher.publish(*self.ddata(0))
                time.sleep(0.2)

    def measure(self, kind: str, rate: int) -> Run:
        characteristics = self.feeds.sparkplug if kind == "sparkplug" else self.feeds.json
        per_message = METRICS if kind == "sparkplug" else 1
        message = self.ddata if kind == "sparkplug" else self.json_message
        time.sleep(0.5)
        since = datetime.datetime.now(datetime.UTC)
        acked_before = self.publisher.acked
        waits = DatabaseWaits(self.args.database)
        before, postgres = Cpu(self.pids()), waits.cpu()
        started = time.monotonic()
        waits.thread.start()
        try:
            gate = None if rate else self.backlog_gate(characteristics, since, per_message)
            count, first, _ = self.publisher.publish_at(rate / per_message, self.args.seconds, message, gate)
            self.publisher.wait_acked(acked_before + count, self.args.timeout)
            acked = (self.publisher.acked - acked_before) * per_message
            wait_settled(characteristics, since, acked, self.args.stall, self.args.timeout, self.alive)
        finally:
            waits.stop.set()
            waits.thread.join(timeout=5)
        seconds = time.monotonic() - started
        cores = before.cores(Cpu(self.pids()), seconds)
        cores["postgres"] = round(waits.cpu_since(postgres) / seconds, 2)
        time.sleep(0.3)  # the outbox publisher's interval: the last violations
        rows = rows_of(characteristics, since)
        run = summarise(kind, rate, count * per_message, acked, first, rows, self.violations.violations(),
                        len(characteristics), cores, self.ws.violations())  # fmt: skip
        run.db_waits = waits.shares()
        return run

    def backlog_gate(self, characteristics: Sequence[int], since: datetime.datetime,
                     per_message: int) -> Callable[[int], None]:  # fmt: skip
        """At saturation: before a message, wait while more than --saturation-backlog measurements are
        published but not judged (the database is asked every 50 ms at most)."""
        judged, asked = 0, 0.0

        def gate(index: int) -> None:
            nonlocal judged, asked
            while index * per_message - judged > self.args.saturation_backlog:
                if time.monotonic() - asked > 0.05:
                    judged, asked = counts_of(characteristics, since)[1], time.monotonic()
                else:
                    time.sleep(0.01)

        return gate

    def first_after_restart(self) -> float | None:
        """The listener restarted: the first sample judged after, from its last value's publish."""
        self.listeners_stop()
        self.listeners_start()
        since = datetime.datetime.now(datetime.UTC)
        rate = 2000 / METRICS
        deadline = time.monotonic() + self.args.timeout
        index = 0
        start = time.monotonic()
        while counts_of(self.feeds.sparkplug, since)[1] == 0 and time.monotonic() < deadline:
            self.alive()
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.publisher.publish(*self.ddata(index))
            index += 1
        rows = rows_of(self.feeds.sparkplug, since)
        judged: dict[int, list[Row]] = {}
        for row in rows:
            if row.sample is not None and row.evaluated is not None:
                judged.setdefault(row.sample, []).append(row)
        if not judged:
            return None
        first = min(judged.values(), key=lambda members: members[0].evaluated or 0.0)
        return round(((first[0].evaluated or 0.0) - max(r.published for r in first)) * 1000, 1)

    def rest_p99(self) -> tuple[float | None, int]:
        """REST batches at REST_RATE observations/s offered, through daphne and the same workers."""
        plant = Plant(lot_id=self.feeds.plant.lot_id, lot_number=self.feeds.plant.lot_number,
                      characteristic_ids=self.feeds.rest, token=self.feeds.plant.token)  # fmt: skip
        web, port = self.web, self.port
        tracker = Tracker(plant.characteristic_ids, 0.01, 10_000)  # open loop: never waits for slots
        try:
            tracker.thread.start()
            key = secrets.token_hex(4)
            post_batches(
                port=port,
                plant=plant,
                tracker=tracker,
                feeder=Feeder(count=4, seconds=None, rate=0),
                clients=2,
                key=f"warm-{key}",
            )
            wait_stored(tracker, web, self.args.timeout)
            feeder = Feeder(count=None, seconds=self.args.rest_seconds, rate=REST_RATE)
            batches = post_batches(port=port, plant=plant, tracker=tracker, feeder=feeder, clients=4, key=key)
            wait_stored(tracker, web, self.args.timeout)
        finally:
            tracker.stop.set()
            if tracker.thread.is_alive():
                tracker.thread.join(timeout=5)
        latencies = [((b.stored or 0.0) - b.sent) * 1000 for b in batches]
        return (round(percentile(latencies, 99), 1) if latencies else None), sum(len(b.ids) for b in batches)

    def close(self) -> None:
        for closing in (
            self.publisher.close,
            self.violations.close,
            self.ws.close,
            self.listeners_stop,
            self.web.stop,
            self.processes.stop,
        ):
            try:
                closing()
            except Exception as exc:  # the rest must stop too
                print(f"stopping: {exc!r}", file=sys.stderr)


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


def profile_report(directory: Path, top: int = 25) -> None:
    """The workers' time (all runs, warm-up and the REST phase included) in the project's code."""
    import pstats
    import re

    files = sorted(str(p) for p in directory.glob("mqtt-ingest-worker-*.prof"))
    if files:
        stats = pstats.Stats(*files, stream=sys.stdout)
        print("\n--- profile: the workers, the project's code, cumulative (wall clock) ---")
        stats.sort_stats("cumulative").print_stats(re.escape(str(ROOT / "apps")), top)
        print("--- profile: the workers, all code by own time ---")
        stats.strip_dirs().sort_stats("tottime").print_stats(top)


# --- Output --------------------------------------------------------------------------------------


def cell(value: float | None, width: int = 9) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width},.1f}"


def table(runs: Sequence[Run]) -> list[str]:
    lines = [f"{'run':>21}{'acked':>9}{'stored':>9}{'calc':>9}{'stored/s':>9}{'calc/s':>9}"
             f"{'st p50':>9}{'st p99':>9}{'calc p50':>9}{'calc p99':>9}{'viol p50':>9}{'viol p99':>9}"
             f"{'ws p50':>9}{'ws p99':>9}{'seeded':>7}{'missing':>8}{'miss ws':>8}{'lost':>6}"
             f"{'uncalc':>7}"]  # fmt: skip
    for r in runs:
        lines.append(f"{r.label:>21}{r.acked:>9,}{r.stored:>9,}{r.calculated:>9,}{r.stored_per_s:>9,.0f}"
                     f"{r.measurements_per_s:>9,.0f}{cell(r.stored_p50_ms)}{cell(r.stored_p99_ms)}"
                     f"{cell(r.calc_p50_ms)}{cell(r.calc_p99_ms)}{cell(r.violation_p50_ms)}"
                     f"{cell(r.violation_p99_ms)}{cell(r.ws_p50_ms)}{cell(r.ws_p99_ms)}{r.seeded_samples:>7}"
                     f"{r.missing_violations:>8}{r.missing_ws:>8}{r.lost:>6,}"
                     f"{r.uncalculated:>7,}")  # fmt: skip
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rates", default="2000,10000", help="Sparkplug measurements/s offered")
    parser.add_argument("--json-rates", default="1000,3000", help="JSON measurements/s offered")
    parser.add_argument("--seconds", type=float, default=10.0, help="publish for this long per run")
    parser.add_argument("--saturation", action="store_true", help="also a run per kind as fast as possible")
    parser.add_argument("--saturation-backlog", type=int, default=5000,
                        help="at saturation, measurements published but not yet judged at most")  # fmt: skip
    parser.add_argument("--listeners", type=int, choices=(1, 2), default=1, help="2: a shared group")
    parser.add_argument("--ceiling-seconds", type=float, default=5.0, help="the bare subscriber's run")
    parser.add_argument("--rest-seconds", type=float, default=10.0, help="REST at 2,000/s; 0: skip")
    parser.add_argument("--broker-inflight", type=int, default=20, help="the private broker's max_inflight")
    parser.add_argument(
        "--stall", type=float, default=15.0, help="seconds without progress: the rest is lost"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for a backlog")
    parser.add_argument("--database", default="openspc_mqtt_ingest_bench", help="database to create and drop")
    parser.add_argument("--purge-queues", action="store_true", help="delete messages already queued")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="run the workers under cProfile into DIR")
    args = parser.parse_args(argv)
    try:
        args.rate_list = [int(p) for p in args.rates.split(",") if p.strip()]
        args.json_rate_list = [int(p) for p in args.json_rates.split(",") if p.strip()]
    except ValueError:
        parser.error("--rates and --json-rates take numbers separated by commas")
    if min(args.rate_list + args.json_rate_list, default=1) < 1 or args.seconds <= 0:
        parser.error("rates must be at least 1 measurement/s and --seconds positive")
    if mosquitto_binary() is None:
        parser.error("needs Mosquitto: the benchmark starts a private one")
    return args


def plan(args: argparse.Namespace) -> list[tuple[str, int]]:
    saturation = [0] if args.saturation else []
    return [("sparkplug", rate) for rate in [*args.rate_list, *saturation]] + [
        ("json", rate) for rate in [*args.json_rate_list, *saturation]
    ]


def summary(runs: Sequence[Run], extra: dict[str, Any]) -> dict[str, Any]:
    def best(kind: str) -> float | None:
        figures = [r.measurements_per_s for r in runs if r.kind == kind]
        return max(figures) if figures else None

    at_2000 = next((r for r in runs if r.kind == "sparkplug" and r.rate == 2000), None)
    sparkplug, json_best = best("sparkplug"), best("json")
    ceiling_ = extra.get("ceiling_messages_per_s")
    json_ceiling = extra.get("ceiling_json_messages_per_s")
    return {
        "sparkplug_measurements_per_s": sparkplug,
        "json_measurements_per_s": json_best,
        "p50_ms": at_2000.violation_p50_ms if at_2000 else None,
        "p99_ms": at_2000.violation_p99_ms if at_2000 else None,
        "p99_calculated_ms": at_2000.calc_p99_ms if at_2000 else None,
        "p50_ws_ms": at_2000.ws_p50_ms if at_2000 else None,
        "p99_ws_ms": at_2000.ws_p99_ms if at_2000 else None,
        "ceiling_ratio": round(sparkplug / METRICS / ceiling_, 3) if sparkplug and ceiling_ else None,
        "json_ceiling_ratio": round(json_best / json_ceiling, 3) if json_best and json_ceiling else None,
        "lost": sum(r.lost for r in runs),
        "uncalculated": sum(r.uncalculated for r in runs),
        "missing_violations": sum(r.missing_violations for r in runs),
        "missing_ws": sum(r.missing_ws for r in runs),
        **extra,
        "runs": [asdict(r) for r in runs],
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    database_url, redis_url = services_check()
    queues_check(redis_url, purge=args.purge_queues)
    env = django_start(database_url=bench_database_url(database_url, args.database))
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        args.profile = args.profile.resolve()
        for old in args.profile.glob("mqtt-ingest-worker-*.prof"):
            old.unlink()
    broker = Broker(private=True, inflight=args.broker_inflight)
    print(f"MQTT plant loop benchmark: {METRICS} Sparkplug metrics per DDATA, {JSON_TOPICS} JSON topics, "
          f"QoS 1, {args.seconds:g} s per run, 2 workers, {args.listeners} listener(s); broker: "
          f"{broker.description}; Python {platform.python_version()}, {os.cpu_count()} CPUs; logs in "
          f"{LOG_DIR}", flush=True)  # fmt: skip
    busy = machine_busy()
    if busy is not None and busy > 0.25:
        print(f"warning: {busy:.2f} cores were busy before the benchmark started; the figures will be "
              "lower than on an idle machine", flush=True)  # fmt: skip
    database_recreate(database_url, args.database)
    migrate(env)
    extra: dict[str, Any] = {
        "broker": broker.description,
        "listeners": args.listeners,
        "seconds": args.seconds,
        "cpus": os.cpu_count(),
        "machine_busy_before": busy,
    }
    loop: Loop | None = None

    def measures() -> Any:
        nonlocal loop
        loop = Loop(args, broker, env)
        loop.births()
        for kind, rate in plan(args):
            yield lambda k=kind, r=rate: loop.measure(k, r) if loop else None

    def cleanup() -> None:
        if loop is not None:
            loop.close()
        queues_clear(env["REDIS_URL"])
        database_recreate(database_url, args.database, drop_only=True)
        broker.stop()

    def after() -> None:  # the rows that are no run of the table, before the cleanup
        assert loop is not None
        extra["first_after_restart_ms"] = loop.first_after_restart()
        print(f"  first value after a listener restart, to calculated: {extra['first_after_restart_ms']} ms",
              flush=True)  # fmt: skip
        if args.rest_seconds > 0:
            extra["rest_p99_ms_at_2000"], extra["rest_observations"] = loop.rest_p99()
        else:
            extra["rest_p99_ms_at_2000"], extra["rest_observations"] = None, 0
        print(
            f"  REST batches at {REST_RATE:,} obs/s offered: p99 {extra['rest_p99_ms_at_2000']} ms",
            flush=True,
        )
        loop.listeners_stop()
        extra["ceiling_messages_per_s"] = ceiling(broker, loop.ddata, args.ceiling_seconds)
        extra["ceiling_json_messages_per_s"] = ceiling(broker, loop.json_message, args.ceiling_seconds)
        print(f"  ceiling, one bare subscriber: {extra['ceiling_messages_per_s']:,} DDATA messages/s, "
              f"{extra['ceiling_json_messages_per_s']:,} JSON messages/s", flush=True)  # fmt: skip

    def all_measures() -> Any:
        yield from measures()
        yield lambda: after()

    def row(done: list[Run | None]) -> list[str]:
        return table([r for r in done if r is not None]) if done[-1] is not None else ["(the rows above)"]

    measured = runs_measured(all_measures(), row, cleanup)
    if isinstance(measured, int):
        return measured
    runs = [r for r in measured if isinstance(r, Run)]
    print()
    for line in table(runs):
        print(line)
    result = summary(runs, extra)
    print(
        f"first after restart {cell(result.get('first_after_restart_ms'), 0)} ms; REST p99 at 2,000/s "
        f"{cell(result.get('rest_p99_ms_at_2000'), 0)} ms; "
        f"ceiling {cell(result['ceiling_messages_per_s'], 0)} "
        f"DDATA/s (ratio {result['ceiling_ratio']})"
    )
    if result["lost"]:
        print(f"LOST: {result['lost']:,} measurements acknowledged by the broker were never stored")
    if args.profile is not None:
        profile_report(args.profile)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

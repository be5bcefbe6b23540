"""A Sparkplug B 3.0 edge node from a library that is not ours, for the interoperability test of the MQTT
listener as primary host application (tests/mqtt_bridge/test_sparkplug_interop.py).

Built on mqtt-spb-wrapper 2.1.2: its bundled Eclipse Tahu payload code (the `Payload` protobuf class and
Tahu's `addMetric` / `addNullMetric`) encodes and decodes every payload, over the paho-mqtt 1.6.1 it pins.
Run by .venv-spb-node/bin/python (Makefile, requirements-sparkplug-node.txt), never imported by the suite:
those pins are older than the project's.

The session is not the wrapper's MqttSpbEntityEdgeNode: that one speaks STATE as Sparkplug 2.2 did
(spBv1.0/<group>/STATE/+, "ONLINE"), names its BIRTH metrics "DATA/<name>" but its DATA metrics "<name>",
and cannot mark a metric historical. The rules here are Sparkplug 3.0's:

* connect with a clean session and an NDEATH will carrying this connection's bdSeq; subscribe to NCMD and
  to the primary host's STATE (spBv1.0/STATE/<host id>);
* publish nothing until STATE reads {"online": true}; a STATE older than the last one seen is ignored;
* then NBIRTH (seq 0, bdSeq, each metric with name, alias, datatype and current value, and
  `Node Control/Rebirth` false); then what was measured meanwhile as one NDATA of historical metrics with
  their own timestamps; then live NDATA naming metrics by alias only, seq 1 … 255, 0, 1 …;
* NCMD `Node Control/Rebirth` true: NBIRTH again, with the same bdSeq;
* STATE {"online": false} while born: NDEATH, disconnect, connect again (the next bdSeq) and wait for the
  host, keeping what is measured meanwhile (store and forward); with one broker there is no next one to
  walk to, so a node that is not born stays connected and waits;
* SIGTERM: NDEATH, disconnect, exit 0.

Each event, and each value sent or kept, is one JSON line in the --log file, for the test to reconcile:
{"event": "value", "metric", "value", "timestamp" (ms, when measured), "historical", "sent_at" (ms), "seq",
"bdseq"}; "kept" (measured while the host was away); "state", "birth", "death", "connected", …
"""

import argparse
import json
import queue
import signal
import threading
import time
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from mqtt_spb_wrapper.spb_protobuf import MetricDataType, Payload, addMetric
from mqtt_spb_wrapper.spb_protobuf.sparkplug_b import addNullMetric

NAMESPACE = "spBv1.0"
REBIRTH = "Node Control/Rebirth"
REBIRTH_ALIAS = 1
DIAMETER_ALIAS, TEMPERATURE_ALIAS = 2, 3
TEMPERATURE = "Cell1/Temperature"  # a metric no characteristic charts: the host must skip it by alias
TEMPERATURE_EVERY = 10  # measurements


def now_ms() -> int:
    return int(time.time() * 1000)


class EdgeNode:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        parts = urlsplit(args.url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 1883
        self.auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
        self.base = f"{NAMESPACE}/{args.group}"
        self.state_topic = f"{NAMESPACE}/STATE/{args.host_id}"
        self.log_file = open(args.log, "a", buffering=1)  # noqa: SIM115 (open for the node's life)
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()  # from paho's thread to the main loop
        self.stopping = threading.Event()
        self.client: mqtt.Client | None = None
        self.bdseq = args.bdseq - 1  # incremented on each connection
        self.seq = 0
        self.born = False
        self.host_online = False
        self.state_timestamp: int | None = None
        self.count = 0  # measurements
        self.live = 0  # measurements sent live
        self.kept: list[tuple[str, int, float, int]] = []  # (metric, alias, value, timestamp)
        self.current: dict[str, float] = {}

    # --- the log ------------------------------------------------------------------------------------

    def log(self, event: str, **fields: Any) -> None:
        self.log_file.write(json.dumps({"event": event, "at": now_ms(), **fields}) + "\n")

    # --- the MQTT session -----------------------------------------------------------------------------

    def death_payload(self) -> bytes:
        payload = Payload()
        payload.timestamp = now_ms()
        addMetric(payload, "bdSeq", None, MetricDataType.Int64, self.bdseq, timestamp=now_ms())
        return payload.SerializeToString()

    def connect(self) -> None:
        """A new MQTT session, with the next bdSeq in its NDEATH will."""
        self.bdseq = (self.bdseq + 1) % 256
        self.born = False
        connected = threading.Event()
        client = mqtt.Client(client_id=f"{self.args.node}-{self.bdseq}-{now_ms()}", clean_session=True)
        if self.auth:
            client.username_pw_set(*self.auth)
        client.will_set(f"{self.base}/NDEATH/{self.args.node}", self.death_payload(), qos=1, retain=False)

        def on_connect(client: mqtt.Client, userdata: Any, flags: Any, rc: int) -> None:
            if rc == 0:
                client.subscribe([(f"{self.base}/NCMD/{self.args.node}", 1), (self.state_topic, 1)])
                connected.set()

        client.on_connect = on_connect
        client.on_subscribe = lambda client, userdata, mid, granted: self.events.put(("subscribed", None))
        client.on_message = self.on_message
        client.on_disconnect = lambda client, userdata, rc: rc and self.events.put(("disconnected", rc))
        client.connect(self.host, self.port, keepalive=10)
        client.loop_start()
        if not connected.wait(10):
            raise SystemExit(f"no connection to {self.host}:{self.port}")
        self.client = client
        self.log("connected", bdseq=self.bdseq, state_topic=self.state_topic)

    def disconnect(self, why: str) -> None:
        """An intentional end of the session: NDEATH first (QoS 1), then DISCONNECT."""
        client, self.client = self.client, None
        if client is None:
            return
        info = client.publish(f"{self.base}/NDEATH/{self.args.node}", self.death_payload(), qos=1)
        info.wait_for_publish()
        self.log("death", bdseq=self.bdseq, why=why)
        client.disconnect()
        client.loop_stop()
        self.born = False

    def on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == self.state_topic:
            if not message.payload:
                return  # a retained STATE cleared
            try:
                body = json.loads(message.payload)
                state = (bool(body["online"]), int(body["timestamp"]))
            except (ValueError, KeyError, TypeError):
                self.events.put(("state_invalid", bytes(message.payload).decode(errors="replace")))
                return
            self.events.put(("state", state))
            return
        payload = Payload()
        try:
            payload.ParseFromString(bytes(message.payload))
        except Exception:  # a protobuf DecodeError, whose class differs between protobuf versions
            self.events.put(("command_invalid", message.topic))
            return
        for metric in payload.metrics:
            if (metric.name == REBIRTH or metric.alias == REBIRTH_ALIAS) and metric.boolean_value:
                self.events.put(("rebirth", None))

    def publish(self, kind: str, payload: Any) -> None:
        assert self.client is not None
        # Sparkplug 3.0: NBIRTH and NDATA go with QoS 0, not retained.
        self.client.publish(f"{self.base}/{kind}/{self.args.node}", payload.SerializeToString(), qos=0)

    def next_seq(self) -> int:
        seq, self.seq = self.seq, (self.seq + 1) % 256
        return seq

    # --- births and data ------------------------------------------------------------------------------

    def birth(self, reason: str) -> None:
        self.seq = 0
        payload = Payload()
        payload.timestamp = now_ms()
        payload.seq = self.next_seq()
        stamp = now_ms()
        addMetric(payload, "bdSeq", None, MetricDataType.Int64, self.bdseq, timestamp=stamp)
        addMetric(payload, REBIRTH, REBIRTH_ALIAS, MetricDataType.Boolean, False, timestamp=stamp)
        for name, alias, datatype in (
            (self.args.metric, DIAMETER_ALIAS, MetricDataType.Double),
            (TEMPERATURE, TEMPERATURE_ALIAS, MetricDataType.Float),
        ):
            if name in self.current:
                addMetric(payload, name, alias, datatype, self.current[name], timestamp=stamp)
            else:  # nothing measured yet: the metric is declared with no value
                addNullMetric(payload, name, alias, datatype)
        self.publish("NBIRTH", payload)
        self.born = True
        self.log("birth", bdseq=self.bdseq, reason=reason, current=self.current)

    def flush(self) -> None:
        """What was measured while the host was away: one NDATA of historical metrics, each with its own
        timestamp. The specification asks chronological order only of metrics that are not historical;
        --flush newest-first sends them the other way round, which the host must still chart in order."""
        if not self.kept:
            return
        kept = sorted(self.kept, key=lambda k: k[3], reverse=self.args.flush == "newest-first")
        self.send(kept, historical=True)
        self.kept.clear()

    def send(self, values: list[tuple[str, int, float, int]], *, historical: bool) -> None:
        payload = Payload()
        payload.timestamp = now_ms()
        payload.seq = self.next_seq()
        for _, alias, value, timestamp in values:
            datatype = MetricDataType.Double if alias == DIAMETER_ALIAS else MetricDataType.Float
            metric = addMetric(payload, None, alias, datatype, value, timestamp=timestamp)  # by alias only
            metric.is_historical = historical
        self.publish("NDATA", payload)
        sent = now_ms()
        for name, _, value, timestamp in values:
            self.log("value", metric=name, value=value, timestamp=timestamp, historical=historical,
                     sent_at=sent, seq=payload.seq, bdseq=self.bdseq)  # fmt: skip

    def measure(self) -> None:
        self.count += 1
        timestamp = now_ms()
        values = [(self.args.metric, DIAMETER_ALIAS, round(self.args.start + self.args.step * self.count, 6))]
        if self.count % TEMPERATURE_EVERY == 0:
            values.append((TEMPERATURE, TEMPERATURE_ALIAS, 20.0 + self.count / 1024))  # exact in a float
        readings = [(name, alias, value, timestamp) for name, alias, value in values]
        for name, _, value in values:
            self.current[name] = value
        if self.born and self.host_online:
            self.live += 1
            self.send(readings, historical=False)
        else:
            self.kept.extend(readings)
            for name, _, value, _ in readings:
                self.log("kept", metric=name, value=value, timestamp=timestamp)

    # --- the loop -------------------------------------------------------------------------------------

    def handle(self, kind: str, detail: Any) -> None:
        if kind == "state":
            online, timestamp = detail
            if self.state_timestamp is not None and timestamp < self.state_timestamp:
                self.log("state", online=online, timestamp=timestamp, ignored=True)
                return
            self.state_timestamp, self.host_online = timestamp, online
            self.log("state", online=online, timestamp=timestamp, ignored=False)
            if online and not self.born:
                self.birth("state")
                self.flush()
            elif not online and self.born:
                self.disconnect("the primary host is offline")
                self.connect()
        elif kind == "rebirth":
            self.log("rebirth_request", born=self.born)
            if self.born:
                self.birth("rebirth")
        elif kind == "disconnected":  # not asked for: a new session, a new bdSeq (its will went out)
            self.log("connection_lost", rc=detail)
            if self.client is not None:
                self.client.loop_stop()
                self.client = None
            self.connect()
        else:
            self.log(kind, detail=detail)

    def run(self) -> int:
        self.log("started", args=vars(self.args))
        self.connect()
        next_at = time.monotonic()
        while not self.stopping.is_set():
            try:
                kind, detail = self.events.get(timeout=max(0.0, min(0.005, next_at - time.monotonic())))
            except queue.Empty:
                pass
            else:
                self.handle(kind, detail)
                continue
            if time.monotonic() >= next_at:
                self.measure()
                fast = self.born and self.live < self.args.burst
                next_at += self.args.burst_interval if fast else self.args.interval
                next_at = max(next_at, time.monotonic() - self.args.interval)  # no catching up after a stall
        self.disconnect("stopped (SIGTERM)")
        self.log("stopped", kept=len(self.kept))
        self.log_file.close()
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--group", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--host-id", required=True, help="the primary host application's id")
    parser.add_argument("--metric", required=True, help="the name of the measured metric (Double)")
    parser.add_argument("--log", required=True, help="JSON lines of what the node did and sent")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between measurements")
    parser.add_argument("--burst", type=int, default=0, help="the first N measurements once born …")
    parser.add_argument("--burst-interval", type=float, default=0.01, help="… this many seconds apart")
    parser.add_argument("--start", type=float, default=74.0)
    parser.add_argument("--step", type=float, default=0.0001, help="each value this much above the last")
    parser.add_argument("--bdseq", type=int, default=0, help="the bdSeq of the first connection")
    parser.add_argument("--flush", choices=["oldest-first", "newest-first"], default="oldest-first")
    node = EdgeNode(parser.parse_args())
    signal.signal(signal.SIGTERM, lambda signum, frame: node.stopping.set())
    signal.signal(signal.SIGINT, lambda signum, frame: node.stopping.set())
    return node.run()


if __name__ == "__main__":
    raise SystemExit(main())

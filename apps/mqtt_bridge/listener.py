"""The MQTT listener behind `manage.py mqtt_listen`: the broker into the observation pipeline.

Threads: paho's network thread only receives (on_message puts the message in a queue) and
reconnects with exponential backoff; everything else happens in the thread that called
run(), in order, with one database connection:

1. take a batch from the queue (up to MQTT_BATCH_SIZE, waiting at most MQTT_BATCH_WAIT_MS);
2. decode each message (JSON on a characteristic's topic, or Sparkplug B), track Sparkplug
   node state, and sort it into readings, dead letters and node changes;
3. store the batch in one transaction (apps/mqtt_bridge/services.py: observations through the
   same service as the device REST endpoint);
4. only then acknowledge the messages to the broker (QoS 1, manual acknowledgement).

A listener killed at any moment has acknowledged only what is stored; the broker keeps the
rest in the listener's persistent session and delivers it again, and the idempotency keys
of the readings make a message stored twice count once. Values wait for their subgroup in
the pipeline, not here (docs/adr/0011). A Sparkplug metric feeds the characteristic whose tag is
its name, from whichever node (docs/adr/0012).

Between batches the same thread reloads the characteristics (new, changed or removed
tags are subscribed or unsubscribed without a restart) and publishes new violations.

As a Sparkplug B 3.0 host application (MQTT_SPARKPLUG_HOST_ID) the listener keeps its STATE on
spBv1.0/STATE/<host id>, retained: online once connected and subscribed, offline by its will when it
is gone (kill -9 included) and when it stops. Edge nodes that wait for their primary host publish
only while it is online, and store and forward the rest as historical values.
"""

import contextlib
import functools
import logging
import queue
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from django.db import connection
from django.utils import timezone
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from apps.mqtt_bridge.broker import BrokerAddress, broker_address
from apps.mqtt_bridge.choices import DeadLetterReason
from apps.mqtt_bridge.counters import CounterWatch
from apps.mqtt_bridge.host import Batch, SparkplugHost
from apps.mqtt_bridge.nodes import NodeKey, Nodes
from apps.mqtt_bridge.publisher import plant_messages_publish, statistics_publish, violations_publish
from apps.mqtt_bridge.readings import Bad, BadLog, json_reading
from apps.mqtt_bridge.selectors import Feeds, mqtt_feeds
from apps.mqtt_bridge.services import Dead, Stored, bridge_device, bridge_store, sources_offline_sync
from apps.mqtt_bridge.sparkplug import (
    NAMESPACE,
    MessageType,
    Topic,
    topic_parse,
)

log = logging.getLogger("openspc.mqtt")

# Sparkplug messages a host application reads (Sparkplug 3.0 §4.2). Never shared between
# listeners: a node's sequence numbers and aliases only make sense to one that sees them all.
SPARKPLUG_FILTERS = tuple(
    f"{NAMESPACE}/+/{kind}/+" + ("/+" if kind.startswith("D") else "")
    for kind in ("NBIRTH", "NDEATH", "NDATA", "DBIRTH", "DDEATH", "DDATA")
)


def _connection_reset() -> None:
    """After a failure: drop the database connection if it broke, so the next try opens a new one."""
    if connection.connection is not None and not connection.is_usable():
        connection.close()


def _database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return False
    return True


def _qos(topic: str) -> int:
    """QoS 1 for what is stored; 0 for the broker's $SYS values, which the broker sends at QoS 0 and a
    session need not keep while the listener is away (the current value comes on subscribing)."""
    return 0 if topic.startswith("$SYS/") else 1


@dataclass(frozen=True)
class Options:
    url: str
    client_id: str
    protocol: str = "3.1.1"
    shared_group: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    session_expiry: int = 7 * 24 * 3600
    batch_size: int = 500
    batch_wait: float = 0.05
    reload_seconds: float = 5.0
    bad_log_interval: float = 60.0
    rebirth_interval: float = 5.0
    host_id: str = "openspc"  # Sparkplug host application id ("": no STATE)
    reorder_timeout: float = 2.0  # seconds a Sparkplug message out of order waits for its predecessors
    publish_violations: bool = True
    publish_statistics: bool = False
    publish_interval: float = 0.1
    device: str = "mqtt-bridge"
    max_payload: int = 256 * 1024
    dropped_topics: tuple[str, ...] = ()  # the broker's dropped-message counters ($SYS)
    counter_silence: float = 30.0  # seconds without any counter value before saying so

    @functools.cached_property
    def broker(self) -> BrokerAddress:
        """`url` parsed, once (cached on the instance: a frozen dataclass still has a __dict__)."""
        return broker_address(self.url)


class Listener(SparkplugHost):
    def __init__(self, options: Options) -> None:
        self.options = options
        self.inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.stopping = threading.Event()
        self.nodes = Nodes(reorder_timeout=options.reorder_timeout)
        self.feeds = Feeds()
        self.bad_log = BadLog(options.bad_log_interval)
        self.counts: Counter[str] = Counter()
        self._subscribed: set[str] = set()
        self._dropped: set[str] = set()  # stale subscriptions unsubscribed (see _drop_stale)
        self._subscriptions_lock = threading.Lock()
        # (UN)SUBSCRIBE packets sent and not yet acknowledged, by packet id, with the line to log
        # on the acknowledgement; and acknowledgements that came before their packet id was noted.
        self._unacknowledged: dict[int, tuple[str | None, list[str]]] = {}
        self._early_acks: dict[int, list[Any]] = {}
        self._acks_lock = threading.Lock()
        self._rebirth_asked: dict[NodeKey, float] = {}
        self._rebirth_answered: set[NodeKey] = set()  # an NBIRTH came since the last request
        self._stale_logged: set[NodeKey] = set()  # nodes whose ignored NDEATH was logged
        self._state_at = 0  # the timestamp of this connection's STATE (ms)
        self._connected_at: float | None = None  # monotonic time of the first connection
        self._connected = threading.Event()
        self.client = self._client()
        self.counters = CounterWatch(
            topics=options.dropped_topics, broker=self._shown_url(), listener=options.client_id,
            bad_log=self.bad_log, counts=self.counts,
        )  # fmt: skip

    # --- the broker ---------------------------------------------------------------------

    def _client(self) -> mqtt.Client:
        o = self.options
        v5 = o.protocol == "5"
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=o.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            # A persistent session: the broker keeps the subscriptions, and QoS 1 messages that
            # arrive while this listener is away, under its client id.
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        if o.broker.username:
            client.username_pw_set(o.broker.username, o.broker.password)
        if o.broker.tls:
            client.tls_set(
                ca_certs=o.ca_file or None, certfile=o.cert_file or None, keyfile=o.key_file or None
            )
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        self._will_set(client)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_acknowledged
        client.on_unsubscribe = self._on_acknowledged
        return client

    def _connect(self) -> None:
        o = self.options
        kwargs: dict[str, Any] = {}
        if o.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = o.session_expiry
            properties.ReceiveMaximum = min(o.batch_size * 2, 65535)
            kwargs = {"clean_start": False, "properties": properties}
        self.client.connect_async(o.broker.host, o.broker.port, keepalive=30, **kwargs)
        self.client.loop_start()  # paho's thread: connects, and reconnects with backoff

    # --- Sparkplug host application STATE (Sparkplug 3.0 §5.11, §7.2) --------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        session = "resumed" if getattr(flags, "session_present", False) else "new"
        log.info("broker connected: %s (MQTT %s, client id %s, %s session)", self._shown_url(),
                 self.options.protocol, self.options.client_id, session)  # fmt: skip
        with self._subscriptions_lock:
            topics = sorted(self._subscribed)
        if topics:
            self._subscribe(topics)  # a session the broker kept has them, one it did not does not
        if self.state_topic:  # subscribed first: STATE online only once the host hears the nodes
            _, mid = client.subscribe(self.state_topic, qos=1)
            self._await_ack(mid, None, [self.state_topic])
            self._state_online()
            log.info("Sparkplug host %r online (STATE on %s)", self.options.host_id, self.state_topic)
        if self._connected_at is None:
            self._connected_at = time.monotonic()
        self._connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connected.clear()
        if not self.stopping.is_set():
            self._will_set(client)  # the next connection's STATE has its own timestamp
            log.warning("broker connection lost (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if self.stopping.is_set():
            return  # not acknowledged: the broker delivers it again when this client id is back
        self.inbox.put(message)

    def _shown_url(self) -> str:
        return self.options.broker.endpoint

    def _wanted_topics(self) -> set[str]:
        share = self.options.shared_group
        topics = {f"$share/{share}/{topic}" if share else topic for topic in self.feeds.topics}
        if self.feeds.metrics:
            topics.update(SPARKPLUG_FILTERS)
        return topics | set(self.options.dropped_topics)

    def _resubscribe(self) -> None:
        wanted = self._wanted_topics()
        with self._subscriptions_lock:
            new, gone = wanted - self._subscribed, self._subscribed - wanted
            self._subscribed = wanted
            self._dropped -= new
        if new:
            self._subscribe(sorted(new))
            watched = sorted(topic for topic in new if topic in self.options.dropped_topics)
            if watched:
                log.info("watching the broker's dropped-message counters: %s", ", ".join(watched))
        if gone:
            self._unsubscribe(sorted(gone), line=f"unsubscribed: {', '.join(sorted(gone))}")

    def _subscribe(self, topics: list[str]) -> None:
        _, mid = self.client.subscribe([(topic, _qos(topic)) for topic in topics])
        fed = [topic for topic in topics if topic not in self.options.dropped_topics]
        self._await_ack(mid, f"subscribed: {', '.join(fed)}" if fed else None, topics)

    def _unsubscribe(self, topics: list[str], line: str) -> None:
        _, mid = self.client.unsubscribe(topics)
        self._await_ack(mid, line, topics)

    def _await_ack(self, mid: int | None, line: str | None, topics: list[str]) -> None:
        """Log `line` when the broker acknowledges packet `mid` (SUBACK, UNSUBACK): only then do
        messages on the topics start, or stop, arriving. Not connected (`mid` None): the
        subscriptions are sent again, from `_subscribed`, on connecting. Every (UN)SUBSCRIBE the
        listener sends comes through here, so no acknowledgement is left in `_early_acks`."""
        if mid is None:
            return
        with self._acks_lock:
            reasons = self._early_acks.pop(mid, None)
            if reasons is None:
                self._unacknowledged[mid] = (line, topics)
                return
        self._acknowledged(line, topics, reasons)

    def _on_acknowledged(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any
    ) -> None:
        with self._acks_lock:
            if mid not in self._unacknowledged:
                self._early_acks[mid] = reasons  # paho's thread was quicker than the sender
                return
            line, topics = self._unacknowledged.pop(mid)
        self._acknowledged(line, topics, reasons)

    @staticmethod
    def _acknowledged(line: str | None, topics: list[str], reasons: Any) -> None:
        refused = [f"{topic} ({reason})" for topic, reason in zip(topics, reasons or (), strict=False)
                   if reason.is_failure]  # fmt: skip
        if refused:
            log.error("the broker refused: %s", ", ".join(refused))
        elif line:
            log.info("%s", line)

    def _drop_stale(self, topics: set[str]) -> None:
        """Unsubscribe filters a message showed the session still holds though this listener does not
        want them: left by an earlier run, since a tag changed while it was stopped (a session keeps
        its subscriptions, and the broker cannot be asked which it holds)."""
        with self._subscriptions_lock:
            stale = sorted(topics - self._subscribed - self._dropped)
            self._dropped.update(stale)
        if stale:
            shown = ", ".join(stale)
            self._unsubscribe(stale, line=f"unsubscribed: {shown} (not wanted, left in the session)")

    # --- characteristics ------------------------------------------------------------------

    def reload(self) -> None:
        feeds = mqtt_feeds()
        if feeds != self.feeds:
            added = (set(feeds.topics) | set(feeds.metrics)) - (
                set(self.feeds.topics) | set(self.feeds.metrics)
            )
            removed = (set(self.feeds.topics) | set(self.feeds.metrics)) - (
                set(feeds.topics) | set(feeds.metrics)
            )
            if self.feeds:
                log.info("characteristics changed: %d tags added, %d removed", len(added), len(removed))
            self.feeds = feeds
        self._resubscribe()

    # --- one batch ------------------------------------------------------------------------

    def _take(self) -> list[mqtt.MQTTMessage]:
        try:
            first = self.inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.options.batch_wait
        while len(batch) < self.options.batch_size:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self.inbox.get(timeout=remaining) if remaining > 0 else self.inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _json(self, batch: Batch, message: mqtt.MQTTMessage) -> None:
        fed = self.feeds.topics.get(message.topic)
        if fed is None:
            share = self.options.shared_group
            self._drop_stale({message.topic} | ({f"$share/{share}/{message.topic}"} if share else set()))
            self._dead(
                batch, message, Bad(DeadLetterReason.UNKNOWN_TOPIC, "no characteristic is fed by this topic")
            )
            return
        reading = json_reading(fed, message.topic, bytes(message.payload))
        if isinstance(reading, Bad):
            self._dead(batch, message, reading)
        else:
            batch.readings.append(reading)

    def handle(self, messages: list[mqtt.MQTTMessage], *, flush: bool = False) -> Batch:
        """Sort the messages into a batch. Its `messages` are those to acknowledge once it is stored: a
        Sparkplug message waiting for the ones before it joins the batch that applies it. Then the
        Sparkplug messages whose reorder timeout passed (all of them, with `flush`)."""
        batch = Batch()
        for message in messages:
            try:
                if not self._handle_one(batch, message):
                    batch.messages.append(message)
            except Exception as exc:  # a fault of ours must not stop the line: keep it, log it, go on
                log.exception("handling a message on %s failed; kept as a dead letter", message.topic)
                if not any(m is message for m in batch.messages):
                    batch.messages.append(message)
                self._dead(batch, message, Bad(DeadLetterReason.FAILED, f"{type(exc).__name__}: {exc}"))
        self._apply_all(batch, self.nodes.flush_all() if flush else self.nodes.expired(time.monotonic()))
        return batch

    def _handle_one(self, batch: Batch, message: mqtt.MQTTMessage) -> bool:
        """True if the message's acknowledgement is left to the Sparkplug path (it may wait)."""
        if message.topic.startswith("$"):  # the broker's own topics: never a reading
            if message.topic in self.options.dropped_topics:
                batch.counters.append((message.topic, bytes(message.payload[:64])))
            else:
                self._drop_stale({message.topic})
            return False
        if message.topic == self.state_topic:
            batch.own += 1
            self._state_message(message)
            return False
        size = len(message.payload)
        if (
            size > self.options.max_payload
        ):  # not decoded: JSON or protobuf of it would take many times its size
            limit = self.options.max_payload
            problem = f"{size} bytes, more than MQTT_MAX_PAYLOAD_BYTES ({limit}); not decoded"
            self._dead(batch, message, Bad(DeadLetterReason.TOO_LARGE, problem))
            topic = topic_parse(message.topic)
            if topic is not None:  # it took a sequence number all the same
                batch.messages.append(message)
                self._apply_all(batch, self.nodes.unreadable(topic))
                return True
            return False
        topic = topic_parse(message.topic) if message.topic.startswith(NAMESPACE + "/") else None
        if topic is not None and not self.feeds.metrics:
            self._drop_stale(set(SPARKPLUG_FILTERS))  # no metric fed: Sparkplug B is not wanted
        if topic is not None:
            self._sparkplug(batch, message, topic)
            return True
        if message.topic.startswith(NAMESPACE + "/"):
            self._dead(batch, message, Bad(DeadLetterReason.NOT_SPARKPLUG, "not a Sparkplug B topic"))
        else:
            self._json(batch, message)
        return False

    def store(self, batch: Batch, device: Any, *, retry: bool = True) -> Stored | None:
        """Store the batch, trying again (backing off) while the database is away; None if asked to
        stop first (or `retry` is off), and then nothing is acknowledged: the broker delivers it again.
        If the batch fails while the database answers, something in it is at fault: see _store_apart."""
        delay = 1.0
        while True:
            try:
                try:
                    return self._store(batch, device)
                except Exception:
                    log.exception("storing %d messages failed", len(batch.messages))
                    _connection_reset()
                    if not _database_answers():
                        raise
                    return self._store_apart(batch, device)
            except Exception:
                log.warning("the database does not answer; trying again in %.0f s", delay)
                _connection_reset()
                if not retry or self.stopping.wait(delay):
                    return None
                delay = min(delay * 2, 30.0)

    def _store(self, batch: Batch, device: Any) -> Stored:
        return bridge_store(
            readings=batch.readings, dead=batch.dead, changes=batch.changes, device=device,
            listener=self.options.client_id,
        )  # fmt: skip

    def _store_apart(self, batch: Batch, device: Any) -> Stored:
        """Store each reading on its own; one that fails again becomes a dead letter (reason `failed`,
        with the error), so one message that trips a fault of ours cannot hold up the line. (A
        reading without a key stored here and again after a failure of the last step below would be
        kept twice; that takes a fault and a database outage in the same batch.)"""
        total = Stored()
        dead = list(batch.dead)
        for reading in batch.readings:
            try:
                stored = self._store(Batch(readings=[reading]), device)
            except Exception as exc:
                log.exception("storing a value from %s failed; kept as a dead letter", reading.topic)
                _connection_reset()
                problem = f"storing it failed: {type(exc).__name__}: {exc}"
                dead.append(
                    Dead(
                        reading.topic, reading.payload, DeadLetterReason.FAILED, problem, timezone.now(),
                        reading.fed.id,
                    )
                )  # fmt: skip
                continue
            total = total + stored
        return total + self._store(Batch(dead=dead, changes=batch.changes), device)

    def acknowledge(self, messages: list[mqtt.MQTTMessage]) -> None:
        # A message received before a reconnect is acknowledged with its old packet id: the broker
        # delivers an unacknowledged message again with the same id in the resumed session.
        for message in messages:
            if message.qos > 0:
                self.client.ack(message.mid, message.qos)

    # --- the broker's dropped-message counters ($SYS) ------------------------------------------

    def _counters_refresh(self) -> None:
        """Subscribe to the counters again: the broker sends their current (retained) values. A value
        sent while this listener's own queue was full was dropped with the rest, and Mosquitto
        sends a counter again only when it changes."""
        if self.options.dropped_topics and self._connected.is_set():
            _, mid = self.client.subscribe([(topic, 0) for topic in self.options.dropped_topics])
            self._await_ack(mid, None, list(self.options.dropped_topics))

    # --- violations back to the plant ---------------------------------------------------------

    def _publish_now(self, topic: str, payload: bytes, retain: bool = False) -> bool:
        if not self._connected.is_set():
            return False
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        try:
            info.wait_for_publish(timeout=5)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def publish(self) -> None:
        """Violations (and statistics, if asked) not yet published; failures are tried again next time."""
        outboxes = (
            [("violations", violations_publish), ("alarms", plant_messages_publish)]
            if self.options.publish_violations
            else []
        )
        if self.options.publish_statistics:
            outboxes.append(("statistics", statistics_publish))
        for name, publish in outboxes:
            try:
                count = publish(publish=self._publish_now)
            except Exception:
                log.exception("publishing %s failed; trying again", name)
                _connection_reset()
                continue
            if count:
                self.counts[f"{name} published"] += count

    # --- the loop ---------------------------------------------------------------------------

    def _report(self) -> None:
        if self.counts:
            shown = ", ".join(f"{name} {count}" for name, count in sorted(self.counts.items()))
            log.info("last minute: %s", shown)
            self.counts.clear()

    def run(self) -> int:
        o = self.options
        settings_dict = connection.settings_dict
        log.info("database: %s %s", connection.vendor, settings_dict.get("NAME"))
        device = bridge_device(name=o.device)
        unknown = self._nodes_restore()
        self.reload()
        topics, metrics = len(self.feeds.topics), len(self.feeds.metrics)
        log.info("characteristics loaded: %d fed by MQTT (%d JSON topics, %d Sparkplug B metrics)",
                 topics + metrics, topics, metrics)  # fmt: skip
        self._connect()
        if not self._connected.wait(timeout=10):
            log.warning("broker %s does not answer yet; retrying in the background", self._shown_url())
        for group, node in unknown:
            self._rebirth(
                Topic(group, MessageType.NBIRTH, node), "online when the listener stopped, aliases unknown"
            )
        log.info("ready")
        next_reload = next_publish = time.monotonic()
        next_report = time.monotonic() + 60
        while not self.stopping.is_set():
            messages = self._take()
            if messages or self.nodes.holding():
                self._process(messages, device)
            now = time.monotonic()
            if now >= next_reload:
                next_reload = now + o.reload_seconds * random.uniform(0.9, 1.1)
                try:
                    self.reload()
                    sources_offline_sync()  # data health's view of dead Sparkplug B sources
                except Exception:
                    log.exception("reloading the characteristics failed; keeping the ones loaded")
                    _connection_reset()
                self._counters_refresh()
                if self._connected_at is not None:
                    self.counters.silence(now - self._connected_at, o.counter_silence)
            if (o.publish_violations or o.publish_statistics) and now >= next_publish:
                next_publish = now + o.publish_interval
                self.publish()
            if now >= next_report:
                next_report = now + 60
                self._report()
        self._shutdown(device)
        return 0

    def _process(
        self, messages: list[mqtt.MQTTMessage], device: Any, *, retry: bool = True, flush: bool = False
    ) -> None:
        batch = self.handle(messages, flush=flush)
        if not (batch.messages or batch.readings or batch.dead or batch.changes):
            return  # Sparkplug messages waiting for the ones before them, nothing else
        stored = self.store(batch, device, retry=retry)
        if stored is None:
            return
        self.acknowledge(batch.messages)
        if self.counters.watch(batch.counters):
            _connection_reset()
        self.counts["received"] += len(batch.messages) - len(batch.counters) - batch.own
        self.counts["stored"] += stored.observations
        self.counts["duplicates"] += stored.duplicates
        self.counts["dead letters"] += stored.dead_letters

    def stop(self) -> None:
        self.stopping.set()

    def _shutdown(self, device: Any) -> None:
        """Store and acknowledge what arrived, disconnect.

        The subscriptions stay: the broker keeps them in the session with what is published
        while the listener is away (unsubscribing would lose it), and what arrives from now on
        is left unacknowledged, so it is delivered again when the listener is back.
        """
        log.info("stopping: storing what was received, disconnecting (the session keeps the subscriptions)")
        rest = []
        while not self.inbox.empty():
            rest.append(self.inbox.get_nowait())
        if rest or self.nodes.holding():
            self._process(rest, device, retry=False, flush=True)
        if self.state_topic and self._connected.is_set():  # no will on a clean disconnect: say it
            info = self.client.publish(self.state_topic, self._state(False), qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=5)
        self.client.disconnect()
        self.client.loop_stop()
        self._report()
        log.info("stopped")

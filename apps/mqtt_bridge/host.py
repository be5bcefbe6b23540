"""The Sparkplug B host application side of the listener (Sparkplug 3.0): its STATE, and each
Sparkplug message turned into readings, dead letters and node changes in sequence order.

A mixin of `Listener` (apps/mqtt_bridge/listener.py), which owns the broker connection, the batch
loop and storing; the edge node state itself is tracked by `Nodes` (apps/mqtt_bridge/nodes.py).
"""

import functools
import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from django.utils import timezone

from apps.mqtt_bridge.choices import DeadLetterReason
from apps.mqtt_bridge.nodes import NodeChange, NodeKey, Nodes, Tracked
from apps.mqtt_bridge.readings import Bad, BadLog, Reading, epoch_ms, message_key
from apps.mqtt_bridge.selectors import Feeds, edge_nodes_online
from apps.mqtt_bridge.services import Dead
from apps.mqtt_bridge.sparkplug import (
    NAMESPACE,
    DecodeError,
    MessageType,
    Topic,
    payload_decode,
    rebirth_request,
    value_of,
    value_readable,
)

if TYPE_CHECKING:
    from apps.mqtt_bridge.listener import Options

log = logging.getLogger("openspc.mqtt")


@dataclass
class Batch:
    readings: list[Reading] = field(default_factory=list)
    dead: list[Dead] = field(default_factory=list)
    changes: list[NodeChange] = field(default_factory=list)
    messages: list[mqtt.MQTTMessage] = field(default_factory=list)
    counters: list[tuple[str, bytes]] = field(default_factory=list)  # $SYS topic, payload
    own: int = 0  # messages on the listener's own STATE topic: no plant data


class SparkplugHost:
    """Sparkplug B host application behaviour, mixed into Listener."""

    options: "Options"
    client: mqtt.Client
    nodes: Nodes
    feeds: Feeds
    counts: Counter[str]
    bad_log: BadLog
    _connected: threading.Event
    _rebirth_asked: dict[NodeKey, float]
    _rebirth_answered: set[NodeKey]
    _stale_logged: set[NodeKey]
    _state_at: int

    @functools.cached_property
    def state_topic(self) -> str:
        """spBv1.0/STATE/<host id>; empty when the listener publishes no STATE."""
        return f"{NAMESPACE}/STATE/{self.options.host_id}" if self.options.host_id else ""

    def _state(self, online: bool) -> bytes:
        return json.dumps({"online": online, "timestamp": self._state_at}).encode()

    def _will_set(self, client: mqtt.Client) -> None:
        """The will, with this connection attempt's timestamp: the broker publishes it (retained) when
        the listener is gone without a word, so edge nodes know their host is offline."""
        if self.state_topic:
            self._state_at = int(time.time() * 1000)
            client.will_set(self.state_topic, self._state(False), qos=1, retain=True)

    def _state_online(self) -> None:
        self.client.publish(self.state_topic, self._state(True), qos=1, retain=True)

    def _state_message(self, message: mqtt.MQTTMessage) -> None:
        """Our own STATE, as the broker has it. Offline with this connection's timestamp or a later one
        (another host with our id, a hand on the broker) is answered with online again; an older
        offline is the will of an earlier connection, which our online has replaced."""
        try:
            state = json.loads(bytes(message.payload) or b"{}")
        except ValueError:
            state = {}
        if not isinstance(state, dict) or state.get("online") is True or not self._connected.is_set():
            return
        stamp = state.get("timestamp")
        if isinstance(stamp, int) and not isinstance(stamp, bool) and stamp < self._state_at:
            return
        log.info("STATE %s read offline while connected; publishing online again", self.state_topic)
        self._state_online()

    def _dead(self, batch: Batch, message: mqtt.MQTTMessage, bad: Bad) -> None:
        self.bad_log.bad(message.topic, bad.reason, bad.message)
        batch.dead.append(
            Dead(message.topic, bytes(message.payload), bad.reason, bad.message, timezone.now())
        )

    def _sparkplug(self, batch: Batch, message: mqtt.MQTTMessage, topic: Topic) -> None:
        """Decode, then apply in sequence order: a message that arrives out of order waits (not yet
        acknowledged) for the ones before it, for at most the reorder timeout."""
        try:
            payload = payload_decode(bytes(message.payload))
        except DecodeError as exc:
            batch.messages.append(message)
            self._dead(batch, message, Bad(DeadLetterReason.NOT_SPARKPLUG, str(exc)))
            if topic.message_type != MessageType.NDEATH:
                self._apply_all(batch, self.nodes.unreadable(topic))
                return
            payload = None  # a node's death counts even if its will message is unreadable
        now = timezone.now()
        self._apply_all(batch, self.nodes.arrive(topic, payload, now, now=time.monotonic(), token=message))

    def _apply_all(self, batch: Batch, tracked: list[Tracked]) -> None:
        for one in tracked:
            message = one.token
            batch.messages.append(message)  # each message is applied once, here or dead-lettered unread
            try:
                self._apply(batch, one)
            except Exception as exc:  # as in handle(): keep it, log it, go on
                log.exception("handling a message on %s failed; kept as a dead letter", message.topic)
                self._dead(batch, message, Bad(DeadLetterReason.FAILED, f"{type(exc).__name__}: {exc}"))

    def _apply(self, batch: Batch, tracked: Tracked) -> None:
        """One Sparkplug message, its node's state applied: readings, dead letters, node changes."""
        message, topic, payload = tracked.token, tracked.topic, tracked.payload
        raw = bytes(message.payload)
        if tracked.change is not None:
            batch.changes.append(tracked.change)
            if tracked.change.online and topic.message_type == MessageType.NBIRTH and not tracked.refused:
                self._rebirth_answered.add((topic.group, topic.node))
        if tracked.stale_death:
            self._stale_death(topic, tracked.stale_death)
        if tracked.rebirth:
            self._rebirth(topic, tracked.rebirth)
        if tracked.refused:
            self._dead(
                batch, message, Bad(DeadLetterReason.BAD_BIRTH, f"{tracked.refused}; asked to rebirth")
            )
            return
        if tracked.not_born:
            node = f"{topic.group}/{topic.node}"
            problem = f"no NBIRTH seen from {node} since the listener started; asked it to rebirth"
            self._dead(batch, message, Bad(DeadLetterReason.NOT_BORN, problem))
            return
        if tracked.unknown_aliases:
            aliases = ", ".join(str(alias) for alias in tracked.unknown_aliases)
            self._dead(
                batch, message, Bad(DeadLetterReason.UNKNOWN_ALIAS, f"metric aliases {aliases} unknown")
            )
        if payload is None:
            return
        births = (MessageType.NBIRTH, MessageType.DBIRTH)
        problems = list(payload.problems) if topic.message_type in births else []
        for index, (name, metric, datatype) in enumerate(tracked.data):
            fed = self.feeds.metrics.get(name)
            if fed is None or metric.is_null:
                self.counts["ignored"] += 1  # a metric SPC does not chart, or no value this time
                continue
            if metric.problem:
                problems.append(metric.problem)
                continue
            value = value_of(metric, datatype)
            # A value that is no number is stored, readable, and rejected by the pipeline with the reason.
            kept: Any = value if value is not None else value_readable(metric, datatype)
            moment = metric.timestamp or payload.timestamp
            try:
                observed = epoch_ms(moment) if moment else None
            except (OverflowError, OSError, ValueError):  # a uint64 on the wire: any number fits
                problem = f"metric {name}: timestamp {moment} is not a time"
                self._dead(batch, message, Bad(DeadLetterReason.NOT_SPARKPLUG, problem))
                continue
            batch.readings.append(
                Reading(
                    fed, message.topic, raw, [kept], observed, message_key(message.topic, raw, index),
                    historical=metric.is_historical,
                )
            )  # fmt: skip
        if problems:
            shown = "; ".join(problems)
            self._dead(
                batch, message, Bad(DeadLetterReason.BAD_METRIC, f"{shown} (the other metrics were read)")
            )

    def _stale_death(self, topic: Topic, why: str) -> None:
        """An NDEATH that does not end the node's session (Sparkplug: its bdSeq must match): ignored,
        counted (on the edge node too), and logged once per node, so that a node that never goes
        offline can be told from one whose will is stale."""
        key = (topic.group, topic.node)
        self.counts["stale deaths"] += 1
        if key not in self._stale_logged:
            self._stale_logged.add(key)
            log.warning("NDEATH of %s/%s ignored: %s (logged once; counted on the edge node)",
                        topic.group, topic.node, why)  # fmt: skip

    def _rebirth(self, topic: Topic, why: str) -> None:
        """Ask the node to send its BIRTH messages again (NCMD Node Control/Rebirth): at most once per
        MQTT_REBIRTH_INTERVAL_SECONDS per node while unanswered; once an NBIRTH answered, again after
        the reorder timeout (so a node whose BIRTHs never mend what is asked cannot make a storm)."""
        key = (topic.group, topic.node)
        now = time.monotonic()
        wait = (
            self.options.reorder_timeout if key in self._rebirth_answered else self.options.rebirth_interval
        )
        if now - self._rebirth_asked.get(key, -1e9) < wait:
            return
        self._rebirth_asked[key] = now
        self._rebirth_answered.discard(key)
        command = Topic(topic.group, MessageType.NCMD, topic.node)
        self.client.publish(str(command), rebirth_request(timestamp=int(time.time() * 1000)), qos=0)
        self.counts["rebirths"] += 1
        log.info("asked %s/%s to rebirth: %s", topic.group, topic.node, why)

    def _nodes_restore(self) -> list[NodeKey]:
        """The edge nodes online when the listener last stopped, with the aliases their BIRTHs gave:
        their alias-only data is read without waiting for a rebirth. Those whose aliases were not
        kept are returned, to be asked to rebirth."""
        unknown = []
        for known in edge_nodes_online():
            if known.aliases:
                self.nodes.restore(known.group, known.node, aliases=known.aliases, types=known.types,
                                   bdseq=known.bdseq)  # fmt: skip
            else:
                unknown.append((known.group, known.node))
        return unknown

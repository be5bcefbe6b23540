"""Sparkplug B edge node state, as the listener learns it from the messages (Sparkplug 3.0 §6).

An edge node announces itself with NBIRTH (sequence number 0, its metrics with names and
aliases) and its devices with DBIRTH; DATA messages may then name metrics by alias only.
Every message of a node, its devices' included, carries the node's next sequence number
(0–255, wrapping). DEATH marks the node or device offline.

What the listener does not trust, it asks the node to rebirth (NCMD `Node Control/Rebirth`) for:

- DATA from a node whose NBIRTH it has not seen (nor kept from before a restart): its values are
  not stored as observations but kept as dead letters (`not_born`) until the node is born;
- a BIRTH that gives one alias to two metrics: refused (`bad_birth`), the node is not born;
- an alias no BIRTH announced;
- a gap in the sequence numbers that the reorder timeout did not close: a message that arrives
  out of order is held (``arrive``) until the missing ones come, or the timeout passes; then
  the held ones are taken in sequence order and the node is asked to rebirth.

The names, datatypes and bdSeq learned from the BIRTHs are kept on the EdgeNode rows, so a listener
that restarts (``restore``) reads alias-only data at once, without waiting for a rebirth.

This module only tracks; the listener stores, acknowledges and publishes.
"""

import datetime
from dataclasses import dataclass, field
from typing import Any

from apps.mqtt_bridge.sparkplug import BDSEQ_METRIC, DataType, MessageType, Metric, Payload, Topic

NodeKey = tuple[str, str]  # (group, node)
NOT_BORN = "no NBIRTH seen from this node since the listener started"


@dataclass(frozen=True)
class NodeChange:
    """A BIRTH or DEATH to record on the EdgeNode row (device "" for the node itself), or an NDEATH
    ignored because its bdSeq does not match the NBIRTH's (``stale_death``; online is unchanged)."""

    group: str
    node: str
    device: str
    online: bool
    at: datetime.datetime
    metrics: tuple[str, ...] = ()
    aliases: dict[int, str] = field(default_factory=dict)
    types: dict[str, int] = field(default_factory=dict)
    bdseq: int | None = None
    stale_death: bool = False


@dataclass
class Tracked:
    """What one Sparkplug message means once the node's state is applied."""

    topic: Topic
    payload: Payload | None
    token: Any = None  # what the caller handed in with the message (the listener: the MQTT message)
    data: list[tuple[str, Metric, DataType | None]] = field(default_factory=list)  # name, metric, type
    unknown_aliases: list[int] = field(default_factory=list)
    rebirth: str = ""  # why a rebirth is needed; empty: it is not
    change: NodeChange | None = None
    not_born: bool = False  # DATA from a node not born: nothing in it is trusted
    refused: str = ""  # why a BIRTH was refused
    stale_death: str = ""  # why an NDEATH was ignored


@dataclass
class _Held:
    topic: Topic
    payload: Payload
    at: datetime.datetime
    token: Any


@dataclass
class _Node:
    seq: int | None = None  # the last sequence number seen; None: not known yet
    born: bool = False  # an NBIRTH seen (or kept from before a restart), not refused since
    names: dict[int, str] = field(default_factory=dict)  # alias -> metric name, node and devices
    owners: dict[int, str] = field(default_factory=dict)  # alias -> the device whose BIRTH gave it
    types: dict[str, DataType] = field(default_factory=dict)  # metric name -> datatype
    bdseq: int | None = None  # the NBIRTH's birth/death sequence number
    held: list[_Held] = field(default_factory=list)  # arrived out of order, waiting for the gap
    held_since: float = 0.0


class Nodes:
    """The state of every edge node the listener has heard from.

    ``reorder_timeout`` (seconds; 0: none) is how long a message that arrives out of order waits
    for the ones before it (Sparkplug 3.0's Reorder Timeout); ``hold_limit`` caps how many wait.
    """

    def __init__(self, reorder_timeout: float = 0.0, hold_limit: int = 256) -> None:
        self._nodes: dict[NodeKey, _Node] = {}
        self.reorder_timeout = reorder_timeout
        self.hold_limit = hold_limit

    def restore(
        self, group: str, node: str, *, aliases: dict[str, dict[int, str]], types: dict[str, int],
        bdseq: int | None,
    ) -> None:  # fmt: skip
        """A node born before this listener started, as its EdgeNode rows keep it: its aliases (by
        device, "" for the node's own) are known; its next sequence number is taken as it comes."""
        state = _Node(born=True, bdseq=bdseq)
        state.types = {name: DataType(value) for name, value in types.items() if value in set(DataType)}
        for device, names in aliases.items():
            state.names.update(names)
            state.owners.update(dict.fromkeys(names, device))
        self._nodes[(group, node)] = state

    def holding(self) -> bool:
        return any(node.held for node in self._nodes.values())

    # --- in order -------------------------------------------------------------------------

    def arrive(
        self, topic: Topic, payload: Payload | None, at: datetime.datetime, *, now: float, token: Any = None
    ) -> list[Tracked]:
        """Apply a message in sequence order: what can be applied now (none, while it waits for the
        messages before it; several, when it closes a gap)."""
        key = (topic.group, topic.node)
        node = self._nodes.get(key)
        kind = topic.message_type
        if kind in (MessageType.NBIRTH, MessageType.NDEATH) or payload is None:
            return [*self._flush(key), self.track(topic, payload, at, token=token)]
        if (
            node is None or not node.born or node.seq is None or payload.seq is None
            or self.reorder_timeout <= 0
        ):  # fmt: skip
            return [self.track(topic, payload, at, token=token)]
        if payload.seq == (node.seq + 1) % 256:
            return [self.track(topic, payload, at, token=token), *self._in_order(node)]
        if not node.held:
            node.held_since = now
        node.held.append(_Held(topic, payload, at, token))
        return self._flush(key) if len(node.held) > self.hold_limit else []

    def unreadable(self, topic: Topic) -> list[Tracked]:
        """A message of the node that could not be read still took a sequence number: the next one
        is not a gap (and may release messages waiting for it). An NBIRTH that could not be read
        leaves the node not born (its new session's aliases are unknown)."""
        key = (topic.group, topic.node)
        if topic.message_type == MessageType.NBIRTH:
            self._nodes[key] = _Node()
            return []
        node = self._nodes.get(key)
        if node is None or node.seq is None or topic.message_type == MessageType.NDEATH:
            return []
        node.seq = (node.seq + 1) % 256
        return self._in_order(node)

    def expired(self, now: float) -> list[Tracked]:
        """The held messages whose reorder timeout has passed, in sequence order; the first of each
        node's reports the gap (and asks for a rebirth)."""
        out: list[Tracked] = []
        for key, node in list(self._nodes.items()):
            if node.held and now - node.held_since >= self.reorder_timeout:
                out.extend(self._flush(key))
        return out

    def flush_all(self) -> list[Tracked]:
        """Every held message, in sequence order (the listener is stopping)."""
        return [tracked for key in list(self._nodes) for tracked in self._flush(key)]

    def _in_order(self, node: _Node) -> list[Tracked]:
        out = []
        while node.seq is not None and node.held:
            expected = (node.seq + 1) % 256
            nxt = next((held for held in node.held if held.payload.seq == expected), None)
            if nxt is None:
                break
            node.held.remove(nxt)
            out.append(self.track(nxt.topic, nxt.payload, nxt.at, token=nxt.token))
        return out

    def _flush(self, key: NodeKey) -> list[Tracked]:
        node = self._nodes.get(key)
        if node is None or not node.held:
            return []
        start = node.seq if node.seq is not None else 0
        held = sorted(node.held, key=lambda h: ((h.payload.seq or 0) - start - 1) % 256)
        node.held = []
        return [self.track(h.topic, h.payload, h.at, token=h.token) for h in held]

    # --- one message ----------------------------------------------------------------------

    def track(
        self, topic: Topic, payload: Payload | None, at: datetime.datetime, *, token: Any = None
    ) -> Tracked:
        """Apply one message as it comes (payload None for a DEATH whose payload could not be read)."""
        key = (topic.group, topic.node)
        kind = topic.message_type
        result = Tracked(topic, payload, token)
        if kind == MessageType.NDEATH:
            return self._death(key, topic, payload, at, result)
        if payload is None:
            return result
        if kind == MessageType.NBIRTH:
            node = self._nodes[key] = _Node(seq=payload.seq, bdseq=_bdseq(payload))
            result.refused = _alias_clash(payload, {})
            if result.refused:
                result.rebirth = f"NBIRTH refused: {result.refused}"
                result.change = _birth_change(topic, payload, at, node.bdseq, trusted=False)
                return result
            node.born = True
            self._learn(node, payload, "")
            result.change = _birth_change(topic, payload, at, node.bdseq)
            return result
        node = self._nodes.setdefault(key, _Node())
        device = topic.device or ""
        if kind == MessageType.DDEATH:
            result.change = NodeChange(topic.group, topic.node, device, False, at)
        if not node.born:
            result.not_born = kind != MessageType.DDEATH
            result.rebirth = NOT_BORN
            return result
        if node.seq is not None and payload.seq is not None and payload.seq != (node.seq + 1) % 256:
            result.rebirth = f"sequence number {payload.seq} after {node.seq}"
        if payload.seq is not None:
            node.seq = payload.seq
        if kind == MessageType.DBIRTH:
            others = {alias: name for alias, name in node.names.items() if node.owners.get(alias) != device}
            result.refused = _alias_clash(payload, others)
            if result.refused:
                node.born = False  # its devices' aliases are in doubt: the whole node births again
                result.rebirth = f"DBIRTH of {device} refused: {result.refused}"
                result.change = _birth_change(topic, payload, at, None, trusted=False)
                return result
            self._learn(node, payload, device)
            result.change = _birth_change(topic, payload, at, None)
        elif kind in (MessageType.NDATA, MessageType.DDATA):
            for metric in payload.metrics:
                name = metric.name or (node.names.get(metric.alias) if metric.alias is not None else None)
                if name is None:
                    result.unknown_aliases.append(metric.alias if metric.alias is not None else -1)
                    continue
                result.data.append((name, metric, metric.datatype or node.types.get(name)))
            if result.unknown_aliases and not result.rebirth:
                result.rebirth = f"unknown metric alias {result.unknown_aliases[0]}"
        return result

    def _death(
        self, key: NodeKey, topic: Topic, payload: Payload | None, at: datetime.datetime, result: Tracked
    ) -> Tracked:
        # Sparkplug: the NDEATH's bdSeq must match the NBIRTH's; a stale will message from an
        # earlier session would otherwise kill a live node. Nodes that send no bdSeq are trusted.
        known = self._nodes.get(key)
        bdseq = _bdseq(payload)
        if known is not None and known.bdseq is not None and bdseq is not None and known.bdseq != bdseq:
            result.stale_death = f"its bdSeq {bdseq} is not the NBIRTH's ({known.bdseq})"
            result.change = NodeChange(topic.group, topic.node, "", True, at, stale_death=True)
            return result
        self._nodes.pop(key, None)
        result.change = NodeChange(topic.group, topic.node, "", False, at)
        return result

    @staticmethod
    def _learn(node: _Node, payload: Payload, device: str) -> None:
        for alias in [alias for alias, owner in node.owners.items() if owner == device]:
            del node.names[alias], node.owners[alias]  # a device's new BIRTH replaces its old one
        for metric in payload.metrics:
            if metric.name is None:
                continue
            if metric.alias is not None:
                node.names[metric.alias] = metric.name
                node.owners[metric.alias] = device
            if metric.datatype is not None:
                node.types[metric.name] = metric.datatype


def _alias_clash(payload: Payload, known: dict[int, str]) -> str:
    """Why the BIRTH's aliases cannot be trusted (one alias for two metrics, here or with the aliases
    the node's BIRTHs gave before); empty if they can."""
    seen = dict(known)
    for metric in payload.metrics:
        if metric.alias is None or metric.name is None:
            continue
        other = seen.setdefault(metric.alias, metric.name)
        if other != metric.name:
            return f"alias {metric.alias} is given to both {other!r} and {metric.name!r}"
    return ""


def _birth_change(
    topic: Topic, payload: Payload, at: datetime.datetime, bdseq: int | None, *, trusted: bool = True
) -> NodeChange:
    """What a BIRTH says, to keep on the EdgeNode row; a refused one keeps no aliases, so that a
    listener restarted before the node births again does not trust the ones before."""
    named = [metric for metric in payload.metrics if metric.name and trusted]
    return NodeChange(
        topic.group, topic.node, topic.device or "", True, at,
        metrics=tuple(metric.name for metric in named if metric.name),
        aliases={m.alias: m.name for m in named if m.alias is not None and m.name},
        types={m.name: int(m.datatype) for m in named if m.datatype is not None and m.name},
        bdseq=bdseq,
    )  # fmt: skip


def _bdseq(payload: Payload | None) -> int | None:
    for metric in payload.metrics if payload is not None else ():
        if (
            metric.name == BDSEQ_METRIC
            and isinstance(metric.value, int)
            and not isinstance(metric.value, bool)
        ):
            return metric.value
    return None

"""Sparkplug B edge node state, as the listener learns it from the messages (Sparkplug 3.0 §6).

An edge node announces itself with NBIRTH (sequence number 0, its metrics with names and
aliases) and its devices with DBIRTH; DATA messages may then name metrics by alias only.
Every message of a node, its devices' included, carries the node's next sequence number
(0–255, wrapping). A gap, an alias no BIRTH announced, or DATA from a node whose BIRTH this
listener never saw (it started later) means the state is not to be trusted: the listener
asks the node to rebirth (NCMD `Node Control/Rebirth`). DEATH marks the node or device offline.

This module only tracks; the listener stores, acknowledges and publishes.
"""

import datetime
from dataclasses import dataclass, field

from apps.mqtt_bridge.sparkplug import BDSEQ_METRIC, DataType, MessageType, Metric, Payload, Topic

NodeKey = tuple[str, str]  # (group, node)


@dataclass
class _Node:
    seq: int | None = None  # the last sequence number seen; None: not born (as far as we know)
    names: dict[int, str] = field(default_factory=dict)  # alias -> metric name, node and devices
    types: dict[str, DataType] = field(default_factory=dict)  # metric name -> datatype
    bdseq: int | None = None  # the NBIRTH's birth/death sequence number


@dataclass(frozen=True)
class NodeChange:
    """A BIRTH or DEATH to record on the EdgeNode row (device "" for the node itself)."""

    group: str
    node: str
    device: str
    online: bool
    at: datetime.datetime
    metrics: tuple[str, ...] = ()


@dataclass
class Tracked:
    """What one Sparkplug message means once the node's state is applied."""

    data: list[tuple[str, Metric, DataType | None]] = field(default_factory=list)  # name, metric, type
    unknown_aliases: list[int] = field(default_factory=list)
    rebirth: str = ""  # why a rebirth is needed; empty: it is not
    change: NodeChange | None = None


class Nodes:
    """The state of every edge node the listener has heard from."""

    def __init__(self) -> None:
        self._nodes: dict[NodeKey, _Node] = {}

    def track(self, topic: Topic, payload: Payload | None, at: datetime.datetime) -> Tracked:
        """Apply one message (payload None for a DEATH whose payload could not be read)."""
        key = (topic.group, topic.node)
        kind = topic.message_type
        result = Tracked()
        if kind == MessageType.NDEATH:
            # Sparkplug: the NDEATH's bdSeq must match the NBIRTH's; a stale will message from an
            # earlier session would otherwise kill a live node. Nodes that send no bdSeq are trusted.
            known = self._nodes.get(key)
            bdseq = _bdseq(payload)
            if known is not None and None not in (known.bdseq, bdseq) and known.bdseq != bdseq:
                return result
            self._nodes.pop(key, None)
            result.change = NodeChange(topic.group, topic.node, "", False, at)
            return result
        if payload is None:
            return result
        node = self._nodes.get(key)
        if kind == MessageType.NBIRTH:
            node = self._nodes[key] = _Node(seq=payload.seq, bdseq=_bdseq(payload))
            self._learn(node, payload)
            names = tuple(metric.name for metric in payload.metrics if metric.name)
            result.change = NodeChange(topic.group, topic.node, "", True, at, names)
            return result
        if node is None or node.seq is None:
            node = self._nodes.setdefault(key, _Node())
            result.rebirth = "no NBIRTH seen from this node since the listener started"
        elif payload.seq is not None and payload.seq != (node.seq + 1) % 256:
            result.rebirth = f"sequence number {payload.seq} after {node.seq}"
        if payload.seq is not None and not result.rebirth.startswith("no NBIRTH"):
            node.seq = payload.seq
        device = topic.device or ""
        if kind == MessageType.DBIRTH:
            self._learn(node, payload)
            names = tuple(metric.name for metric in payload.metrics if metric.name)
            result.change = NodeChange(topic.group, topic.node, device, True, at, names)
        elif kind == MessageType.DDEATH:
            result.change = NodeChange(topic.group, topic.node, device, False, at)
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

    @staticmethod
    def _learn(node: _Node, payload: Payload) -> None:
        for metric in payload.metrics:
            if metric.name is None:
                continue
            if metric.alias is not None:
                node.names[metric.alias] = metric.name
            if metric.datatype is not None:
                node.types[metric.name] = metric.datatype


def _bdseq(payload: Payload | None) -> int | None:
    for metric in payload.metrics if payload is not None else ():
        if (
            metric.name == BDSEQ_METRIC
            and isinstance(metric.value, int)
            and not isinstance(metric.value, bool)
        ):
            return metric.value
    return None

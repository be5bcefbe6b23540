"""Sparkplug B (topic namespace spBv1.0, Sparkplug specification 3.0.0) codec.

Pure: no Django. The listener and the plant simulator speak Sparkplug B through this module only.

The protobuf schema is in apps/mqtt_bridge/sparkplug_schema.py, described in code from the
specification.

Things this codec does not check, on purpose, because they need state: sequence numbers (``seq`` runs
0–255 and wraps; the listener checks the order), bdSeq matching between NBIRTH and NDEATH, and alias
resolution (a DATA metric may carry only an alias and no datatype; the BIRTH gives both).

One bad metric spoils nothing else: a metric that cannot be read (an unknown datatype, a value its
datatype cannot hold, an extension value) is decoded with its name and alias and a ``problem``, and
its siblings are read as usual. Only a payload that is not Sparkplug B at all raises DecodeError.
"""

from __future__ import annotations

import datetime
import math
import struct
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from google.protobuf import message
from google.protobuf.unknown_fields import UnknownFieldSet

from apps.mqtt_bridge.sparkplug_schema import PB_PAYLOAD as _PB_PAYLOAD

NAMESPACE = "spBv1.0"
REBIRTH_METRIC = "Node Control/Rebirth"
BDSEQ_METRIC = "bdSeq"


class MessageType(StrEnum):
    """The message types of a Sparkplug B topic (spec 4.1, topic namespace). STATE is not one."""

    NBIRTH = "NBIRTH"
    NDEATH = "NDEATH"
    DBIRTH = "DBIRTH"
    DDEATH = "DDEATH"
    NDATA = "NDATA"
    DDATA = "DDATA"
    NCMD = "NCMD"
    DCMD = "DCMD"


class DataType(IntEnum):
    """Sparkplug B metric datatypes (spec 6.4.16). 0 ("Unknown") is a placeholder, never valid."""

    Int8 = 1
    Int16 = 2
    Int32 = 3
    Int64 = 4
    UInt8 = 5
    UInt16 = 6
    UInt32 = 7
    UInt64 = 8
    Float = 9
    Double = 10
    Boolean = 11
    String = 12
    DateTime = 13
    Text = 14
    UUID = 15
    DataSet = 16
    Bytes = 17
    File = 18
    Template = 19
    PropertySet = 20
    PropertySetList = 21
    Int8Array = 22
    Int16Array = 23
    Int32Array = 24
    Int64Array = 25
    UInt8Array = 26
    UInt16Array = 27
    UInt32Array = 28
    UInt64Array = 29
    FloatArray = 30
    DoubleArray = 31
    BooleanArray = 32
    StringArray = 33
    DateTimeArray = 34


_SIGNED_BITS = {DataType.Int8: 8, DataType.Int16: 16, DataType.Int32: 32, DataType.Int64: 64}
_UNSIGNED_BITS = {DataType.UInt8: 8, DataType.UInt16: 16, DataType.UInt32: 32, DataType.UInt64: 64}
_FLOAT_TYPES = frozenset({DataType.Float, DataType.Double})

NUMERIC_TYPES: frozenset[DataType] = frozenset(_SIGNED_BITS) | frozenset(_UNSIGNED_BITS) | _FLOAT_TYPES

_ARRAY_TYPES = frozenset(t for t in DataType if t >= DataType.Int8Array)
_STRING_TYPES = frozenset({DataType.String, DataType.Text, DataType.UUID})
_BYTES_TYPES = frozenset({DataType.Bytes, DataType.File}) | _ARRAY_TYPES

# The oneof field that carries each datatype's value (spec 6.4.16). DataSet, Template, PropertySet and
# PropertySetList are parsed (so their bytes are validated) but not decoded: SPC reads none of them.
_VALUE_FIELD: dict[DataType, str] = {
    **dict.fromkeys((DataType.Int8, DataType.Int16, DataType.Int32), "int_value"),
    **dict.fromkeys((DataType.UInt8, DataType.UInt16, DataType.UInt32), "int_value"),
    DataType.Int64: "long_value",
    DataType.UInt64: "long_value",
    DataType.DateTime: "long_value",
    DataType.Float: "float_value",
    DataType.Double: "double_value",
    DataType.Boolean: "boolean_value",
    **dict.fromkeys(_STRING_TYPES, "string_value"),
    **dict.fromkeys(_BYTES_TYPES, "bytes_value"),
    DataType.DataSet: "dataset_value",
    DataType.Template: "template_value",
}
# Eclipse Tahu's Java encoder has written UInt32 into long_value (Java has no unsigned int): accept it.
_ALSO_ACCEPTED = {DataType.UInt32: "long_value"}
_SCALAR_FIELDS = frozenset(
    ("int_value", "long_value", "float_value", "double_value", "boolean_value", "string_value", "bytes_value")
)


# --- Topics (spec 4.1) --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topic:
    """spBv1.0/<group>/<message type>/<edge node>[/<device>]; the device only on D* messages."""

    group: str
    message_type: MessageType
    node: str
    device: str | None = None

    def __str__(self) -> str:
        levels = [NAMESPACE, self.group, self.message_type, self.node]
        if self.device is not None:
            levels.append(self.device)
        return "/".join(levels)


def topic_parse(topic: str) -> Topic | None:
    """The Sparkplug B topic, or None for anything else (STATE, another namespace, wrong shape)."""
    levels = topic.split("/")
    if len(levels) not in (4, 5) or levels[0] != NAMESPACE or not all(levels):
        return None
    try:
        message_type = MessageType(levels[2])
    except ValueError:
        return None
    is_device = message_type.startswith("D")
    if len(levels) != (5 if is_device else 4):
        return None
    if any(char in level for level in levels for char in "+#"):
        return None
    return Topic(
        group=levels[1], message_type=message_type, node=levels[3], device=levels[4] if is_device else None
    )


# --- Payloads -----------------------------------------------------------------------------------------

Value = int | float | bool | str | bytes


@dataclass(frozen=True)
class Metric:
    """One metric. ``value`` is decoded for its datatype (negative for signed ints, DateTime as ms).

    When ``datatype`` is None (a DATA message that leaves it to the BIRTH) ``value`` is the raw wire
    value: integers unsigned as carried; ``value_of`` applies the BIRTH's datatype.
    Array, DataSet, Template and PropertySet values are not decoded: arrays stay raw bytes, the others
    are None.
    """

    name: str | None = None
    alias: int | None = None
    timestamp: int | None = None  # ms since the epoch
    datatype: DataType | None = None
    value: Value | None = None
    is_null: bool = False
    is_historical: bool = False
    is_transient: bool = False
    problem: str = ""  # why the metric cannot be read (then value is None); empty: it can


@dataclass(frozen=True)
class Payload:
    """A Sparkplug B payload. ``seq`` is 0–255 and wraps; NDEATH carries none."""

    timestamp: int | None = None  # ms since the epoch
    seq: int | None = None
    metrics: tuple[Metric, ...] = ()

    @property
    def problems(self) -> list[str]:
        """The metrics that could not be read, each with its reason."""
        return [metric.problem for metric in self.metrics if metric.problem]


class DecodeError(ValueError):
    """The bytes are not a well-formed Sparkplug B payload."""


def payload_decode(data: bytes) -> Payload:
    """Decode a Sparkplug B payload; DecodeError, and no other exception, for anything that is not one.
    A metric that cannot be read comes back with its ``problem`` (the others are read as usual)."""
    if not data:
        raise DecodeError("empty payload")
    pb = _PB_PAYLOAD()
    try:
        pb.ParseFromString(data)
    except message.DecodeError as exc:
        raise DecodeError(f"not a Sparkplug B payload: {exc}") from None
    size = pb.ByteSize()
    pb.DiscardUnknownFields()
    strange: set[int] = set()  # metrics with fields outside the schema
    if pb.ByteSize() != size:
        strange = _unknown_fields(data)
    return Payload(
        timestamp=pb.timestamp if pb.HasField("timestamp") else None,
        seq=pb.seq if pb.HasField("seq") else None,
        metrics=tuple(_metric_read(m, index, index in strange) for index, m in enumerate(pb.metrics)),
    )


def _unknown_fields(data: bytes) -> set[int]:
    """Where the fields outside the schema are (only looked for when there are some): the indexes of
    the metrics that hold them. At the payload's top level, fields numbered 6 and up are Tahu's
    extension range and are ignored; a known number with the wrong wire type, or nothing of
    Sparkplug at all, is not a Sparkplug B payload."""
    pb = _PB_PAYLOAD()
    pb.ParseFromString(data)
    if any(field.field_number <= 5 for field in UnknownFieldSet(pb)):
        raise DecodeError("not a Sparkplug B payload: unknown fields")
    if not (pb.HasField("timestamp") or pb.HasField("seq") or pb.metrics):
        raise DecodeError("not a Sparkplug B payload: unknown fields and no Sparkplug B field")
    return {index for index, metric in enumerate(pb.metrics) if len(UnknownFieldSet(metric))}


def _text(pb: Any, field: str) -> str | None:
    """A proto2 string field; the runtime hands back bytes, not str, when they are not UTF-8."""
    if not pb.HasField(field):
        return None
    text = getattr(pb, field)
    if not isinstance(text, str):
        raise DecodeError(f"{field} is not UTF-8")
    return text


def _metric_read(pb: Any, index: int, strange: bool) -> Metric:
    """The metric, or (when it cannot be read) its name and alias, as far as they can be, with the
    problem in words."""
    try:
        if strange:
            raise DecodeError(f"metric {_label(pb, index)!r} has fields outside the Sparkplug B schema")
        return _metric_decode(pb, index)
    except DecodeError as exc:
        try:
            name = _text(pb, "name")
        except DecodeError:
            name = None
        alias = pb.alias if pb.HasField("alias") else None
        return Metric(name=name, alias=alias, problem=str(exc))


def _label(pb: Any, index: int) -> str:
    name = pb.name if pb.HasField("name") and isinstance(pb.name, str) else None
    return name if name is not None else f"alias {pb.alias}" if pb.HasField("alias") else f"#{index}"


def _metric_decode(pb: Any, index: int) -> Metric:
    name = _text(pb, "name")
    alias = pb.alias if pb.HasField("alias") else None
    if name is None and alias is None:
        raise DecodeError(f"metric {index} has neither name nor alias")
    label = name if name is not None else f"alias {alias}"
    datatype: DataType | None = None
    if pb.HasField("datatype"):
        try:
            datatype = DataType(pb.datatype)
        except ValueError:
            raise DecodeError(f"metric {label!r}: unknown datatype {pb.datatype}") from None
    field = pb.WhichOneof("value")
    if pb.is_null and field is not None:
        raise DecodeError(f"metric {label!r} is null but carries {field}")
    if field == "extension_value":
        raise DecodeError(f"metric {label!r} carries an extension value, which OpenSPC does not read")
    value: Value | None = None
    if field is not None:
        if datatype is not None and field not in (_VALUE_FIELD.get(datatype), _ALSO_ACCEPTED.get(datatype)):
            raise DecodeError(f"metric {label!r}: {field} does not carry {datatype.name}")
        if field == "string_value":
            value = _text(pb, field)
        elif field == "float_value":
            value = float32_shortest(pb.float_value)
        elif field in _SCALAR_FIELDS:
            value = getattr(pb, field)
        if datatype is not None and value is not None:
            decoded = _typed(value, datatype)
            if decoded is None:
                raise DecodeError(f"metric {label!r}: {value!r} is not a {datatype.name}")
            value = decoded
    return Metric(
        name=name,
        alias=alias,
        timestamp=pb.timestamp if pb.HasField("timestamp") else None,
        datatype=datatype,
        value=value,
        is_null=pb.is_null,
        is_historical=pb.is_historical,
        is_transient=pb.is_transient,
    )


def float32_shortest(value: float) -> float:
    """A float32 as the number it was written as: the shortest decimal that reads back as the same
    float32 (74.1, not the double 74.09999847412109 that the same 32 bits widen to)."""
    if not math.isfinite(value):
        return value
    bits = struct.pack("<f", value)
    for digits in range(1, 10):
        shortest = float(f"{value:.{digits}g}")
        try:
            if struct.pack("<f", shortest) == bits:
                return shortest
        except OverflowError:  # rounded past the largest float32
            continue
    return value


def _typed(raw: Value, datatype: DataType) -> Value | None:
    """The raw wire value read as ``datatype``; None if it cannot be one."""
    if isinstance(raw, bool):
        return raw if datatype is DataType.Boolean else None
    if isinstance(raw, int):
        if datatype in _SIGNED_BITS:
            return _signed(raw, _SIGNED_BITS[datatype])
        if datatype in _UNSIGNED_BITS:
            return raw if raw < 2 ** _UNSIGNED_BITS[datatype] else None
        return raw if datatype is DataType.DateTime else None
    if isinstance(raw, float):
        return raw if datatype in _FLOAT_TYPES else None
    if isinstance(raw, str):
        return raw if datatype in _STRING_TYPES else None
    return raw if datatype in _BYTES_TYPES else None


def _signed(raw: int, bits: int) -> int | None:
    """Two's complement, as written by either convention in use: pysparkplug (and Tahu's Python) write
    Int8 -1 as 255, two's complement in the type's own width; an encoder that casts the signed value to
    the uint32 carrier (the natural result in Java or C) writes 0xFFFFFFFF. Both decode to -1; any other
    value is out of range for the type."""
    carrier = 64 if bits == 64 else 32
    if raw < 2**bits:
        return raw - 2**bits if raw >= 2 ** (bits - 1) else raw
    if raw >= 2**carrier - 2 ** (bits - 1) and raw < 2**carrier:
        return raw - 2**carrier
    return None


def payload_encode(payload: Payload) -> bytes:
    """Encode; integers of the signed types as two's complement in their own width (Int8 -1 → 255),
    which both conventions in use decode. ValueError for a metric that cannot be encoded."""
    pb = _PB_PAYLOAD()
    if payload.timestamp is not None:
        pb.timestamp = payload.timestamp
    if payload.seq is not None:
        pb.seq = payload.seq
    for metric in payload.metrics:
        _metric_encode(pb.metrics.add(), metric)
    return pb.SerializeToString()


def _metric_encode(pb: Any, metric: Metric) -> None:
    if metric.name is None and metric.alias is None:
        raise ValueError("a metric needs a name or an alias")
    label = metric.name if metric.name is not None else f"alias {metric.alias}"
    if metric.name is not None:
        pb.name = metric.name
    if metric.alias is not None:
        pb.alias = metric.alias
    if metric.timestamp is not None:
        pb.timestamp = metric.timestamp
    if metric.datatype is not None:
        pb.datatype = metric.datatype
    for flag in ("is_null", "is_historical", "is_transient"):
        if getattr(metric, flag):
            setattr(pb, flag, True)
    if metric.value is None:
        return
    if metric.is_null:
        raise ValueError(f"metric {label!r} is null but has a value")
    if metric.datatype is None:
        raise ValueError(f"metric {label!r} has a value but no datatype")
    field = _VALUE_FIELD.get(metric.datatype)
    if field is None or field in ("dataset_value", "template_value"):
        raise ValueError(f"metric {label!r}: encoding {metric.datatype.name} values is not supported")
    setattr(pb, field, _wire(metric.value, metric.datatype, label))


def _wire(value: Value, datatype: DataType, label: str) -> Value:
    ok: bool
    if datatype in _SIGNED_BITS:
        bits = _SIGNED_BITS[datatype]
        ok = type(value) is int and -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)
        if ok:
            assert isinstance(value, int)
            return value + 2**bits if value < 0 else value
    elif datatype in _UNSIGNED_BITS:
        ok = type(value) is int and 0 <= value < 2 ** _UNSIGNED_BITS[datatype]
    elif datatype is DataType.DateTime:
        ok = type(value) is int and 0 <= value < 2**64
    elif datatype in _FLOAT_TYPES:
        ok = type(value) in (int, float)
        if ok:
            return float(value)
    elif datatype is DataType.Boolean:
        ok = type(value) is bool
    elif datatype in _STRING_TYPES:
        ok = isinstance(value, str)
    else:
        ok = isinstance(value, bytes)
    if not ok:
        raise ValueError(f"metric {label!r}: {value!r} is not a {datatype.name}")
    return value


def rebirth_request(*, timestamp: int) -> bytes:
    """The NCMD payload that asks an edge node to publish its NBIRTH (and DBIRTHs) again."""
    metric = Metric(name=REBIRTH_METRIC, timestamp=timestamp, datatype=DataType.Boolean, value=True)
    return payload_encode(Payload(timestamp=timestamp, metrics=(metric,)))


def value_of(metric: Metric, datatype: DataType | None) -> float | None:
    """The metric's value as a float for SPC, or None: null, not numeric (Boolean is not), not finite,
    or not valid for its type. ``datatype`` is the BIRTH's, used when the metric carries none."""
    if metric.is_null or metric.value is None or isinstance(metric.value, bool):
        return None
    value: Value | None = metric.value
    if metric.datatype is not None:
        datatype = metric.datatype
    elif datatype is not None:
        value = _typed(metric.value, datatype)
    else:
        return None
    if datatype not in NUMERIC_TYPES or not isinstance(value, int | float) or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


TEXT_KEPT = 200  # characters of a text value kept on an observation that SPC cannot chart


def value_readable(metric: Metric, datatype: DataType | None) -> str | bool:
    """A value SPC cannot chart (``value_of`` gave None), as the observation keeps it for people to
    read: text as written (its first TEXT_KEPT characters, and how long it was), a Boolean as
    true/false, NaN and infinities by name, a DateTime in ISO 8601, other types by name and size.
    Never the whole of a large value: a list of observations stays small."""
    value = metric.value
    shown_type = metric.datatype or datatype
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, str):
        if len(value) <= TEXT_KEPT:
            return value
        return f"{value[:TEXT_KEPT]}… ({len(value)} characters)"
    if isinstance(value, bytes):
        return f"{shown_type.name if shown_type else 'Bytes'} of {len(value)} bytes"
    if isinstance(value, int) and shown_type is DataType.DateTime:
        try:
            moment = datetime.datetime.fromtimestamp(value / 1000, tz=datetime.UTC)
        except (OverflowError, OSError, ValueError):
            return f"DateTime {value}"
        return moment.isoformat().replace("+00:00", "Z")
    if value is None:
        return shown_type.name if shown_type else "no value"
    return f"{value} (not a number for {shown_type.name})" if shown_type else str(value)

"""Our Sparkplug B codec against a library that is not ours (pysparkplug), both ways, and against bytes
that are not Sparkplug B at all. No database, no broker: the codec is pure."""

from __future__ import annotations

import math
import random
import re
import struct
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pysparkplug
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pysparkplug import _protobuf as tahu  # their generated schema: for hand-made malformed payloads

from apps.mqtt_bridge.sparkplug import (
    BDSEQ_METRIC,
    NAMESPACE,
    NUMERIC_TYPES,
    REBIRTH_METRIC,
    DataType,
    DecodeError,
    MessageType,
    Metric,
    Payload,
    Topic,
    float32_shortest,
    payload_decode,
    payload_encode,
    rebirth_request,
    topic_parse,
    value_of,
    value_readable,
)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms

# (datatype, extreme and ordinary values) for every numeric type; floats exact in float32.
NUMERIC_CASES: list[tuple[DataType, int | float]] = [
    (DataType.Int8, -128),
    (DataType.Int8, -1),
    (DataType.Int8, 127),
    (DataType.Int16, -32768),
    (DataType.Int16, -2),
    (DataType.Int16, 32767),
    (DataType.Int32, -(2**31)),
    (DataType.Int32, -123456),
    (DataType.Int32, 2**31 - 1),
    (DataType.Int64, -(2**63)),
    (DataType.Int64, -5_000_000_000),
    (DataType.Int64, 2**63 - 1),
    (DataType.UInt8, 255),
    (DataType.UInt16, 65535),
    (DataType.UInt32, 2**32 - 1),
    (DataType.UInt64, 2**64 - 1),
    (DataType.Float, -2.25),
    (DataType.Float, 1.5 * 2.0**40),
    (DataType.Double, -0.1),
    (DataType.Double, 1e300),
]


def _theirs(datatype: DataType) -> pysparkplug.DataType:
    return pysparkplug.DataType(int(datatype))


def _their_metric(name: str | None, datatype: DataType, value: Any, **kwargs: Any) -> pysparkplug.Metric:
    return pysparkplug.Metric(timestamp=T0, name=name, datatype=_theirs(datatype), value=value, **kwargs)


def _nbirth() -> pysparkplug.NBirth:
    return pysparkplug.NBirth(
        timestamp=T0,
        seq=0,
        metrics=(
            _their_metric(BDSEQ_METRIC, DataType.Int64, 7),
            _their_metric(REBIRTH_METRIC, DataType.Boolean, False),
            _their_metric("Line 1/Diameter", DataType.Double, 12.5, alias=1),
            _their_metric("Line 1/Count", DataType.Int32, -42, alias=2),
            _their_metric("Line 1/Operator", DataType.String, "Renée", alias=3),
            _their_metric("Line 1/Running", DataType.Boolean, True, alias=4),
            _their_metric("Line 1/Torque", DataType.Float, None, alias=5, is_null=True),
        ),
    )


def _tahu_metric(**fields: object) -> bytes:
    payload = tahu.Payload(timestamp=T0, seq=1)
    payload.metrics.add(**fields)
    return payload.SerializeToString()


class TopicTests:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("spBv1.0/Plant A/NBIRTH/edge-1", Topic("Plant A", MessageType.NBIRTH, "edge-1")),
            ("spBv1.0/g/NDATA/n", Topic("g", MessageType.NDATA, "n")),
            ("spBv1.0/g/NDEATH/n", Topic("g", MessageType.NDEATH, "n")),
            ("spBv1.0/g/NCMD/n", Topic("g", MessageType.NCMD, "n")),
            ("spBv1.0/g/DBIRTH/n/gauge", Topic("g", MessageType.DBIRTH, "n", "gauge")),
            ("spBv1.0/g/DDATA/n/gauge", Topic("g", MessageType.DDATA, "n", "gauge")),
            ("spBv1.0/g/DDEATH/n/gauge", Topic("g", MessageType.DDEATH, "n", "gauge")),
            ("spBv1.0/g/DCMD/n/gauge", Topic("g", MessageType.DCMD, "n", "gauge")),
        ],
    )
    def test_parse_and_back(self, text: str, expected: Topic) -> None:
        assert topic_parse(text) == expected
        assert str(expected) == text

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "spBv1.0",
            "spBv1.0/STATE/host-1",  # Sparkplug 3.0 host state: not a Sparkplug B payload topic
            "STATE/host-1",
            "spBv1.0/g/NDATA/n/gauge",  # N* has 4 levels
            "spBv1.0/g/DDATA/n",  # D* has 5
            "spBv1.0/g/DDATA/n/gauge/extra",
            "spBv1.0/g/NDATA/n/",
            "spBv1.0//NDATA/n",
            "spBv1.0/g/NDATA/",
            "spBv1.0/g/ndata/n",
            "spBv1.0/g/STATE/n",
            "spBv1.0/g/NDATA/+",
            "spBv1.0/#",
            "spAv1.0/g/NDATA/n",
            "spBv1.1/g/NDATA/n",
            "plant/line1/diameter",
        ],
    )
    def test_not_a_sparkplug_b_topic(self, text: str) -> None:
        assert topic_parse(text) is None

    def test_namespace(self) -> None:
        assert NAMESPACE == "spBv1.0"
        assert str(Topic("g", MessageType.NCMD, "n")).startswith("spBv1.0/")


class DecodeTheirsTests:
    """Payloads written by pysparkplug, read by us."""

    def test_nbirth(self) -> None:
        payload = payload_decode(_nbirth().encode())

        assert (payload.timestamp, payload.seq) == (T0, 0)
        got = {m.name: (m.alias, m.datatype, m.value, m.is_null, m.timestamp) for m in payload.metrics}
        assert got == {
            BDSEQ_METRIC: (None, DataType.Int64, 7, False, T0),
            REBIRTH_METRIC: (None, DataType.Boolean, False, False, T0),
            "Line 1/Diameter": (1, DataType.Double, 12.5, False, T0),
            "Line 1/Count": (2, DataType.Int32, -42, False, T0),
            "Line 1/Operator": (3, DataType.String, "Renée", False, T0),
            "Line 1/Running": (4, DataType.Boolean, True, False, T0),
            "Line 1/Torque": (5, DataType.Float, None, True, T0),
        }

    @pytest.mark.parametrize("message", [pysparkplug.NData, pysparkplug.DData])
    def test_data_with_alias_only_metrics(
        self, message: type[pysparkplug.NData] | type[pysparkplug.DData]
    ) -> None:
        """DATA messages leave name and datatype to the BIRTH; the value is then raw on the wire and
        value_of applies the BIRTH's datatype (Int32 -42 travels as 2**32 - 42)."""
        data = message(
            timestamp=T0 + 1000,
            seq=1,
            metrics=(
                pysparkplug.Metric(
                    timestamp=T0 + 900, name=None, alias=1, datatype=pysparkplug.DataType.DOUBLE, value=12.75
                ),
                pysparkplug.Metric(
                    timestamp=T0 + 900, name=None, alias=2, datatype=pysparkplug.DataType.INT32, value=-42
                ),
                pysparkplug.Metric(
                    timestamp=T0 + 900, name=None, alias=5, datatype=pysparkplug.DataType.FLOAT, value=None
                ),
            ),
        ).encode()  # without datatypes, as pysparkplug sends DATA by default

        payload = payload_decode(data)

        assert (payload.timestamp, payload.seq) == (T0 + 1000, 1)
        diameter, count, torque = payload.metrics
        assert diameter == Metric(alias=1, timestamp=T0 + 900, value=12.75)
        assert count == Metric(alias=2, timestamp=T0 + 900, value=2**32 - 42)
        assert torque == Metric(alias=5, timestamp=T0 + 900, is_null=True)
        assert value_of(diameter, DataType.Double) == 12.75
        assert value_of(count, DataType.Int32) == -42.0
        assert value_of(torque, DataType.Float) is None

    @pytest.mark.parametrize(("datatype", "value"), NUMERIC_CASES)
    def test_every_numeric_datatype(self, datatype: DataType, value: float) -> None:
        data = pysparkplug.NBirth(
            timestamp=T0, seq=0, metrics=(_their_metric("m", datatype, value),)
        ).encode()

        (metric,) = payload_decode(data).metrics

        expected = float32_shortest(value) if datatype is DataType.Float else value
        assert (metric.datatype, metric.value) == (datatype, expected)
        assert type(metric.value) is type(value)
        assert value_of(metric, None) == float(expected)

    @pytest.mark.parametrize(("datatype", "value"), NUMERIC_CASES)
    def test_every_numeric_datatype_alias_only(self, datatype: DataType, value: float) -> None:
        metric = pysparkplug.Metric(timestamp=T0, name=None, alias=9, datatype=_theirs(datatype), value=value)
        data = pysparkplug.DData(timestamp=T0, seq=3, metrics=(metric,)).encode()

        (ours,) = payload_decode(data).metrics

        assert ours.datatype is None
        assert value_of(ours, datatype) == float(
            float32_shortest(value) if datatype is DataType.Float else value
        )

    @pytest.mark.parametrize(
        ("datatype", "value"),
        [
            (DataType.Boolean, True),
            (DataType.Boolean, False),
            (DataType.String, "Ø 12,5 mm ✓"),
            (DataType.Text, "a\nlonger note"),
            (DataType.UUID, "3b241101-e2bb-4255-8caf-4136c566a962"),
            (DataType.Bytes, b"\x00\xff raw"),
        ],
    )
    def test_non_numeric_values(self, datatype: DataType, value: Any) -> None:
        data = pysparkplug.NBirth(
            timestamp=T0, seq=0, metrics=(_their_metric("m", datatype, value),)
        ).encode()

        (metric,) = payload_decode(data).metrics

        assert (metric.datatype, metric.value) == (datatype, value)
        assert value_of(metric, None) is None

    def test_datetime_is_ms_in_long_value(self) -> None:
        from datetime import UTC, datetime

        when = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
        data = pysparkplug.NBirth(
            timestamp=T0, seq=0, metrics=(_their_metric("d", DataType.DateTime, when),)
        ).encode()

        (metric,) = payload_decode(data).metrics

        assert metric.value == int(when.timestamp() * 1000)
        assert value_of(metric, None) is None  # a date is not a measurement

    def test_null_metrics(self) -> None:
        metrics = tuple(
            _their_metric(f"n{t}", t, None, alias=int(t), is_null=True) for t in sorted(NUMERIC_TYPES)
        )
        payload = payload_decode(pysparkplug.NBirth(timestamp=T0, seq=0, metrics=metrics).encode())

        assert [(m.datatype, m.is_null, m.value) for m in payload.metrics] == [
            (t, True, None) for t in sorted(NUMERIC_TYPES)
        ]
        assert all(value_of(m, None) is None for m in payload.metrics)

    def test_flags(self) -> None:
        metric = _their_metric("h", DataType.Double, 1.0, is_historical=True, is_transient=True)
        (ours,) = payload_decode(pysparkplug.NData(timestamp=T0, seq=5, metrics=(metric,)).encode()).metrics
        assert (ours.is_historical, ours.is_transient, ours.is_null) == (True, True, False)

    def test_sign_extended_small_ints_decode_too(self) -> None:
        """Encoders that cast a signed value to the uint32 carrier write Int8 -1 as 0xFFFFFFFF, not 255."""
        for datatype, bits in ((DataType.Int8, 8), (DataType.Int16, 16), (DataType.Int32, 32)):
            data = _tahu_metric(name="m", datatype=datatype, int_value=2**32 - 2 ** (bits - 1))
            (metric,) = payload_decode(data).metrics
            assert metric.value == -(2 ** (bits - 1))

    def test_uint32_in_long_value_is_accepted(self) -> None:
        (metric,) = payload_decode(_tahu_metric(name="m", datatype=7, long_value=2**32 - 1)).metrics
        assert (metric.datatype, metric.value) == (DataType.UInt32, 2**32 - 1)


class EncodeOursTests:
    """Payloads written by us, read by pysparkplug."""

    @pytest.mark.parametrize(("datatype", "value"), NUMERIC_CASES)
    def test_every_numeric_datatype(self, datatype: DataType, value: float) -> None:
        metric = Metric(name="m", alias=3, timestamp=T0, datatype=datatype, value=value)
        data = payload_encode(Payload(timestamp=T0, seq=0, metrics=(metric,)))

        (theirs,) = pysparkplug.NBirth.decode(data).metrics

        assert (theirs.name, theirs.alias) == ("m", 3)
        assert (theirs.datatype, theirs.value) == (_theirs(datatype), value)

    def test_nbirth_then_alias_only_ndata(self) -> None:
        birth = payload_encode(
            Payload(
                timestamp=T0,
                seq=0,
                metrics=(
                    Metric(name=BDSEQ_METRIC, timestamp=T0, datatype=DataType.Int64, value=0),
                    Metric(name=REBIRTH_METRIC, timestamp=T0, datatype=DataType.Boolean, value=False),
                    Metric(name="Temp", alias=1, timestamp=T0, datatype=DataType.Int16, value=-40),
                    Metric(name="Note", alias=2, timestamp=T0, datatype=DataType.String, value="ok"),
                    Metric(name="Gap", alias=3, timestamp=T0, datatype=DataType.Double, is_null=True),
                ),
            )
        )
        data = payload_encode(
            Payload(
                timestamp=T0 + 1,
                seq=1,
                metrics=(Metric(alias=1, timestamp=T0 + 1, datatype=DataType.Int16, value=-41),),
            )
        )

        their_birth = pysparkplug.NBirth.decode(birth)
        their_data = pysparkplug.NData.decode(data, birth=their_birth)

        assert [(m.name, m.alias, m.value, m.is_null) for m in their_birth.metrics] == [
            (BDSEQ_METRIC, None, 0, False),
            (REBIRTH_METRIC, None, False, False),
            ("Temp", 1, -40, False),
            ("Note", 2, "ok", False),
            ("Gap", 3, None, True),
        ]
        assert [(m.name, m.value) for m in their_data.metrics] == [("Temp", -41)]

    def test_rebirth_request_is_an_ncmd_they_understand(self) -> None:
        command = pysparkplug.NCmd.decode(rebirth_request(timestamp=T0))

        assert command.timestamp == T0
        (metric,) = command.metrics
        assert (metric.name, metric.datatype, metric.value) == (
            REBIRTH_METRIC,
            pysparkplug.DataType.BOOLEAN,
            True,
        )
        assert payload_decode(rebirth_request(timestamp=T0)).seq is None  # NCMD carries no seq

    @pytest.mark.parametrize(
        ("metric", "message"),
        [
            (Metric(name="m", value=1), "no datatype"),
            (Metric(value=1, datatype=DataType.Int8), "name or an alias"),
            (Metric(name="m", datatype=DataType.Int8, value=128), "not a Int8"),
            (Metric(name="m", datatype=DataType.Int8, value=-129), "not a Int8"),
            (Metric(name="m", datatype=DataType.UInt16, value=-1), "not a UInt16"),
            (Metric(name="m", datatype=DataType.Int32, value=1.5), "not a Int32"),
            (Metric(name="m", datatype=DataType.Int32, value=True), "not a Int32"),
            (Metric(name="m", datatype=DataType.Double, value="1.5"), "not a Double"),
            (Metric(name="m", datatype=DataType.Boolean, value=1), "not a Boolean"),
            (Metric(name="m", datatype=DataType.String, value=b"x"), "not a String"),
            (Metric(name="m", datatype=DataType.Double, value=1.0, is_null=True), "null"),
            (Metric(name="m", datatype=DataType.DataSet, value=b""), "not supported"),
        ],
    )
    def test_refuses_what_cannot_be_encoded(self, metric: Metric, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            payload_encode(Payload(timestamp=T0, metrics=(metric,)))


_SCALARS = st.one_of(
    *(
        st.tuples(st.just(t), st.integers(-(2 ** (b - 1)), 2 ** (b - 1) - 1))
        for t, b in ((DataType.Int8, 8), (DataType.Int16, 16), (DataType.Int32, 32), (DataType.Int64, 64))
    ),
    *(
        st.tuples(st.just(t), st.integers(0, 2**b - 1))
        for t, b in ((DataType.UInt8, 8), (DataType.UInt16, 16), (DataType.UInt32, 32), (DataType.UInt64, 64))
    ),
    st.tuples(st.just(DataType.Float), st.floats(width=32, allow_nan=False)),
    st.tuples(st.just(DataType.Double), st.floats(allow_nan=False)),
    st.tuples(st.just(DataType.Boolean), st.booleans()),
    st.tuples(st.just(DataType.String), st.text()),
)


class RoundTripTests:
    @given(values=st.lists(_SCALARS, min_size=1, max_size=8), seq=st.integers(0, 255))
    def test_ours_to_theirs_to_ours(self, values: list[tuple[DataType, Any]], seq: int) -> None:
        metrics = tuple(
            Metric(name=f"m{i}", alias=i, timestamp=T0 + i, datatype=t, value=v)
            for i, (t, v) in enumerate(values)
        )
        ours = Payload(timestamp=T0, seq=seq, metrics=metrics)
        # A Float comes back as the shortest decimal of the same float32 (its 32 bits unchanged).
        read = Payload(timestamp=T0, seq=seq, metrics=tuple(
            replace(m, value=float32_shortest(m.value)) if m.datatype is DataType.Float else m
            for m in metrics
        ))  # fmt: skip

        theirs = pysparkplug.NBirth.decode(payload_encode(ours))
        assert [(m.datatype, m.value) for m in theirs.metrics] == [(_theirs(t), v) for t, v in values]
        assert payload_decode(theirs.encode()) == read
        assert payload_decode(payload_encode(ours)) == read
        assert all(
            struct.pack("<f", a.value) == struct.pack("<f", b.value)  # type: ignore[arg-type]
            for a, b in zip(read.metrics, ours.metrics, strict=True) if a.datatype is DataType.Float
        )  # fmt: skip

    @given(values=st.lists(_SCALARS, min_size=1, max_size=8))
    def test_theirs_data_to_ours(self, values: list[tuple[DataType, Any]]) -> None:
        metrics = tuple(
            pysparkplug.Metric(timestamp=T0, name=None, alias=i, datatype=_theirs(t), value=v)
            for i, (t, v) in enumerate(values)
        )
        decoded = payload_decode(pysparkplug.DData(timestamp=T0, seq=255, metrics=metrics).encode()).metrics
        for (datatype, value), metric in zip(values, decoded, strict=True):
            if datatype is DataType.Float:
                value = float32_shortest(value)
            number = float(value) if datatype in NUMERIC_TYPES else math.nan
            expected = number if math.isfinite(number) else None  # non-finite is no measurement either
            assert value_of(metric, datatype) == expected


def _real_payload() -> bytes:
    return _nbirth().encode()


class GarbageTests:
    """Whatever arrives on a spBv1.0 topic: DecodeError, never another exception."""

    @pytest.mark.parametrize(
        "data",
        [
            b"",
            b"not protobuf",
            b'{"value": 1}',
            b'{"timestamp": 1767225600000, "metrics": [{"name": "a", "value": 1.5}]}',
            b"\x00",
            b"\xff" * 16,
            b"12.5",
            "ÿ".encode(),
        ],
    )
    def test_not_protobuf(self, data: bytes) -> None:
        with pytest.raises(DecodeError):
            payload_decode(data)

    def test_seeded_random_bytes(self) -> None:
        rng = random.Random(20260101)
        decoded = 0
        for _ in range(500):
            data = rng.randbytes(rng.randint(1, 64))
            try:
                payload = payload_decode(data)
            except DecodeError:
                continue
            decoded += 1
            assert isinstance(payload, Payload)
        assert decoded < 10  # a few random strings are valid protobuf; they must still be Payloads

    def test_truncated_real_payload(self) -> None:
        """Cut inside a field: DecodeError. Cut exactly between metrics: protobuf cannot tell, and the
        result is the payload with fewer metrics, never something else."""
        full = payload_decode(_real_payload())
        for length in range(1, len(_real_payload())):
            try:
                payload = payload_decode(_real_payload()[:length])
            except DecodeError:
                continue
            assert payload.metrics == full.metrics[: len(payload.metrics)]

    def test_mutated_real_payload(self) -> None:
        """Bytes flipped in a real NBIRTH reach the metric checks, not only the protobuf parser."""
        rng = random.Random(7)
        outcomes: Counter[str] = Counter()
        for _ in range(1000):
            data = bytearray(_real_payload())
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            try:
                payload = payload_decode(bytes(data))
            except DecodeError as exc:
                outcomes[str(exc).split(":")[0]] += 1
            else:
                outcomes["decoded"] += 1
                outcomes["a metric unreadable"] += bool(payload.problems)
        assert outcomes["decoded"] > 0
        assert outcomes["not a Sparkplug B payload"] > 0
        assert outcomes["a metric unreadable"] > 0  # the metric checks were reached, one metric at a time

    def test_trailing_garbage(self) -> None:
        with pytest.raises(DecodeError):
            payload_decode(_real_payload() + b"\x00garbage")
        with pytest.raises(DecodeError, match="unknown fields"):
            payload_decode(_real_payload() + b"\x1a\x01\x02")  # field 3 (seq) as bytes: wrong wire type
        with pytest.raises(DecodeError, match="no Sparkplug B field"):
            payload_decode(b"\xa0\x06\x01")  # field 100 and nothing else

    def test_a_payload_extension_is_ignored(self) -> None:
        """Tahu's schema: Payload has `extensions 6 to max`. A field there is not read, and spoils nothing."""
        full = payload_decode(_real_payload())
        assert payload_decode(_real_payload() + b"\xa0\x06\x01") == full  # field 100, varint

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"datatype": 9, "float_value": 1.0}, "neither name nor alias"),
            ({"name": "m", "datatype": 99, "int_value": 1}, "unknown datatype 99"),
            ({"name": "m", "datatype": 0, "int_value": 1}, "unknown datatype 0"),
            ({"name": "m", "datatype": 3, "double_value": 1.0}, "does not carry Int32"),
            ({"name": "m", "datatype": 10, "float_value": 1.0}, "does not carry Double"),
            ({"name": "m", "datatype": 12, "int_value": 1}, "does not carry String"),
            ({"name": "m", "datatype": 11, "int_value": 1}, "does not carry Boolean"),
            ({"name": "m", "datatype": 1, "int_value": 256}, "not a Int8"),
            ({"name": "m", "datatype": 1, "int_value": 2**32 - 129}, "not a Int8"),
            ({"name": "m", "datatype": 6, "int_value": 65536}, "not a UInt16"),
            ({"name": "m", "datatype": 10, "is_null": True, "double_value": 1.0}, "null but carries"),
        ],
    )
    def test_malformed_metric(self, fields: dict[str, object], message: str) -> None:
        """The bad metric is read as far as it can be, with its problem; its sibling is read whole."""
        payload = tahu.Payload(timestamp=T0, seq=4)
        payload.metrics.add(**fields)
        payload.metrics.add(name="good", alias=2, datatype=10, double_value=74.5)
        bad, good = payload_decode(payload.SerializeToString()).metrics
        assert re.search(message, bad.problem)
        assert (bad.name, bad.value) == (fields.get("name"), None)
        assert good == Metric(name="good", alias=2, datatype=DataType.Double, value=74.5)

    def test_an_extension_value_is_a_metric_problem(self) -> None:
        payload = tahu.Payload(timestamp=T0, seq=4)
        payload.metrics.add(name="ext", alias=1, datatype=10).extension_value.SetInParent()
        payload.metrics.add(name="good", alias=2, datatype=10, double_value=74.5)
        ext, good = payload_decode(payload.SerializeToString()).metrics
        assert (ext.name, ext.alias, ext.problem) == (
            "ext", 1, "metric 'ext' carries an extension value, which OpenSPC does not read",
        )  # fmt: skip
        assert good.value == 74.5

    def test_unknown_fields_in_a_metric_spoil_only_it(self) -> None:
        payload = tahu.Payload(timestamp=T0, seq=4)
        payload.metrics.add(name="odd", alias=1, datatype=10, double_value=1.0)
        payload.metrics.add(name="good", alias=2, datatype=10, double_value=74.5)
        raw = bytearray(payload.SerializeToString())
        first = raw.index(b"odd") - 4  # the first metric: tag 0x12, its length, then its name's tag
        extra = b"\xa0\x06\x01"  # field 100 inside the metric
        raw[first + 1] += len(extra)
        raw[first + 2 : first + 2] = extra
        odd, good = payload_decode(bytes(raw)).metrics
        assert odd.problem == "metric 'odd' has fields outside the Sparkplug B schema"
        assert (odd.name, odd.alias, odd.value) == ("odd", 1, None)
        assert good.value == 74.5

    def test_string_not_utf8(self) -> None:
        metric = b"\x0a\x02\xff\xfe"  # Metric.name = b"\xff\xfe"
        (read,) = payload_decode(b"\x12" + bytes([len(metric)]) + metric).metrics
        assert (read.name, read.problem) == (None, "name is not UTF-8")

    def test_nesting_too_deep(self) -> None:
        payload = tahu.Payload(timestamp=T0)
        metric = payload.metrics.add(name="deep", datatype=19)
        for level in range(200):
            metric = metric.template_value.metrics.add(name=f"level {level}")
        with pytest.raises(DecodeError):
            payload_decode(payload.SerializeToString())


class ValueOfTests:
    @pytest.mark.parametrize(
        ("metric", "birth_datatype", "expected"),
        [
            (Metric(name="m", datatype=DataType.Double, value=-1.25), None, -1.25),
            (Metric(name="m", datatype=DataType.Int64, value=-(2**40)), None, -(2.0**40)),
            (Metric(name="m", datatype=DataType.UInt8, value=200), DataType.Int8, 200.0),  # its own wins
            (Metric(alias=1, value=0xFF), DataType.Int8, -1.0),
            (Metric(alias=1, value=0xFF), DataType.UInt8, 255.0),
            (Metric(alias=1, value=0xFFFF_FFFF), DataType.Int16, -1.0),
            (Metric(alias=1, value=2**64 - 1), DataType.Int64, -1.0),
            (Metric(alias=1, value=2.5), DataType.Float, 2.5),
            (Metric(alias=1, value=2.5), None, None),  # no datatype known
            (Metric(alias=1, value=2.5), DataType.Int32, None),  # a float is not an Int32
            (Metric(alias=1, value=256), DataType.UInt8, None),
            (Metric(name="m", datatype=DataType.Boolean, value=True), None, None),
            (Metric(alias=1, value=True), DataType.Boolean, None),
            (Metric(name="m", datatype=DataType.String, value="1.5"), None, None),
            (Metric(name="m", datatype=DataType.DateTime, value=T0), None, None),
            (Metric(name="m", datatype=DataType.Double, is_null=True), None, None),
            (Metric(alias=1, is_null=True), DataType.Double, None),
            (Metric(name="m", datatype=DataType.Double, value=math.nan), None, None),
            (Metric(name="m", datatype=DataType.Float, value=math.inf), None, None),
        ],
    )
    def test_value_of(self, metric: Metric, birth_datatype: DataType | None, expected: float | None) -> None:
        assert value_of(metric, birth_datatype) == expected

    def test_float_is_float32_on_the_wire(self) -> None:
        metric = Metric(name="m", datatype=DataType.Float, value=0.1)
        (decoded,) = payload_decode(payload_encode(Payload(timestamp=T0, metrics=(metric,)))).metrics
        assert value_of(decoded, None) == 0.1  # the float32 as written, not 0.10000000149011612

    @pytest.mark.parametrize(
        ("value", "shortest"),
        [(354.79998779296875, 354.8), (74.0999984741211, 74.1), (-2.25, -2.25), (3.4028234663852886e38,
         3.4028235e38), (1.401298464324817e-45, 1e-45), (0.0, 0.0), (math.inf, math.inf)],
    )  # fmt: skip
    def test_float32_shortest(self, value: float, shortest: float) -> None:
        assert float32_shortest(value) == shortest
        assert struct.pack("<f", float32_shortest(value)) == struct.pack("<f", value)


class ValueReadableTests:
    """What an observation keeps of a value SPC cannot chart: readable and bounded (issue #19, item 10)."""

    @pytest.mark.parametrize(
        ("metric", "birth_datatype", "expected"),
        [
            (Metric(name="m", datatype=DataType.String, value="hot"), None, "hot"),
            (Metric(alias=1, value="hot"), DataType.Text, "hot"),
            (Metric(name="m", datatype=DataType.Boolean, value=True), None, True),
            (Metric(name="m", datatype=DataType.Double, value=math.nan), None, "NaN"),
            (Metric(name="m", datatype=DataType.Float, value=-math.inf), None, "-Infinity"),
            (Metric(name="m", datatype=DataType.DateTime, value=T0), None, "2026-01-01T00:00:00Z"),
            (
                Metric(name="m", datatype=DataType.Int32Array, value=b"\0" * 12),
                None,
                "Int32Array of 12 bytes",
            ),
            (Metric(name="m", datatype=DataType.DataSet), None, "DataSet"),
            (Metric(alias=1, value=2.5), DataType.Int32, "2.5 (not a number for Int32)"),
        ],
    )
    def test_readable(self, metric: Metric, birth_datatype: DataType | None, expected: object) -> None:
        assert value_of(metric, birth_datatype) is None
        assert value_readable(metric, birth_datatype) == expected

    def test_a_long_text_is_cut(self) -> None:
        text = "x" * (1024 * 1024)
        shown = value_readable(Metric(name="m", datatype=DataType.String, value=text), None)
        assert shown == "x" * 200 + "… (1048576 characters)"

    def test_numeric_types(self) -> None:
        assert {t.name for t in NUMERIC_TYPES} == {
            "Int8",
            "Int16",
            "Int32",
            "Int64",
            "UInt8",
            "UInt16",
            "UInt32",
            "UInt64",
            "Float",
            "Double",
        }


def test_the_codec_loads_no_django_and_no_other_sparkplug_library() -> None:
    """Pure like the spc engine: the simulator imports it without settings, and the schema is
    ours, not borrowed from pysparkplug's generated module (separate descriptor pools)."""
    code = (
        "import sys, apps.mqtt_bridge.sparkplug\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'pysparkplug'))\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parents[2]
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr

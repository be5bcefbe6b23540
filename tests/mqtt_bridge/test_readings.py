"""JSON payloads into readings (apps/mqtt_bridge/readings.py): no database, no broker."""

import datetime
import json
import math
from typing import Any

import pytest

from apps.mqtt_bridge.models import DeadLetterReason
from apps.mqtt_bridge.readings import Bad, Reading, epoch_ms, fingerprint, json_reading, message_key
from apps.mqtt_bridge.selectors import Fed

FED = Fed(id=1, product_id=2, test_id=3, tag="plant/line1/dia")
TOPIC = FED.tag
UTC = datetime.UTC


def read(payload: bytes | str | Any, topic: str = TOPIC) -> Reading | Bad:
    raw = (
        payload
        if isinstance(payload, bytes)
        else (payload if isinstance(payload, str) else json.dumps(payload))
    )
    return json_reading(FED, topic, raw.encode() if isinstance(raw, str) else raw)


def reading(payload: bytes | str | Any, topic: str = TOPIC) -> Reading:
    result = read(payload, topic)
    assert isinstance(result, Reading), result
    return result


def bad(payload: bytes | str | Any) -> Bad:
    result = read(payload)
    assert isinstance(result, Bad), result
    return result


class ValuesTests:
    def test_value(self) -> None:
        r = reading({"value": 74.001})
        assert (r.fed, r.topic, r.values, r.observed_at, r.lot, r.item) == (
            FED,
            TOPIC,
            [74.001],
            None,
            None,
            None,
        )
        assert r.payload == b'{"value": 74.001}'

    @pytest.mark.parametrize("count", [1, 5, 25])
    def test_values_list_of_1_to_25(self, count: int) -> None:
        values = [74.0 + k / 1000 for k in range(count)]
        assert reading({"values": values}).values == values

    @pytest.mark.parametrize(("payload", "expected"), [("354.8", 354.8), ("7", 7), ("-0.5", -0.5)])
    def test_a_bare_number_is_a_value(self, payload: str, expected: float) -> None:
        assert reading(payload).values == [expected]

    def test_nan_and_text_are_kept_for_the_pipeline_to_reject(self) -> None:
        (nan,) = reading('{"value": NaN}').values
        assert isinstance(nan, float)
        assert math.isnan(nan)
        assert reading({"value": "abc"}).values == ["abc"]
        assert reading({"values": [1.0, "abc", True]}).values == [1.0, "abc", True]

    @pytest.mark.parametrize(
        ("payload", "message"),
        [
            ([74.0], 'expected {"value": number} or {"values": [numbers]}'),
            ("true", 'expected {"value": number} or {"values": [numbers]}'),
            ("null", 'expected {"value": number} or {"values": [numbers]}'),
            ('"74.0"', 'expected {"value": number} or {"values": [numbers]}'),
            ({"val": 74.0}, 'no "value" or "values" in the payload'),
            ({"value": None}, "a value is empty, a list or an object"),
            ({"value": [74.0]}, "a value is empty, a list or an object"),
            ({"values": [74.0, {"x": 1}]}, "a value is empty, a list or an object"),
            ({"values": [74.0, None]}, "a value is empty, a list or an object"),
            ({"values": []}, "values must be a list of 1 to 25 numbers"),
            ({"values": [74.0] * 26}, "values must be a list of 1 to 25 numbers"),
            ({"values": 74.0}, "values must be a list of 1 to 25 numbers"),
        ],
    )
    def test_bad_shape(self, payload: Any, message: str) -> None:
        assert bad(payload) == Bad(DeadLetterReason.BAD_SHAPE, message)

    @pytest.mark.parametrize("payload", [b"not json", b'{"value": 1', b"\xff\xfe\x00", b"\xc3\x28", b""])
    def test_not_json(self, payload: bytes) -> None:
        assert bad(payload) == Bad(DeadLetterReason.NOT_JSON, "the payload is not JSON")

    @pytest.mark.parametrize("payload", [b"[" * 100_000, b'{"value": ' * 100_000])
    def test_json_nested_too_deeply_is_not_json_not_a_fault(self, payload: bytes) -> None:
        """Python's parser gives up with a RecursionError, which used to reach the listener's
        catch-all: a `failed` dead letter and a traceback in the log for one bad message."""
        assert bad(payload) == Bad(DeadLetterReason.NOT_JSON, "the payload is not JSON (nested too deeply)")


class TimestampTests:
    @pytest.mark.parametrize(
        ("ts", "expected"),
        [
            ("2026-11-24T10:00:05Z", datetime.datetime(2026, 11, 24, 10, 0, 5, tzinfo=UTC)),
            ("2026-11-24T10:00:05.250Z", datetime.datetime(2026, 11, 24, 10, 0, 5, 250000, tzinfo=UTC)),
            ("2026-11-24T12:00:05+02:00", datetime.datetime(2026, 11, 24, 10, 0, 5, tzinfo=UTC)),
            ("2026-11-24T05:00:05-05:00", datetime.datetime(2026, 11, 24, 10, 0, 5, tzinfo=UTC)),
            ("2026-11-24T10:00:05", datetime.datetime(2026, 11, 24, 10, 0, 5, tzinfo=UTC)),  # naive: UTC
            (1795514405, datetime.datetime(2026, 11, 24, 10, 0, 5, tzinfo=UTC)),  # seconds
            (1795514405.5, datetime.datetime(2026, 11, 24, 10, 0, 5, 500000, tzinfo=UTC)),
            (1795514405250, datetime.datetime(2026, 11, 24, 10, 0, 5, 250000, tzinfo=UTC)),  # ms
        ],
    )
    def test_ts(self, ts: str | float, expected: datetime.datetime) -> None:
        observed = reading({"value": 1.0, "ts": ts}).observed_at
        assert observed == expected
        assert observed is not None
        assert observed.utcoffset() is not None

    def test_null_ts_is_no_ts(self) -> None:
        r = reading({"value": 1.0, "ts": None})
        assert (r.observed_at, r.key) == (None, None)

    @pytest.mark.parametrize(
        ("ts", "message"),
        [
            ("yesterday", "ts 'yesterday' is not ISO 8601"),
            ("2026-13-01T00:00:00Z", "ts '2026-13-01T00:00:00Z' is not ISO 8601"),
            (True, "ts must be ISO 8601 text or a Unix time; got True"),
            (False, "ts must be ISO 8601 text or a Unix time; got False"),
            ([1795514405], "ts must be ISO 8601 text or a Unix time; got [1795514405]"),
            ({"s": 1}, "ts must be ISO 8601 text or a Unix time; got {'s': 1}"),
            (1e300, "ts 1e+300 is not a time"),
            (10**20, f"ts {10**20} is not a time"),
            # The year 10000 in UTC: no datetime holds it (a time in 9999 is stored, then rejected).
            ("9999-12-31T23:00:00-05:00", "ts '9999-12-31T23:00:00-05:00' is out of range"),
        ],
    )
    def test_bad_ts(self, ts: Any, message: str) -> None:
        assert bad({"value": 1.0, "ts": ts}) == Bad(DeadLetterReason.BAD_SHAPE, message)

    def test_infinite_ts(self) -> None:
        assert bad('{"value": 1.0, "ts": Infinity}') == Bad(
            DeadLetterReason.BAD_SHAPE, "ts must be ISO 8601 text or a Unix time; got inf"
        )

    def test_a_ts_too_large_for_a_float_is_a_bad_message_not_a_crash(self) -> None:
        """An integer with hundreds of digits is valid JSON; the listener must not die on it."""
        huge = "1" + "0" * 400
        result = read('{"value": 1.0, "ts": ' + huge + "}")
        assert isinstance(result, Bad)
        assert result.reason == DeadLetterReason.BAD_SHAPE
        assert "is not a time" in result.message

    def test_epoch_ms(self) -> None:
        assert epoch_ms(0) == datetime.datetime(1970, 1, 1, tzinfo=UTC)
        assert epoch_ms(1795514405250) == datetime.datetime(2026, 11, 24, 10, 0, 5, 250000, tzinfo=UTC)


class IdentityTests:
    @pytest.mark.parametrize(
        ("field", "raw", "expected"),
        [("id", "m-1", "m-1"), ("id", 17, "17"), ("lot", "L-1", "L-1"), ("lot", 42, "42"),
         ("item", " 0001 ", "0001"), ("item", 7, "7")],
    )  # fmt: skip
    def test_text_or_int(self, field: str, raw: str | int, expected: str) -> None:
        r = reading({"value": 1.0, field: raw})
        if field != "id":
            assert getattr(r, field) == expected
        else:
            assert r.key is not None

    @pytest.mark.parametrize(
        ("field", "raw"), [("lot", {"number": "L-1"}), ("lot", ["L-1"]), ("lot", True), ("item", 1.5),
                           ("id", ""), ("id", "   "), ("item", [])],
    )  # fmt: skip
    def test_not_text(self, field: str, raw: Any) -> None:
        assert bad({"value": 1.0, field: raw}) == Bad(
            DeadLetterReason.BAD_SHAPE, f"{field} must be text; got {raw!r}"
        )

    def test_no_key_without_id_or_ts(self) -> None:
        assert reading({"value": 1.0}).key is None
        assert reading({"value": 1.0, "lot": "L-1", "item": "0001"}).key is None

    def test_key_from_id_or_ts(self) -> None:
        by_id = reading({"value": 1.0, "id": "m-1"})
        by_ts = reading({"value": 1.0, "ts": "2026-11-24T10:00:05Z"})
        assert by_id.key == message_key(TOPIC, by_id.payload)
        assert by_ts.key == message_key(TOPIC, by_ts.payload)
        assert by_id.key != by_ts.key

    def test_same_topic_and_bytes_same_key_other_topic_other_key(self) -> None:
        payload = b'{"value": 1.0, "id": "m-1"}'
        first, again = json_reading(FED, TOPIC, payload), json_reading(FED, TOPIC, payload)
        elsewhere = json_reading(FED, TOPIC + "/2", payload)
        other_bytes = json_reading(FED, TOPIC, b'{"value": 1.0, "id": "m-2"}')
        assert isinstance(first, Reading)
        assert isinstance(again, Reading)
        assert isinstance(elsewhere, Reading)
        assert isinstance(other_bytes, Reading)
        assert first.key is not None
        assert first.key == again.key
        assert len({first.key, elsewhere.key, other_bytes.key}) == 3

    def test_message_key_parts_and_fingerprint(self) -> None:
        key = message_key("a", b"x")
        assert key.startswith("mqtt:")
        assert key.endswith(":0")
        assert message_key("a", b"x", 3) == key[:-1] + "3"
        # The topic ends where the payload begins: "a" + "bx" is not "ab" + "x".
        assert message_key("a", b"bx") != message_key("ab", b"x")
        assert fingerprint("a", b"bx") != fingerprint("ab", b"x")
        assert len(fingerprint("a", b"x")) == 64

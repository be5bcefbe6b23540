"""Turning MQTT messages into readings: plain JSON payloads, and the idempotency key of a message.

A reading is what the bridge hands to the observation pipeline: the values for one
characteristic, when they were measured, and a key that recognises the same message
delivered again. Nothing here touches the database or the broker.
"""

import datetime
import hashlib
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apps.config.choices import MAX_SUBGROUP_SIZE
from apps.mqtt_bridge.choices import DeadLetterReason
from apps.mqtt_bridge.selectors import Fed

log = logging.getLogger("openspc.mqtt")


@dataclass(frozen=True)
class Reading:
    """Values of one characteristic from one message (or one Sparkplug metric of a message)."""

    fed: Fed
    topic: str
    payload: bytes  # the raw message, kept if the reading becomes a dead letter after all
    values: list[Any]
    observed_at: datetime.datetime | None
    key: str | None  # None: the message cannot be told from a repeat (no id, no timestamp)
    lot: str | None = None  # lot number named by the payload; None: the product's current lot
    item: str | None = None
    historical: bool = False  # a Sparkplug metric's is_historical: sent from a store-and-forward buffer


@dataclass(frozen=True)
class Bad:
    """Why a message (or part of one) became a dead letter."""

    reason: DeadLetterReason
    message: str


def message_key(topic: str, payload: bytes, part: int = 0) -> str:
    """The same message delivered again (after a listener was killed before acknowledging it)
    has the same topic and bytes, so the same key; `part` tells a message's metrics apart."""
    digest = hashlib.sha256(topic.encode() + b"\0" + payload).hexdigest()[:40]
    return f"mqtt:{digest}:{part}"


def fingerprint(topic: str, payload: bytes) -> str:
    """SHA-256 of topic and payload, hashed in pieces: a large payload is not copied."""
    digest = hashlib.sha256(topic.encode())
    digest.update(b"\0")
    digest.update(payload)
    return digest.hexdigest()


def epoch_ms(value: int | float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(value / 1000, tz=datetime.UTC)


def _timestamp(raw: Any) -> datetime.datetime | Bad:
    """`ts` as ISO 8601 text or a Unix time: seconds, or milliseconds when it is that large."""
    if isinstance(raw, bool):
        return Bad(DeadLetterReason.BAD_SHAPE, f"ts must be ISO 8601 text or a Unix time; got {raw!r}")
    if isinstance(raw, int | float):
        try:
            # isfinite() itself overflows on an integer too large for a float (valid JSON).
            if math.isfinite(raw):
                return epoch_ms(raw if raw > 1e11 else raw * 1000)
        except (OverflowError, OSError, ValueError):
            return Bad(DeadLetterReason.BAD_SHAPE, f"ts {raw!r} is not a time")
    if isinstance(raw, str):
        try:
            moment = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return Bad(DeadLetterReason.BAD_SHAPE, f"ts {raw!r} is not ISO 8601")
        moment = moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
        try:
            # In UTC now: 9999-12-31T23:00-05:00 is in the year 10000 there, which no datetime (and no
            # worker reading the row back) can hold. A time within range but far off is stored, and
            # the pipeline rejects it against OBSERVATION_MAX_FUTURE_SECONDS / _HORIZON_DAYS.
            return moment.astimezone(datetime.UTC)
        except OverflowError:
            return Bad(DeadLetterReason.BAD_SHAPE, f"ts {raw!r} is out of range")
    return Bad(DeadLetterReason.BAD_SHAPE, f"ts must be ISO 8601 text or a Unix time; got {raw!r}")


def _text(document: dict[str, Any], name: str) -> str | Bad | None:
    raw = document.get(name)
    if raw is None:
        return None
    if isinstance(raw, str | int) and not isinstance(raw, bool) and str(raw).strip():
        return str(raw).strip()[:64]
    return Bad(DeadLetterReason.BAD_SHAPE, f"{name} must be text; got {raw!r}")


def json_reading(fed: Fed, topic: str, payload: bytes) -> Reading | Bad:
    """A reading from a JSON payload: `{"value": 354.8}` or `{"values": [...]}`, with optional
    `ts`, `id`, `lot` and `item`; a bare number is taken as a value too.

    Values that are there but are no finite number (text, NaN, true) are kept as given: the
    pipeline stores them and rejects them with the reason, like a device's REST post. A payload
    that is not JSON or holds no value at all is a Bad.
    """
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return Bad(DeadLetterReason.NOT_JSON, "the payload is not JSON")
    except RecursionError:
        return Bad(DeadLetterReason.NOT_JSON, "the payload is not JSON (nested too deeply)")
    if isinstance(document, int | float) and not isinstance(document, bool):
        document = {"value": document}
    if not isinstance(document, dict):
        return Bad(DeadLetterReason.BAD_SHAPE, 'expected {"value": number} or {"values": [numbers]}')
    if "values" in document:
        values = document["values"]
        if not isinstance(values, list) or not values or len(values) > MAX_SUBGROUP_SIZE:
            return Bad(
                DeadLetterReason.BAD_SHAPE, f"values must be a list of 1 to {MAX_SUBGROUP_SIZE} numbers"
            )
    elif "value" in document:
        values = [document["value"]]
    else:
        return Bad(DeadLetterReason.BAD_SHAPE, 'no "value" or "values" in the payload')
    if any(value is None or isinstance(value, list | dict) for value in values):
        return Bad(DeadLetterReason.BAD_SHAPE, "a value is empty, a list or an object")
    observed_at = _timestamp(document["ts"]) if document.get("ts") is not None else None
    if isinstance(observed_at, Bad):
        return observed_at
    lot, item, identity = _text(document, "lot"), _text(document, "item"), _text(document, "id")
    if isinstance(lot, Bad):
        return lot
    if isinstance(item, Bad):
        return item
    if isinstance(identity, Bad):
        return identity
    # A message with an id or a time is recognised when delivered again; one with neither
    # cannot be told from the same value measured twice, so each is kept (docs/mqtt.md).
    key = message_key(topic, payload) if identity is not None or observed_at is not None else None
    return Reading(fed, topic, payload, values, observed_at, key, lot=lot, item=item)


class BadLog:
    """Logs a bad message once per topic per interval, then how many more there were."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._since: dict[str, float] = {}
        self._more: Counter[str] = Counter()

    def bad(self, topic: str, reason: str, message: str) -> None:
        now = self.clock()
        since = self._since.get(topic)
        if since is not None and now - since < self.interval:
            self._more[topic] += 1
            return
        more = self._more.pop(topic, 0)
        extra = f" ({more} more on this topic since the last report)" if more else ""
        log.warning("bad message on %s: %s: %s%s", topic, reason, message, extra)
        self._since[topic] = now

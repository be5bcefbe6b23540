"""Violations back to the plant: `spc/violations/<site>/<area>/<line>/<cell>/<characteristic>`,
and optionally each characteristic's statistics: `spc/stats/<site>/<area>/<line>/<cell>/<characteristic>`.

The violation rows are the outbox. A cursor row keeps the last id published; the listener
that publishes holds it locked (others skip), publishes the next violations with QoS 1,
and moves the cursor only once the broker has acknowledged them all. A broker outage or a
listener killed mid-way publishes those violations again later (at least once, never lost).

Statistics are state, not events: each characteristic's latest is published retained (a
SCADA client that subscribes later gets it at once), when its row changed since the cursor
(a time). The cursor stays a few seconds behind, so a calculation that saved a row before
the cursor moved and committed after is not skipped.

The observation side's alarms (apps.observations.models.PlantMessage: data health, values out of
spec, overdue samples) are an outbox like the violations, published to `spc/health/...`,
`spc/spec/...` and `spc/schedule/...` under the same place levels.
"""

import datetime
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.calculations.events import product_statistics_data, violation_data
from apps.calculations.models import ProductStatistics, Violation
from apps.config.models import Characteristic
from apps.mqtt_bridge.models import PublishCursor
from apps.observations.models import PlantMessage
from openspc.topics import PLANT_MESSAGE_ROOTS, STATISTICS_ROOT, VIOLATIONS_ROOT

CURSOR = "violations"
PLANT_MESSAGES_CURSOR = "plant_messages"
STATISTICS_CURSOR = "statistics"
# How far the statistics cursor stays behind now (longer than a calculation's transaction).
SETTLE = datetime.timedelta(seconds=2)
_UNSAFE = re.compile(r"[/+#\x00]+")


def _level(text: str) -> str:
    """One topic level: no separators or wildcards; '_' for an empty one."""
    return _UNSAFE.sub("_", text.strip()) or "_"


def _where(root: str, c: Characteristic) -> str:
    name = f"{c.product.code}-{c.test.code}"
    return f"{root}/" + "/".join(_level(part) for part in (c.site, c.area, c.line, c.cell, name))


def violation_topic(violation: Violation) -> str:
    return _where(VIOLATIONS_ROOT, violation.characteristic)


def statistics_topic(statistics: ProductStatistics) -> str:
    return _where(STATISTICS_ROOT, statistics.characteristic)


def statistics_message(statistics: ProductStatistics) -> bytes:
    """The characteristic's statistics over all lots: n, mean, SD, min, max, out of spec, σ within,
    Cp, Cpk, Pp, Ppk, the limits version, and when they last changed."""
    c = statistics.characteristic
    document = {
        **product_statistics_data(statistics),
        "product": c.product.code,
        "test": c.test.code,
        "tag": c.tag,
        "updated_at": statistics.updated_at.isoformat(),
        "published_at": timezone.now().isoformat(),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def violation_message(violation: Violation) -> bytes:
    """What SCADA needs to react without calling back: the rule, the values, where and when."""
    c, sample = violation.characteristic, violation.sample
    document = {
        **violation_data(violation),
        "product": c.product.code,
        "test": c.test.code,
        "tag": c.tag,
        "values": sample.values,
        "mean": sample.mean,
        "lot_number": sample.lot.number,
        "sample_created_at": sample.created_at.isoformat(),
        "created_at": violation.created_at.isoformat(),
        "published_at": timezone.now().isoformat(),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _cursor_locked(name: str, start: Callable[[], int]) -> PublishCursor | None:
    """The cursor, locked for this transaction; None while another listener publishes. Created at
    `start()` the first time."""
    cursor = PublishCursor.objects.select_for_update(skip_locked=True).filter(name=name).first()
    if cursor is not None:
        return cursor
    PublishCursor.objects.get_or_create(name=name, defaults={"position": start()})
    return PublishCursor.objects.select_for_update(skip_locked=True).filter(name=name).first()


def _newest_violation() -> int:
    """Where the violations cursor starts: a first start publishes what happens from then on, not
    the history."""
    return int(Violation.objects.aggregate(newest=Max("pk"))["newest"] or 0)


def _outbox_publish(
    *,
    cursor_name: str,
    start: Callable[[], int],
    rows: Callable[[int], Sequence[Any]],
    message: Callable[[Any], tuple[str, bytes]],
    publish: Callable[[str, bytes], bool],
) -> int:
    """Publish an outbox's rows after its cursor, in id order, moving the cursor past each the
    broker acknowledged. Returns how many (0: none new, or another listener holds the cursor, or
    the broker did not acknowledge; then the cursor stays)."""
    with transaction.atomic():
        cursor = _cursor_locked(cursor_name, start)
        if cursor is None:
            return 0
        published = 0
        for row in rows(cursor.position):
            if not publish(*message(row)):
                break
            cursor.position = row.pk
            published += 1
        if published:
            cursor.save(update_fields=["position", "updated_at"])
        return published


def violations_publish(*, publish: Callable[[str, bytes], bool], limit: int = 200) -> int:
    """Publish the violations after the cursor; `publish(topic, payload)` returns True once the
    broker acknowledged it. Returns how many were published."""
    return _outbox_publish(
        cursor_name=CURSOR,
        start=_newest_violation,
        rows=lambda after: list(
            Violation.objects.filter(pk__gt=after)
            .select_related("characteristic__product", "characteristic__test", "sample__lot")
            .order_by("pk")[:limit]
        ),
        message=lambda violation: (violation_topic(violation), violation_message(violation)),
        publish=publish,
    )


def plant_message_topic(message: PlantMessage) -> str:
    return _where(PLANT_MESSAGE_ROOTS[message.event.split(".")[0]], message.characteristic)


def plant_message_payload(message: PlantMessage) -> bytes:
    """The alarm as the pages got it, with where it belongs and when it was raised."""
    c = message.characteristic
    document = {
        "event": message.event,
        **message.data,
        "product_code": c.product.code,
        "test_code": c.test.code,
        "tag": c.tag,
        "created_at": message.created_at.isoformat(),
        "published_at": timezone.now().isoformat(),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _newest_plant_message() -> int:
    return int(PlantMessage.objects.aggregate(newest=Max("pk"))["newest"] or 0)


def plant_messages_publish(*, publish: Callable[[str, bytes], bool], limit: int = 200) -> int:
    """Publish the observation side's alarms after the cursor (data health, spec, overdue samples:
    `spc/health/...`, `spc/spec/...`, `spc/schedule/...`), as violations_publish does violations."""
    return _outbox_publish(
        cursor_name=PLANT_MESSAGES_CURSOR,
        start=_newest_plant_message,
        rows=lambda after: list(
            PlantMessage.objects.filter(pk__gt=after)
            .select_related("characteristic__product", "characteristic__test")
            .order_by("pk")[:limit]
        ),
        message=lambda row: (plant_message_topic(row), plant_message_payload(row)),
        publish=publish,
    )


def _microseconds(moment: datetime.datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def statistics_publish(
    *, publish: Callable[..., bool], now: datetime.datetime | None = None, limit: int = 500
) -> int:
    """Publish, retained, the statistics of every characteristic whose row changed since the cursor;
    `publish(topic, payload, retain=True)` returns True once the broker acknowledged it. A first
    start publishes every characteristic's current statistics.

    The cursor never passes `now - SETTLE`: a calculation that saved its row before that and
    commits after is still found. So a change may be published more than once (it is state, and
    the retained message is simply replaced)."""
    upto = (now or timezone.now()) - SETTLE
    with transaction.atomic():
        cursor = _cursor_locked(STATISTICS_CURSOR, lambda: 0)
        if cursor is None:
            return 0
        since = datetime.datetime.fromtimestamp(cursor.position / 1_000_000, tz=datetime.UTC)
        rows = list(
            ProductStatistics.objects.filter(updated_at__gt=since)
            .select_related("characteristic__product", "characteristic__test")
            .order_by("updated_at", "pk")[:limit]
        )
        published = 0
        for row in rows:
            if not publish(statistics_topic(row), statistics_message(row), retain=True):
                break
            cursor.position = _microseconds(min(row.updated_at, upto))
            published += 1
        if published:
            cursor.save(update_fields=["position", "updated_at"])
        return published

"""Violations back to the plant: `spc/violations/<site>/<area>/<line>/<cell>/<characteristic>`.

The violation rows are the outbox. A cursor row keeps the last id published; the listener
that publishes holds it locked (others skip), publishes the next violations with QoS 1,
and moves the cursor only once the broker has acknowledged them all. A broker outage or a
listener killed mid-way publishes those violations again later (at least once, never lost).
"""

import json
import re
from collections.abc import Callable, Sequence

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.calculations.models import Violation
from apps.calculations.services.calculate import violation_data
from apps.mqtt_bridge.models import PublishCursor

CURSOR = "violations"
_UNSAFE = re.compile(r"[/+#\x00]+")


def _level(text: str) -> str:
    """One topic level: no separators or wildcards; '_' for an empty one."""
    return _UNSAFE.sub("_", text.strip()) or "_"


def violation_topic(violation: Violation) -> str:
    c = violation.characteristic
    name = f"{c.product.code}-{c.test.code}"
    return "spc/violations/" + "/".join(_level(part) for part in (c.site, c.area, c.line, c.cell, name))


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


def _cursor_locked() -> PublishCursor | None:
    """The cursor, locked for this transaction; None while another listener publishes. Created at the
    newest violation: a first start publishes what happens from then on, not the history."""
    cursor = PublishCursor.objects.select_for_update(skip_locked=True).filter(name=CURSOR).first()
    if cursor is not None:
        return cursor
    newest = Violation.objects.aggregate(newest=Max("pk"))["newest"] or 0
    PublishCursor.objects.get_or_create(name=CURSOR, defaults={"position": newest})
    return PublishCursor.objects.select_for_update(skip_locked=True).filter(name=CURSOR).first()


def violations_publish(*, publish: Callable[[str, bytes], bool], limit: int = 200) -> int:
    """Publish the violations after the cursor; `publish(topic, payload)` returns True once the
    broker acknowledged it. Returns how many were published (0: none new, or another listener
    holds the cursor, or the broker did not acknowledge; then the cursor stays)."""
    with transaction.atomic():
        cursor = _cursor_locked()
        if cursor is None:
            return 0
        batch: Sequence[Violation] = list(
            Violation.objects.filter(pk__gt=cursor.position)
            .select_related("characteristic__product", "characteristic__test", "sample__lot")
            .order_by("pk")[:limit]
        )
        published = 0
        for violation in batch:
            if not publish(violation_topic(violation), violation_message(violation)):
                break
            cursor.position = violation.pk
            published += 1
        if published:
            cursor.save(update_fields=["position", "updated_at"])
        return published

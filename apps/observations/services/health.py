"""Data health (issue #21, docs/alarms.md "Data health"): which characteristics' values are being
rejected, so the overview never shows green while they are.

Beat runs `data_health_check` every DATA_HEALTH_INTERVAL_SECONDS. It counts, per characteristic,
the values rejected since the last check (one query on a small partial index: rejected rows are
few) and the values confirmed (from the characteristic's feed position: no scan of observations),
keeps one entry per check within DATA_HEALTH_WINDOW_SECONDS, and sums them: the rejection rate over
the window, with the most frequent reasons. A characteristic whose rate reaches
DATA_HEALTH_REJECTED_PERCENT, with at least DATA_HEALTH_MIN_REJECTED values rejected, is
`rejecting`: `data.rejected` goes to its subscribers, and `data_health.changed` to every page
showing it, as when it recovers. Nothing of this is on the path of a value.

MQTT messages meant for a characteristic that the bridge could not store (dead letters: not JSON,
a Sparkplug B node not born, no open lot) count as rejected values, with their reason: the bridge
counts them up on the health row (`dead_letters_add`), and each check takes the difference.
"""

import datetime
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from apps.config.choices import MQTT_SOURCES, DataSource, ScheduleKind
from apps.config.models import Characteristic
from apps.observations.choices import HealthState, ObservationStatus
from apps.observations.models import CharacteristicHealth, Observation, SubgroupFeed
from apps.observations.services.plant import plant_messages_store
from apps.observations.services.schedules import schedules_effective
from openspc.events import Event, EventType, event, events_send_on_commit
from openspc.rows import rows_insert, rows_update

REASONS_READ = 1000  # rejected rows read per check for their reasons (the counts are exact)
TOP_REASONS = 3
HEALTH_FIELDS = [
    "state",
    "since",
    "confirmed",
    "rejected",
    "reasons",
    "positions",
    "window_seconds",
    "checked_at",
    "last_value_at",
    "dead_letters",
    "dead_letters_counted",
]  # fmt: skip (not source_offline, dead_letters_total, dead_letter_reason: the MQTT bridge writes those)


@dataclass(frozen=True)
class HealthChecked:
    checked: int
    changed: list[CharacteristicHealth]


def health_data(health: CharacteristicHealth, characteristic: Characteristic) -> dict[str, Any]:
    return {
        "characteristic": health.characteristic_id, "product": characteristic.product_id,
        "test": characteristic.test_id, "state": health.state, "since": health.since.isoformat(),
        "confirmed": health.confirmed, "rejected": health.rejected,
        "rejected_percent": health.rejected_percent, "dead_letters": health.dead_letters,
        "reasons": health.reasons,
        "summary": health.summary, "window_seconds": health.window_seconds,
        "last_value_at": health.last_value_at.isoformat() if health.last_value_at else None,
    }  # fmt: skip


def _rejected_since(since: datetime.datetime, now: datetime.datetime) -> dict[tuple[int, int], int]:
    rows = (
        Observation.objects.filter(
            status=ObservationStatus.REJECTED, processed_at__gt=since, processed_at__lte=now
        )
        .values_list("lot__product_id", "test_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {(product, test): n for product, test, n in rows}


def _reasons_since(since: datetime.datetime, now: datetime.datetime) -> dict[tuple[int, int], Counter[str]]:
    """Reason codes of the latest REASONS_READ rejections since `since`, per (product, test); the
    message of each code goes into `_MESSAGES`."""
    rows = (
        Observation.objects.filter(
            status=ObservationStatus.REJECTED, processed_at__gt=since, processed_at__lte=now
        )
        .order_by("-processed_at")
        .values_list("lot__product_id", "test_id", "reasons")[:REASONS_READ]
    )
    counted: dict[tuple[int, int], Counter[str]] = defaultdict(Counter)
    latest: dict[str, str] = {}
    for product, test, reasons in rows:  # newest first: each code's message is its latest
        for reason in reasons or []:
            code = str(reason.get("code") or reason.get("message") or "unknown")
            counted[(product, test)][code] += 1
            latest.setdefault(code, str(reason.get("message") or code))
    _MESSAGES.update(latest)
    return counted


_MESSAGES: dict[str, str] = {}  # reason code -> its message, as last read


@dataclass(frozen=True)
class Summed:
    confirmed: int
    rejected: int  # dead letters included
    dead_letters: int
    reasons: Counter[str]


def _summed(entries: list[list[Any]]) -> Summed:
    """The counts over a window's entries [time, position, rejected, {code: n}, dead letters] (the
    last item is missing from entries written before dead letters were counted)."""
    reasons: Counter[str] = Counter()
    for entry in entries[1:]:
        reasons.update(entry[3])
    return Summed(
        confirmed=max(0, int(entries[-1][1]) - int(entries[0][1])),
        rejected=sum(int(entry[2]) for entry in entries[1:]),
        dead_letters=sum(int(entry[4]) for entry in entries[1:] if len(entry) > 4),
        reasons=reasons,
    )


def _dead_letters_taken(health: CharacteristicHealth, entry: list[Any]) -> None:
    """Add the dead letters counted since the last check to this check's entry, as rejected values
    under their (latest) reason."""
    new = max(0, health.dead_letters_total - health.dead_letters_counted)
    health.dead_letters_counted = health.dead_letters_total
    entry.append(new)
    if new:
        code = str(health.dead_letter_reason.get("code") or "dead_letter")
        _MESSAGES[code] = str(health.dead_letter_reason.get("message") or "kept as an MQTT dead letter")
        entry[2] += new
        entry[3][code] = entry[3].get(code, 0) + new


def _state(confirmed: int, rejected: int) -> str:
    total = confirmed + rejected
    share = 100 * rejected / total if total else 0.0
    enough = rejected >= settings.DATA_HEALTH_MIN_REJECTED
    rejecting = enough and share >= settings.DATA_HEALTH_REJECTED_PERCENT
    return HealthState.REJECTING if rejecting else HealthState.OK


@dataclass(frozen=True)
class Expected:
    """What the check knows of a characteristic besides its counts: whether its source is offline
    (a dead Sparkplug B node or device), and how long it may go without a value (its cadence)."""

    offline: bool = False
    cadence: datetime.timedelta | None = None


def _judged(
    health: CharacteristicHealth, entry: list[Any], now: datetime.datetime, expected: Expected
) -> str:
    """Add this check's entry to the window, recount it; the state it gives (not yet set):
    rejecting first, then offline, then stale."""
    start = (now - datetime.timedelta(seconds=settings.DATA_HEALTH_WINDOW_SECONDS)).isoformat()
    previous = health.positions[-1]
    if int(entry[1]) > int(previous[1]) or int(entry[2]):
        health.last_value_at = now  # a value arrived since the last check
    kept = [e for e in health.positions if e[0] >= start]
    entries = [*kept, entry] if kept else [health.positions[-1], entry]
    summed = _summed(entries)
    health.confirmed, health.rejected, counted = summed.confirmed, summed.rejected, summed.reasons
    health.dead_letters = summed.dead_letters
    health.positions, health.checked_at = entries, now
    began = datetime.datetime.fromisoformat(entries[0][0])
    health.window_seconds = round((now - began).total_seconds())
    # A code this process has not read a rejection of (a worker restarted since) keeps the message
    # the row has for it.
    known = {str(r.get("code")): str(r.get("message")) for r in health.reasons or [] if r.get("message")}
    health.reasons = [
        {"code": code, "message": _MESSAGES.get(code) or known.get(code) or code, "count": n}
        for code, n in counted.most_common(TOP_REASONS)
    ]
    state = _state(health.confirmed, health.rejected)
    if state != HealthState.OK:
        return state
    if expected.offline:
        return HealthState.OFFLINE
    quiet_since = health.last_value_at or health.since
    if expected.cadence is not None and now - quiet_since > expected.cadence:
        return HealthState.STALE
    return HealthState.OK


# The event a characteristic's subscribers and the plant get when it enters each unhealthy state.
ALARMS: dict[str, EventType] = {
    HealthState.REJECTING: EventType.DATA_REJECTED,
    HealthState.OFFLINE: EventType.SOURCE_OFFLINE,
    HealthState.STALE: EventType.DATA_STALE,
}


def _expected(characteristics: dict[int, Characteristic], offline: set[int]) -> dict[int, Expected]:
    """Per MQTT-fed characteristic: offline (`offline`: those whose Sparkplug B metric only dead
    nodes announced, as the MQTT bridge keeps it on their health rows) and its cadence (its
    sampling schedule's every N minutes, plus the grace time)."""
    fed = [c for c in characteristics.values() if c.data_source in MQTT_SOURCES]
    if not fed:
        return {}
    schedules = schedules_effective(fed)
    expected = {}
    for c in fed:
        schedule = schedules.get(c.pk)
        cadence = None
        if schedule is not None and schedule.kind == ScheduleKind.INTERVAL and schedule.every_minutes:
            cadence = datetime.timedelta(minutes=schedule.every_minutes + schedule.grace_minutes)
        expected[c.pk] = Expected(
            offline=c.data_source == DataSource.SPARKPLUG and c.pk in offline, cadence=cadence
        )
    return expected


def sources_offline_set(*, offline: Collection[int]) -> int:
    """Mark the Sparkplug B characteristics in `offline` as fed by a dead source, and every other
    one as not (the MQTT bridge calls this when nodes are born or die, and as it reloads); the next
    check raises `source.offline` or clears it. Returns how many rows changed. Two statements."""
    sparkplug = CharacteristicHealth.objects.filter(characteristic__data_source=DataSource.SPARKPLUG)
    changed = sparkplug.filter(pk__in=list(offline), source_offline=False).update(source_offline=True)
    rows = CharacteristicHealth.objects.filter(source_offline=True).exclude(pk__in=list(offline))
    return changed + rows.update(source_offline=False)


@dataclass(frozen=True)
class DeadLetters:
    """Dead letters meant for one characteristic, in one batch the MQTT bridge stored."""

    count: int
    code: str  # the latest one's reason
    message: str


def dead_letters_add(*, counts: Mapping[int, DeadLetters]) -> None:
    """Count dead letters meant for these characteristics (the MQTT bridge calls this as it stores
    them); the next check adds them to the rejected values. A characteristic not yet checked
    has no health row: its window starts at its first check. One statement per characteristic,
    in id order (as the check locks them)."""
    for pk, dead in sorted(counts.items()):
        CharacteristicHealth.objects.filter(pk=pk).update(
            dead_letters_total=F("dead_letters_total") + dead.count,
            dead_letter_reason={"code": dead.code, "message": dead.message},
        )


def data_health_check(*, now: datetime.datetime | None = None) -> HealthChecked:
    """Check every active characteristic's data health (see the module's docstring)."""
    now = now or timezone.now()
    characteristics = {
        c.pk: c
        for c in Characteristic.objects.filter(active=True).only(
            "pk", "product", "test", "data_source", "tag"
        )
    }
    positions = dict(
        SubgroupFeed.objects.filter(pk__in=list(characteristics)).values_list("pk", "last_position")
    )
    with transaction.atomic():
        held = {
            h.pk: h
            # In id order, as the MQTT bridge counts dead letters on them: never a deadlock.
            for h in CharacteristicHealth.objects.select_for_update()
            .filter(pk__in=list(characteristics))
            .order_by("pk")
        }
        expected = _expected(characteristics, {pk for pk, h in held.items() if h.source_offline})
        last = min((h.checked_at for h in held.values()), default=now)
        rejected = _rejected_since(last, now) if held else {}
        reasons = _reasons_since(last, now) if held else {}
        new: list[CharacteristicHealth] = []
        changed: list[CharacteristicHealth] = []
        events: list[Event] = []
        alarms: list[Event] = []  # to subscribers and to the plant too
        for pk, characteristic in characteristics.items():
            key = (characteristic.product_id, characteristic.test_id)
            entry = [now.isoformat(), positions.get(pk, 0), rejected.get(key, 0), dict(reasons.get(key, {}))]
            health = held.get(pk)
            if health is None:  # the first check: where the window starts, nothing to judge yet
                new.append(
                    CharacteristicHealth(
                        characteristic=characteristic,
                        since=now,
                        positions=[entry],
                        checked_at=now,
                        last_value_at=now,
                    )
                )
                continue
            _dead_letters_taken(health, entry)
            state, before = _judged(health, entry, now, expected.get(pk, Expected())), health.state
            if state == before == HealthState.OK:
                continue
            # A change, or the figures of one still rejecting: the pages showing it are told.
            groups = (f"characteristic.{pk}", f"product.{characteristic.product_id}")
            if state != before:
                health.state, health.since = state, now
                changed.append(health)
            data = health_data(health, characteristic)
            events.append(event(EventType.DATA_HEALTH_CHANGED, groups, **data))
            if state != before and state in ALARMS:
                alarms.append(event(ALARMS[state], groups, **data))
        rows_insert(model=CharacteristicHealth, rows=new)
        rows_update(model=CharacteristicHealth, rows=list(held.values()), fields=HEALTH_FIELDS)
        plant_messages_store(alarms)
        events_send_on_commit([*events, *alarms])
    return HealthChecked(checked=len(characteristics), changed=changed)

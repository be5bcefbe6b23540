"""Sampling schedules (issue #21, docs/alarms.md "Sampling schedules"): which samples are due, which
are overdue, and closing a missed one with a reason.

Beat runs `schedules_check` every SCHEDULE_CHECK_SECONDS. For every active characteristic entered
by people (data source `manual`) with a schedule (its own, else its test's), it opens the sample
the schedule asks for now, if not open already: every N minutes (from the plant's midnight, in
TIME_ZONE), once per shift (SHIFT_STARTS), once per working lot, or every N units (items) made. A
sample is taken when a sample of the characteristic is made after it fell due (in its lot, for a
schedule per lot). One still open `grace_minutes` after it fell due is overdue: `sample.overdue`
goes to the characteristic's subscribers, to the pages showing it, and to the plant over MQTT
(`spc/schedule/...`). It stays on the worklist until it is taken, or a person closes it as missed
with a reason code (audited). One no longer asked for (its schedule removed or switched off, the
characteristic switched off or fed by MQTT now) is cancelled by the next check, with why in its note
(`sample.cancelled` to the pages, and to the plant if it was overdue).

Characteristics fed by MQTT get no scheduled samples: their schedule is the cadence their data
health expects (data.stale).
"""

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from apps.audit.choices import AuditAction
from apps.audit.services import audit_fields, audit_record
from apps.config.choices import DataSource, ScheduleKind
from apps.config.models import Characteristic, SamplingSchedule
from apps.observations.choices import (
    LOT_WORKING,
    SCHEDULED_OPEN,
    MissedSampleReason,
    ScheduledSampleState,
)
from apps.observations.models import Item, Lot, Sample, ScheduledSample
from apps.observations.services.plant import plant_messages_store
from openspc.api import DomainConflict
from openspc.events import Event, EventType, event, events_send_on_commit
from openspc.rows import rows_update

CLOSE_FIELDS = ["state", "closed_by", "closed_at", "reason_code", "note"]


@dataclass(frozen=True)
class Slot:
    """A sample a schedule asks for: its key among the characteristic's, when it falls due."""

    key: str
    due_at: datetime.datetime
    lot_id: int | None = None


@dataclass(frozen=True)
class SchedulesChecked:
    opened: int
    taken: int
    overdue: list[ScheduledSample]
    cancelled: int = 0


def shift_starts() -> list[datetime.time]:
    """The plant's shift start times (SHIFT_STARTS, "06:00,14:00,22:00"), in order."""
    return sorted(datetime.time.fromisoformat(part.strip()) for part in settings.SHIFT_STARTS.split(","))


def _local(now: datetime.datetime) -> datetime.datetime:
    return now.astimezone(ZoneInfo(settings.TIME_ZONE))


def interval_start(now: datetime.datetime, minutes: int) -> datetime.datetime:
    """The start of the N-minute period `now` is in, counted from the plant's midnight (so every 90
    minutes reads 00:00, 01:30, 03:00, …; the day's last period may be shorter)."""
    local = _local(now)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = int((local - midnight).total_seconds() // 60)
    return midnight + datetime.timedelta(minutes=elapsed - elapsed % minutes)


def shift_start(now: datetime.datetime) -> datetime.datetime:
    """When the shift `now` is in began (the day before's last shift, before today's first)."""
    local = _local(now)
    starts = shift_starts()
    for day in (local.date(), local.date() - datetime.timedelta(days=1)):
        for start in reversed(starts):
            moment = datetime.datetime.combine(day, start, tzinfo=local.tzinfo)
            if moment <= local:
                return moment
    raise AssertionError("a shift starts every day")


def schedule_slots(
    schedule: SamplingSchedule, *, now: datetime.datetime, lots: Sequence[Lot] = (), units: int = 0
) -> list[Slot]:
    """The samples `schedule` asks for at `now`: the current period's (interval, shift), one per
    working lot (`lots`, of the characteristic's product), or the current block of units."""
    if schedule.kind == ScheduleKind.INTERVAL:
        start = interval_start(now, schedule.every_minutes or 1)
        return [Slot(f"interval:{start.isoformat()}", start)]
    if schedule.kind == ScheduleKind.SHIFT:
        start = shift_start(now)
        return [Slot(f"shift:{start.isoformat()}", start)]
    if schedule.kind == ScheduleKind.LOT:
        return [Slot(f"lot:{lot.pk}", lot.created_at, lot.pk) for lot in lots]
    block = units // (schedule.every_units or 1)
    return [Slot(f"units:{block}", now)] if block else []


def schedules_effective(characteristics: Iterable[Characteristic]) -> dict[int, SamplingSchedule]:
    """Each characteristic's active schedule: its own, else its test's."""
    characteristics = list(characteristics)
    own = {
        s.characteristic_id: s
        for s in SamplingSchedule.objects.filter(active=True, characteristic__in=characteristics)
    }
    of_test = {
        s.test_id: s
        for s in SamplingSchedule.objects.filter(active=True, test__in={c.test_id for c in characteristics})
    }
    found = {c.pk: own.get(c.pk) or of_test.get(c.test_id) for c in characteristics}
    return {pk: schedule for pk, schedule in found.items() if schedule is not None}


def _opened(now: datetime.datetime) -> list[ScheduledSample]:
    """The samples the schedules ask for now that are not there yet, unsaved."""
    characteristics = list(
        Characteristic.objects.filter(active=True, data_source=DataSource.MANUAL).only(
            "pk", "product", "test"
        )
    )
    schedules = schedules_effective(characteristics)
    products = {c.product_id for c in characteristics if c.pk in schedules}
    lots: dict[int, list[Lot]] = {}
    for lot in Lot.objects.filter(product__in=products, status__in=LOT_WORKING).only(
        "pk", "product", "created_at"
    ):
        lots.setdefault(lot.product_id, []).append(lot)
    needs_units = {
        c.product_id
        for c in characteristics
        if schedules.get(c.pk, None) and schedules[c.pk].kind == ScheduleKind.UNITS
    }
    units = dict(
        Item.objects.filter(lot__product__in=needs_units)
        .values_list("lot__product")
        .annotate(n=Count("id"))
        .order_by()
    ) if needs_units else {}  # fmt: skip
    wanted: list[ScheduledSample] = []
    for c in characteristics:
        schedule = schedules.get(c.pk)
        if schedule is None:
            continue
        slots = schedule_slots(
            schedule, now=now, lots=lots.get(c.product_id, []), units=units.get(c.product_id, 0)
        )
        grace = datetime.timedelta(minutes=schedule.grace_minutes)
        for slot in slots:
            # A schedule made mid-period asks for the period's sample from when it was made.
            due = max(slot.due_at, schedule.created_at)
            wanted.append(
                ScheduledSample(
                    characteristic_id=c.pk,
                    slot=slot.key,
                    lot_id=slot.lot_id,
                    due_at=due,
                    overdue_at=due + grace,
                )
            )
    if not wanted:
        return []
    have = set(
        ScheduledSample.objects.filter(
            characteristic__in={w.characteristic_id for w in wanted}, slot__in={w.slot for w in wanted}
        ).values_list("characteristic_id", "slot")
    )
    return [w for w in wanted if (w.characteristic_id, w.slot) not in have]


def _taken(open_samples: Sequence[ScheduledSample]) -> dict[int, datetime.datetime]:
    """Of the open samples, those a sample of their characteristic (in their lot, if per lot) was
    made for since they fell due: {scheduled sample id: when}. One query."""
    if not open_samples:
        return {}
    newest = Sample.objects.filter(
        characteristic=OuterRef("characteristic"), created_at__gte=OuterRef("due_at")
    )
    in_lot = newest.filter(lot=OuterRef("lot"))
    rows = ScheduledSample.objects.filter(pk__in=[s.pk for s in open_samples]).annotate(
        made=Subquery(newest.order_by("created_at").values("created_at")[:1]),
        made_in_lot=Subquery(in_lot.order_by("created_at").values("created_at")[:1]),
    )
    return {row.pk: made for row in rows if (made := row.made_in_lot if row.lot_id else row.made) is not None}


def scheduled_sample_data(sample: ScheduledSample) -> dict[str, Any]:
    c = sample.characteristic
    return {
        "id": sample.pk, "characteristic": sample.characteristic_id, "product": c.product_id,
        "test": c.test_id, "lot": sample.lot_id, "slot": sample.slot, "state": sample.state,
        "due_at": sample.due_at.isoformat(), "overdue_at": sample.overdue_at.isoformat(),
        "taken_at": sample.taken_at.isoformat() if sample.taken_at else None,
        "reason_code": sample.reason_code, "note": sample.note,
    }  # fmt: skip


def _groups(sample: ScheduledSample) -> tuple[str, ...]:
    groups = [f"characteristic.{sample.characteristic_id}", f"product.{sample.characteristic.product_id}"]
    if sample.lot_id:
        groups.append(f"lot.{sample.lot_id}")
    return tuple(groups)


def _told(samples: Iterable[ScheduledSample], name: EventType) -> list[Event]:
    return [event(name, _groups(sample), **scheduled_sample_data(sample)) for sample in samples]


def _unwanted(open_samples: Sequence[ScheduledSample]) -> dict[int, str]:
    """Of the open samples, those no schedule asks for any more: {scheduled sample id: why}."""
    characteristics = {s.characteristic_id: s.characteristic for s in open_samples}
    scheduled = schedules_effective(
        c for c in characteristics.values() if c.active and c.data_source == DataSource.MANUAL
    )
    why = {}
    for sample in open_samples:
        c = sample.characteristic
        if not c.active:
            why[sample.pk] = "No longer asked for: the characteristic was switched off."
        elif c.data_source != DataSource.MANUAL:
            why[sample.pk] = "No longer asked for: the characteristic's values come over MQTT now."
        elif c.pk not in scheduled:
            why[sample.pk] = "No longer asked for: its sampling schedule was removed or switched off."
    return why


def schedules_check(*, now: datetime.datetime | None = None) -> SchedulesChecked:
    """Open the samples now due, mark those taken, and raise those now overdue (module docstring)."""
    now = now or timezone.now()
    with transaction.atomic():
        opened = _opened(now)
        # Two checks at once (a slow one overlapping the next) open each sample once.
        ScheduledSample.objects.bulk_create(opened, ignore_conflicts=True)
        open_samples = list(
            ScheduledSample.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state__in=SCHEDULED_OPEN, due_at__lte=now)
            .select_related("characteristic")
            .order_by("pk")
        )
        taken_at = _taken(open_samples)
        unwanted = _unwanted([s for s in open_samples if s.pk not in taken_at])
        taken, overdue, late, cancelled, heard = [], [], [], [], []
        for sample in open_samples:
            if sample.pk in unwanted:
                if sample.state == ScheduledSampleState.OVERDUE:
                    heard.append(sample)  # the plant was told it is overdue: it is told it is cancelled
                sample.state, sample.closed_at = ScheduledSampleState.CANCELLED, now
                sample.note = unwanted[sample.pk]
                cancelled.append(sample)
            elif sample.pk in taken_at:
                if sample.state == ScheduledSampleState.OVERDUE:
                    late.append(sample)
                sample.state, sample.taken_at = ScheduledSampleState.TAKEN, taken_at[sample.pk]
                taken.append(sample)
            elif sample.state == ScheduledSampleState.DUE and sample.overdue_at <= now:
                sample.state = ScheduledSampleState.OVERDUE
                overdue.append(sample)
        rows_update(model=ScheduledSample, rows=[*taken, *overdue], fields=["state", "taken_at"])
        rows_update(model=ScheduledSample, rows=cancelled, fields=["state", "closed_at", "note"])
        events = [*_told(overdue, EventType.SAMPLE_OVERDUE), *_told(late, EventType.SAMPLE_TAKEN)]
        plant_messages_store([*events, *_told(heard, EventType.SAMPLE_CANCELLED)])
        events_send_on_commit([*events, *_told(cancelled, EventType.SAMPLE_CANCELLED)])
    return SchedulesChecked(opened=len(opened), taken=len(taken), overdue=overdue, cancelled=len(cancelled))


def scheduled_sample_close(
    *, sample: ScheduledSample, user: User, reason_code: str, note: str = ""
) -> ScheduledSample:
    """Close a due or overdue sample as missed: a reason code is required (MissedSampleReason),
    and a note with `other`. Audited."""
    if reason_code not in MissedSampleReason.values:
        raise ValidationError({"reason_code": f"Give one of: {', '.join(MissedSampleReason.values)}."})
    note = (note or "").strip()
    if reason_code == MissedSampleReason.OTHER and not note:
        raise ValidationError({"note": "Say in the note why the sample was not taken (reason 'other')."})
    with transaction.atomic():
        locked = (
            ScheduledSample.objects.select_for_update().select_related("characteristic").get(pk=sample.pk)
        )
        if locked.state not in SCHEDULED_OPEN:
            raise DomainConflict(
                f"Scheduled sample {locked.pk} is {locked.state}: only a due or overdue one is closed."
            )
        before = audit_fields(locked, CLOSE_FIELDS)
        was_overdue = locked.state == ScheduledSampleState.OVERDUE
        locked.state, locked.closed_by, locked.closed_at = ScheduledSampleState.MISSED, user, timezone.now()
        locked.reason_code, locked.note = reason_code, note
        locked.save(update_fields=CLOSE_FIELDS)
        events = _told([locked], EventType.SAMPLE_MISSED)
        if was_overdue:  # the plant was told it is overdue: it is told it is closed
            plant_messages_store(events)
        events_send_on_commit(events)
        audit_record(
            user=user, action=AuditAction.CLOSE_MISSED, instance=locked, before=before,
            after=audit_fields(locked, CLOSE_FIELDS), reason=MissedSampleReason(reason_code).label,
        )  # fmt: skip
    return locked

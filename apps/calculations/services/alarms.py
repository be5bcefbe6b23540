"""Violation events (issue #21, docs/alarms.md, ADR 0022): the violations of a continuing pattern
gathered into one event that grows, so a run of 30 points is one alarm, not 22, and a shift that
sets off rules 2, 5 and 6 at once is one alarm with those rules involved, not three.

A violation continues the latest event of its characteristic and chart part when its points
overlap the event's, or follow on from its last point while the event lasts, whatever its rule (the
event's `rules` are those involved; `rule` the one that started it); otherwise it starts a new
event. An event ends at the first sample judged after its last point that does not continue it
(the process returned). A pattern that overlaps an ended event's points takes it up again: rules 5
and 6 (m of n) can skip a sample in the middle of one special cause.

The calculation calls `events_gather` under the characteristic's ChartState row lock, with the
samples it judged in sequence order. The latest event of each chart part is kept on the
ChartState row (`events`: id, last point, ended), so a run with no violation and no event going
on reads and writes nothing more; the event rows are read (locked) only when a violation
continues one or an event ends.

An event's acknowledgement covers its points as it grows: a violation that continues an
acknowledged event is stored acknowledged, with the event's acknowledgement.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from apps.calculations.models import ChartState, Violation, ViolationEvent
from apps.config.choices import AlarmPriority
from apps.config.models import Characteristic
from apps.observations.models import Sample
from openspc.rows import rows_insert, rows_update

EVENT_FIELDS = [
    "points", "last_point", "violations_count", "rules", "priority", "updated_at", "ended_at",
    "ended_at_sequence",
]  # fmt: skip
# Most urgent first: an event's priority is that of the most urgent rule involved.
PRIORITY_RANK: dict[str, int] = {AlarmPriority.HIGH: 0, AlarmPriority.MEDIUM: 1, AlarmPriority.LOW: 2}
ACKNOWLEDGEMENT_COPIED = [
    "acknowledged_at", "acknowledged_by_id", "acknowledgement_reason_id", "acknowledgement_comment",
    "corrective_action",
]  # fmt: skip


def event_key(chart: str) -> str:
    """The key of a chart part's latest event on ChartState.events. Before events gathered every
    rule of a pattern, the key was "<chart>:<rule>": `_state_latest` reads those too."""
    return chart


def _state_latest(events: dict[str, list[Any]] | None) -> dict[str, "_Latest"]:
    """The latest event of each chart part, as ChartState.events keeps it (of per-rule keys, the
    one with the latest point)."""
    latest: dict[str, _Latest] = {}
    for key, (pk, last, ended) in (events or {}).items():
        chart = key.split(":", 1)[0]
        held = _Latest(id=int(pk), last=int(last), ended=bool(ended))
        kept = latest.get(chart)
        if kept is None or (held.last, held.id or 0) > (kept.last, kept.id or 0):
            latest[chart] = held
    return latest


def _most_urgent(priorities: Iterable[str]) -> str:
    return min(priorities, key=lambda p: PRIORITY_RANK.get(p, len(PRIORITY_RANK)))


@dataclass
class _Latest:
    """The latest event of one chart part, as the grouping sees it."""

    id: int | None  # None: started in this run, not stored yet
    last: int
    ended: bool
    points: set[int] = field(default_factory=set)  # new points of a stored event; all of a new one
    rules: set[int] = field(default_factory=set)  # the rules of this run's violations in it
    violations: list[Violation] = field(default_factory=list)  # this run's, in order
    ended_at_sequence: int | None = None
    changed: bool = False

    def as_state(self) -> list[object]:
        return [self.id, self.last, self.ended]


@dataclass
class Gathered:
    """What one run's grouping changed: events started (stored, with ids) and events that grew or
    ended (stored, updated). Their violations point at them."""

    started: list[ViolationEvent] = field(default_factory=list)
    changed: list[ViolationEvent] = field(default_factory=list)

    @property
    def events(self) -> list[ViolationEvent]:
        return [*self.started, *self.changed]


def _walk(
    state: ChartState, samples: Sequence[Sample], violations: Sequence[Violation]
) -> tuple[dict[str, _Latest], list[_Latest]]:
    """Assign this run's violations to events, in sequence order, and end the events a sample does
    not continue. Pure. Returns the latest event of each key, and every event the run changed
    (among them any that a later pattern of the same key replaced as the latest)."""
    latest = _state_latest(state.events)
    touched = list(latest.values())
    by_sample: dict[int, list[Violation]] = defaultdict(list)
    for violation in violations:
        by_sample[violation.sample.sequence].append(violation)
    for sample in samples:
        if sample.limits_version is None:  # not judged (no limits, or invalidated): ends nothing
            continue
        continued: set[str] = set()
        for violation in by_sample.get(sample.sequence, []):
            key = event_key(violation.chart)
            held = latest.get(key)
            first = min(violation.points)
            if held is None or first > held.last + (0 if held.ended else 1):
                held = latest[key] = _Latest(id=None, last=0, ended=False)
                touched.append(held)
            held.violations.append(violation)
            held.points.update(violation.points)
            held.rules.add(violation.rule)
            held.last = max(held.last, *violation.points)
            held.ended, held.ended_at_sequence, held.changed = False, None, True
            continued.add(key)
        for key, held in latest.items():
            if not held.ended and key not in continued and sample.sequence > held.last:
                held.ended, held.ended_at_sequence, held.changed = True, sample.sequence, True
    return latest, [held for held in touched if held.changed]


def _started(characteristic: Characteristic, held: _Latest) -> ViolationEvent:
    first = held.violations[0]
    now = timezone.now()
    rules = sorted(held.rules)
    return ViolationEvent(
        characteristic=characteristic, rule=first.rule, rules=rules, chart=first.chart,
        priority=_most_urgent(characteristic.rule_priority(rule) for rule in rules),
        first_point=min(held.points),
        last_point=held.last, points=sorted(held.points), violations_count=len(held.violations),
        lot_id=first.sample.lot_id, limits_version=first.limits_version,
        requires_acknowledgement=first.requires_acknowledgement, started_at=now, updated_at=now,
        ended_at=now if held.ended else None, ended_at_sequence=held.ended_at_sequence,
    )  # fmt: skip


def _grown(event: ViolationEvent, held: _Latest) -> ViolationEvent:
    now = timezone.now()
    if held.violations:
        event.rules = sorted(set(event.rules or [event.rule]) | held.rules)
        priorities = [event.priority, *(event.characteristic.rule_priority(rule) for rule in held.rules)]
        event.priority = _most_urgent(priorities)
        event.points = sorted(set(event.points) | held.points)
        event.last_point = max(event.last_point, held.last)
        event.violations_count += len(held.violations)
        event.updated_at = now
    if held.ended:
        event.ended_at = event.ended_at or now
        event.ended_at_sequence = held.ended_at_sequence or event.ended_at_sequence
    else:
        event.ended_at, event.ended_at_sequence = None, None
    for violation in held.violations:  # the event's acknowledgement covers its new points
        if event.acknowledged_at is not None and violation.acknowledged_at is None:
            for name in ACKNOWLEDGEMENT_COPIED:
                setattr(violation, name, getattr(event, name))
    return event


def events_gather(
    *, shares: Sequence[tuple[Characteristic, ChartState, Sequence[Sample], Sequence[Violation]]]
) -> Gathered:
    """Gather each characteristic's new violations (judged in its samples, in sequence order) into
    events, before the violations are inserted: sets each violation's event, stores new events,
    updates grown and ended ones, and sets each ChartState's `events` (the caller writes it)."""
    walked = [(c, state, *_walk(state, samples, violations)) for c, state, samples, violations in shares]
    stored_ids = sorted(held.id for *_, touched in walked for held in touched if held.id is not None)
    # Locked in id order (as the acknowledgement locks them): a grown event is read with the
    # acknowledgement it has now, and its violations stored with it.
    # With what their messages name (who acknowledged, why): no query per event after.
    locked = (
        ViolationEvent.objects.select_for_update(of=("self",))
        .select_related("acknowledged_by", "acknowledgement_reason")
        .filter(pk__in=stored_ids)
        .order_by("pk")
    )
    stored = {e.pk: e for e in locked} if stored_ids else {}
    gathered = Gathered()
    events: dict[int, ViolationEvent] = {}  # id(held) -> its event
    for characteristic, _, _, touched in walked:
        for held in touched:
            if held.id is not None and held.id in stored:
                stored[held.id].characteristic = characteristic  # the one in hand, not read again
                events[id(held)] = _grown(stored[held.id], held)
                gathered.changed.append(events[id(held)])
            elif held.violations:  # new, or its row is gone: started
                events[id(held)] = _started(characteristic, held)
                gathered.started.append(events[id(held)])
    rows_insert(model=ViolationEvent, rows=gathered.started)
    rows_update(model=ViolationEvent, rows=gathered.changed, fields=EVENT_FIELDS)
    for _, state, latest, touched in walked:
        for held in touched:
            event = events.get(id(held))
            held.id = event.pk if event is not None else None
            for violation in held.violations:
                violation.event = event
        state.events = {key: held.as_state() for key, held in latest.items() if held.id is not None}
    return gathered


def events_rebuild(*, characteristic_id: int) -> dict[str, list[object]]:
    """The latest standing event of each chart part, from the table (after a correction took the
    characteristic back): what ChartState.events holds."""
    latest = (
        ViolationEvent.objects.filter(
            characteristic_id=characteristic_id, withdrawn_at__isnull=True, chart=OuterRef("chart")
        )
        .order_by("-last_point", "-id")
        .values("pk")[:1]
    )
    rows = ViolationEvent.objects.filter(
        characteristic_id=characteristic_id, withdrawn_at__isnull=True, pk=Subquery(latest)
    ).values_list("pk", "chart", "last_point", "ended_at")
    return {event_key(chart): [pk, last, ended is not None] for pk, chart, last, ended in rows}

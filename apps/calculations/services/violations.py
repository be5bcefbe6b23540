"""The violation workflow: acknowledging violations and violation events (one, a batch, or all that
match a filter), audited and broadcast."""

from collections.abc import Sequence

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from apps.audit.choices import AuditAction
from apps.audit.services import audit_fields, audit_record
from apps.calculations.events import (
    characteristic_groups,
    violation_acknowledged_data,
    violation_event_events,
)
from apps.calculations.models import (
    AWAITING_ACKNOWLEDGEMENT,
    AcknowledgementReason,
    Violation,
    ViolationEvent,
)
from openspc.api import DomainConflict
from openspc.events import EventType, event, events_send_on_commit

ACKNOWLEDGEMENT_FIELDS = [
    "acknowledged_at", "acknowledged_by", "acknowledgement_reason", "acknowledgement_comment",
    "corrective_action",
]  # fmt: skip
MAX_BATCH = 500
MAX_MATCHING = 5000  # events one acknowledgement by filter takes; more asks for a narrower filter


class AlreadyAcknowledged(DomainConflict):
    """Violations were acknowledged before (409); nothing was changed. `ids` names them."""

    def __init__(self, message: str, ids: Sequence[int]) -> None:
        super().__init__(message)
        self.ids = list(ids)


def violation_acknowledge(
    *,
    violation: Violation,
    user: User,
    reason: AcknowledgementReason,
    comment: str = "",
    corrective_action: str = "",
    source: str = "api",
) -> Violation:
    """Acknowledge one violation (see violations_acknowledge)."""
    (acknowledged,) = violations_acknowledge(
        violations=[violation], user=user, reason=reason, comment=comment,
        corrective_action=corrective_action, source=source,
    )  # fmt: skip
    return acknowledged


def _already(locked: Sequence[Violation] | Sequence[ViolationEvent], noun: str = "Violation") -> None:
    """AlreadyAcknowledged naming those of `locked` (violations or events) acknowledged before."""
    done = [row for row in locked if row.acknowledged_at is not None]
    if not done:
        return
    if len(locked) == 1:
        first = done[0]
        assert first.acknowledged_at is not None
        message = f"{noun} {first.pk} was acknowledged already, at {first.acknowledged_at.isoformat()}."
    else:
        listed = ", ".join(str(row.pk) for row in done)
        message = f"{noun}s {listed} were acknowledged already; none of the {len(locked)} was acknowledged."
    raise AlreadyAcknowledged(message, [row.pk for row in done])


def violations_acknowledge(
    *,
    violations: Sequence[Violation],
    user: User,
    reason: AcknowledgementReason,
    comment: str = "",
    corrective_action: str = "",
    source: str = "api",
) -> list[Violation]:
    """Acknowledge violations as `user` (the authenticated user, never one named in a request), all
    or none: the reason, a comment and the corrective action are kept on each violation, one audit
    entry per violation records it, and `violation.acknowledged` goes to each one's characteristic,
    product and lot groups after commit. If any was acknowledged before, AlreadyAcknowledged names
    them and nothing changes. At most MAX_BATCH at once. Returned in the order given.

    An event that has ended and whose violations are now all acknowledged is acknowledged with
    them (the same reason; audited, `violation_event.acknowledged`): acknowledging each of its
    violations leaves nothing of it awaiting. One still running is not: its next points need one."""
    if not reason.active:
        raise ValidationError({"reason": f"Reason {reason.code} is no longer in use."})
    ids = list(dict.fromkeys(v.pk for v in violations))
    if len(ids) > MAX_BATCH:
        raise ValidationError({"ids": f"At most {MAX_BATCH} violations at once; got {len(ids)}."})
    with transaction.atomic():
        # Their events first, as acknowledging events and the calculation lock them (events, then
        # violations), in id order; then the violations, in id order: never a deadlock.
        of_them = set(Violation.objects.filter(pk__in=ids).values_list("event_id", flat=True)) - {None}
        event_ids = list(
            ViolationEvent.objects.select_for_update()
            .filter(pk__in=of_them)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        rows = (
            Violation.objects.select_for_update(of=("self",))
            .select_related("sample", "characteristic")
            .filter(pk__in=ids)
            .order_by("pk")
        )
        by_id = {v.pk: v for v in rows}
        missing = [str(pk) for pk in ids if pk not in by_id]
        if missing:
            raise ValidationError({"ids": f"No violation {', '.join(missing)}."})
        locked = [by_id[pk] for pk in ids]
        _already(locked)
        now = timezone.now()
        why = f"{reason.code}: {comment}" if comment else reason.code
        events = []
        for violation in locked:
            before = audit_fields(violation, ACKNOWLEDGEMENT_FIELDS)
            violation.acknowledged_at = now
            violation.acknowledged_by = user
            violation.acknowledgement_reason = reason
            violation.acknowledgement_comment = comment
            violation.corrective_action = corrective_action
            violation.save(update_fields=ACKNOWLEDGEMENT_FIELDS)
            audit_record(
                user=user, action=AuditAction.ACKNOWLEDGE, instance=violation, before=before,
                after=audit_fields(violation, ACKNOWLEDGEMENT_FIELDS), reason=why, source=source,
            )  # fmt: skip
            groups = characteristic_groups(violation.characteristic, violation.sample.lot_id)
            events.append(
                event(EventType.VIOLATION_ACKNOWLEDGED, groups, **violation_acknowledged_data(violation))
            )
        events_send_on_commit(events)
        done = ViolationEvent.objects.filter(
            pk__in=event_ids, acknowledged_at__isnull=True, ended_at__isnull=False
        )
        ended = list(done.exclude(violations__acknowledged_at__isnull=True).values_list("pk", flat=True))
        if ended:
            _events_acknowledge(
                ids=ended, user=user, reason=reason, comment=comment, corrective_action=corrective_action,
                source=source, strict=False, why=f"{why} (each of its violations acknowledged)",
            )  # fmt: skip
    return locked


def _events_acknowledge(
    *, ids: Sequence[int], user: User, reason: AcknowledgementReason, comment: str,
    corrective_action: str, source: str, strict: bool, why: str,
) -> list[ViolationEvent]:  # fmt: skip
    with transaction.atomic():
        # Locked in id order, as the calculation locks the events it grows: never a deadlock.
        rows = (
            ViolationEvent.objects.select_for_update(of=("self",))
            .select_related("characteristic")
            .filter(pk__in=ids)
            .order_by("pk")
        )
        by_id = {e.pk: e for e in rows}
        if strict:
            missing = [str(pk) for pk in ids if pk not in by_id]
            if missing:
                raise ValidationError({"ids": f"No event {', '.join(missing)}."})
            locked = [by_id[pk] for pk in ids]
            _already(locked, "Event")
        else:  # by filter: what another user acknowledged meanwhile is left as it is
            locked = [by_id[pk] for pk in ids if pk in by_id and by_id[pk].acknowledged_at is None]
        if not locked:
            return []
        now = timezone.now()
        for e in locked:
            before = audit_fields(e, ACKNOWLEDGEMENT_FIELDS)
            e.acknowledged_at, e.acknowledged_by, e.acknowledgement_reason = now, user, reason
            e.acknowledgement_comment, e.corrective_action = comment, corrective_action
            e.save(update_fields=ACKNOWLEDGEMENT_FIELDS)
            audit_record(
                user=user, action=AuditAction.ACKNOWLEDGE, instance=e, before=before,
                after={**audit_fields(e, ACKNOWLEDGEMENT_FIELDS), "points": e.points}, reason=why,
                source=source,
            )  # fmt: skip
        # Its violations so far; those it gathers from now on are stored acknowledged (alarms.py).
        Violation.objects.filter(event__in=locked, acknowledged_at__isnull=True).update(
            acknowledged_at=now, acknowledged_by=user, acknowledgement_reason=reason,
            acknowledgement_comment=comment, corrective_action=corrective_action,
        )  # fmt: skip
        events_send_on_commit(violation_event_events(locked, EventType.VIOLATION_EVENT_ACKNOWLEDGED))
    return locked


def violation_events_acknowledge(
    *,
    events: Sequence[ViolationEvent],
    user: User,
    reason: AcknowledgementReason,
    comment: str = "",
    corrective_action: str = "",
    source: str = "api",
) -> list[ViolationEvent]:
    """Acknowledge events as `user`, all or none (AlreadyAcknowledged names any acknowledged
    before): each event, every violation it gathered, and every one it gathers from now on. One
    audit entry per event; `violation_event.acknowledged` to its groups after commit."""
    if not reason.active:
        raise ValidationError({"reason": f"Reason {reason.code} is no longer in use."})
    ids = list(dict.fromkeys(e.pk for e in events))
    if len(ids) > MAX_BATCH:
        raise ValidationError({"ids": f"At most {MAX_BATCH} events at once; got {len(ids)}."})
    why = f"{reason.code}: {comment}" if comment else reason.code
    return _events_acknowledge(
        ids=ids, user=user, reason=reason, comment=comment, corrective_action=corrective_action,
        source=source, strict=True, why=why,
    )  # fmt: skip


def violation_events_acknowledge_matching(
    *,
    events: QuerySet[ViolationEvent],
    described: str,
    user: User,
    reason: AcknowledgementReason,
    comment: str = "",
    corrective_action: str = "",
    source: str = "api",
) -> list[ViolationEvent]:
    """Acknowledge, in one action, every event of `events` (a filtered list) that awaits
    acknowledgement, with one reason; `described` (the filter in words) goes into each audit
    entry's reason. Events acknowledged meanwhile by someone else are left as they are."""
    if not reason.active:
        raise ValidationError({"reason": f"Reason {reason.code} is no longer in use."})
    ids = list(
        events.filter(AWAITING_ACKNOWLEDGEMENT)
        .order_by("pk")
        .values_list("pk", flat=True)[: MAX_MATCHING + 1]
    )
    if len(ids) > MAX_MATCHING:
        narrow = "narrow the filter (by characteristic or time)"
        raise ValidationError({"filter": f"More than {MAX_MATCHING} events match; {narrow}."})
    why = f"{reason.code}: {comment}" if comment else reason.code
    why += f" (acknowledged by filter: {described})" if described else " (acknowledged by filter)"
    return _events_acknowledge(
        ids=ids, user=user, reason=reason, comment=comment, corrective_action=corrective_action,
        source=source, strict=False, why=why,
    )  # fmt: skip

"""Shelving a characteristic's alarms (ISA-18.2; docs/alarms.md "Shelving"): for a stated time and a
reason, its violation events notify nobody. They are still stored, shown and published to the
plant; the shelf expires by itself. Shelving and ending a shelf early are audited."""

import datetime
from collections.abc import Collection

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from apps.audit.choices import AuditAction
from apps.audit.services import audit_fields, audit_record
from apps.calculations.models import AlarmShelf
from apps.config.models import Characteristic
from openspc.api import DomainConflict

MAX_SHELF_MINUTES = 7 * 24 * 60  # a week; longer is not shelving but switching the rules off
SHELF_FIELDS = ["characteristic", "reason", "shelved_at", "until", "ended_at", "ended_by", "end_reason"]


def shelves_active(*, at: datetime.datetime | None = None) -> Q:
    """The shelves in force at `at` (now): started, not expired, not ended."""
    at = at or timezone.now()
    return Q(shelved_at__lte=at, until__gt=at) & (Q(ended_at__isnull=True) | Q(ended_at__gt=at))


def characteristics_shelved(*, ids: Collection[int], at: datetime.datetime | None = None) -> set[int]:
    """Which of these characteristics have their alarms shelved at `at` (now). One query."""
    if not ids:
        return set()
    shelves = AlarmShelf.objects.filter(shelves_active(at=at), characteristic_id__in=list(ids))
    return set(shelves.values_list("characteristic_id", flat=True))


def alarms_shelve(*, characteristic: Characteristic, user: User, minutes: int, reason: str) -> AlarmShelf:
    """Shelve the characteristic's alarms for `minutes` (1 to a week) with a reason. A characteristic
    already shelved is a conflict: end that shelf first (the two reasons would otherwise blur)."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why the alarms are shelved: it is kept in the audit trail."})
    if not 1 <= minutes <= MAX_SHELF_MINUTES:
        raise ValidationError(
            {"minutes": f"Shelve for 1 to {MAX_SHELF_MINUTES} minutes (a week); got {minutes}."}
        )
    with transaction.atomic():
        Characteristic.objects.select_for_update().filter(pk=characteristic.pk).first()  # one at a time
        now = timezone.now()
        current = AlarmShelf.objects.filter(shelves_active(at=now), characteristic=characteristic).first()
        if current is not None:
            raise DomainConflict(
                f"The alarms of {characteristic} are shelved already, until {current.until.isoformat()} "
                f"(shelf {current.pk}); end that shelf first."
            )
        shelf = AlarmShelf.objects.create(
            characteristic=characteristic, reason=reason, shelved_by=user, shelved_at=now,
            until=now + datetime.timedelta(minutes=minutes),
        )  # fmt: skip
        audit_record(
            user=user, action=AuditAction.CREATE, instance=shelf, after=audit_fields(shelf, SHELF_FIELDS),
            reason=reason, source="api",
        )  # fmt: skip
    return shelf


def shelf_end(*, shelf: AlarmShelf, user: User, reason: str) -> AlarmShelf:
    """End a shelf before it expires: the characteristic's alarms notify again from now."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why the shelf ends early: it is kept in the audit trail."})
    with transaction.atomic():
        locked = AlarmShelf.objects.select_for_update().get(pk=shelf.pk)
        now = timezone.now()
        if not locked.active_at(now):
            raise DomainConflict(f"Shelf {locked.pk} is not in force (it ended or expired).")
        before = audit_fields(locked, SHELF_FIELDS)
        locked.ended_at, locked.ended_by, locked.end_reason = now, user, reason
        locked.save(update_fields=["ended_at", "ended_by", "end_reason"])
        audit_record(
            user=user, action=AuditAction.UPDATE, instance=locked, before=before,
            after=audit_fields(locked, SHELF_FIELDS), reason=reason, source="api",
        )  # fmt: skip
    return locked

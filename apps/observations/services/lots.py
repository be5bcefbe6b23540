"""Writes of lots: opening one, and moving it along its statuses."""

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.audit.choices import AuditAction
from apps.audit.services import Actor, audit_change, audit_fields, audit_record
from apps.config.models import Product
from apps.observations.choices import LOT_TRANSITIONS, LOT_WORKING, LotStatus
from apps.observations.handoff import calculations_queue_on_commit
from apps.observations.models import Lot
from apps.observations.subgroups import subgroups_close_lot
from openspc.events import EventType, event, events_send_on_commit


def lot_validate(*, product: Product, number: str) -> str:
    """The lot number to store (trimmed), or a ValidationError saying why no such lot can open."""
    number = number.strip()
    if not number:
        raise ValidationError({"number": "Give the lot number."})
    if not product.active:
        raise ValidationError({"product": f"Product {product.code} is inactive and takes no new lots."})
    if Lot.objects.filter(product=product, number=number).exists():
        raise ValidationError({"number": f"Lot {number} of {product.code} exists."})
    return number


LOT_FIELDS = ("product", "number", "status")


@transaction.atomic
def lot_create(*, product: Product, number: str, user: User, actor: Actor | None = None) -> Lot:
    """Open a lot (audited: who, and through what, `actor`, the user by default)."""
    number = lot_validate(product=product, number=number)
    try:
        with transaction.atomic():
            lot = Lot.objects.create(product=product, number=number, created_by=user)
    except IntegrityError as exc:
        # Another request opened the same number between the check and the insert: the database
        # constraint (lot_number_unique_per_product) decides, and the answer is the check's. The
        # error's text names the constraint on PostgreSQL and only the columns on SQLite, so ask.
        if not Lot.objects.filter(product=product, number=number).exists():
            raise
        raise ValidationError({"number": f"Lot {number} of {product.code} exists."}) from exc
    after = audit_fields(lot, list(LOT_FIELDS))
    audit_change(actor=actor or Actor(user), instance=lot, before=None, after=after)
    return lot


def lot_status_validate(*, lot: Lot, status: str) -> None:
    if status not in LotStatus.values:
        raise ValidationError({"status": f"Unknown status '{status}'."})
    allowed = LOT_TRANSITIONS[lot.status]
    if status not in allowed:
        targets = ", ".join(sorted(allowed)) or "nothing (it is final)"
        raise ValidationError(
            {"status": f"Lot {lot.number} is {lot.status}; it can move to {targets}, not to {status}."}
        )


@transaction.atomic
def lot_status_set(
    *, lot: Lot, status: str, user: User | None = None, actor: Actor | None = None, reason: str = ""
) -> Lot:
    """Move a lot to another status along the allowed transitions (see choices.LOT_TRANSITIONS).
    Audited with the status before and after. A released or rejected lot is announced as
    `lot.disposition` after commit."""
    lot = Lot.objects.select_for_update(of=("self",)).select_related("product").get(pk=lot.pk)
    lot_status_validate(lot=lot, status=status)
    before = lot.status
    lot.status = status
    lot.save(update_fields=["status", "updated_at"])
    who = actor or Actor(user)
    audit_record(
        user=who.user, action=AuditAction.STATUS, instance=lot, before={"status": before},
        after={"status": status}, reason=reason, source=who.source,
    )  # fmt: skip
    if status not in LOT_WORKING:
        calculations_queue_on_commit(subgroups_close_lot(lot=lot))
        by_name = (user.get_full_name() or user.get_username()) if user is not None else None
        data = {
            "lot": lot.pk, "product": lot.product_id, "product_code": lot.product.code, "number": lot.number,
            "status": status, "by": user.pk if user is not None else None, "by_name": by_name,
        }  # fmt: skip
        events_send_on_commit(
            [event(EventType.LOT_DISPOSITION, (f"lot.{lot.pk}", f"product.{lot.product_id}"), **data)]
        )
    return lot

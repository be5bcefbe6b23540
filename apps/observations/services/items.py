"""Writes of items: adding them to a lot, choosing their test plans, handing them to testers, and
opening a lot with its items at once."""

import datetime
from collections import Counter
from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.choices import AuditAction
from apps.audit.services import SYSTEM, Actor, audit_record
from apps.config.choices import PlanStatus
from apps.config.models import PlanAssignment, Product, TestPlan
from apps.observations.choices import LOT_WORKING
from apps.observations.models import Item, Lot
from apps.observations.services.lots import lot_create
from openspc.roles import Role, has_role

MAX_ITEMS_PER_REQUEST = 5000


def _lot_require_working(lot: Lot, field_name: str = "lot") -> None:
    if lot.status not in LOT_WORKING:
        raise ValidationError(
            {field_name: f"Lot {lot.number} is {lot.get_status_display().lower()}; its items cannot change."}
        )


def _serials_numbered(count: int, taken: set[str]) -> list[str]:
    """`count` serials 0001, 0002, … skipping those the lot already has."""
    width = max(4, len(str(len(taken) + count)))
    serials: list[str] = []
    number = 0
    while len(serials) < count:
        number += 1
        serial = f"{number:0{width}d}"
        if serial not in taken:
            serials.append(serial)
    return serials


def _serials_clean(serials: Sequence[str], taken: set[str]) -> list[str]:
    cleaned = [serial.strip() for serial in serials]
    if any(not serial for serial in cleaned):
        raise ValidationError({"serials": "A serial is empty."})
    repeated = sorted(serial for serial, times in Counter(cleaned).items() if times > 1)
    if repeated:
        raise ValidationError({"serials": f"Listed more than once: {', '.join(repeated[:10])}."})
    existing = sorted(set(cleaned) & taken)
    if existing:
        raise ValidationError({"serials": f"The lot already has: {', '.join(existing[:10])}."})
    return cleaned


def _items_audited(
    *, action: AuditAction, items: Sequence[Item], after: dict[str, Any], actor: Actor
) -> None:
    """One entry for a request on many items, on the lot of the first (the items listed by serial,
    with their lot's number where they come from several)."""
    lots = {item.lot_id for item in items}
    named = [item.serial if len(lots) == 1 else f"{item.lot.number} / {item.serial}" for item in items]
    audit_record(
        user=actor.user, action=action, instance=items[0].lot, after={"items": named, **after},
        source=actor.source,
    )  # fmt: skip


@transaction.atomic
def items_create(
    *, lot: Lot, count: int | None = None, serials: Sequence[str] | None = None, actor: Actor = SYSTEM
) -> list[Item]:
    """Add items to a lot in bulk: `count` auto-numbered ones, or the given serials (one audit entry)."""
    if (count is None) == (serials is None):
        raise ValidationError("Give either count or serials, not both.", code="count_or_serials")
    # The lot row lock serialises additions to one lot, so auto-numbering cannot collide.
    lot = Lot.objects.select_for_update().get(pk=lot.pk)
    _lot_require_working(lot)
    taken = set(lot.items.values_list("serial", flat=True))
    if count is not None:
        if not 1 <= count <= MAX_ITEMS_PER_REQUEST:
            raise ValidationError({"count": f"Between 1 and {MAX_ITEMS_PER_REQUEST} items at a time."})
        chosen = _serials_numbered(count, taken)
    else:
        assert serials is not None
        if not 1 <= len(serials) <= MAX_ITEMS_PER_REQUEST:
            raise ValidationError({"serials": f"Between 1 and {MAX_ITEMS_PER_REQUEST} serials at a time."})
        chosen = _serials_clean(serials, taken)
    items = Item.objects.bulk_create(Item(lot=lot, serial=serial) for serial in chosen)
    _items_audited(action=AuditAction.ITEMS_ADDED, items=items, after={"count": len(items)}, actor=actor)
    return items


def _items_require_working(items: Sequence[Item]) -> None:
    if not items:
        raise ValidationError({"items": "Name at least one item."})
    for item in items:
        if item.lot.status not in LOT_WORKING:
            raise ValidationError(
                {
                    "items": f"Item {item.serial}: lot {item.lot.number} is {item.lot.status}; "
                    "its items cannot change."
                }
            )


def _plan_check(*, plan: TestPlan, product_ids: set[int], moment: datetime.datetime) -> None:
    label = f"{plan.code} v{plan.version}"
    if plan.status != PlanStatus.RELEASED:
        raise ValidationError({"plans": f"Test plan {label} is {plan.status}; only released plans apply."})
    effective = set(
        PlanAssignment.objects.effective_at(moment)
        .filter(plan=plan, product_id__in=product_ids)
        .values_list("product_id", flat=True)
    )
    missing = product_ids - effective
    if missing:
        codes = ", ".join(sorted(Product.objects.filter(pk__in=missing).values_list("code", flat=True)))
        raise ValidationError({"plans": f"Test plan {label} is not in effect for {codes} now."})


@transaction.atomic
def items_select_plans(
    *, items: Sequence[Item], plans: Sequence[TestPlan], actor: Actor = SYSTEM
) -> list[Item]:
    """Set which test plans apply to the items (replacing earlier choices; one audit entry).

    Only released plans assigned to each item's product and in effect now.
    """
    _items_require_working(items)
    if not plans:
        raise ValidationError({"plans": "Name at least one test plan."})
    product_ids = {item.lot.product_id for item in items}
    now = timezone.now()
    for plan in plans:
        _plan_check(plan=plan, product_ids=product_ids, moment=now)
    through = Item.plans.through
    item_ids = [item.pk for item in items]
    through.objects.filter(item_id__in=item_ids).delete()
    through.objects.bulk_create(
        through(item_id=item_id, testplan_id=plan.pk) for item_id in item_ids for plan in plans
    )
    chosen = [f"{plan.code} v{plan.version}" for plan in plans]
    _items_audited(action=AuditAction.PLANS_CHOSEN, items=items, after={"plans": chosen}, actor=actor)
    return list(items)


@transaction.atomic
def items_assign(*, items: Sequence[Item], tester: User | None, actor: Actor = SYSTEM) -> list[Item]:
    """Hand items to a tester (or take them back with tester=None; one audit entry)."""
    _items_require_working(items)
    if tester is not None and not (tester.is_active and has_role(tester, Role.TESTER)):
        raise ValidationError(
            {"tester": f"{tester.get_username()} is not an active user with the Tester role."}
        )
    assigned_at = timezone.now() if tester is not None else None
    Item.objects.filter(pk__in=[item.pk for item in items]).update(tester=tester, assigned_at=assigned_at)
    for item in items:
        item.tester, item.assigned_at = tester, assigned_at
    whom = (tester.get_full_name() or tester.get_username()) if tester is not None else None
    after = {"tester": whom, "tester_id": tester.pk if tester is not None else None}
    _items_audited(action=AuditAction.ASSIGNED, items=items, after=after, actor=actor)
    return list(items)


def lot_open(
    *,
    product: Product,
    number: str,
    plans: Sequence[TestPlan],
    user: User,
    count: int | None = None,
    serials: Sequence[str] | None = None,
    actor: Actor | None = None,
) -> Lot:
    """Open a lot with its items on the chosen test plans, all or nothing (the lots page's form).

    A ValidationError keyed by product, number, count, serials or plans leaves no row behind. Two
    leads opening the same lot number at once: the second gets the same words as the first check.
    """
    try:
        with transaction.atomic():
            who = actor or Actor(user)
            lot = lot_create(product=product, number=number, user=user, actor=who)
            items = items_create(lot=lot, count=count, serials=serials, actor=who)
            items_select_plans(items=items, plans=plans, actor=who)
    except IntegrityError:
        if Lot.objects.filter(product=product, number=number.strip()).exists():
            raise ValidationError({"number": f"Lot {number.strip()} of {product.code} exists."}) from None
        raise
    return lot

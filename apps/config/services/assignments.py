"""Plan assignment: a released plan assigned to a product for a period, with the characteristics
of its tests."""

import datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.services import SYSTEM, Actor, audit_fields
from apps.config.choices import ChartType, PlanStatus, TestKind
from apps.config.models import Characteristic, PlanAssignment, Product, Test, TestPlan
from apps.config.models.test_plans import moment_label
from apps.config.services.audited import audited


def _characteristic_defaults(test: Test) -> dict[str, Any]:
    if test.kind == TestKind.DEFECTIVES:
        return {"chart_type": ChartType.P}
    if test.kind == TestKind.DEFECTS:
        return {"chart_type": ChartType.U}
    return {"chart_type": ChartType.AUTO}


def characteristics_ensure(*, product: Product, plan: TestPlan) -> list[Characteristic]:
    """Make sure every test of the plan has a characteristic on the product (existing ones are kept)."""
    existing = {c.test_id: c for c in Characteristic.objects.filter(product=product, test__plans=plan)}
    created = [
        Characteristic(product=product, test=entry.test, **_characteristic_defaults(entry.test))
        for entry in plan.entries.select_related("test")
        if entry.test_id not in existing
    ]
    Characteristic.objects.bulk_create(created)
    return [*existing.values(), *created]


def plan_assignment_validate(
    *,
    product: Product,
    plan: TestPlan,
    effective_from: datetime.datetime,
    effective_to: datetime.datetime | None,
) -> None:
    if plan.status != PlanStatus.RELEASED:
        raise ValidationError(
            {"plan": f"Only released plans can be assigned; {plan.code} v{plan.version} is {plan.status}."}
        )
    if not product.active:
        raise ValidationError({"product": f"Product {product.code} is inactive."})
    _assignment_overlap_check(
        product=product, plan=plan, effective_from=effective_from, effective_to=effective_to
    )


def _assignment_overlap_check(
    *,
    product: Product,
    plan: TestPlan,
    effective_from: datetime.datetime,
    effective_to: datetime.datetime | None,
    exclude: PlanAssignment | None = None,
) -> None:
    """One version of a plan (by code) per product at any moment, so what testers are asked is clear.

    Periods are half-open, [from, to): one may end at the very moment the next begins."""
    if effective_to is not None and effective_to <= effective_from:
        raise ValidationError({"effective_to": "Must be after effective_from (the end is exclusive)."})
    overlapping = PlanAssignment.objects.filter(product=product, plan__code=plan.code).filter(
        Q(effective_to__isnull=True) | Q(effective_to__gt=effective_from)
    )
    if effective_to is not None:
        overlapping = overlapping.filter(effective_from__lt=effective_to)
    if exclude is not None:
        overlapping = overlapping.exclude(pk=exclude.pk)
    other = overlapping.select_related("plan").first()
    if other is not None:
        until = f"until {moment_label(other.effective_to)}" if other.effective_to else "with no end"
        field = "effective_to" if exclude is not None else "plan"
        raise ValidationError(
            {
                field: f"{other.plan.code} v{other.plan.version} is assigned to {product.code} from "
                f"{moment_label(other.effective_from)} {until}, which overlaps; end that assignment first."
            }
        )


@transaction.atomic
def plan_assign(
    *,
    product: Product,
    plan: TestPlan,
    effective_from: datetime.datetime | None = None,
    effective_to: datetime.datetime | None = None,
    user: User | None = None,
    actor: Actor | None = None,
) -> PlanAssignment:
    """Assign a released plan to a product from `effective_from` (default: now; an earlier moment
    is allowed, to cover measurements already taken), creating the characteristics of its tests."""
    effective_from = effective_from or timezone.now()
    # The product row lock serialises assignments to one product, so the overlap check holds.
    product = Product.objects.select_for_update().get(pk=product.pk)
    plan_assignment_validate(
        product=product, plan=plan, effective_from=effective_from, effective_to=effective_to
    )
    assignment = PlanAssignment.objects.create(
        product=product,
        plan=plan,
        effective_from=effective_from,
        effective_to=effective_to,
        assigned_by=user,
    )
    characteristics_ensure(product=product, plan=plan)
    audited(assignment, ASSIGNMENT_FIELDS, None, actor or Actor(user))
    return assignment


ASSIGNMENT_FIELDS = ("product", "plan", "effective_from", "effective_to")


def plan_assignment_end_validate(
    *, assignment: PlanAssignment, effective_to: datetime.datetime | None
) -> None:
    _assignment_overlap_check(
        product=assignment.product, plan=assignment.plan, effective_from=assignment.effective_from,
        effective_to=effective_to, exclude=assignment,
    )  # fmt: skip


@transaction.atomic
def plan_assignment_end(
    *, assignment: PlanAssignment, effective_to: datetime.datetime | None, actor: Actor = SYSTEM
) -> PlanAssignment:
    """Set (or clear) the end of an assignment (exclusive); it may not come to overlap another."""
    Product.objects.select_for_update().filter(pk=assignment.product_id).first()
    # Read back, as a form may hand over an instance it has already changed.
    assignment = PlanAssignment.objects.select_related("product", "plan").get(pk=assignment.pk)
    plan_assignment_end_validate(assignment=assignment, effective_to=effective_to)
    before = audit_fields(assignment, list(ASSIGNMENT_FIELDS))
    assignment.effective_to = effective_to
    assignment.save(update_fields=["effective_to"])
    audited(assignment, ASSIGNMENT_FIELDS, before, actor)
    return assignment

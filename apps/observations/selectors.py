"""Reads of the observation domain. Each runs a fixed number of queries, whatever the row count."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ValidationError
from django.db.models import (
    BooleanField,
    CharField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
)
from django.db.models.functions import Concat

from apps.config.choices import PlanStatus
from apps.config.models import Characteristic, PlanAssignment, Product, TestPlan, TestPlanEntry
from apps.observations.choices import LOT_WORKING, SCHEDULED_OPEN, ObservationStatus
from apps.observations.models import Item, Lot, Observation, ScheduledSample
from openspc.roles import Role


def lot_queryset() -> QuerySet[Lot]:
    # Ordered explicitly: Meta.ordering does not apply to a query with GROUP BY (the count).
    return (
        Lot.objects.select_related("product", "created_by")
        .annotate(item_count=Count("items"))
        .order_by("-created_at", "-id")
    )


def item_queryset(*, user: User | AnonymousUser) -> QuerySet[Item]:
    return (
        Item.objects.visible_to(user)
        .select_related("lot__product", "tester")
        .prefetch_related(Prefetch("plans", queryset=TestPlan.objects.order_by("code", "version")))
    )


def items_get(*, ids: list[int], field: str = "items") -> list[Item]:
    """The items with these ids, in the order given; a ValidationError names the ids that do not exist."""
    found = Item.objects.select_related("lot").in_bulk(ids)
    missing = [str(pk) for pk in dict.fromkeys(ids) if pk not in found]
    if missing:
        raise ValidationError({field: f"No item with id {', '.join(missing[:10])}."})
    return [found[pk] for pk in dict.fromkeys(ids)]


def plans_get(*, ids: list[int], field: str = "plans") -> list[TestPlan]:
    found = TestPlan.objects.in_bulk(ids)
    missing = [str(pk) for pk in dict.fromkeys(ids) if pk not in found]
    if missing:
        raise ValidationError({field: f"No test plan with id {', '.join(missing[:10])}."})
    return [found[pk] for pk in dict.fromkeys(ids)]


def tester_queryset() -> QuerySet[User]:
    """Who items can be handed to (what items_assign accepts): active users with the Tester role, by
    name. The lots page and GET /api/v1/testers/ list them."""
    return (
        User.objects.filter(is_active=True, groups__name=str(Role.TESTER))
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


# --- Verification (four eyes) -------------------------------------------------------------


def _plan_requires_verification() -> Exists:
    """One of the result's item's plans asks for verification of its test."""
    return Exists(
        TestPlanEntry.objects.filter(
            plan__items=OuterRef("item_id"), test=OuterRef("test_id"), requires_verification=True
        )
    )


def verification_needed() -> Q:
    """A filter of results: their test or a plan entry of their item requires verification."""
    return Q(test__requires_verification=True) | Q(_plan_requires_verification())


def verification_waiting() -> Q:
    """A filter of results: verification needed, confirmed, and not verified yet."""
    return verification_needed() & Q(status=ObservationStatus.CONFIRMED, verified_by__isnull=True)


def observations_with_verification(queryset: QuerySet[Observation]) -> QuerySet[Observation]:
    """Annotate `needs_verification` (its test or a plan entry of its item requires it) and
    `to_be_verified` (needs it, confirmed, and not verified yet). The lot review reuses it."""
    needs = Q(test__requires_verification=True) | _plan_requires_verification()
    return queryset.annotate(
        needs_verification=ExpressionWrapper(needs, output_field=BooleanField()),
        to_be_verified=ExpressionWrapper(
            needs & Q(status=ObservationStatus.CONFIRMED, verified_by__isnull=True),
            output_field=BooleanField(),
        ),
    )


def observation_needs_verification(observation: Observation) -> bool:
    """Whether the result's test, or a plan entry of its item, requires a second person's verification."""
    annotated = getattr(observation, "needs_verification", None)
    if annotated is not None:
        return bool(annotated)
    if observation.test.requires_verification:
        return True
    if observation.item_id is None:
        return False
    return TestPlanEntry.objects.filter(
        plan__items=observation.item_id, test_id=observation.test_id, requires_verification=True
    ).exists()


# --- A tester's worklist ----------------------------------------------------------------


def tester_items(*, user: User | AnonymousUser) -> QuerySet[Item]:
    """The user's assigned items in working lots that still have a test due, with what the
    worklist shows prefetched: plans with their tests, the product's plan assignments in effect
    now, the tests already confirmed, and the spec limits of the product's characteristics (for a
    warning as a value is typed)."""
    entries = TestPlanEntry.objects.select_related("test").order_by("position")
    spec = Characteristic.objects.only("id", "product_id", "test_id", "lsl", "usl")
    # Confirmed results make a test done; an invalidated one leaves it due, as a retest of it.
    results = Observation.objects.filter(
        status__in=[ObservationStatus.CONFIRMED, ObservationStatus.INVALIDATED]
    ).only("id", "item_id", "test_id", "status")
    return (
        Item.objects.filter(tester=user.pk, lot__status__in=LOT_WORKING)
        .with_tests_due()
        .select_related("lot__product")
        .prefetch_related(
            Prefetch("lot__product__characteristics", queryset=spec, to_attr="spec_limits"),
            Prefetch(
                "lot__product__plan_assignments",
                queryset=PlanAssignment.objects.effective_now().only("id", "product_id", "plan_id"),
                to_attr="assignments_now",
            ),
            Prefetch(
                "plans",
                queryset=TestPlan.objects.order_by("code", "version").prefetch_related(
                    Prefetch("entries", queryset=entries)
                ),
            ),
            Prefetch("observations", queryset=results.order_by("id"), to_attr="recorded_results"),
        )
        .order_by("lot__created_at", "lot_id", "serial")
    )


def item_tests_due(item: Item) -> list[dict[str, Any]]:
    """The tests of the item's plans in effect now for its product (released, assignment not ended)
    with no confirmed observation, each once, in plan order; one whose result was invalidated names
    it in `retest_of` (the newest: post the retest for it).

    Reads what tester_items prefetched; no query.
    """
    results = getattr(item, "recorded_results", [])
    done = {row.test_id for row in results if row.status == ObservationStatus.CONFIRMED}
    invalidated = {row.test_id: row.pk for row in results if row.status == ObservationStatus.INVALIDATED}
    spec = {c.test_id: c for c in getattr(item.lot.product, "spec_limits", [])}
    in_effect = {a.plan_id for a in getattr(item.lot.product, "assignments_now", [])}
    due: dict[int, dict[str, Any]] = {}
    for plan in item.plans.all():
        if plan.status != PlanStatus.RELEASED or plan.pk not in in_effect:
            continue
        for entry in plan.entries.all():
            if entry.test_id in done or entry.test_id in due:
                continue
            test = entry.test
            characteristic = spec.get(entry.test_id)
            due[entry.test_id] = {
                "test": test.pk,
                "code": test.code,
                "name": test.name,
                "kind": test.kind,
                "unit": test.unit,
                "decimals": test.decimals,
                "instructions": test.instructions,
                "replicates": entry.replicates,
                "plausible_min": test.plausible_min,
                "plausible_max": test.plausible_max,
                "lsl": characteristic.lsl if characteristic else None,
                "usl": characteristic.usl if characteristic else None,
                "plan": f"{plan.code} v{plan.version}",
                "retest_of": invalidated.get(entry.test_id),
            }
    return list(due.values())


# --- Lot progress ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LotProgress:
    """Where testing of a lot stands. A test is done on an item once it has a confirmed observation."""

    items: int
    items_assigned: int
    tests_total: int
    tests_done: int
    tests_due: int
    received: int
    confirmed: int
    rejected: int


def lot_progress(*, lot: Lot) -> LotProgress:
    """Where testing of one lot stands. Four queries."""
    return lots_progress(lots=[lot])[lot.pk]


def _pairs(item: str, test: str) -> Concat:
    """An (item, test) pair as one value, to count distinct pairs per lot."""
    return Concat(F(item), Value(":"), F(test), output_field=CharField())


def lots_progress(*, lots: Sequence[Lot]) -> dict[int, LotProgress]:
    """Where testing of each lot stands, by lot id. Four queries, however many lots."""
    ids = [lot.pk for lot in lots]
    items: dict[int, tuple[int, int]] = {
        lot_id: (total, assigned)
        for lot_id, total, assigned in Item.objects.filter(lot__in=ids)
        .values("lot")
        .annotate(total=Count("id"), assigned=Count("tester"))
        .values_list("lot", "total", "assigned")
        .order_by()
    }
    # One (item, test) pair per test an item's plans ask for; a test in two of its plans counts once.
    totals = dict(
        TestPlanEntry.objects.filter(plan__items__lot__in=ids)
        .values("plan__items__lot")
        .annotate(n=Count(_pairs("plan__items", "test"), distinct=True))
        .values_list("plan__items__lot", "n")
        .order_by()
    )
    done = dict(
        Observation.objects.filter(
            lot__in=ids, status=ObservationStatus.CONFIRMED, item__plans__entries__test=F("test")
        )
        .values("lot")
        .annotate(n=Count(_pairs("item", "test"), distinct=True))
        .values_list("lot", "n")
        .order_by()
    )
    by_status: dict[int, dict[str, int]] = {}
    for lot_id, status, n in (
        Observation.objects.filter(lot__in=ids)
        .values("lot", "status")
        .annotate(n=Count("id"))
        .values_list("lot", "status", "n")
        .order_by()
    ):
        by_status.setdefault(lot_id, {})[status] = n
    progress = {}
    for lot_id in ids:
        counts = by_status.get(lot_id, {})
        total, finished = totals.get(lot_id, 0), done.get(lot_id, 0)
        item_count, assigned = items.get(lot_id, (0, 0))
        progress[lot_id] = LotProgress(
            items=item_count,
            items_assigned=assigned,
            tests_total=total,
            tests_done=finished,
            tests_due=total - finished,
            received=counts.get(ObservationStatus.RECEIVED, 0),
            confirmed=counts.get(ObservationStatus.CONFIRMED, 0),
            rejected=counts.get(ObservationStatus.REJECTED, 0),
        )
    return progress


def scheduled_samples_visible(*, user: User | AnonymousUser) -> QuerySet[ScheduledSample]:
    """The scheduled samples a user may read: those of the characteristics they read, and for a
    tester those of the products they have items of (their worklist), oldest due first."""
    theirs = Product.objects.filter(lots__items__tester_id=user.pk).values("pk")
    return ScheduledSample.objects.filter(
        Q(characteristic__in=Characteristic.objects.visible_to(user)) | Q(characteristic__product__in=theirs)
    ).order_by("due_at", "pk")


def scheduled_samples_open(*, user: User | AnonymousUser) -> QuerySet[ScheduledSample]:
    """The samples still to take (due or overdue) that the user may read, with what names them."""
    return (
        scheduled_samples_visible(user=user)
        .filter(state__in=SCHEDULED_OPEN)
        .select_related("characteristic__product", "characteristic__test", "lot")
    )

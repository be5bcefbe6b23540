"""Reads of the configuration domain."""

import datetime
from dataclasses import dataclass, field

from django.db.models import Prefetch, QuerySet

from apps.config.models import Characteristic, ControlLimits, PlanAssignment, Product, TestPlanEntry


def current_limits_prefetch(to_attr: str = "limit_versions", lookup: str = "limits") -> Prefetch:
    """Limit versions, newest first, as `to_attr` on each characteristic (`lookup` reaches them
    from another model, e.g. "characteristic__limits")."""
    versions = ControlLimits.objects.select_related("set_by").order_by("-version")
    return Prefetch(lookup, queryset=versions, to_attr=to_attr)


def product_config_queryset() -> QuerySet[Product]:
    """Products with everything the Operations Lead reads: plans, tests, characteristics, limits."""
    entries = TestPlanEntry.objects.select_related("test").order_by("position")
    assignments = PlanAssignment.objects.select_related("plan").prefetch_related(
        Prefetch("plan__entries", queryset=entries)
    )
    characteristics = Characteristic.objects.select_related("test").prefetch_related(
        current_limits_prefetch()
    )
    return Product.objects.prefetch_related(
        Prefetch("plan_assignments", queryset=assignments),
        Prefetch("characteristics", queryset=characteristics),
    )


# --- A snapshot of one product's configuration, for confirming observations ---------


@dataclass(frozen=True)
class TestInfo:
    id: int
    code: str
    kind: str
    plausible_min: float | None
    plausible_max: float | None


@dataclass(frozen=True)
class PlanTest:
    """One test as one assigned plan asks for it."""

    plan_id: int
    plan_label: str
    plan_status: str
    test_id: int
    replicates: int
    effective_from: datetime.date
    effective_to: datetime.date | None

    def effective_on(self, day: datetime.date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


@dataclass(frozen=True)
class ProductConfig:
    """Everything observation_confirm needs about one product, loaded in four queries."""

    product_id: int
    product_code: str
    active: bool
    tests: dict[int, TestInfo] = field(default_factory=dict)
    plan_tests: tuple[PlanTest, ...] = ()
    characteristic_ids: dict[int, int] = field(default_factory=dict)  # test id -> characteristic id


def product_config_load(*, product_id: int) -> ProductConfig:
    product = Product.objects.get(pk=product_id)
    assignments = PlanAssignment.objects.filter(product_id=product_id).select_related("plan")
    entries = TestPlanEntry.objects.filter(plan__assignments__product_id=product_id).select_related("test")
    by_plan: dict[int, list[TestPlanEntry]] = {}
    tests: dict[int, TestInfo] = {}
    for entry in entries.distinct():
        by_plan.setdefault(entry.plan_id, []).append(entry)
        t = entry.test
        tests[t.pk] = TestInfo(t.pk, t.code, t.kind, t.plausible_min, t.plausible_max)
    plan_tests = tuple(
        PlanTest(
            plan_id=a.plan_id,
            plan_label=f"{a.plan.code} v{a.plan.version}",
            plan_status=a.plan.status,
            test_id=entry.test_id,
            replicates=entry.replicates,
            effective_from=a.effective_from,
            effective_to=a.effective_to,
        )
        for a in assignments
        for entry in by_plan.get(a.plan_id, [])
    )
    characteristic_ids = dict(
        Characteristic.objects.filter(product_id=product_id).values_list("test_id", "id")
    )
    return ProductConfig(product.pk, product.code, product.active, tests, plan_tests, characteristic_ids)

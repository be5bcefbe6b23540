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
    effective_from: datetime.datetime
    effective_to: datetime.datetime | None

    def effective_at(self, moment: datetime.datetime) -> bool:
        """In the half-open period [effective_from, effective_to)."""
        return self.effective_from <= moment and (self.effective_to is None or moment < self.effective_to)


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
    """Four queries of plain values: the observations.in worker loads this for every batch, and
    model instances cost more to build than the queries take."""
    code, active = Product.objects.values_list("code", "active").get(pk=product_id)
    assignments = list(
        PlanAssignment.objects.filter(product_id=product_id).values_list(
            "plan_id", "plan__code", "plan__version", "plan__status", "effective_from", "effective_to"
        )
    )
    entries = (
        TestPlanEntry.objects.filter(plan_id__in={a[0] for a in assignments})
        .order_by("plan_id", "position")
        .values_list(
            "plan_id",
            "test_id",
            "replicates",
            "test__code",
            "test__kind",
            "test__plausible_min",
            "test__plausible_max",
        )
    )
    by_plan: dict[int, list[tuple[int, int]]] = {}
    tests: dict[int, TestInfo] = {}
    for plan_id, test_id, replicates, test_code, kind, plausible_min, plausible_max in entries:
        by_plan.setdefault(plan_id, []).append((test_id, replicates))
        tests[test_id] = TestInfo(test_id, test_code, kind, plausible_min, plausible_max)
    plan_tests = tuple(
        PlanTest(
            plan_id=plan_id,
            plan_label=f"{plan_code} v{version}",
            plan_status=plan_status,
            test_id=test_id,
            replicates=replicates,
            effective_from=effective_from,
            effective_to=effective_to,
        )
        for plan_id, plan_code, version, plan_status, effective_from, effective_to in assignments
        for test_id, replicates in by_plan.get(plan_id, [])
    )
    characteristic_ids = dict(
        Characteristic.objects.filter(product_id=product_id).order_by().values_list("test_id", "id")
    )
    return ProductConfig(product_id, code, active, tests, plan_tests, characteristic_ids)

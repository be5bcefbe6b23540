"""Reads of the configuration domain."""

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery

from apps.config.cached import cached_many, cached_one
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
    """Everything observation_confirm needs about one product, loaded in two queries."""

    product_id: int
    product_code: str
    active: bool
    tests: dict[int, TestInfo] = field(default_factory=dict)
    plan_tests: tuple[PlanTest, ...] = ()
    characteristic_ids: dict[int, int] = field(default_factory=dict)  # test id -> characteristic id
    # characteristic id -> (LSL, USL): the out-of-spec check of confirmed manual results
    spec_limits: dict[int, tuple[float | None, float | None]] = field(default_factory=dict)
    # characteristic id -> its spec warning band (a value this close inside a limit is a warning)
    spec_warnings: dict[int, float] = field(default_factory=dict)


def product_config_load(*, product_id: int) -> ProductConfig:
    """Two queries of plain values, the product with its characteristics and its assignments with
    their plans' tests (each a LEFT JOIN, one row per pair): the observations.in worker loads this
    for every batch, and model instances cost more to build than the queries take."""
    products = list(
        Product.objects.filter(pk=product_id)
        .order_by()
        .values_list(
            "code", "active", "characteristics__test_id", "characteristics__id",
            "characteristics__lsl", "characteristics__usl", "characteristics__spec_warning_margin",
        )
    )  # fmt: skip
    if not products:
        raise Product.DoesNotExist("Product matching query does not exist.")
    code, active = products[0][:2]
    characteristic_ids = {test_id: pk for _, _, test_id, pk, *_ in products if pk is not None}
    spec_limits = {pk: (lsl, usl) for _, _, _, pk, lsl, usl, _ in products if pk is not None}
    spec_warnings = {pk: margin for _, _, _, pk, _, _, margin in products if pk is not None and margin}
    # Assignments in their model's order (product, plan, newest first), each plan's tests by position
    # (a plan without tests: one row of nulls).
    pairs = (
        PlanAssignment.objects.filter(product_id=product_id)
        .order_by("plan", "-effective_from", "pk", "plan__entries__position")
        .values_list(
            "plan_id", "plan__code", "plan__version", "plan__status", "effective_from", "effective_to",
            "plan__entries__test_id", "plan__entries__replicates", "plan__entries__test__code",
            "plan__entries__test__kind", "plan__entries__test__plausible_min",
            "plan__entries__test__plausible_max",
        )
    )  # fmt: skip
    tests: dict[int, TestInfo] = {}
    plan_tests: list[PlanTest] = []
    for pair in pairs:
        plan_id, plan_code, version, plan_status, effective_from, effective_to, test_id, replicates = pair[:8]
        if test_id is None:
            continue
        tests[test_id] = TestInfo(test_id, *pair[8:])
        plan_tests.append(
            PlanTest(
                plan_id=plan_id,
                plan_label=f"{plan_code} v{version}",
                plan_status=plan_status,
                test_id=test_id,
                replicates=replicates,
                effective_from=effective_from,
                effective_to=effective_to,
            )
        )
    return ProductConfig(
        product_id, code, active, tests, tuple(plan_tests), characteristic_ids, spec_limits, spec_warnings
    )


# --- Kept between requests (apps.config.cached): read-only, for the pipeline's hot paths ------


def _characteristics_load(ids: Sequence[int]) -> dict[int, Characteristic]:
    return Characteristic.objects.select_related("product", "test").in_bulk(list(ids))


def characteristics_kept(ids: Sequence[int]) -> dict[int, Characteristic]:
    """The characteristics of these ids that exist, with their product and test."""
    found = cached_many("characteristic", ids, _characteristics_load)
    return {pk: characteristic for pk, characteristic in found.items() if characteristic is not None}


def characteristic_kept(pk: int) -> Characteristic | None:
    return cached_one("characteristic", pk, _characteristics_load)


def _limits_current_load(characteristic_ids: Sequence[int]) -> dict[int, ControlLimits]:
    newest = ControlLimits.objects.filter(characteristic_id=OuterRef("characteristic_id"))
    newest = newest.order_by("-version")
    rows = ControlLimits.objects.filter(
        characteristic_id__in=list(characteristic_ids), pk=Subquery(newest.values("pk")[:1])
    )
    return {limits.characteristic_id: limits for limits in rows}


def limits_current_kept(characteristic_ids: Sequence[int]) -> dict[int, ControlLimits]:
    """The current (highest) control limits version of each characteristic that has limits."""
    found = cached_many("limits", characteristic_ids, _limits_current_load)
    return {pk: limits for pk, limits in found.items() if limits is not None}


def _product_configs_load(product_ids: Sequence[int]) -> dict[int, ProductConfig]:
    return {pk: product_config_load(product_id=pk) for pk in product_ids}


def product_config(*, product_id: int) -> ProductConfig:
    """product_config_load, kept between requests."""
    config = cached_one("product", product_id, _product_configs_load)
    assert config is not None  # product_config_load raises for a product that does not exist
    return config

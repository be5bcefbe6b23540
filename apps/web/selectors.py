"""Reads for the pages: the lot pages, the worklist, the list pages' filters and the review matrix,
in as few queries as a page allows (the overview's cards: apps.web.overview)."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Q, QuerySet

from apps.audit.models import AuditEntry
from apps.calculations.choices import Disposition
from apps.calculations.models import LotStatistics, Violation
from apps.config.choices import PlanStatus
from apps.config.models import (
    Characteristic,
    PlanAssignment,
    Product,
    Test,
    TestPlan,
    TestPlanEntry,
)
from apps.observations.choices import LOT_WORKING, ObservationStatus
from apps.observations.models import Item, Lot, Observation
from apps.observations.selectors import (
    LotProgress,
    item_queryset,
    lot_queryset,
    lots_progress,
    tester_items,
    verification_needed,
    verification_waiting,
)
from apps.records.choices import VERIFY_PERMISSION
from apps.records.selectors import Cell, LotReview, Row
from apps.subscriptions.choices import SubscriptionEvent, SubscriptionScope
from apps.subscriptions.services import SCOPE_KINDS


def characteristic_decimals(*, characteristic: Characteristic) -> int:
    """Decimal places to show: the characteristic's own, else its test's."""
    if characteristic.decimals is not None:
        return characteristic.decimals
    return characteristic.test.decimals


def number_format(value: float | None, *, decimals: int, unit: str = "") -> str:
    """A value as the pages show it (static/js/overview.js formats live values the same way)."""
    if value is None:
        return "—"
    text = f"{value:.{decimals}f}"
    return f"{text} {unit}" if unit else text


def out_of_spec(value: float | None, *, lsl: float | None, usl: float | None) -> bool:
    if value is None:
        return False
    return (lsl is not None and value < lsl) or (usl is not None and value > usl)


# --- Lots (the operations pages) -----------------------------------------------------------------


@dataclass(frozen=True)
class LotRow:
    """One lot on the lots page, with where its testing stands (the numbers of lot_progress)."""

    lot: Lot
    progress: LotProgress

    @property
    def percent_done(self) -> int:
        total = self.progress.tests_total
        return round(100 * self.progress.tests_done / total) if total else 0


def lots_list(*, product: int | None = None, status: str = "") -> QuerySet[Lot]:
    """The lots, newest first, optionally of one product and in one status."""
    lots = lot_queryset()
    if product is not None:
        lots = lots.filter(product=product)
    if status:
        lots = lots.filter(status=status)
    return lots


def lots_rows(*, lots: Sequence[Lot]) -> list[LotRow]:
    """The lots with their progress (observations' lots_progress). Four queries."""
    progress = lots_progress(lots=lots)
    return [LotRow(lot=lot, progress=progress[lot.pk]) for lot in lots]


def lot_products() -> QuerySet[Product]:
    """Products for the lots filter: those with a lot, or active (a new lot may come)."""
    return Product.objects.filter(Q(active=True) | Q(lots__isnull=False)).distinct().order_by("code")


DISPOSITION_ICONS = {
    Disposition.PENDING: "–",
    Disposition.RELEASE: "✓",
    Disposition.REVIEW: "⚠",
    Disposition.REJECT: "✕",
}
DISPOSITION_LABELS = {
    Disposition.PENDING: "No values yet",
    Disposition.RELEASE: "Release",
    Disposition.REVIEW: "Review: Cpk below 1.33",
    Disposition.REJECT: "Reject: value out of spec",
}


@dataclass(frozen=True)
class LotTestRow:
    """One test of a lot: its statistics (None before the first confirmed value) and how to show them."""

    test: Test
    decimals: int
    statistics: LotStatistics | None

    @property
    def disposition(self) -> str:
        return self.statistics.disposition if self.statistics else Disposition.PENDING

    @property
    def disposition_label(self) -> str:
        return DISPOSITION_LABELS[Disposition(self.disposition)]

    @property
    def disposition_icon(self) -> str:
        return DISPOSITION_ICONS[Disposition(self.disposition)]

    def _number(self, name: str) -> str:
        value = getattr(self.statistics, name) if self.statistics else None
        return number_format(value, decimals=self.decimals, unit=self.test.unit)

    @property
    def mean_text(self) -> str:
        return self._number("mean")

    @property
    def sd_text(self) -> str:
        return self._number("sd")

    @property
    def cpk_text(self) -> str:
        return number_format(self.statistics.cpk if self.statistics else None, decimals=2)


def lot_tests(*, lot: Lot) -> list[LotTestRow]:
    """Every test of the lot's plans, and any other test with statistics in the lot, in code order,
    each with the lot's statistics and its characteristic's decimals. Three queries."""
    statistics = {s.test_id: s for s in LotStatistics.objects.filter(lot=lot)}
    tests = Test.objects.filter(
        Q(pk__in=statistics) | Q(pk__in=TestPlanEntry.objects.filter(plan__items__lot=lot).values("test"))
    ).order_by("code")
    decimals: dict[int, int] = {
        test_id: places
        for test_id, places in Characteristic.objects.filter(product=lot.product_id).values_list(
            "test", "decimals"
        )
        if places is not None
    }
    return [
        LotTestRow(
            test=test, decimals=decimals.get(test.pk, test.decimals), statistics=statistics.get(test.pk)
        )
        for test in tests
    ]


def lot_items(*, lot: Lot, user: User | AnonymousUser) -> QuerySet[Item]:
    """The lot's items with their plans and tester, by serial."""
    return item_queryset(user=user).filter(lot=lot).order_by("serial")


@dataclass(frozen=True)
class PlanChoice:
    """A released plan a new lot's items may take, and the products it applies to now."""

    plan: TestPlan
    product_ids: list[int]


def lot_plan_choices() -> list[PlanChoice]:
    """Released plans assigned to an active product and in effect now (what items_select_plans
    accepts), each with those products. One query."""
    products: dict[int, list[int]] = {}
    plans: dict[int, TestPlan] = {}
    assignments = (
        PlanAssignment.objects.effective_now()
        .filter(plan__status=PlanStatus.RELEASED, product__active=True)
        .select_related("plan")
        .order_by("plan__code", "-plan__version", "product_id")
    )
    for assignment in assignments:
        plans.setdefault(assignment.plan_id, assignment.plan)
        products.setdefault(assignment.plan_id, []).append(assignment.product_id)
    return [PlanChoice(plan=plan, product_ids=products[pk]) for pk, plan in plans.items()]


def worklist_has_work(*, user: User | AnonymousUser) -> bool:
    """Whether the user has an assigned item with a test still due (what GET /api/v1/me/items/ lists)."""
    return tester_items(user=user).exists()


# A tester verifies results of others (issue #18) on the lot page, which their role does not read
# otherwise: it opens to them for a lot being worked on (open, in testing) with results that need
# a second person's verification, and their worklist links to those lots.


def _verification_results(lot: Lot | None = None) -> QuerySet[Observation]:
    rows = Observation.objects.filter(lot__status__in=LOT_WORKING, status=ObservationStatus.CONFIRMED)
    if lot is not None:
        rows = rows.filter(lot=lot)
    return rows.filter(verification_needed())


def lot_open_to_verifier(*, lot: Lot, user: User | AnonymousUser) -> bool:
    """Whether a user with the verify right but not the right to read lots may open the lot's page."""
    return user.has_perm(VERIFY_PERMISSION) and _verification_results(lot).exists()


@dataclass(frozen=True)
class LotToVerify:
    """A lot being worked on with results waiting for a second person's verification."""

    lot: int
    number: str
    product: str
    waiting: int  # results not verified yet
    yours: int  # of them, entered by the user (another person must verify those)


def lots_to_verify(*, user: User | AnonymousUser) -> list[LotToVerify]:
    """For a user with the verify right: the working lots with results to verify, by lot number.
    One query."""
    if not user.has_perm(VERIFY_PERMISSION):
        return []
    rows = (
        _verification_results()
        .filter(verification_waiting())
        .values("lot", "lot__number", "lot__product__code")
        .annotate(waiting=Count("pk"), yours=Count("pk", filter=Q(user=user.pk)))
        .order_by("lot__number", "lot")
    )
    return [
        LotToVerify(
            lot=row["lot"],
            number=row["lot__number"],
            product=row["lot__product__code"],
            waiting=row["waiting"],
            yours=row["yours"],
        )
        for row in rows
    ]


# --- Violations and audit log pages ---------------------------------------------------------------


def filter_characteristics(*, user: User | AnonymousUser) -> list[Characteristic]:
    """The characteristics the user may read, for the violations filters and to name rows. One query."""
    return list(
        Characteristic.objects.visible_to(user)
        .select_related("product", "test")
        .order_by("product__code", "test__code")
    )


def characteristic_labels(characteristics: Iterable[Characteristic]) -> dict[int, dict[str, Any]]:
    """{id: product and test codes, name, decimals, unit}: how a list page's script names a row."""
    return {
        c.pk: {
            "product": c.product.code,
            "test": c.test.code,
            "name": c.test.name,
            "decimals": characteristic_decimals(characteristic=c),
            "unit": c.test.unit,
        }
        for c in characteristics
    }


def acknowledger_names(*, user: User) -> dict[int, str]:
    """{user id: name} of everyone who has acknowledged a violation, and the user: the list names who
    acknowledged (the API gives an id). One query."""
    people = User.objects.filter(
        Q(pk__in=Violation.objects.filter(acknowledged_by__isnull=False).values("acknowledged_by"))
        | Q(pk=user.pk)
    )
    return {person.pk: person.get_full_name() or person.get_username() for person in people}


def audit_actors() -> list[User]:
    """The people who appear in the audit trail, for its actor filter. One query."""
    return list(
        User.objects.filter(pk__in=AuditEntry.objects.filter(user__isnull=False).values("user")).order_by(
            "username"
        )
    )


def audit_object_types() -> list[ContentType]:
    """The kinds of object the audit trail has entries for, for its object type filter. One query."""
    return list(
        ContentType.objects.filter(pk__in=AuditEntry.objects.values("content_type")).order_by(
            "app_label", "model"
        )
    )


# --- Subscriptions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScopeChoice:
    """A kind of subscription target, and the kinds of event a subscription to it can hear."""

    value: str
    label: str
    kinds: tuple[str, ...]


def subscription_scopes() -> list[ScopeChoice]:
    """What the subscription form offers, in the order of SubscriptionEvent (the service's rules)."""
    return [
        ScopeChoice(value, str(label), tuple(k for k in SubscriptionEvent.values if k in SCOPE_KINDS[value]))
        for value, label in SubscriptionScope.choices
    ]


# --- The lot page's review matrix -----------------------------------------------------------------


@dataclass(frozen=True)
class MatrixCell:
    """A cell of the review matrix with its results' values as printed (the column's decimals)."""

    cell: Cell | None
    values: str  # of the result that counts
    history: list[tuple[int, str, str]]  # earlier results: (id, values, status)


@dataclass(frozen=True)
class MatrixRow:
    row: Row
    cells: list[MatrixCell]


def values_text(values: Sequence[Any], *, decimals: int) -> str:
    """A result's values with the test's decimals: 2.50 stays 2.50 (a count stays a count)."""
    return ", ".join(
        number_format(float(v), decimals=decimals) if isinstance(v, int | float) else str(v) for v in values
    )


def review_matrix(review: LotReview) -> list[MatrixRow]:
    """The review's rows, each cell with its values formatted by its column's decimals."""
    rows = []
    for row in review.rows:
        cells = []
        for cell, column in zip(row.cells, review.columns, strict=True):
            if cell is None:
                cells.append(MatrixCell(cell=None, values="", history=[]))
                continue
            current = cell.current
            shown = values_text(current.values, decimals=column.decimals) if current else ""
            history = [
                (r.id, values_text(r.values, decimals=column.decimals), r.status)
                for r in cell.results
                if r != current
            ]
            cells.append(MatrixCell(cell=cell, values=shown, history=history))
        rows.append(MatrixRow(row=row, cells=cells))
    return rows

"""Reads for the pages: what the overview, the chart page and the list pages' filters show, in as few
queries as a page allows."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.models import AnonymousUser, User
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.calculations.choices import Disposition
from apps.calculations.models import AlarmShelf, LotStatistics, ProductStatistics, Violation
from apps.calculations.selectors import AWAITING_ACKNOWLEDGEMENT
from apps.calculations.services.shelving import shelves_active
from apps.config.choices import DataSource, PlanStatus
from apps.config.models import (
    Characteristic,
    ControlLimits,
    PlanAssignment,
    Product,
    Test,
    TestPlan,
    TestPlanEntry,
)
from apps.mqtt_bridge.selectors import sparkplug_metrics_offline
from apps.observations.choices import LOT_WORKING, HealthState, ObservationStatus, ScheduledSampleState
from apps.observations.models import CharacteristicHealth, Item, Lot, Observation, Sample, ScheduledSample
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


class CardState(StrEnum):
    """A characteristic at a glance, most urgent first: a card shows the first that applies."""

    UNACKNOWLEDGED = "unacknowledged"
    REJECTING = "rejecting"
    OUT_OF_SPEC = "out_of_spec"
    OFFLINE = "offline"
    STALE = "stale"
    OVERDUE = "overdue"
    NO_DATA = "no_data"
    NO_LIMITS = "no_limits"
    IN_CONTROL = "in_control"


STATE_LABELS = {
    CardState.UNACKNOWLEDGED: "Unacknowledged violation",
    CardState.REJECTING: "Values rejected",
    CardState.OUT_OF_SPEC: "Out of spec",
    CardState.OFFLINE: "Data source offline",
    CardState.STALE: "Not receiving data",
    CardState.OVERDUE: "Sample overdue",
    CardState.NO_DATA: "No data yet",
    CardState.NO_LIMITS: "No limits yet",
    CardState.IN_CONTROL: "In control",
}

# Shown beside the label, so state never rests on colour alone (static/js/overview.js has the same).
STATE_ICONS = {
    CardState.UNACKNOWLEDGED: "⚠",
    CardState.REJECTING: "⛔",
    CardState.OUT_OF_SPEC: "✕",
    CardState.OFFLINE: "⊘",
    CardState.STALE: "⌛",
    CardState.OVERDUE: "⏰",
    CardState.NO_DATA: "–",
    CardState.NO_LIMITS: "?",
    CardState.IN_CONTROL: "✓",
}


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


@dataclass(frozen=True)
class Card:
    """One characteristic on the overview."""

    characteristic: Characteristic
    decimals: int
    last_value: float | None
    last_sequence: int | None
    last_at: datetime | None
    cpk: float | None
    unacknowledged: bool
    offline: bool
    # "38 % rejected: not in an effective plan" while its values are being rejected (data health)
    rejecting: str = ""
    limits: bool = True  # it has control limits: without, nothing says it is in control
    shelved_until: datetime | None = None  # its alarms are shelved (notify nobody) until then
    # "Not receiving data since 10:42" while no value came for longer than its cadence (data health)
    stale: str = ""
    overdue_since: datetime | None = None  # a sample its schedule asked for is overdue since then
    due_since: datetime | None = None  # a sample its schedule asks for is due since then

    @property
    def state(self) -> CardState:
        if self.unacknowledged:
            return CardState.UNACKNOWLEDGED
        if self.rejecting:  # the last value shown is old: never green, never only "out of spec"
            return CardState.REJECTING
        c = self.characteristic
        if out_of_spec(self.last_value, lsl=c.lsl, usl=c.usl):
            return CardState.OUT_OF_SPEC
        if self.offline:
            return CardState.OFFLINE
        if self.stale:
            return CardState.STALE
        if self.overdue_since is not None:
            return CardState.OVERDUE
        if self.last_value is None:
            return CardState.NO_DATA
        if not self.limits:
            return CardState.NO_LIMITS
        return CardState.IN_CONTROL

    @property
    def state_label(self) -> str:
        if self.state == CardState.REJECTING:
            return self.rejecting
        if self.state == CardState.STALE:
            return self.stale
        if self.state == CardState.OVERDUE:
            return self.overdue_text
        return STATE_LABELS[self.state]

    @property
    def overdue_text(self) -> str:
        """'Sample overdue since 10:15' (plant time), as the live pages say it too (static/js/page.js)."""
        if self.overdue_since is None:
            return ""
        return f"Sample overdue since {timezone.localtime(self.overdue_since):%H:%M}"

    @property
    def state_icon(self) -> str:
        return STATE_ICONS[self.state]

    @property
    def last_value_text(self) -> str:
        return number_format(self.last_value, decimals=self.decimals, unit=self.characteristic.test.unit)

    @property
    def cpk_text(self) -> str:
        return number_format(self.cpk, decimals=2)


@dataclass
class Group:
    """The characteristics of one place in the plant (site / area / line / cell)."""

    site: str
    area: str
    line: str
    cell: str
    cards: list[Card] = field(default_factory=list)

    @property
    def label(self) -> str:
        return " / ".join(part for part in (self.site, self.area, self.line, self.cell) if part) or (
            "No place in the plant set"
        )

    @property
    def kiosk_line(self) -> "Line":
        return Line(self.site, self.area, self.line)


def _scheduled_since(state: str, moment: str) -> Subquery:
    """The earliest `moment` of the characteristic's scheduled samples in `state` (a subquery)."""
    open_samples = ScheduledSample.objects.filter(characteristic=OuterRef("pk"), state=state)
    return Subquery(open_samples.order_by(moment).values(moment)[:1])


def overview_characteristics(*, user: User | AnonymousUser) -> QuerySet[Characteristic]:
    """The active characteristics the user may read, with their last sample, Cpk and whether a
    violation awaits acknowledgement, in plant order. One query."""
    last_sample = Sample.objects.filter(characteristic=OuterRef("pk")).order_by("-sequence")
    return (
        Characteristic.objects.visible_to(user)
        .filter(active=True)
        .with_config()
        .select_related("health")
        .annotate(
            last_mean=Subquery(last_sample.values("mean")[:1]),
            last_sequence=Subquery(last_sample.values("sequence")[:1]),
            last_at=Subquery(last_sample.values("created_at")[:1]),
            product_cpk=Subquery(
                ProductStatistics.objects.filter(characteristic=OuterRef("pk")).values("cpk")[:1]
            ),
            unacknowledged=Exists(
                Violation.objects.filter(AWAITING_ACKNOWLEDGEMENT, characteristic=OuterRef("pk"))
            ),
            has_limits=Exists(ControlLimits.objects.filter(characteristic=OuterRef("pk"))),
            shelved_until=Subquery(
                AlarmShelf.objects.filter(shelves_active(), characteristic=OuterRef("pk")).values("until")[:1]
            ),
            overdue_since=_scheduled_since(ScheduledSampleState.OVERDUE, "overdue_at"),
            due_since=_scheduled_since(ScheduledSampleState.DUE, "due_at"),
        )
        .order_by("site", "area", "line", "cell", "product__code", "test__code")
    )


def _health_summary(characteristic: Characteristic, state: str) -> str:
    """The data health summary of the characteristic while it is in `state`, else ''."""
    try:
        health = characteristic.health
    except CharacteristicHealth.DoesNotExist:  # never checked yet
        return ""
    return health.summary if health.state == state else ""


def characteristic_card(*, user: User | AnonymousUser, characteristic: Characteristic) -> Card | None:
    """The overview's card of one characteristic (its state, data health, overdue sample, shelf):
    the chart page's header says what the card says. None if the user may not read it."""
    for group in overview_groups(user=user, only=characteristic.pk):
        return group.cards[0]
    return None


def overview_groups(
    *, user: User | AnonymousUser, line: "Line | None" = None, only: int | None = None
) -> list[Group]:
    """The overview: the user's characteristics grouped by site / area / line / cell (only those of
    one line, if `line` is given). Two queries."""
    metrics_offline = sparkplug_metrics_offline()
    groups: dict[tuple[str, str, str, str], Group] = {}
    characteristics = overview_characteristics(user=user)
    if line is not None:
        characteristics = characteristics.filter(site=line.site, area=line.area, line=line.line)
    if only is not None:
        characteristics = characteristics.filter(pk=only)
    for c in characteristics:
        place = (c.site, c.area, c.line, c.cell)
        group = groups.setdefault(place, Group(*place))
        group.cards.append(
            Card(
                characteristic=c,
                decimals=characteristic_decimals(characteristic=c),
                last_value=c.last_mean,  # type: ignore[attr-defined]
                last_sequence=c.last_sequence,  # type: ignore[attr-defined]
                last_at=c.last_at,  # type: ignore[attr-defined]
                cpk=c.product_cpk,  # type: ignore[attr-defined]
                unacknowledged=c.unacknowledged,  # type: ignore[attr-defined]
                offline=c.data_source == DataSource.SPARKPLUG and c.tag in metrics_offline,
                rejecting=_health_summary(c, HealthState.REJECTING),
                stale=_health_summary(c, HealthState.STALE),
                limits=c.has_limits,  # type: ignore[attr-defined]
                shelved_until=c.shelved_until,  # type: ignore[attr-defined]
                overdue_since=c.overdue_since,  # type: ignore[attr-defined]
                due_since=c.due_since,  # type: ignore[attr-defined]
            )
        )
    return list(groups.values())


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


# --- Kiosk: one line on a wall screen ---------------------------------------------------------

KIOSK_MAX_CHARTS = 12  # the grid stays readable from across the room up to about nine


@dataclass(frozen=True)
class Line:
    """A production line: site / area / line (its cells are shown together)."""

    site: str
    area: str
    line: str

    @property
    def label(self) -> str:
        return " / ".join(part for part in (self.site, self.area, self.line) if part) or "No line set"

    @property
    def query(self) -> str:
        """The kiosk's query string for this line."""
        return urlencode({"site": self.site, "area": self.area, "line": self.line})


def kiosk_cards(*, user: User | AnonymousUser, line: Line) -> list[Card]:
    """The cards of one line's characteristics that the user may read, in plant order (the
    overview's, so the kiosk and the overview never disagree on a state). Two queries."""
    cards: list[Card] = []
    for group in overview_groups(user=user, line=line):
        cards.extend(group.cards)
    return cards


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

"""The overview's cards (also the wall screen's tiles and the chart page's header): each
characteristic's state at a glance, most urgent first, in plant order, in as few queries as a
page allows."""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlencode

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.utils import timezone

from apps.calculations.models import AlarmShelf, ProductStatistics, Violation
from apps.calculations.selectors import AWAITING_ACKNOWLEDGEMENT
from apps.calculations.services.shelving import shelves_active
from apps.config.choices import DataSource
from apps.config.models import (
    Characteristic,
    ControlLimits,
)
from apps.mqtt_bridge.selectors import sparkplug_metrics_offline
from apps.observations.choices import HealthState, ScheduledSampleState
from apps.observations.models import CharacteristicHealth, Sample, ScheduledSample
from apps.web.selectors import characteristic_decimals, number_format, out_of_spec


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

"""Reads for the pages: what the overview and the chart page show, in as few queries as a page allows."""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlencode

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Exists, OuterRef, QuerySet, Subquery

from apps.calculations.models import ProductStatistics, Violation
from apps.calculations.selectors import AWAITING_ACKNOWLEDGEMENT
from apps.config.choices import DataSource
from apps.config.models import Characteristic
from apps.mqtt_bridge.models import EdgeNode
from apps.observations.models import Sample


class CardState(StrEnum):
    """A characteristic at a glance, most urgent first: a card shows the first that applies."""

    UNACKNOWLEDGED = "unacknowledged"
    OUT_OF_SPEC = "out_of_spec"
    OFFLINE = "offline"
    NO_DATA = "no_data"
    IN_CONTROL = "in_control"


STATE_LABELS = {
    CardState.UNACKNOWLEDGED: "Unacknowledged violation",
    CardState.OUT_OF_SPEC: "Out of spec",
    CardState.OFFLINE: "Data source offline",
    CardState.NO_DATA: "No data yet",
    CardState.IN_CONTROL: "In control",
}

# Shown beside the label, so state never rests on colour alone (static/js/overview.js has the same).
STATE_ICONS = {
    CardState.UNACKNOWLEDGED: "⚠",
    CardState.OUT_OF_SPEC: "✕",
    CardState.OFFLINE: "⊘",
    CardState.NO_DATA: "–",
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

    @property
    def state(self) -> CardState:
        if self.unacknowledged:
            return CardState.UNACKNOWLEDGED
        c = self.characteristic
        if out_of_spec(self.last_value, lsl=c.lsl, usl=c.usl):
            return CardState.OUT_OF_SPEC
        if self.offline:
            return CardState.OFFLINE
        if self.last_value is None:
            return CardState.NO_DATA
        return CardState.IN_CONTROL

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]

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


def sparkplug_metrics_offline() -> set[str]:
    """Sparkplug metric names that only offline edge nodes (or devices) announced: their
    characteristics get no data. A metric no node announced is not offline, only unknown."""
    online: set[str] = set()
    offline: set[str] = set()
    for is_online, metrics in EdgeNode.objects.values_list("online", "metrics"):
        (online if is_online else offline).update(m for m in metrics or () if isinstance(m, str))
    return offline - online


def overview_characteristics(*, user: User | AnonymousUser) -> QuerySet[Characteristic]:
    """The active characteristics the user may read, with their last sample, Cpk and whether a
    violation awaits acknowledgement, in plant order. One query."""
    last_sample = Sample.objects.filter(characteristic=OuterRef("pk")).order_by("-sequence")
    return (
        Characteristic.objects.visible_to(user)
        .filter(active=True)
        .with_config()
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
        )
        .order_by("site", "area", "line", "cell", "product__code", "test__code")
    )


def overview_groups(*, user: User | AnonymousUser, line: "Line | None" = None) -> list[Group]:
    """The overview: the user's characteristics grouped by site / area / line / cell (only those of
    one line, if `line` is given). Two queries."""
    metrics_offline = sparkplug_metrics_offline()
    groups: dict[tuple[str, str, str, str], Group] = {}
    characteristics = overview_characteristics(user=user)
    if line is not None:
        characteristics = characteristics.filter(site=line.site, area=line.area, line=line.line)
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

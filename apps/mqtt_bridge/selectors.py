"""What the listener reads: the characteristics fed over MQTT, and the lots their values go to."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Exists, OuterRef

from apps.config.choices import DataSource
from apps.config.models import Characteristic
from apps.mqtt_bridge.models import EdgeNode
from apps.observations.choices import LOT_WORKING, HealthState
from apps.observations.models import CharacteristicHealth, Item, Lot


@dataclass(frozen=True)
class Fed:
    """A characteristic fed by MQTT, as the listener needs it."""

    id: int
    product_id: int
    test_id: int
    tag: str


@dataclass(frozen=True)
class Feeds:
    """JSON topics and Sparkplug metric names, each to the characteristic it feeds."""

    topics: dict[str, Fed] = field(default_factory=dict)
    metrics: dict[str, Fed] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.topics) + len(self.metrics)


def mqtt_feeds() -> Feeds:
    """The active characteristics whose data source is an MQTT topic or a Sparkplug metric."""
    rows = Characteristic.objects.filter(
        active=True, data_source__in=[DataSource.TAG, DataSource.SPARKPLUG], tag__isnull=False
    ).values_list("pk", "product_id", "test_id", "tag", "data_source")
    feeds = Feeds()
    for pk, product_id, test_id, tag, source in rows:
        assert tag is not None  # filtered above
        target = feeds.topics if source == DataSource.TAG else feeds.metrics
        target[tag] = Fed(pk, product_id, test_id, tag)
    return feeds


def lots_current(*, product_ids: Collection[int]) -> dict[int, Lot]:
    """Where a stream that names no lot is recorded: each product's newest production lot (one
    that takes values and has no items), else its newest lot that takes values. A lab lot (its
    items are measured by testers) thus never takes a machine's values while a production lot is
    open; a message that names the lot or one of its items still reaches it."""
    current: dict[int, Lot] = {}
    lots = (
        Lot.objects.filter(product_id__in=list(product_ids), status__in=LOT_WORKING)
        .annotate(lab=Exists(Item.objects.filter(lot=OuterRef("pk"))))
        .order_by("product_id", "lab", "-created_at", "-pk")
    )
    for lot in lots:
        current.setdefault(lot.product_id, lot)
    return current


def production_lots_current(*, product_ids: Collection[int]) -> dict[int, Lot]:
    """Each product's newest production lot (taking values, no items), where it has one."""
    return {pk: lot for pk, lot in lots_current(product_ids=product_ids).items() if not lot.lab}  # type: ignore[attr-defined]


def dead_letters_fitting(*, sizes: Sequence[int], budget: int) -> int:
    """How many rows, in order, a page takes: rows while their payloads (stored bytes) stay within
    the budget, and always the first, however large."""
    total = 0
    for count, size in enumerate(sizes):
        total += size
        if total > budget:
            return max(count, 1)
    return max(len(sizes), 1)


@dataclass(frozen=True)
class KnownNode:
    """An edge node born before the listener started, as its EdgeNode rows keep it."""

    group: str
    node: str
    aliases: dict[str, dict[int, str]]  # device ("" for the node) -> alias -> metric name
    types: dict[str, int]
    bdseq: int | None


def edge_nodes_online() -> list[KnownNode]:
    """The nodes online when the listener stopped, with what their BIRTHs said (their online
    devices' included); a node whose rows keep no aliases (a BIRTH stored before they were kept)
    is listed with none: the listener asks it to rebirth."""
    known: dict[tuple[str, str], KnownNode] = {}
    born: dict[tuple[str, str], Any] = {}
    rows = EdgeNode.objects.filter(online=True).order_by("group", "node", "device")
    for row in rows.values("group", "node", "device", "aliases", "types", "bdseq", "born_at"):
        key = (row["group"], row["node"])
        if not row["device"]:
            known[key] = KnownNode(row["group"], row["node"], {}, {}, row["bdseq"])
            born[key] = row["born_at"]
        elif key not in known or (born[key] and row["born_at"] and row["born_at"] < born[key]):
            continue  # a device of a node that is not online, or born in the node's session before
        state = known[key]
        aliases = {int(alias): name for alias, name in (row["aliases"] or {}).items() if alias.isdigit()}
        if aliases:
            state.aliases[row["device"]] = aliases
        state.types.update(row["types"] or {})
    return list(known.values())


def sparkplug_metrics_offline() -> set[str]:
    """Sparkplug metric names that only offline edge nodes (or devices) announced: their
    characteristics get no data. A metric no node announced is not offline, only unknown."""
    online: set[str] = set()
    offline: set[str] = set()
    for is_online, metrics in EdgeNode.objects.values_list("online", "metrics"):
        (online if is_online else offline).update(m for m in metrics or () if isinstance(m, str))
    return offline - online


def sparkplug_health() -> dict[int, CharacteristicHealth]:
    """The data health rows of the characteristics fed by Sparkplug B metrics, by id. One query."""
    rows = CharacteristicHealth.objects.filter(characteristic__data_source=DataSource.SPARKPLUG).only(
        "pk", "state", "confirmed", "rejected", "dead_letters"
    )
    return {row.pk: row for row in rows}


def source_health(rows: Collection[CharacteristicHealth]) -> dict[str, Any]:
    """The data health of a source: its characteristics' counts summed, and those not ok."""
    confirmed, rejected = sum(h.confirmed for h in rows), sum(h.rejected for h in rows)
    return {
        "confirmed": confirmed, "rejected": rejected,
        "rejected_percent": round(100 * rejected / (confirmed + rejected)) if confirmed + rejected else 0,
        "dead_letters": sum(h.dead_letters for h in rows),
        "unhealthy": {str(h.pk): h.state for h in rows if h.state != HealthState.OK},
    }  # fmt: skip

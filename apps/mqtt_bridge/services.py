"""Storing what the listener received: readings as observations (through the same service as the
device REST endpoint), dead letters, and edge node state, all in one transaction per batch; and the
broker's dropped-message counters, with an alarm when they move."""

import datetime
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.config.choices import DataSource
from apps.config.models import Characteristic, Device, Product, Test
from apps.config.services.devices import device_create
from apps.mqtt_bridge.choices import DataHealthKind, DeadLetterReason
from apps.mqtt_bridge.models import BrokerCounter, DataHealthAlarm, DeadLetter, EdgeNode
from apps.mqtt_bridge.nodes import NodeChange
from apps.mqtt_bridge.readings import Reading, fingerprint
from apps.mqtt_bridge.selectors import lots_current, production_lots_current, sparkplug_metrics_offline
from apps.mqtt_bridge.sparkplug import topic_parse
from apps.observations.choices import ObservationSource
from apps.observations.models import Lot
from apps.observations.services.entries import EntryTargetError, NamedLots
from apps.observations.services.health import DeadLetters, dead_letters_add, sources_offline_set
from apps.observations.services.lots import lot_create
from apps.observations.services.record import ObservationEntry, observations_record
from openspc.events import DATA_HEALTH_GROUP, EventType, event, events_send_on_commit


@dataclass(frozen=True)
class Dead:
    """A message kept as a dead letter."""

    topic: str
    payload: bytes
    reason: DeadLetterReason
    message: str
    received_at: datetime.datetime
    characteristic: int | None = None  # the one its value was meant for, when the bridge knows it


@dataclass(frozen=True)
class Stored:
    observations: int = 0  # new observation rows
    duplicates: int = 0  # readings stored before (a redelivered message)
    dead_letters: int = 0  # messages and readings kept as dead letters

    def __add__(self, other: "Stored") -> "Stored":
        return Stored(
            self.observations + other.observations,
            self.duplicates + other.duplicates,
            self.dead_letters + other.dead_letters,
        )


def bridge_device(*, name: str) -> Device:
    """The device the listener records as (its service user is who posted), created if missing."""
    device = Device.objects.select_related("user").filter(name=name).first()
    if device is None:
        try:
            device, _ = device_create(name=name, description="MQTT bridge (manage.py mqtt_listen)")
        except Exception:  # another listener created it at the same moment
            device = Device.objects.select_related("user").get(name=name)
    return device


@dataclass(frozen=True)
class SimulatorLots:
    opened: list[Lot]
    numbers: dict[int, str]  # characteristic id -> the lot number its messages name


def lots_open_where_missing(*, characteristic_ids: Sequence[int], user: Any) -> SimulatorLots:
    """The plant simulator's --open-lots: a production lot (no items) for each of these
    characteristics' products, opened where none is open or in testing, numbered
    SIM-<product>-<time> so that no two products' lots share a number; and, per characteristic,
    the number its messages name, so a machine's values never land in a lab lot."""
    by_characteristic = dict(
        Characteristic.objects.filter(pk__in=list(characteristic_ids)).values_list("pk", "product_id")
    )
    product_ids = set(by_characteristic.values())
    current = production_lots_current(product_ids=product_ids)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    opened = [
        lot_create(product=product, number=f"SIM-{product.code}-{stamp}", user=user)
        for product in Product.objects.filter(pk__in=product_ids - set(current)).order_by("pk")
    ]
    current.update({lot.product_id: lot for lot in opened})
    numbers = {pk: current[product_id].number for pk, product_id in by_characteristic.items()}
    return SimulatorLots(opened=opened, numbers=numbers)


def _entries(
    readings: Sequence[Reading], now: datetime.datetime
) -> tuple[list[ObservationEntry], list[Dead]]:
    """Each reading with its lot (named, or the product's current one) and item, found as the device
    REST endpoint finds them (NamedLots), or a dead letter saying what is missing."""
    product_ids = {reading.fed.product_id for reading in readings}
    products = Product.objects.in_bulk(product_ids)
    current = lots_current(product_ids=product_ids)
    named = NamedLots.load(
        product_ids=product_ids,
        numbers={reading.lot for reading in readings if reading.lot},
        serials={reading.item for reading in readings if reading.item},
    )
    tests = Test.objects.in_bulk({reading.fed.test_id for reading in readings})
    entries, dead = [], []
    for reading in readings:
        fed = reading.fed
        try:
            lot, item = named.find(
                product=products[fed.product_id],
                number=reading.lot,
                serial=reading.item,
                current=current.get(fed.product_id),
            )
        except EntryTargetError as error:
            no_lot = error.field == "lot" and not reading.lot
            reason = DeadLetterReason.NO_LOT if no_lot else DeadLetterReason.UNKNOWN_LOT
            dead.append(Dead(reading.topic, reading.payload, reason, error.message, now, fed.id))
            continue
        entries.append(
            ObservationEntry(
                lot=lot, test=tests[fed.test_id], values=reading.values, item=item,
                observed_at=reading.observed_at, idempotency_key=reading.key, historical=reading.historical,
            )
        )  # fmt: skip
    return entries, dead


def _dead_letters_store(dead: Sequence[Dead], listener: str) -> None:
    """One row per topic and payload: a repeat adds to its count. Only the payload's first
    MQTT_DEAD_LETTER_KEEP_BYTES are stored, with the whole one's size and SHA-256."""
    keys = [fingerprint(d.topic, d.payload) for d in dead]
    counts = Counter(keys)
    latest = dict(zip(keys, dead, strict=True))
    first = dict(zip(reversed(keys), reversed(dead), strict=True))
    keep = settings.MQTT_DEAD_LETTER_KEEP_BYTES
    existing = list(DeadLetter.objects.select_for_update().filter(fingerprint__in=list(counts)))
    for row in existing:
        row.count += counts.pop(row.fingerprint)
        row.last_received_at = latest[row.fingerprint].received_at
        row.listener = listener
    DeadLetter.objects.bulk_update(existing, ["count", "last_received_at", "listener"])
    DeadLetter.objects.bulk_create(
        DeadLetter(
            topic=d.topic[:1024], payload=d.payload[:keep], payload_size=len(d.payload),
            payload_sha256=hashlib.sha256(d.payload).hexdigest(), reason=d.reason, message=d.message[:2000],
            count=counts[key], first_received_at=first[key].received_at, last_received_at=d.received_at,
            listener=listener, fingerprint=key,
        )
        for key, d in latest.items()
        if key in counts
    )  # fmt: skip


def _dead_meant_for(dead: Sequence[Dead]) -> dict[int, DeadLetters]:
    """Per characteristic, the dead letters meant for it: the one a reading was for; else those fed
    by the message's JSON topic, or by a metric of the Sparkplug B node or device that sent it (as
    its last BIRTH announced them). A topic nothing is fed by is no characteristic's."""
    topics = {d.topic for d in dead if d.characteristic is None}
    by_topic: dict[str, list[int]] = {}
    for pk, tag in Characteristic.objects.filter(
        active=True, data_source=DataSource.TAG, tag__in=topics
    ).values_list("pk", "tag"):
        by_topic.setdefault(str(tag), []).append(pk)
    # The Sparkplug B topics' nodes and their metrics' characteristics: two queries for all of them.
    sources = {name: topic for name in topics - set(by_topic) if (topic := topic_parse(name)) is not None}
    wanted = Q(pk__in=[])
    for topic in sources.values():
        wanted |= Q(group=topic.group, node=topic.node, device=topic.device or "")
    metrics = {
        (group, node, device): names
        for group, node, device, names in EdgeNode.objects.filter(wanted).values_list(
            "group", "node", "device", "metrics"
        )
    } if sources else {}  # fmt: skip
    fed = dict(
        Characteristic.objects.filter(
            active=True, data_source=DataSource.SPARKPLUG,
            tag__in={name for names in metrics.values() for name in names or []},
        ).values_list("tag", "pk")
    ) if metrics else {}  # fmt: skip
    for name, topic in sources.items():
        names = metrics.get((topic.group, topic.node, topic.device or "")) or []
        by_topic[name] = [fed[metric] for metric in names if metric in fed]
    counts: Counter[int] = Counter()
    latest: dict[int, Dead] = {}
    for d in dead:
        for pk in [d.characteristic] if d.characteristic is not None else by_topic.get(d.topic, []):
            counts[pk] += 1
            latest[pk] = d
    return {
        pk: DeadLetters(count=n, code=str(latest[pk].reason), message=str(latest[pk].reason.label))
        for pk, n in counts.items()
    }


def _node_changes_store(changes: Sequence[NodeChange]) -> None:
    for change in changes:
        if change.stale_death:
            EdgeNode.objects.filter(group=change.group, node=change.node, device="").update(
                stale_deaths=F("stale_deaths") + 1, stale_death_at=change.at
            )
            continue
        defaults: dict[str, object] = {"online": change.online}
        if change.online:
            defaults.update(
                metrics=list(change.metrics), born_at=change.at, types=change.types,
                aliases={str(alias): name for alias, name in change.aliases.items()},
            )  # fmt: skip
            if not change.device:
                defaults["bdseq"] = change.bdseq
        else:
            defaults["died_at"] = change.at
        EdgeNode.objects.update_or_create(
            group=change.group, node=change.node, device=change.device, defaults=defaults
        )
        if not change.online and not change.device:  # a node's death takes its devices with it
            EdgeNode.objects.filter(group=change.group, node=change.node, online=True).update(
                online=False, died_at=change.at
            )


def bridge_store(
    *,
    readings: Sequence[Reading],
    dead: Sequence[Dead] = (),
    changes: Sequence[NodeChange] = (),
    device: Device,
    listener: str,
) -> Stored:
    """Store one batch of received messages in one transaction: readings as `received`
    observations (queued for the pipeline on commit), dead letters, edge node changes.

    When this returns, everything is stored and the messages may be acknowledged to the
    broker; when it raises, nothing is, and the caller tries the batch again.
    """
    now = timezone.now()
    for attempt in range(2):
        try:
            with transaction.atomic():
                entries, unplaced = _entries(readings, now) if readings else ([], [])
                result = None
                if entries:
                    result = observations_record(
                        entries=entries, source=ObservationSource.MQTT, user=device.user, device=device
                    )
                all_dead = [*dead, *unplaced]
                if all_dead:
                    _dead_letters_store(all_dead, listener)
                    dead_letters_add(counts=_dead_meant_for(all_dead))
                _node_changes_store(changes)
                if changes:
                    sources_offline_sync()
        except IntegrityError:
            # Another listener stored one of these dead letters first: read them again.
            if attempt:
                raise
            continue
        # A repeat within the batch (a redelivery next to the first delivery) is answered with the
        # same id but is not in result.duplicates, which lists only keys stored before.
        created = len(set(result.ids) - set(result.duplicates)) if result else 0
        return Stored(created, len(entries) - created, len(all_dead))
    raise AssertionError("unreachable")


def sources_offline_sync() -> int:
    """Tell data health which Sparkplug B characteristics are fed only by dead nodes (their
    metric is announced by no online node): `source.offline` on its next check."""
    metrics = sparkplug_metrics_offline()
    offline = Characteristic.objects.filter(data_source=DataSource.SPARKPLUG, tag__in=metrics).values_list(
        "pk", flat=True
    )
    return sources_offline_set(offline=list(offline) if metrics else [])


def _alarm_data(alarm: DataHealthAlarm) -> dict[str, Any]:
    return {
        "id": alarm.pk, "kind": alarm.kind, "source": alarm.source, "subject": alarm.subject,
        "message": alarm.message, "value_before": alarm.value_before, "value_after": alarm.value_after,
        "raised_at": alarm.raised_at.isoformat(), "listener": alarm.listener,
    }  # fmt: skip


@transaction.atomic
def broker_counter_observe(
    *, broker: str, name: str, value: int, last_seen: int | None, listener: str
) -> DataHealthAlarm | None:
    """Record a value of one of the broker's dropped-message counters; raise a data health alarm
    (and send `data_health.alarm` on commit) when it moved up since any listener last saw it.

    `last_seen` is this listener's own last value of it (None: none since it started). A value
    below the stored one is the broker restarted (its counters begin at zero again) if this
    listener's own values went back too, or it has none yet; else it is only older than what
    another listener stored, and changes nothing. The first value ever seen is the baseline.
    """
    counter, created = BrokerCounter.objects.select_for_update().get_or_create(
        broker=broker, name=name, defaults={"value": value}
    )
    if created or value == counter.value:
        return None
    before = counter.value
    if value < before:
        if last_seen is not None and value >= last_seen:
            return None
        before = 0
    counter.value = value
    counter.save(update_fields=["value", "updated_at"])
    if value <= before:
        return None
    alarm = DataHealthAlarm.objects.create(
        kind=DataHealthKind.BROKER_DROPPED, source=broker[:255], subject=name[:255], listener=listener[:128],
        message=f"the broker dropped {value - before} messages ({name} went from {before} to {value}): "
        "a client's queue was full, QoS 1 messages it had acknowledged to their publisher are lost",
        value_before=before, value_after=value, raised_at=timezone.now(),
    )  # fmt: skip
    events_send_on_commit([event(EventType.DATA_HEALTH_ALARM, [DATA_HEALTH_GROUP], alarm=_alarm_data(alarm))])
    return alarm

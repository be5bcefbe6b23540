"""Data health (issue #21): a characteristic whose values are being rejected is found by the
periodic check, with its rate and top reasons, told to its subscribers (`data.rejected`) and to the
pages showing it (`data_health.changed`), and recovers when its values are confirmed again."""

import datetime

import pytest
from django.test import Client
from django.utils import timezone

from apps.config import services as config_services
from apps.config.models import Characteristic
from apps.mqtt_bridge.choices import DeadLetterReason
from apps.mqtt_bridge.models import EdgeNode
from apps.mqtt_bridge.services import Dead, bridge_device, bridge_store, sources_offline_sync
from apps.observations import services
from apps.observations.models import CharacteristicHealth, Item, Observation, PlantMessage, SubgroupFeed
from apps.subscriptions.models import Notification
from apps.subscriptions.services import notifications_fanout, subscription_create
from apps.web.overview import CardState, overview_groups
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db

IMPLAUSIBLE = 80.0  # DIA is plausible in 70–78: rejected


def record(plant, values: list[float]) -> list[int]:
    """Values of DIA on new items, stored and confirmed or rejected (not calculated)."""
    first = Item.objects.filter(lot=plant.lot).count()
    items = [
        ItemFactory(lot=plant.lot, serial=f"H{first + n:04d}", plans=[plant.ring], tester=plant.tester)
        for n in range(len(values))
    ]
    ids = plant.record(
        *({"item": i, "test": plant.dia, "values": [v]} for i, v in zip(items, values, strict=True))
    )
    services.observations_process(ids=ids, calculate=False)
    return ids


@pytest.fixture
def dia(plant) -> Characteristic:
    return Characteristic.objects.get(product=plant.product, test=plant.dia)


@pytest.fixture
def sent(monkeypatch) -> list[dict]:
    """The events the checks send after commit (type and data), instead of the channel layer."""
    out: list[dict] = []
    monkeypatch.setattr(
        "apps.observations.services.health.events_send_on_commit",
        lambda events: out.extend(message for _, message in events),
    )
    return out


def test_a_characteristic_whose_values_are_rejected_is_found_told_and_recovers(
    plant, dia, manager, sent, settings
):
    settings.DATA_HEALTH_REJECTED_PERCENT, settings.DATA_HEALTH_MIN_REJECTED = 20, 3
    t0 = timezone.now()
    record(plant, [74.0, 74.01])
    services.data_health_check(now=t0)  # where the window starts: nothing judged
    health = CharacteristicHealth.objects.get(pk=dia.pk)
    assert (health.state, health.rejected, health.positions[0][1]) == ("ok", 0, 2)

    record(plant, [74.0, IMPLAUSIBLE, IMPLAUSIBLE, IMPLAUSIBLE, IMPLAUSIBLE])
    assert Observation.objects.filter(status="rejected").count() == 4
    checked = services.data_health_check(now=timezone.now())

    health.refresh_from_db()
    assert [h.pk for h in checked.changed] == [dia.pk]
    assert (health.state, health.confirmed, health.rejected, health.rejected_percent) == (
        "rejecting",
        1,
        4,
        80,
    )
    (reason,) = health.reasons
    assert reason["count"] == 4
    assert "plausible" in reason["message"]
    assert health.summary == f"80 % rejected: {reason['message']}"
    assert [m["type"] for m in sent] == ["data_health.changed", "data.rejected"]
    assert sent[1]["characteristic"] == dia.pk
    assert sent[1]["summary"] == health.summary

    # The overview card says so, whatever the last value.
    (card,) = [
        card for group in overview_groups(user=manager) for card in group.cards if card.characteristic == dia
    ]
    assert (card.state, card.state_label) == (CardState.REJECTING, health.summary)

    # A subscriber to the characteristic's data health is told once.
    subscription_create(user=manager, scope="characteristic", characteristic=dia.pk, events=["data_health"])
    notifications_fanout(events=[sent[1], sent[1]])
    (note,) = Notification.objects.filter(user=manager)
    assert note.title == f"Values of DIA {plant.dia.name} of RING-74 are being rejected"
    assert note.message.startswith("4 of 5 values in the last 1 min were rejected (80 %). Reasons: ")

    # A check while it lasts tells the pages the new figures, not the subscribers again.
    sent.clear()
    services.data_health_check(now=timezone.now())
    assert [m["type"] for m in sent] == ["data_health.changed"]

    # Values confirmed again, the window moved on (an hour later): it recovers.
    sent.clear()
    record(plant, [74.0] * 5)
    services.data_health_check(now=timezone.now() + datetime.timedelta(hours=1, minutes=1))
    health.refresh_from_db()
    assert (health.state, health.rejected, health.confirmed) == ("ok", 0, 5)
    assert [(m["type"], m["state"]) for m in sent] == [("data_health.changed", "ok")]


def test_a_few_rejections_among_many_values_stay_ok(plant, dia, sent, settings):
    settings.DATA_HEALTH_REJECTED_PERCENT, settings.DATA_HEALTH_MIN_REJECTED = 20, 3
    services.data_health_check(now=timezone.now())
    record(plant, [74.0] * 16 + [IMPLAUSIBLE] * 3)  # 3 of 19: 16 %
    services.data_health_check(now=timezone.now())
    health = CharacteristicHealth.objects.get(pk=dia.pk)
    assert (health.state, health.rejected, health.confirmed) == ("ok", 3, 16)
    assert sent == []


def test_an_mqtt_characteristic_gone_quiet_for_longer_than_its_cadence_is_stale(plant, dia, manager, sent):
    """data.stale (issue #21): an MQTT-fed characteristic whose schedule says every 5 minutes (grace
    1) that gets nothing for longer is 'Not receiving data since …', to its subscribers, the pages
    and the plant, and recovers when values come again."""
    Characteristic.objects.filter(pk=dia.pk).update(data_source="tag", tag="plant/line1/dia")
    config_services.schedule_create(characteristic=dia, kind="interval", every_minutes=5, grace_minutes=1)
    t0 = timezone.now()
    services.data_health_check(now=t0)
    services.data_health_check(now=t0 + datetime.timedelta(minutes=5))  # within 6 minutes: ok
    assert sent == []

    services.data_health_check(now=t0 + datetime.timedelta(minutes=7))
    health = CharacteristicHealth.objects.get(pk=dia.pk)
    since = f"{timezone.localtime(t0):%H:%M}"
    assert (health.state, health.summary) == ("stale", f"Not receiving data since {since}")
    assert [m["type"] for m in sent] == ["data_health.changed", "data.stale"]
    (message,) = PlantMessage.objects.all()
    assert (message.event, message.data["summary"]) == ("data.stale", health.summary)
    (card,) = [c for group in overview_groups(user=manager) for c in group.cards if c.characteristic == dia]
    assert (card.state, card.state_label) == (CardState.STALE, health.summary)
    client = Client()
    client.force_login(manager)
    chart = client.get(f"/charts/{dia.pk}/").content.decode()
    assert f'data-chart-health data-state="stale">⌛ {health.summary}</span>' in chart

    subscription_create(user=manager, scope="characteristic", characteristic=dia.pk, events=["data_health"])
    notifications_fanout(events=[sent[1]])
    (note,) = Notification.objects.filter(user=manager)
    assert note.title == f"No data: DIA {plant.dia.name} of RING-74"
    assert note.message.startswith(f"Not receiving data since {since}.")

    # Values again (the feed moved on): it recovers.
    sent.clear()
    SubgroupFeed.objects.update_or_create(pk=dia.pk, defaults={"last_position": 3})
    services.data_health_check(now=t0 + datetime.timedelta(minutes=8))
    health.refresh_from_db()
    assert health.state == "ok"
    assert [(m["type"], m["state"]) for m in sent] == [("data_health.changed", "ok")]


def test_a_sparkplug_characteristic_whose_node_died_is_offline(plant, dia, sent):
    Characteristic.objects.filter(pk=dia.pk).update(data_source="sparkplug", tag="Line1/Dia")
    node = EdgeNode.objects.create(group="Plant", node="Line1", online=False, metrics=["Line1/Dia"])
    t0 = timezone.now()
    services.data_health_check(now=t0)
    # The MQTT bridge tells data health which sources are dead (as node changes are stored).
    assert sources_offline_sync() == 1
    services.data_health_check(now=t0 + datetime.timedelta(minutes=1))
    health = CharacteristicHealth.objects.get(pk=dia.pk)
    assert health.state == "offline"
    assert health.summary.startswith("Data source offline since ")
    assert [m["type"] for m in sent] == ["data_health.changed", "source.offline"]
    assert PlantMessage.objects.get().event == "source.offline"

    # Born again: the next sync and check clear it.
    sent.clear()
    EdgeNode.objects.filter(pk=node.pk).update(online=True)
    assert sources_offline_sync() == 1
    services.data_health_check(now=t0 + datetime.timedelta(minutes=2))
    health.refresh_from_db()
    assert health.state == "ok"
    assert [(m["type"], m["state"]) for m in sent] == [("data_health.changed", "ok")]


def test_dead_letters_meant_for_a_characteristic_count_as_rejected_with_their_reason(
    plant, dia, sent, settings
):
    """Data health counts dead letters (issue #21): garbage on a characteristic's JSON topic, and
    a Sparkplug B node's messages that cannot be read, make it `rejecting` like rejected values; a
    topic nothing is fed by is no characteristic's."""
    settings.DATA_HEALTH_REJECTED_PERCENT, settings.DATA_HEALTH_MIN_REJECTED = 20, 3
    Characteristic.objects.filter(pk=dia.pk).update(data_source="tag", tag="plant/line1/dia")
    device = bridge_device(name="bridge-test")
    t0 = timezone.now()
    services.data_health_check(now=t0)

    garbage = Dead("plant/line1/dia", b"\xff\xfe", DeadLetterReason.NOT_JSON, "the payload is not JSON", t0)
    elsewhere = Dead("plant/nowhere", b"{}", DeadLetterReason.UNKNOWN_TOPIC, "no characteristic", t0)
    stored = bridge_store(readings=[], dead=[garbage] * 4 + [elsewhere], device=device, listener="t")
    assert stored.dead_letters == 5
    record(plant, [74.0] * 6)
    services.data_health_check(now=t0 + datetime.timedelta(minutes=1))
    health = CharacteristicHealth.objects.get(pk=dia.pk)
    assert (health.state, health.confirmed, health.rejected, health.dead_letters) == ("rejecting", 6, 4, 4)
    assert health.reasons == [{"code": "not_json", "message": "Not JSON", "count": 4}]
    assert health.summary == "40 % rejected: Not JSON"
    assert [(m["type"], m["dead_letters"]) for m in sent] == [
        ("data_health.changed", 4),
        ("data.rejected", 4),
    ]

    # A Sparkplug B node not born sends data: its metrics' characteristics are told (here DIA's).
    Characteristic.objects.filter(pk=dia.pk).update(data_source="sparkplug", tag="Line1/Dia")
    EdgeNode.objects.create(group="Plant", node="Line1", online=True, metrics=["Line1/Other", "Line1/Dia"])
    unborn = Dead("spBv1.0/Plant/NDATA/Line1", b"\x08\x01", DeadLetterReason.NOT_BORN, "no NBIRTH", t0)
    bridge_store(readings=[], dead=[unborn] * 2, device=device, listener="t")
    services.data_health_check(now=t0 + datetime.timedelta(minutes=2))
    health.refresh_from_db()
    assert (health.rejected, health.dead_letters, health.dead_letters_total) == (6, 6, 6)
    assert health.reasons[0] == {"code": "not_json", "message": "Not JSON", "count": 4}
    assert health.reasons[1]["code"] == "not_born"


def test_a_worker_restarted_keeps_the_reasons_words(plant, dia, settings, monkeypatch):
    """The messages of reason codes are read with the rejections; a worker started since (which has
    read none) shows the row's message, not the bare code."""
    settings.DATA_HEALTH_REJECTED_PERCENT, settings.DATA_HEALTH_MIN_REJECTED = 20, 3
    services.data_health_check(now=timezone.now())
    record(plant, [IMPLAUSIBLE] * 4)
    services.data_health_check(now=timezone.now())
    health = CharacteristicHealth.objects.get(pk=dia.pk)
    (said,) = health.reasons
    assert "plausible" in said["message"]

    monkeypatch.setattr("apps.observations.services.health._MESSAGES", {})  # a new worker process
    services.data_health_check(now=timezone.now())
    health.refresh_from_db()
    assert health.reasons == [said]
    assert health.summary == f"100 % rejected: {said['message']}"

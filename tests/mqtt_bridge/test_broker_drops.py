"""The broker dropping messages it acknowledged (a client's queue full: Mosquitto's
max_queued_messages) is noticed: the listener watches $SYS/broker/publish/messages/dropped, and
when it moves, logs a warning and raises a data health alarm (row, API, admin, and
`data_health.alarm` on the channel group `data_health`), also for drops while it was away. $SYS
messages are never readings."""

import asyncio
import datetime
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import Client as DjangoClient
from django.utils import timezone

from apps.config.choices import DataSource
from apps.mqtt_bridge.models import BrokerCounter, DataHealthAlarm, DataHealthKind, DeadLetter
from apps.mqtt_bridge.services import broker_counter_observe
from apps.observations.models import Observation
from openspc.events import DATA_HEALTH_GROUP, EventType, events_unpack
from tests.support.mqtt import (
    Client,
    ListenerProcess,
    PrivateMosquitto,
    broker_address,
    fed_by,
    wait_until,
)

DROPPED = "$SYS/broker/publish/messages/dropped"
ALARMS = "/api/v1/mqtt/data-health-alarms/"
QUEUE = 5  # the private broker's max_queued_messages


def stopped_subscriber(url: str, topic: str) -> None:
    """A QoS 1 subscriber with a persistent session that went away: the broker queues what arrives
    for it, up to max_queued_messages, and drops the rest."""
    host, port = broker_address(url)
    subscribed = threading.Event()
    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"test-slow-{uuid.uuid4().hex[:8]}",
        clean_session=False,
    )
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect(host, port)
    client.loop_start()
    client.subscribe(topic, 1)
    assert subscribed.wait(5)
    client.disconnect()
    client.loop_stop()


def flood(url: str, topic: str, count: int) -> None:
    publisher = Client(url=url)
    publisher.publish_all([(topic, f'{{"value": {k}}}') for k in range(count)])  # each acknowledged
    publisher.close()


def private_broker(tmp_path: Path) -> PrivateMosquitto:
    return PrivateMosquitto(
        log_dir=tmp_path, options={"max_queued_messages": str(QUEUE), "sys_interval": "1"}
    )


def baseline_seen(broker: PrivateMosquitto) -> bool:
    return BrokerCounter.objects.filter(broker=f"mqtt://127.0.0.1:{broker.port}", name=DROPPED).exists()


needs_mosquitto = pytest.mark.skipif(
    not PrivateMosquitto.available(), reason="the mosquitto binary is missing"
)
live_database = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.mark.timeout(120)
@pytest.mark.services
@live_database
@needs_mosquitto
@pytest.mark.slow
def test_a_broker_that_drops_acknowledged_messages_raises_an_alarm_and_a_warning(plant, tmp_path):
    topic = f"test/{uuid.uuid4().hex[:8]}/line1/cell1/ring-diameter"
    fed_by(plant, source=DataSource.TAG, tag=topic)  # the listener reads the flooded topic too
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(DATA_HEALTH_GROUP, channel)
    with private_broker(tmp_path) as broker, ListenerProcess(log_dir=tmp_path, url=broker.url) as listener:
        wait_until(lambda: baseline_seen(broker), timeout=15, what="the counter's first value")
        stopped_subscriber(broker.url, topic)
        flood(broker.url, topic, 30)
        wait_until(lambda: DataHealthAlarm.objects.exists(), timeout=20, what="the alarm")
        wait_until(lambda: Observation.objects.count() == 30, timeout=20, what="the listener's own 30 stored")
        log = listener.log_text()

    alarm = DataHealthAlarm.objects.get()
    assert (alarm.kind, alarm.subject, alarm.value_before, alarm.value_after) == (
        DataHealthKind.BROKER_DROPPED, DROPPED, 0, 30 - QUEUE,
    )  # fmt: skip
    assert (alarm.source, alarm.listener) == (f"mqtt://127.0.0.1:{broker.port}", listener.client_id)
    assert (
        f"WARNING openspc.mqtt: the broker dropped messages: the broker dropped {30 - QUEUE} messages "
        f"({DROPPED} went from 0 to {30 - QUEUE})"
    ) in log
    # $SYS values are not readings: nothing but the 30 values was stored, nothing dead-lettered.
    assert DeadLetter.objects.count() == 0
    assert Observation.objects.count() == 30

    async def receive() -> list[dict[str, Any]]:
        return events_unpack(await asyncio.wait_for(layer.receive(channel), timeout=5))

    (sent,) = async_to_sync(receive)()
    async_to_sync(layer.group_discard)(DATA_HEALTH_GROUP, channel)
    assert sent["type"] == EventType.DATA_HEALTH_ALARM
    assert sent["alarm"]["id"] == alarm.pk
    assert (sent["alarm"]["value_before"], sent["alarm"]["value_after"]) == (0, 30 - QUEUE)


@pytest.mark.timeout(120)
@pytest.mark.services
@live_database
@needs_mosquitto
@pytest.mark.slow
def test_drops_while_the_listener_was_away_raise_the_alarm_when_it_is_back(plant, tmp_path):
    topic = f"test/{uuid.uuid4().hex[:8]}/other"
    with private_broker(tmp_path) as broker, ListenerProcess(log_dir=tmp_path, url=broker.url) as listener:
        wait_until(lambda: baseline_seen(broker), timeout=15, what="the counter's first value")
        assert listener.stop() == 0
        stopped_subscriber(broker.url, topic)
        flood(broker.url, topic, 20)
        time.sleep(1.5)  # a $SYS interval: the broker's counter has moved
        assert not DataHealthAlarm.objects.exists()
        listener.start()
        wait_until(lambda: DataHealthAlarm.objects.exists(), timeout=20, what="the alarm")
    alarm = DataHealthAlarm.objects.get()
    assert (alarm.value_before, alarm.value_after) == (0, 20 - QUEUE)


class CounterTests:
    """broker_counter_observe: when a value raises an alarm, with one listener or several."""

    pytestmark = pytest.mark.django_db

    def observe(self, value: int, last_seen: int | None = None) -> DataHealthAlarm | None:
        return broker_counter_observe(
            broker="mqtt://b:1883", name=DROPPED, value=value, last_seen=last_seen, listener="l1"
        )

    def test_the_first_value_ever_is_the_baseline_and_a_move_up_is_an_alarm(self):
        assert self.observe(7) is None
        assert self.observe(7, last_seen=7) is None
        alarm = self.observe(9, last_seen=7)
        assert alarm is not None
        assert (alarm.value_before, alarm.value_after) == (7, 9)
        assert "the broker dropped 2 messages" in alarm.message
        assert BrokerCounter.objects.get().value == 9

    def test_a_value_another_listener_already_moved_past_changes_nothing(self):
        self.observe(3)
        assert self.observe(8, last_seen=3) is not None  # listener 1
        assert self.observe(5, last_seen=3) is None  # listener 2, behind: not a restart
        assert self.observe(8, last_seen=5) is None  # listener 2 catches up: already raised
        assert DataHealthAlarm.objects.count() == 1
        assert BrokerCounter.objects.get().value == 8

    def test_a_broker_restart_starts_again_from_zero(self):
        self.observe(40)
        assert self.observe(0, last_seen=40) is None
        alarm = self.observe(6, last_seen=0)
        assert alarm is not None
        assert (alarm.value_before, alarm.value_after) == (0, 6)
        # restarted while this listener was away, and dropped since: 0 → 3
        back = self.observe(3, last_seen=None)
        assert back is not None
        assert (back.value_before, back.value_after) == (0, 3)


class AlarmReadTests:
    pytestmark = pytest.mark.django_db

    def alarm(self) -> DataHealthAlarm:
        return DataHealthAlarm.objects.create(
            kind=DataHealthKind.BROKER_DROPPED, source="mqtt://b:1883", subject=DROPPED, message="dropped 4",
            value_before=1, value_after=5, raised_at=timezone.now() - datetime.timedelta(minutes=1),
            listener="l1",
        )  # fmt: skip

    def test_the_roles_that_read_edge_nodes_read_them(
        self, api, quality_specialist, manager, operations_lead, tester
    ):
        row = self.alarm()
        for user in (quality_specialist, manager, operations_lead):
            response = api(user).get(ALARMS)
            assert response.status_code == 200
            (shown,) = response.json()["results"]
            assert (shown["id"], shown["kind"], shown["value_before"], shown["value_after"]) == (
                row.pk, "broker_dropped", 1, 5,
            )  # fmt: skip
        assert api(tester).get(ALARMS).status_code == 403
        assert api(quality_specialist).delete(f"{ALARMS}{row.pk}/").status_code == 405
        assert api(None).get(ALARMS).status_code == 401

    def test_the_admin_shows_them(self, quality_specialist):
        row = self.alarm()
        client = DjangoClient()
        client.force_login(quality_specialist)
        response = client.get("/admin/mqtt_bridge/datahealthalarm/")
        assert response.status_code == 200
        assert response.context["cl"].result_count == 1
        page = client.get(f"/admin/mqtt_bridge/datahealthalarm/{row.pk}/change/")
        assert page.status_code == 200
        assert "dropped 4" in page.content.decode()


@pytest.mark.timeout(120)
@pytest.mark.services
@live_database
@needs_mosquitto
@pytest.mark.slow
def test_a_broker_that_sends_no_counter_is_said_once(plant, tmp_path):
    """A broker without $SYS (here Mosquitto with sys_interval 0): the watch cannot work, and the
    log says so once, 30 s after connecting."""
    quiet = PrivateMosquitto(log_dir=tmp_path, options={"sys_interval": "0"})
    with quiet as broker, ListenerProcess(log_dir=tmp_path, url=broker.url) as listener:
        told = f"WARNING openspc.mqtt: the broker sent no value of {DROPPED} in 30 s"
        wait_until(lambda: told in listener.log_text(), timeout=45, what="the warning")
        time.sleep(2)
        assert listener.log_text().count(told) == 1
    assert not BrokerCounter.objects.exists()

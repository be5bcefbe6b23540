"""A sample overdue by its schedule, end to end (issue #21, must show): Celery beat and a worker on
the test database find it overdue, the subscribed manager is notified, and `manage.py mqtt_listen`
publishes `sample.overdue` on spc/schedule/<site>/<area>/<line>/<cell>/<product>-<test>, where a
test subscriber on the real broker (Mosquitto in CI) receives it."""

import json

import pytest

from apps.config import services as config_services
from apps.config.choices import ScheduleKind
from apps.config.models import Characteristic
from apps.mqtt_bridge.models import PublishCursor
from apps.mqtt_bridge.publisher import PLANT_MESSAGES_CURSOR
from apps.observations.models import ScheduledSample
from apps.subscriptions.models import Notification
from apps.subscriptions.services import subscription_create
from tests.support.mqtt import Client, ListenerProcess, wait_until
from tests.support.workers import CeleryWorkers

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.mark.timeout(180)
def test_an_overdue_sample_notifies_its_subscriber_and_is_published_on_mqtt(plant, manager, tmp_path):
    dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
    Characteristic.objects.filter(pk=dia.pk).update(
        site="Plant 1", area="Machining", line="Line 1", cell="Cell 1"
    )
    subscription_create(user=manager, scope="characteristic", characteristic=dia.pk, events=["schedule"])
    plant_side = Client(subscribe=["spc/schedule/#"])
    try:
        with ListenerProcess(log_dir=tmp_path) as listener:
            # The outbox's cursor starts at the listener's first round: what is raised after is published.
            wait_until(
                lambda: PublishCursor.objects.filter(name=PLANT_MESSAGES_CURSOR).exists(),
                timeout=15, what="the listener's first publishing round",
            )  # fmt: skip
            # Every minute, no grace: the sample of this minute is overdue at once.
            config_services.schedule_create(
                characteristic=dia, kind=ScheduleKind.INTERVAL, every_minutes=1, grace_minutes=0
            )
            with CeleryWorkers(
                count=1, log_dir=tmp_path, beat=True, env={"SCHEDULE_CHECK_SECONDS": "1"}
            ) as workers:
                workers.wait_for(
                    lambda: Notification.objects.filter(user=manager, event="sample.overdue").exists(),
                    timeout=60, what="the overdue sample's notification",
                )  # fmt: skip
                wait_until(
                    lambda: plant_side.messages("spc/schedule/"), timeout=20, what="sample.overdue over MQTT"
                )
            assert listener.stop() == 0
    finally:
        plant_side.close()

    overdue = ScheduledSample.objects.filter(characteristic=dia, state="overdue").order_by("pk").first()
    assert overdue is not None
    message = plant_side.messages("spc/schedule/")[0]
    assert message.topic == f"spc/schedule/Plant 1/Machining/Line 1/Cell 1/RING-74-{plant.dia.code}"
    assert message.qos == 1
    body = json.loads(message.payload)
    assert (body["event"], body["id"], body["characteristic"], body["state"]) == (
        "sample.overdue", overdue.pk, dia.pk, "overdue",
    )  # fmt: skip
    assert (body["product_code"], body["test_code"]) == ("RING-74", plant.dia.code)
    note = Notification.objects.get(
        user=manager, event="sample.overdue", dedup_key=f"sample.overdue:{body['id']}"
    )
    assert note.title == f"Sample overdue: DIA {plant.dia.name} of RING-74"

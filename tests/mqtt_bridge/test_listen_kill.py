"""Kill -9 the listener while the plant simulator publishes 500 messages/s, twice, and restart it:
every message the broker acknowledged to the simulator is stored exactly once.

The broker is a private Mosquitto whose per-session queue holds what arrives while the listener
is dead (the shared one keeps Mosquitto's default of 1,000, two seconds at this rate;
docs/mqtt.md); where Mosquitto is not installed, the configured broker if it keeps sessions (the
embedded amqtt does not: the test says so and is skipped).
"""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from apps.config import services as config_services
from apps.config.choices import DataSource
from apps.config.models import Characteristic
from apps.mqtt_bridge.readings import message_key
from apps.observations.models import Observation
from tests.calculations.api_helpers import window_forget
from tests.support.mqtt import Client, ListenerProcess, PrivateMosquitto, keeps_sessions, wait_until
from tests.support.workers import BASE_DIR, database_url_for_workers

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

RATE, SECONDS = 500, 12
KILLS_AT = (3.0, 7.0)  # seconds into the run
DEAD_FOR = 1.0


@pytest.mark.timeout(240)
def test_kill_9_while_publishing_500_per_second_loses_and_duplicates_nothing(plant, tmp_path, settings):
    topic = f"test/{uuid.uuid4().hex[:8]}/line1/cell1/ring-diameter"
    dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
    window_forget(dia)
    config_services.characteristic_update(
        characteristic=dia, data={"data_source": DataSource.TAG, "tag": topic}
    )
    acked_log = tmp_path / "acked.log"
    if not PrivateMosquitto.available() and not keeps_sessions(settings.MQTT_URL):
        pytest.skip(
            "no Mosquitto here, and the configured broker (the embedded amqtt?) drops a persistent "
            "session's QoS 1 messages while its client is away: no listener can be exactly-once on it"
        )

    with (
        PrivateMosquitto(log_dir=tmp_path)
        if PrivateMosquitto.available()
        else _configured(settings) as broker
    ):
        witness = Client(url=broker.url, subscribe=[topic])  # sees every message the broker accepted
        listener = ListenerProcess(log_dir=tmp_path, url=broker.url)
        listener.start()
        simulator_log = (tmp_path / "simulator.log").open("wb")
        simulator = subprocess.Popen(
            [sys.executable, str(BASE_DIR / "manage.py"), "simulate_plant", "--url", broker.url,
             "--rate", str(RATE), "--seconds", str(SECONDS), "--acked-log", str(acked_log),
             "--no-special-causes", "--seed", "3"],
            env={**os.environ, "DATABASE_URL": database_url_for_workers()}, cwd=BASE_DIR,
            stdout=simulator_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            started = time.monotonic()
            for at in KILLS_AT:
                time.sleep(max(0.0, started + at - time.monotonic()))
                listener.kill()
                time.sleep(DEAD_FOR)
                listener.start()
            assert simulator.wait(timeout=SECONDS + 60) == 0, (tmp_path / "simulator.log").read_text()
            acked = {line.strip() for line in acked_log.read_text().splitlines() if line.strip()}
            wait_until(
                lambda: Observation.objects.count() >= len(acked), timeout=90, what="every message stored"
            )
            time.sleep(2)  # a duplicate would arrive now
            assert listener.stop() == 0
        finally:
            simulator.kill()
            simulator.wait()
            simulator_log.close()
            listener.stop()
            witness.close()

    assert len(acked) >= RATE * SECONDS * 0.9, "the simulator published at the rate asked"
    accepted = {}
    for message in witness.messages(topic):
        body = json.loads(message.payload)
        if body["id"] in acked:
            accepted[body["id"]] = message_key(topic, bytes(message.payload))
    assert set(accepted) == acked, "the witness saw every acknowledged message"
    keys = [key.split(":", 1)[1] for key in Observation.objects.values_list("idempotency_key", flat=True)]
    assert len(keys) == len(set(keys)), "a message stored twice"
    assert sorted(keys) == sorted(accepted.values()), "stored exactly the acknowledged messages"
    assert listener.log_text().count("INFO openspc.mqtt: ready") == 1 + len(KILLS_AT)
    assert "resumed session" in listener.log_text()


class _configured:
    """The configured broker, as a context manager like PrivateMosquitto."""

    def __init__(self, settings) -> None:
        self.url = settings.MQTT_URL

    def __enter__(self) -> "_configured":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

"""Times of measurement out of bounds over MQTT, end to end: a real broker, `manage.py mqtt_listen`,
a real Celery worker. The readings are stored like any other, then rejected by the pipeline with
the limit named (OBSERVATION_MAX_FUTURE_SECONDS, OBSERVATION_HORIZON_DAYS); one with a time that
no datetime holds in UTC is a dead letter."""

import json
import uuid

import pytest
from django.utils import timezone

from apps.config.choices import DataSource
from apps.mqtt_bridge.models import DeadLetter
from apps.observations.choices import ObservationSource, ObservationStatus
from apps.observations.models import Observation
from tests.support.mqtt import Client, ListenerProcess, fed_by
from tests.support.workers import CeleryWorkers, pipeline_idle

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.mark.timeout(120)
def test_a_far_future_and_a_far_past_time_are_stored_and_rejected_with_the_reason(plant, tmp_path):
    topic = f"test/{uuid.uuid4().hex[:8]}/line1/cell1/ring-diameter"
    fed_by(plant, source=DataSource.TAG, tag=topic)
    now = timezone.now().isoformat()
    messages = [
        (topic, json.dumps({"value": 74.0, "id": "future", "ts": "9999-12-31T23:59:59Z"})),
        (topic, json.dumps({"value": 74.0, "id": "past", "ts": "1970-01-01T00:00:00Z"})),
        (topic, json.dumps({"value": 74.0, "id": "now", "ts": now})),
        (topic, json.dumps({"value": 74.0, "id": "overflow", "ts": "9999-12-31T23:00:00-05:00"})),
    ]
    with CeleryWorkers(count=1, log_dir=tmp_path) as workers, ListenerProcess(log_dir=tmp_path) as listener:
        Client().publish_all(messages)
        settled = lambda: Observation.objects.count() == 3 and DeadLetter.objects.exists() and pipeline_idle()  # noqa: E731
        workers.wait_for(settled, timeout=60, what="three observations processed and a dead letter")
        assert listener.stop() == 0
    rows = {
        row.observed_at.year: row
        for row in Observation.objects.filter(source=ObservationSource.MQTT).order_by("observed_at")
    }
    assert {year: row.status for year, row in rows.items()} == {
        1970: ObservationStatus.REJECTED, timezone.now().year: ObservationStatus.CONFIRMED,
        9999: ObservationStatus.REJECTED,
    }  # fmt: skip
    [future] = rows[9999].reasons
    assert future["code"] == "observed_in_future"
    assert future["message"].startswith("observed_at 9999-12-31T23:59:59+00:00 is ")
    assert future["message"].endswith("OBSERVATION_MAX_FUTURE_SECONDS allows 300 s")
    [past] = rows[1970].reasons
    assert past["code"] == "observed_too_early"
    assert "is more than 3650 days before the observation was received" in past["message"]
    assert past["message"].endswith("OBSERVATION_HORIZON_DAYS is 3650")
    (dead,) = DeadLetter.objects.all()
    assert (dead.topic, dead.message) == (topic, "ts '9999-12-31T23:00:00-05:00' is out of range")

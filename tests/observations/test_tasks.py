"""Celery: the observations.process task, its queue, and the periodic stale sweep."""

import datetime

import pytest
from django.conf import settings
from django.utils import timezone

from apps.observations import tasks
from apps.observations.choices import ObservationStatus
from apps.observations.models import Observation
from openspc.celery import app

pytestmark = pytest.mark.django_db


def test_process_task_routes_to_observations_in():
    route = app.amqp.router.route({}, "observations.process", args=(), kwargs={"ids": [1]})
    assert route["queue"].name == "observations.in"


def test_process_task_is_acknowledged_late():
    assert tasks.observations_process_task.name == "observations.process"
    assert tasks.observations_process_task.acks_late is True


def test_the_sweep_stays_on_the_default_queue_and_runs_every_minute():
    route = app.amqp.router.route({}, "observations.requeue_stale", args=(), kwargs={})
    assert route["queue"].name == "celery"
    entry = settings.CELERY_BEAT_SCHEDULE["observations-requeue-stale"]
    assert (entry["task"], entry["schedule"]) == ("observations.requeue_stale", 60.0)


def test_the_task_runs_the_service(plant):
    ids = plant.record(
        {"item": plant.items[0], "test": plant.dia, "values": [74.0]},
        {"item": plant.items[1], "test": plant.dia, "values": [99.0]},
    )
    assert tasks.observations_process_task.run(ids=ids) == {"confirmed": 1, "rejected": 1}
    assert tasks.observations_process_task.run(ids=ids) == {"confirmed": 0, "rejected": 0}
    assert set(Observation.objects.values_list("status", flat=True)) == {
        ObservationStatus.CONFIRMED,
        ObservationStatus.REJECTED,
    }


def test_the_sweep_task_uses_the_configured_age(plant, queued, settings):
    settings.OBSERVATIONS_REQUEUE_AFTER_SECONDS = 600
    old, recent = plant.record(
        {"item": plant.items[0], "test": plant.dia, "values": [74.0]},
        {"item": plant.items[1], "test": plant.dia, "values": [74.0]},
    )
    Observation.objects.filter(pk=old).update(received_at=timezone.now() - datetime.timedelta(seconds=601))
    Observation.objects.filter(pk=recent).update(received_at=timezone.now() - datetime.timedelta(seconds=590))
    assert tasks.observations_requeue_stale_task.run() == 1
    assert queued == [[old]]

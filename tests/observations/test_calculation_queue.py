"""One queued calculation per characteristic at a time: bursts of batches coalesce (real Redis)."""

import pytest
from django.core.cache import cache

from apps.calculations.tasks import calculations_apply_task
from apps.config.models import Characteristic
from apps.observations import handoff


@pytest.fixture
def sent(monkeypatch):
    messages: list[dict] = []
    monkeypatch.setattr(
        handoff.current_app,
        "send_task",
        lambda name, kwargs, countdown=None: messages.append({"name": name, **kwargs}),
    )
    for characteristic_id in (901, 902, 903):
        cache.delete(handoff.calculation_pending_key(characteristic_id))
    return messages


def test_a_pending_calculation_is_not_queued_twice(sent):
    handoff.calculations_queue(characteristic_ids=[901, 902])  # one message for the batch
    handoff.calculations_queue(characteristic_ids=[901])  # pending: nothing sent
    handoff.calculations_queue(characteristic_ids=[903, 901])  # only the new one
    assert sent == [
        {"name": "calculations.apply", "characteristic_ids": [901, 902]},
        {"name": "calculations.apply", "characteristic_ids": [903]},
    ]


@pytest.mark.django_db
def test_a_started_calculation_lets_the_next_batch_queue_another(sent, plant):
    dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
    cache.delete(handoff.calculation_pending_key(dia.pk))
    handoff.calculations_queue(characteristic_ids=[dia.pk])
    handoff.calculations_queue(characteristic_ids=[dia.pk])
    calculations_apply_task.run(characteristic_ids=[dia.pk])  # nothing to do, but it has started
    handoff.calculations_queue(characteristic_ids=[dia.pk])
    assert [message["characteristic_ids"] for message in sent] == [[dia.pk], [dia.pk]]


def test_without_redis_every_batch_queues(sent, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(handoff, "cache_add_many", down)
    handoff.calculations_queue(characteristic_ids=[901])
    handoff.calculations_queue(characteristic_ids=[901])
    assert len(sent) == 2

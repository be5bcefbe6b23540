"""Celery tasks of lot records. They call services and hold no logic.

`records.oos_open` is sent by name from apps.observations (which sits below this app) after the
pipeline confirmed manual results outside their specification limits; redelivery opens nothing new.
"""

from celery import shared_task

from apps.records import services
from openspc import queues


@shared_task(name=queues.RECORDS_OOS_OPEN, acks_late=True)
def records_oos_open_task(*, observation_ids: list[int]) -> int:
    return len(services.oos_investigations_open(observation_ids=observation_ids))

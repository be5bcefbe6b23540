"""Celery tasks of the subscription service. They call services and hold no logic.

`subscriptions.fanout` is sent by name from openspc.events (which sits below this app)
once per channel-layer send, with that send's notification-worthy events. It goes to the default
`celery` queue (settings.CELERY_TASK_ROUTES); redelivery is harmless (services.py says why).
`subscriptions.email_digest` runs every NOTIFICATION_EMAIL_INTERVAL_SECONDS (beat).
"""

from typing import Any

from celery import shared_task

from apps.subscriptions import services
from openspc import queues


@shared_task(name=queues.SUBSCRIPTIONS_FANOUT, acks_late=True)
def subscriptions_fanout_task(*, events: list[dict[str, Any]]) -> int:
    return len(services.notifications_fanout(events=events))


@shared_task(name=queues.SUBSCRIPTIONS_EMAIL_DIGEST)
def subscriptions_email_digest_task() -> int:
    return services.notifications_email_digest()

"""Celery tasks of the observation pipeline. They call services and hold no logic.

`observations.process` is routed to the `observations.in` queue (settings.CELERY_TASK_ROUTES).
It is acknowledged late, so a worker killed mid-task has it delivered again;
the service is idempotent, so a second run changes nothing.

`observations.subgroups_timeout` is run by beat every SUBGROUP_TIMEOUT_SWEEP_SECONDS on the
default queue: it ends the unfinished subgroups of characteristics with a `subgroup_timeout`.
"""

import datetime

from celery import shared_task
from django.conf import settings

from apps.observations import services, subgroups
from openspc import queues


@shared_task(name=queues.OBSERVATIONS_PROCESS, acks_late=True)
def observations_process_task(*, ids: list[int]) -> dict[str, int]:
    # Other waiting rows too, up to PROCESS_TAKE in all: a backlog is taken in fewer transactions.
    result = services.observations_process(ids=ids, up_to=services.PROCESS_TAKE)
    return {"confirmed": result.confirmed, "rejected": result.rejected}


@shared_task(name=queues.OBSERVATIONS_REQUEUE_STALE)
def observations_requeue_stale_task() -> int:
    older_than = datetime.timedelta(seconds=settings.OBSERVATIONS_REQUEUE_AFTER_SECONDS)
    return services.observations_requeue_stale(older_than=older_than)


@shared_task(name=queues.OBSERVATIONS_DATA_HEALTH)
def observations_data_health_task() -> dict[str, int]:
    checked = services.data_health_check()
    return {"checked": checked.checked, "changed": len(checked.changed)}


@shared_task(name=queues.OBSERVATIONS_SCHEDULES)
def observations_schedules_task() -> dict[str, int]:
    checked = services.schedules_check()
    return {"opened": checked.opened, "taken": checked.taken, "overdue": len(checked.overdue)}


@shared_task(name=queues.OBSERVATIONS_SUBGROUPS_TIMEOUT)
def observations_subgroups_timeout_task() -> list[int]:
    return subgroups.subgroups_timeout_sweep()

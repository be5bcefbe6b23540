"""Celery tasks of the calculation worker. They call services and hold no logic.

`calculations.apply` is routed to the `calculations` queue (settings.CELERY_TASK_ROUTES)
and sent by name from apps.observations (which sits below this app). Ordering per
characteristic comes from the ChartState row lock, not from the queue (see
services/calculate.py), so any number of workers may consume it.
"""

from typing import Any

from celery import shared_task, signals

from apps.calculations import services
from apps.observations.handoff import calculations_pending_clear, calculations_queue
from openspc import queues

# Characteristics per catch-up message: one transaction takes them all (BATCH rows at a time).
CATCH_UP_CHUNK = 20
# Seconds a calculation waits for a characteristic another worker holds before leaving it to it, and
# before asking for it again then (a run takes 0.02-0.5 s).
LOCK_WAIT_SECONDS = 0.05
SKIPPED_RETRY_SECONDS = 0.1


@shared_task(name=queues.CALCULATIONS_APPLY, acks_late=True)
def calculations_apply_task(*, characteristic_ids: list[int]) -> dict[str, int]:
    ids = list(characteristic_ids)
    # Cleared before the work: whatever is committed from now on queues another calculation.
    calculations_pending_clear(characteristic_ids=ids)
    # A characteristic another worker is still calculating after LOCK_WAIT_SECONDS is left to it,
    # and asked for again a little later: that worker takes what was committed when it read, the
    # rest is for this message. Waiting for its lock cost a whole run's time, only to find the
    # work mostly done; a run nearly done is waited for (asking again would add latency).
    result = services.characteristics_calculate(characteristic_ids=ids, lock_wait=LOCK_WAIT_SECONDS)
    if result.skipped:
        calculations_queue(characteristic_ids=result.skipped, countdown=SKIPPED_RETRY_SECONDS)
    return {
        "samples": result.samples,
        "observations": result.observations,
        "violations": result.violations,
        "skipped": len(result.skipped),
    }


@shared_task(name=queues.CALCULATIONS_CATCH_UP)
def calculations_catch_up_task() -> int:
    """Queue every characteristic the calculation is behind on (a lost message, a broker outage)."""
    behind = services.characteristics_behind()
    for start in range(0, len(behind), CATCH_UP_CHUNK):
        calculations_apply_task.delay(characteristic_ids=behind[start : start + CATCH_UP_CHUNK])
    return len(behind)


@shared_task(name=queues.CALCULATIONS_WARM_UP)
def calculations_warm_up_task() -> int:
    """Store the rolling windows that are missing (services.windows_warm_up): sent when a worker starts."""
    return services.windows_warm_up()


@signals.worker_ready.connect
def _warm_up_when_ready(sender: Any = None, **kwargs: Any) -> None:
    """A worker that starts queues a warm-up (on the calculations queue), so the first value after a
    restart of Redis or the workers does not wait for its window to be rebuilt from the database."""
    calculations_warm_up_task.delay()

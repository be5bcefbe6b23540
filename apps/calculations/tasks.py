"""Celery tasks of the calculation worker. They call services and hold no logic.

`calculations.apply` is routed to the `calculations` queue (settings.CELERY_TASK_ROUTES)
and sent by name from apps.observations (which sits below this app). Ordering per
characteristic comes from the ChartState row lock, not from the queue (see
services/calculate.py), so any number of workers may consume it.
"""

from celery import shared_task

from apps.calculations import services
from apps.observations.subgroups import calculation_pending_clear


@shared_task(name="calculations.apply", acks_late=True)
def calculations_apply_task(*, characteristic_id: int) -> dict[str, int]:
    # Cleared before the work: whatever is committed from now on queues another calculation.
    calculation_pending_clear(characteristic_id=characteristic_id)
    result = services.characteristic_calculate(characteristic_id=characteristic_id)
    return {"samples": result.samples, "observations": result.observations, "violations": result.violations}


@shared_task(name="calculations.catch_up")
def calculations_catch_up_task() -> int:
    """Queue every characteristic the calculation is behind on (a lost message, a broker outage)."""
    behind = services.characteristics_behind()
    for characteristic_id in behind:
        calculations_apply_task.delay(characteristic_id=characteristic_id)
    return len(behind)

"""The hand-off to the calculation worker: queue `calculations.apply` for characteristics with new
samples, once per characteristic while one is pending.

By task name (openspc.queues): apps.calculations sits above this app (DESIGN.md). The calculation
task clears the pending marks when it starts.
"""

import contextlib
from collections.abc import Sequence

from celery import current_app
from django.core.cache import cache
from django.db import transaction

from openspc import queues
from openspc.cache import cache_add_many

# How long a queued calculation counts as pending. If its message is lost, the characteristic is
# queued again by the next batch after this, or by the catch-up sweep.
CALCULATION_PENDING_SECONDS = 30


def calculation_pending_key(characteristic_id: int) -> str:
    """Set while a calculation of the characteristic is queued and has not started."""
    return f"calculations:pending:{characteristic_id}"


def calculations_pending_clear(*, characteristic_ids: Sequence[int]) -> None:
    with contextlib.suppress(Exception):  # no cache: the marks expire by themselves
        cache.delete_many([calculation_pending_key(pk) for pk in characteristic_ids])


def calculations_queue(*, characteristic_ids: Sequence[int], countdown: float | None = None) -> None:
    """Ask the calculation worker to bring these characteristics up to date (after commit).

    One queued calculation per characteristic is enough: it takes everything committed by
    the time it starts. So a characteristic goes into the message only if none is pending
    for it (an atomic add in Redis); the task clears the marks when it starts. Under load
    this turns one calculation per batch and characteristic into one per characteristic per
    worker turn, which is where a busy pipeline spent most of its time. The characteristics
    of one batch go in one message (one transaction for all of them), and their marks are set in
    one round trip. If Redis cannot tell, the characteristics are sent. `countdown`: seconds the
    message waits before a worker runs it.
    """
    keys = {calculation_pending_key(pk): pk for pk in characteristic_ids}
    try:
        added = cache_add_many(list(keys), 1, CALCULATION_PENDING_SECONDS)
    except Exception:  # no cache: send; a duplicate calculation is harmless
        added = list(keys)
    ids = [keys[key] for key in added]
    if ids:
        current_app.send_task(
            queues.CALCULATIONS_APPLY, kwargs={"characteristic_ids": ids}, countdown=countdown
        )


def calculations_queue_on_commit(characteristic_ids: Sequence[int]) -> None:
    if characteristic_ids:
        ids = list(characteristic_ids)
        # robust: a broker outage must not undo committed work; the calculation sweep catches up.
        transaction.on_commit(lambda: calculations_queue(characteristic_ids=ids), robust=True)


def oos_investigations_queue_on_commit(observation_ids: Sequence[int]) -> None:
    """Ask apps.records (above this app) to open an out-of-spec investigation for each of these
    confirmed manual results, after commit. By task name, like the calculations."""
    if observation_ids:
        ids = list(observation_ids)
        # robust: a broker outage must not undo the confirmation; the lot review still shows the
        # result out of spec, and its release stays blocked by it.
        transaction.on_commit(
            lambda: current_app.send_task(queues.RECORDS_OOS_OPEN, kwargs={"observation_ids": ids}),
            robust=True,
        )

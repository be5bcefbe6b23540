"""Rolling windows warmed when a worker starts (issue #20): the first value after Redis or the workers
restart is judged from a stored window, not one rebuilt from the database in its own request."""

from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.calculations import services
from apps.calculations.services.calculate import window_key
from apps.calculations.tasks import calculations_warm_up_task
from openspc import queues
from tests.calculations.api_helpers import dia_of, historical, sized, subgroups_store

VALUES = [[74.0], [74.02], [73.99], [74.01], [74.03], [73.98]]


def test_a_missing_window_is_rebuilt_and_stored(plant: Any, django_capture_on_commit_callbacks: Any) -> None:
    dia = dia_of(plant)
    historical(dia, center=74.0, sigma=0.02)
    with django_capture_on_commit_callbacks(execute=True):  # the calculation stores its window on commit
        subgroups_store(dia, VALUES, lot=plant.lot, user=plant.tester)
    judged = cache.get(window_key(dia.pk))
    assert judged is not None  # the calculation stored it

    cache.delete(window_key(dia.pk))  # Redis restarted
    assert services.windows_warm_up() == 1
    assert cache.get(window_key(dia.pk)) == judged  # the same document the calculation had stored
    assert services.windows_warm_up() == 0  # current: nothing to do


def test_the_next_value_uses_the_warmed_window(plant: Any) -> None:
    """After a warm-up the calculation reads no samples to rebuild the window."""
    dia = dia_of(plant)
    historical(dia, center=74.0, sigma=0.02)
    subgroups_store(dia, VALUES, lot=plant.lot, user=plant.tester)
    cache.delete(window_key(dia.pk))
    services.windows_warm_up()
    with CaptureQueriesContext(connection) as queries:
        subgroups_store(dia, [[74.0]], lot=plant.lot, user=plant.tester)
    rebuilds = [q["sql"] for q in queries if "ORDER BY" in q["sql"] and '"sequence" DESC' in q["sql"]]
    assert rebuilds == []


def test_characteristics_without_limits_or_samples_are_left_alone(plant: Any) -> None:
    no_limits = sized(plant, 1, code="NOLIM")
    subgroups_store(no_limits, [[1.0], [2.0]], lot=plant.lot, user=plant.tester)
    no_samples = dia_of(plant)
    historical(no_samples, center=74.0, sigma=0.02)
    assert services.windows_warm_up() == 0
    assert cache.get(window_key(no_limits.pk)) is None
    assert cache.get(window_key(no_samples.pk)) is None


def test_the_task_runs_on_the_calculation_queue(plant: Any) -> None:
    assert settings.CELERY_TASK_ROUTES[queues.CALCULATIONS_WARM_UP] == {"queue": queues.CALCULATIONS_QUEUE}
    dia = dia_of(plant)
    historical(dia, center=74.0, sigma=0.02)
    subgroups_store(dia, VALUES, lot=plant.lot, user=plant.tester)
    cache.delete(window_key(dia.pk))
    assert calculations_warm_up_task.apply().get() == 1

"""Migration config.0007: day-based plan assignments become periods of time that cover exactly the
days they covered, in the plant's time zone."""

import datetime
import zoneinfo

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.config.models import PlanAssignment

BEFORE = [("config", "0006_verification_settings")]
AFTER = [("config", "0007_plan_assignment_effective_timestamps")]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_days_become_the_start_of_the_first_and_the_start_of_the_day_after_the_last(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        state = executor.loader.project_state(BEFORE).apps
        product = state.get_model("config", "Product").objects.create(code="P-MIG", name="p")
        plan = state.get_model("config", "TestPlan").objects.create(code="MIG", name="m", status="released")
        old = state.get_model("config", "PlanAssignment")
        old.objects.create(
            product=product, plan=plan, effective_from=datetime.date(2025, 1, 1),
            effective_to=datetime.date(2025, 1, 31),
        )  # fmt: skip
        old.objects.create(product=product, plan=plan, effective_from=datetime.date(2025, 3, 1))
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        periods = sorted(
            PlanAssignment.objects.filter(product_id=product.pk).values_list(
                "effective_from", "effective_to"
            ),
            key=lambda period: period[0],
        )
        assert periods == [
            (
                datetime.datetime(2025, 1, 1, tzinfo=berlin),
                datetime.datetime(2025, 2, 1, tzinfo=berlin),  # the end of 31 January, exclusive
            ),
            (datetime.datetime(2025, 3, 1, tzinfo=berlin), None),
        ]
        assert periods[0][0] == datetime.datetime(2024, 12, 31, 23, tzinfo=datetime.UTC)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

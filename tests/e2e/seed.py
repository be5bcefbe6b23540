"""Many samples at once for the browser tests: rows written straight through the ORM (5 000 in
well under a second), where posting them through the pipeline would take minutes.

The rows are what the pipeline would have stored for single values: sequence numbers go on from
the characteristic's last, its SubgroupFeed is moved on so the worker numbers the next sample
after them, and each is judged in control against the characteristic's current limits (if any).
The calculation's ChartState is moved on too, as if it had judged them. They have no
observations behind them; the charts and chart-data read samples only."""

from collections.abc import Sequence

from django.db import transaction

from apps.calculations.models import ChartState
from apps.calculations.services.calculate import limits_current
from apps.config.models import Characteristic
from apps.observations.models import Lot, Sample, SubgroupFeed
from tests.calculations.api_helpers import window_forget


def samples_seed(*, characteristic: Characteristic, lot: Lot, values: Sequence[float]) -> list[Sample]:
    """Store one single-value sample per value, in order, after the characteristic's last."""
    limits = limits_current(characteristic)
    version = limits.version if limits is not None else None
    with transaction.atomic():
        SubgroupFeed.objects.bulk_create([SubgroupFeed(characteristic=characteristic)], ignore_conflicts=True)
        feed = SubgroupFeed.objects.select_for_update().get(characteristic=characteristic)
        first = feed.last_sequence + 1
        rows = Sample.objects.bulk_create(
            [
                Sample(
                    characteristic=characteristic, sequence=first + i, lot=lot, values=[value],
                    observation_ids=[], n=1, mean=value, in_control=None if version is None else True,
                    limits_version=version,
                )
                for i, value in enumerate(values)
            ],
            batch_size=1000,
        )  # fmt: skip
        feed.last_sequence = first + len(values) - 1
        feed.save(update_fields=["last_sequence"])
        # Judged already: the calculation is as far as the feed (else pipeline_idle waits forever).
        ChartState.objects.update_or_create(
            characteristic=characteristic,
            defaults={"last_sequence": feed.last_sequence, "last_position": feed.last_position},
        )
    window_forget(characteristic)  # the worker's cached window rebuilds from these rows
    return rows

"""POST /api/v1/samples (flow 1 of the seed): a whole subgroup, processed before the answer.

It goes through the same services as everything else: the measurements are stored
as one `received` observation, confirmed by the observations.in service, folded
into a sample (a full subgroup is never split or mixed), and the characteristic's
calculation runs. Only the order is synchronous. A rejected observation stays
stored with its reasons, and the answer says why.
"""

import datetime
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from apps.calculations.models import Violation
from apps.calculations.services.calculate import characteristic_calculate
from apps.config.choices import TestKind
from apps.config.models import Characteristic
from apps.observations.choices import LOT_WORKING, ObservationSource, ObservationStatus
from apps.observations.models import Item, Lot, Observation, Sample
from apps.observations.services.entries import item_entry_check
from apps.observations.services.process import observations_process
from apps.observations.services.record import ObservationEntry, observations_record


class ObservationRejected(ValidationError):
    """The measurements were stored, then rejected by the configuration check."""


@dataclass(frozen=True)
class SampleResult:
    sample: Sample
    violations: list[Violation]
    observation: Observation


def _context(characteristic: Characteristic, context: dict[str, Any], user: User) -> tuple[Lot, Item | None]:
    # The item with its lot in one query; the lot alone when there is no item, or none in that lot.
    item = None
    if context.get("item") is not None:
        item = Item.objects.select_related("lot").filter(pk=context["item"], lot_id=context["lot"]).first()
    lot = item.lot if item is not None else Lot.objects.filter(pk=context["lot"]).first()
    if lot is None:
        raise ValidationError({"context.lot": f"Lot {context['lot']} does not exist."})
    if lot.product_id != characteristic.product_id:
        raise ValidationError(
            {"context.lot": f"Lot {lot.number} is not a lot of {characteristic.product.code}."}
        )
    if lot.status not in LOT_WORKING:
        raise ValidationError({"context.lot": f"Lot {lot.number} is {lot.status}; it takes no more samples."})
    if context.get("item") is not None and item is None:
        raise ValidationError({"context.item": f"Item {context['item']} is not in lot {lot.number}."})
    item_entry_check(item=item, user=user)
    return lot, item


def sample_submit(
    *, characteristic: Characteristic, measurements: list[Any], context: dict[str, Any], user: User
) -> SampleResult:
    """Store, confirm, group and judge one subgroup now; the sample and its violations."""
    if not characteristic.active:
        raise ValidationError({"characteristic_id": f"Characteristic {characteristic} is inactive."})
    size = 1 if characteristic.test.kind != TestKind.VARIABLE else characteristic.subgroup_size
    if len(measurements) != size:
        raise ValidationError(
            {"measurements": f"{characteristic} takes subgroups of {size} value(s); got {len(measurements)}."}
        )
    lot, item = _context(characteristic, context, user)
    observed_at: datetime.datetime | None = context.get("observed_at")
    entry = ObservationEntry(
        lot=lot, item=item, test=characteristic.test, values=measurements, observed_at=observed_at,
        idempotency_key=context.get("idempotency_key"),
    )  # fmt: skip
    # A key reused for another subgroup (test, lot, item, values or time) is a Conflict there.
    # Stored and committed first: whatever happens next, the measurements are kept (a failure
    # below leaves the row `received` for the sweep to process).
    recorded = observations_record(entries=[entry], source=ObservationSource.MANUAL, user=user, queue=False)
    # Processed and calculated in transactions of their own, as a worker does: one request's
    # calculation (the chart state lock) runs while the next one folds (the feed lock), and a
    # calculation takes every sample committed before it starts, so under load one judges several
    # requests' samples. One transaction for both held the chart state through the fold too: at 4
    # clients on one characteristic that was a third of the throughput (issue #20).
    processed = observations_process(ids=recorded.ids, calculate=False)
    # The row as this request processed it; none if it was stored before (a retry) or another
    # worker holds it, and then it is read after the calculation, as it stands.
    mine = next((row for row in processed.rows if row.pk == recorded.ids[0]), None)
    keep = [mine.sample_id] if mine is not None and mine.sample_id is not None else []
    calculated = characteristic_calculate(characteristic_id=characteristic.pk, keep=keep)
    observation = mine or Observation.objects.get(pk=recorded.ids[0])
    if observation.status == ObservationStatus.REJECTED:
        reasons = "; ".join(reason["message"] for reason in observation.reasons)
        raise ObservationRejected(
            f"Observation {observation.pk} was stored and rejected: {reasons}.", code="observation_rejected"
        )
    if observation.sample_id is None:  # still `received`: another worker holds it; it will be processed
        raise ValidationError(
            f"Observation {observation.pk} is stored and being processed; read it at /api/v1/observations/.",
            code="processing",
        )
    if observation.sample_id in calculated.kept:  # judged by this request: nothing to read back
        sample, found = calculated.kept[observation.sample_id]
        return SampleResult(sample, sorted(found, key=lambda v: (v.rule, v.chart)), observation)
    sample = Sample.objects.select_related("characteristic__test").get(pk=observation.sample_id)
    violations = list(sample.violations.select_related("sample").order_by("rule", "chart"))
    return SampleResult(sample, violations, observation)

"""Lot and product statistics, kept incrementally and recomputed when the lot checksum disagrees.

Called by the calculation service with the characteristic's ChartState row locked,
so the rows of one characteristic are never updated by two workers at once.
"""

import datetime
import math
from collections.abc import Iterable, Sequence
from typing import TypeVar

from django.db.models import Q
from django.utils import timezone

from apps.calculations.choices import CPK_RELEASE, Disposition
from apps.calculations.models import LotStatistics, Moments, ProductStatistics
from apps.calculations.window import ATTRIBUTE_KINDS, Lines
from apps.config.choices import chart_type_by_subgroup_size
from apps.config.models import Characteristic, ControlLimits
from apps.config.spec import outside_spec
from apps.observations.checksum import checksum_add, checksum_of
from apps.observations.choices import ObservationStatus
from apps.observations.models import Observation, Sample
from openspc.rows import RowsUpdate, rows_insert, rows_update_together
from spc import c4, capability_indices, d2, within_dof


def moments_reset(stats: Moments) -> None:
    stats.n, stats.mean, stats.m2, stats.sd = 0, None, 0.0, None
    stats.shift, stats.shifted_mean = None, 0.0
    stats.minimum = stats.maximum = None
    stats.out_of_spec = 0


def moments_add(stats: Moments, values: Iterable[float], characteristic: Characteristic) -> None:
    """Welford's update, value by value, in the order given, on the values minus the shift (the
    update loses about log10(mean / SD) digits of the SD; shifted, the mean is near 0)."""
    lsl, usl = characteristic.lsl, characteristic.usl
    for value in values:
        if stats.shift is None:  # the first value, or statistics kept before there was a shift
            kept = stats.mean if stats.n else None
            stats.shift, stats.shifted_mean = (value if kept is None else kept), 0.0
        stats.n += 1
        shifted = value - stats.shift
        delta = shifted - stats.shifted_mean
        stats.shifted_mean += delta / stats.n
        stats.m2 += delta * (shifted - stats.shifted_mean)
        stats.mean = stats.shift + stats.shifted_mean
        stats.minimum = value if stats.minimum is None else min(stats.minimum, value)
        stats.maximum = value if stats.maximum is None else max(stats.maximum, value)
        if outside_spec(value, lsl, usl):
            stats.out_of_spec += 1
    stats.sd = math.sqrt(stats.m2 / (stats.n - 1)) if stats.n > 1 else None


def _lot_finish(stats: LotStatistics, characteristic: Characteristic, attribute: bool) -> None:
    cpk = None
    if not attribute and stats.mean is not None and stats.sd:
        cpk = capability_indices(stats.mean, stats.sd, characteristic.lsl, characteristic.usl)[1]
    stats.cpk = cpk
    if stats.n == 0:
        stats.disposition = Disposition.PENDING
    elif stats.out_of_spec:
        stats.disposition = Disposition.REJECT
    elif cpk is not None and cpk < CPK_RELEASE:
        stats.disposition = Disposition.REVIEW
    else:
        stats.disposition = Disposition.RELEASE


def lot_statistics_recompute(stats: LotStatistics, characteristic: Characteristic, up_to: int) -> None:
    """Rebuild a lot's statistics from its confirmed observations up to position `up_to` (a correction
    took a result out), with its disposition."""
    _lot_recompute(stats, characteristic, up_to)
    _lot_finish(stats, characteristic, characteristic.test.kind != "variable")


def product_statistics_recompute(
    *,
    stats: ProductStatistics,
    characteristic: Characteristic,
    lines: Lines | None,
    up_to_position: int,
    up_to_sequence: int,
) -> None:
    """Rebuild the characteristic's statistics from scratch, in the order the incremental path folds
    them (so the result is the same numbers): confirmed observations by position, samples that are
    not invalidated by sequence."""
    moments_reset(stats)
    stats.within_sum, stats.within_count, stats.last_value = 0.0, 0, None
    rows = Observation.objects.filter(
        characteristic_id=characteristic.pk, status=ObservationStatus.CONFIRMED, position__lte=up_to_position
    ).order_by("position")
    for values in rows.values_list("values", flat=True).iterator(chunk_size=2000):
        moments_add(stats, values, characteristic)
    samples = Sample.objects.filter(
        characteristic_id=characteristic.pk, sequence__lte=up_to_sequence
    ).order_by("sequence")
    kind = characteristic.effective_chart_type
    chunk: list[Sample] = []
    for sample in samples.only("n", "mean", "range", "sd", "invalidated", "sequence").iterator(
        chunk_size=2000
    ):
        chunk.append(sample)
        if len(chunk) == 2000:
            product_statistics_apply(
                stats=stats,
                characteristic=characteristic,
                kind=kind,
                lines=lines,
                observations=[],
                samples=chunk,
            )
            chunk = []
    product_statistics_apply(
        stats=stats, characteristic=characteristic, kind=kind, lines=lines, observations=[], samples=chunk
    )


def _lot_recompute(stats: LotStatistics, characteristic: Characteristic, up_to: int) -> None:
    """Rebuild from the lot's confirmed observations of the test, in position order, up to `up_to`."""
    rows = (
        Observation.objects.filter(
            lot_id=stats.lot_id,
            test_id=stats.test_id,
            status=ObservationStatus.CONFIRMED,
            position__isnull=False,
            position__lte=up_to,
        )
        .order_by("position")
        .values_list("values", "hash")
    )
    moments_reset(stats)
    hashes = []
    for values, value_hash in rows:
        moments_add(stats, values, characteristic)
        hashes.append(value_hash or 0)  # set on every confirmed row with a position
    stats.observations = len(hashes)
    stats.checksum = checksum_of(hashes)
    stats.recomputed_at = timezone.now()


M = TypeVar("M", LotStatistics, ProductStatistics)
LotKey = tuple[int, int]  # (lot id, test id)


def lot_statistics_load(
    shares: Sequence[tuple[Characteristic, Sequence[Observation]]],
) -> dict[LotKey, LotStatistics]:
    """The stored statistics of every (lot, test) the observations touch, in one query."""
    wanted = Q()
    for characteristic, observations in shares:
        lot_ids = {row.lot_id for row in observations}
        if lot_ids:
            wanted |= Q(test_id=characteristic.test_id, lot_id__in=lot_ids)
    if not wanted:
        return {}
    return {(stats.lot_id, stats.test_id): stats for stats in LotStatistics.objects.filter(wanted)}


def lot_statistics_apply(
    *,
    characteristic: Characteristic,
    observations: Sequence[Observation],
    cached: dict[LotKey, LotStatistics],
) -> list[LotStatistics]:
    """Fold confirmed observations (in position order) into their lots' statistics in `cached`
    (lot_statistics_load; a missing lot is added). Returns the statistics that changed, for
    statistics_save.

    DESIGN.md "Lot checksum": cached + hash == the observation's lot checksum: add it;
    cached == it: already in, skip; anything else: recompute the lot from the database.
    """
    changed: dict[int, LotStatistics] = {}
    for row in observations:
        key = (row.lot_id, characteristic.test_id)
        stats = cached.get(key)
        if stats is None:
            stats = cached[key] = LotStatistics(
                lot_id=row.lot_id, test_id=characteristic.test_id, characteristic=characteristic
            )
        assert row.hash is not None
        assert row.lot_checksum is not None
        if stats.checksum == row.lot_checksum and stats.n:
            continue  # already contains it (a repeated message)
        if checksum_add(stats.checksum, row.hash) == row.lot_checksum:
            moments_add(stats, row.values, characteristic)
            stats.observations += 1
            stats.checksum = row.lot_checksum
        else:
            assert row.position is not None
            _lot_recompute(stats, characteristic, up_to=row.position)
        changed[row.lot_id] = stats
    attribute = characteristic.test.kind != "variable"
    for stats in changed.values():
        _lot_finish(stats, characteristic, attribute)
    return list(changed.values())


def _within(kind: str, sample: Sample, last_value: float | None) -> float | None:
    """One sample's estimate of the within-subgroup sigma (R/d2, S/c4, MR/d2), if it gives one."""
    if kind in ("imr", "ewma", "cusum") and sample.n == 1:
        return None if last_value is None else abs(sample.mean - last_value) / d2(2)
    if sample.n < 2 or sample.range is None or sample.sd is None:
        return None
    if kind == "xbar_s" or (kind in ("ewma", "cusum") and chart_type_by_subgroup_size(sample.n) == "xbar_s"):
        return sample.sd / c4(sample.n)
    return sample.range / d2(sample.n)


def _within_method(kind: str, size: int) -> str:
    """The within sigma's estimator for a chart type (as `_within` and the limits compute it)."""
    if size <= 1:
        return "mrbar_d2"
    if kind == "xbar_s" or (kind in ("ewma", "cusum") and chart_type_by_subgroup_size(size) == "xbar_s"):
        return "sbar_c4"
    return "rbar_d2"


def within_dof_of(
    stats: ProductStatistics, characteristic: Characteristic, limits: ControlLimits | None
) -> float | None:
    """Degrees of freedom of the statistics' within sigma, for the intervals of Cp and Cpk: from
    the samples the limits were calculated from (their baseline), or from the samples whose
    estimates were averaged (`within_count`: moving ranges for individuals). None for given limits."""
    size = characteristic.subgroup_size
    if stats.sigma_source == "limits":
        baseline = limits.baseline if limits is not None else {}
        if not baseline.get("samples") or not baseline.get("chart"):
            return None  # given (historical) limits: no sample behind their sigma
        return within_dof(_within_method(baseline["chart"], size), subgroups=baseline["samples"], size=size)
    if stats.sigma_source == "samples" and stats.within_count:
        kind = characteristic.effective_chart_type
        # For individuals each estimate is a moving range: within_count of them span one more value.
        subgroups = stats.within_count + 1 if size <= 1 else stats.within_count
        return within_dof(_within_method(kind, size), subgroups=subgroups, size=size)
    return None


def product_statistics_load(characteristics: Sequence[Characteristic]) -> dict[int, ProductStatistics]:
    """Each characteristic's statistics by characteristic id: stored, or new (not saved yet)."""
    stored = ProductStatistics.objects.in_bulk(
        [c.pk for c in characteristics], field_name="characteristic_id"
    )
    return {c.pk: stored.get(c.pk) or ProductStatistics(characteristic=c) for c in characteristics}


def product_statistics_apply(
    *,
    stats: ProductStatistics,
    characteristic: Characteristic,
    kind: str,
    lines: Lines | None,
    observations: Sequence[Observation],
    samples: Sequence[Sample],
) -> None:
    """Fold new confirmed observations and samples into the characteristic's statistics (not saved)."""
    for row in observations:
        moments_add(stats, row.values, characteristic)
    attribute = kind in ATTRIBUTE_KINDS
    if not attribute:
        for sample in samples:
            if sample.invalidated:  # as if it had never been: the next moving range bridges it
                continue
            estimate = _within(kind, sample, stats.last_value)
            if estimate is not None:
                stats.within_sum += estimate
                stats.within_count += 1
            stats.last_value = sample.mean
    product_statistics_finish(stats, characteristic, lines, attribute)


def statistics_save(*, lots: Sequence[LotStatistics], products: Sequence[ProductStatistics]) -> None:
    """Write changed lot and product statistics: new rows in one INSERT, stored ones in one UPDATE
    per model (Model.save would take a statement per row)."""
    rows_update_together(statistics_saved(lots=lots, products=products))


def statistics_saved(
    *, lots: Sequence[LotStatistics], products: Sequence[ProductStatistics]
) -> list[RowsUpdate]:
    """statistics_save's INSERTs; its UPDATEs are returned, for the caller to run with its own
    (rows_update_together)."""
    now = timezone.now()
    return [_rows_save(LotStatistics, lots, now), _rows_save(ProductStatistics, products, now)]


def _rows_save(model: type[M], rows: Sequence[M], now: datetime.datetime) -> RowsUpdate:
    for stats in rows:
        stats.updated_at = now
    stored = [stats for stats in rows if not stats._state.adding]
    rows_insert(model=model, rows=[stats for stats in rows if stats._state.adding])
    fields = [f.name for f in model._meta.concrete_fields if not f.primary_key]
    return RowsUpdate(model=model, rows=stored, fields=fields)


def product_statistics_finish(
    stats: ProductStatistics, characteristic: Characteristic, lines: Lines | None, attribute: bool
) -> None:
    stats.limits_version = lines.version if lines else None
    stats.cp = stats.cpk = stats.pp = stats.ppk = None
    stats.sigma_within, stats.sigma_source = None, ""
    if attribute or stats.mean is None:
        return
    if lines is not None:
        stats.sigma_within, stats.sigma_source = lines.sigma, "limits"
    elif stats.within_count and stats.within_sum > 0:
        stats.sigma_within, stats.sigma_source = stats.within_sum / stats.within_count, "samples"
    lsl, usl = characteristic.lsl, characteristic.usl
    if stats.sigma_within:
        stats.cp, stats.cpk = capability_indices(stats.mean, stats.sigma_within, lsl, usl)
    if stats.sd:
        stats.pp, stats.ppk = capability_indices(stats.mean, stats.sd, lsl, usl)

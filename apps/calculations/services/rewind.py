"""Taking in corrections (docs/adr/0015): when a result is invalidated, apps.observations marks its
samples invalidated, drops its hash from the lot checksum and flags the characteristic's feed
(recalculate_from, recalculate_lots). The calculation, under the ChartState row lock, then takes the
characteristic back before it goes on: samples from the first affected one are judged again with
the window rebuilt from the samples before them (invalidated ones left out), violations that no
longer hold are withdrawn (kept, marked: an acknowledged one stays acknowledged), new ones are
created, and the lot and product statistics are recomputed from what is still confirmed. The
result is what a calculation from scratch without the invalidated results gives.
"""

import itertools
from collections.abc import Sequence

from django.db.models import Exists, OuterRef
from django.utils import timezone

from apps.calculations.events import calculation_events
from apps.calculations.models import ChartState, LotStatistics, ProductStatistics, Violation, ViolationEvent
from apps.calculations.services.alarms import events_gather, events_rebuild
from apps.calculations.services.calculate import _judge, limits_current, lines_of, window_rebuild
from apps.calculations.services.stats import (
    lot_statistics_recompute,
    product_statistics_recompute,
    statistics_save,
)
from apps.config.models import Characteristic, ControlLimits
from apps.observations.models import Sample, SubgroupFeed
from openspc.events import events_send_on_commit
from openspc.rows import rows_insert, rows_update
from spc import RuleSet

WITHDRAWN = "A result this pattern used was invalidated; the pattern no longer holds."
Key = tuple[int, int, str]  # (sample id, rule, chart)


def _rejudge(characteristic: Characteristic, state: ChartState, start: int) -> list[Violation]:
    """Judge the samples start … last_sequence again, each with the limits version it was judged with
    (a new version starts a new window, as it did the first time); reconcile their violations.
    Returns the violations created."""
    samples = list(
        Sample.objects.filter(
            characteristic_id=characteristic.pk, sequence__gte=start, sequence__lte=state.last_sequence
        ).order_by("sequence")
    )
    if not samples:
        return []
    rules = RuleSet.from_dict(characteristic.rules)
    versions = {
        limits.version: limits
        for limits in ControlLimits.objects.filter(
            characteristic_id=characteristic.pk, version__in={s.limits_version for s in samples}
        )
    }
    found: list[Violation] = []
    for version, run in itertools.groupby(samples, key=lambda s: s.limits_version):
        judged = list(run)
        limits = versions.get(version) if version is not None else None
        lines = lines_of(characteristic, limits)
        window = None
        if lines is not None:
            window = window_rebuild(
                characteristic_id=characteristic.pk, lines=lines, rules=rules,
                last_sequence=judged[0].sequence - 1,
            )  # fmt: skip
        found += _judge(characteristic, lines, window, judged)
    rows_update(model=Sample, rows=samples, fields=["in_control", "limits_version", "evaluated_at"])
    return _reconcile(characteristic, state, samples, found)


def _events_reconcile(characteristic: Characteristic, state: ChartState) -> None:
    """After a correction: an event none of whose violations stands any more is withdrawn (kept,
    marked), one that stands again is not; the latest events are read back into the state."""
    standing = Violation.objects.filter(event=OuterRef("pk"), withdrawn_at__isnull=True)
    events = ViolationEvent.objects.filter(characteristic=characteristic)
    events.filter(withdrawn_at__isnull=True).exclude(Exists(standing)).update(withdrawn_at=timezone.now())
    events.filter(withdrawn_at__isnull=False).filter(Exists(standing)).update(withdrawn_at=None)
    state.events = events_rebuild(characteristic_id=characteristic.pk)


def _reconcile(
    characteristic: Characteristic, state: ChartState, samples: Sequence[Sample], found: list[Violation]
) -> list[Violation]:
    existing: dict[Key, Violation] = {
        (v.sample_id, v.rule, v.chart): v
        for v in Violation.objects.filter(characteristic=characteristic, sample__in=samples)
    }
    now = timezone.now()
    holding: set[Key] = set()
    created: list[Violation] = []
    changed: list[Violation] = []
    for violation in found:
        key = (violation.sample.pk, violation.rule, violation.chart)
        holding.add(key)
        kept = existing.get(key)
        if kept is None:
            created.append(violation)
        elif kept.withdrawn_at is not None or kept.points != violation.points:
            kept.withdrawn_at, kept.withdrawn_reason, kept.points = None, "", violation.points
            changed.append(kept)
    for key, kept in existing.items():
        if key not in holding and kept.withdrawn_at is None:
            kept.withdrawn_at, kept.withdrawn_reason = now, WITHDRAWN
            changed.append(kept)
    rows_update(model=Violation, rows=changed, fields=["withdrawn_at", "withdrawn_reason", "points"])
    # A pattern the correction brought about is an event of its own (its samples' earlier events
    # may lie on either side of it): grouped among themselves, from no latest events.
    state.events = {}
    events_gather(shares=[(characteristic, state, samples, created)])
    rows_insert(model=Violation, rows=created)
    _events_reconcile(characteristic, state)
    return created


def _take_in(characteristic: Characteristic, state: ChartState, feed: SubgroupFeed) -> list[Violation]:
    created: list[Violation] = []
    if feed.recalculate_from is not None and feed.recalculate_from <= state.last_sequence:
        created = _rejudge(characteristic, state, feed.recalculate_from)
    lots = []
    for lot_id in feed.recalculate_lots:
        stats = LotStatistics.objects.filter(lot_id=lot_id, test_id=characteristic.test_id).first()
        if stats is None:
            continue  # never calculated: the normal path will compute it
        lot_statistics_recompute(stats, characteristic, up_to=state.last_position)
        lots.append(stats)
    product = ProductStatistics.objects.filter(characteristic=characteristic).first()
    if product is not None:
        lines = lines_of(characteristic, limits_current(characteristic))
        product_statistics_recompute(
            stats=product, characteristic=characteristic, lines=lines,
            up_to_position=state.last_position, up_to_sequence=state.last_sequence,
        )  # fmt: skip
    statistics_save(lots=lots, products=[product] if product is not None else [])
    kind = characteristic.effective_chart_type
    events_send_on_commit(calculation_events(characteristic, kind, [], created, lots, product))
    return created


def corrections_take_in(*, states: Sequence[ChartState]) -> int:
    """Take in the corrections flagged on these characteristics' feeds (their ChartState rows are
    locked by the caller, each read with `corrections`: whether its feed is flagged). Returns the
    number of violations created."""
    flagged = [state.pk for state in states if getattr(state, "corrections", False)]
    if not flagged:
        return 0
    by_id = {state.pk: state for state in states}
    characteristics = Characteristic.objects.select_related("test").in_bulk(flagged)
    created = 0
    # The feed row lock (after the ChartState lock; corrections and folding take only the feed's):
    # a correction committed meanwhile is seen in full or not at all.
    for feed in SubgroupFeed.objects.select_for_update().filter(pk__in=flagged).order_by("pk"):
        state = by_id[feed.pk]
        created += len(_take_in(characteristics[feed.pk], state, feed))
        feed.recalculate_from, feed.recalculate_lots = None, []
        feed.save(update_fields=["recalculate_from", "recalculate_lots"])
        state.rewinds += 1
        state.save(update_fields=["rewinds", "events"])
    return created

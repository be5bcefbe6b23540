"""The calculation worker's service: judge new samples, record violations, update statistics.

One characteristic at a time, in order, whatever the number of workers: a run holds the
characteristic's ChartState row lock for its whole transaction (docs/adr/0008). The work is
cursor-based: the row says which samples and observations are already in (last_sequence,
last_position), and each run takes the next ones in order, so a task delivered twice, late, or
for work another worker already did changes nothing.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple, TypeVar

from django.core.cache import cache
from django.db import OperationalError, connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from apps.calculations.choices import Severity
from apps.calculations.events import calculation_events, violation_event_events
from apps.calculations.models import ChartState, LotStatistics, ProductStatistics, Violation
from apps.calculations.services.alarms import events_gather
from apps.calculations.services.stats import (
    lot_statistics_apply,
    lot_statistics_load,
    product_statistics_apply,
    product_statistics_load,
    statistics_saved,
)
from apps.calculations.window import SMOOTHED_KINDS, Lines, Point, RollingWindow
from apps.config.models import Characteristic, ControlLimits
from apps.config.selectors import characteristics_kept, limits_current_kept
from apps.observations.choices import ObservationStatus
from apps.observations.models import Observation, Sample, SubgroupFeed
from openspc.events import Event, events_send_on_commit
from openspc.rows import RowsUpdate, rows_insert, rows_locked, rows_update_together
from spc import RuleSet

M = TypeVar("M", Sample, Observation)

logger = logging.getLogger(__name__)

BATCH = 2000  # samples and observations per transaction
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock_timeout that ran out
WINDOW_TTL = 7 * 24 * 3600  # seconds a window stays in Redis unused


@dataclass(frozen=True)
class CalculationResult:
    samples: int = 0
    observations: int = 0
    violations: int = 0
    # The samples asked for with `keep` that this run judged, each with the violations it found.
    kept: dict[int, tuple[Sample, list[Violation]]] = field(default_factory=dict, compare=False, repr=False)
    # With `lock_wait`: the characteristics another run held longer, left to it (not calculated here).
    skipped: tuple[int, ...] = ()


# --- Lines and the rolling window ----------------------------------------------------------


def limits_current(characteristic: Characteristic) -> ControlLimits | None:
    return characteristic.limits.order_by("-version").first()


def lines_of(characteristic: Characteristic, limits: ControlLimits | None) -> Lines | None:
    if limits is None:
        return None
    return Lines(
        version=limits.version,
        kind=characteristic.effective_chart_type,
        center=limits.center,
        sigma=limits.sigma,
        dispersion_lcl=limits.dispersion_lcl,
        dispersion_ucl=limits.dispersion_ucl,
        subgroup_size=characteristic.subgroup_size,
        params=dict(characteristic.chart_params or {}),
        stamp=f"{limits.pk}:{limits.created_at.isoformat()}",
    )


def window_key(characteristic_id: int) -> str:
    return f"calculations:window:{characteristic_id}"


def _point(sample: Sample) -> Point:
    return Point(sample.sequence, sample.mean, sample.n, sample.range, sample.sd)


def window_rebuild(
    *, characteristic_id: int, lines: Lines, rules: RuleSet, last_sequence: int
) -> RollingWindow:
    """Replay the samples judged with these limits. For Nelson rules the last few (the longest
    pattern) determine the evaluator exactly; EWMA and CUSUM sums need all of them."""
    window = RollingWindow(lines, rules)
    judged = Sample.objects.filter(
        characteristic_id=characteristic_id,
        limits_version=lines.version,
        sequence__lte=last_sequence,
        invalidated=False,
    ).order_by("-sequence")
    if lines.kind not in SMOOTHED_KINDS:
        judged = judged[: window.keep]
    for sample in reversed(list(judged)):
        window.judge(_point(sample))
    return window


def windows_cached(characteristic_ids: Sequence[int]) -> dict[int, object]:
    """The stored windows of these characteristics, in one round trip (missing ones are left out)."""
    if not characteristic_ids:
        return {}
    try:
        found = cache.get_many([window_key(pk) for pk in characteristic_ids])
    except Exception:
        logger.warning("window cache unavailable; rebuilding from the database", exc_info=True)
        return {}
    return {pk: found[window_key(pk)] for pk in characteristic_ids if window_key(pk) in found}


def window_load(
    *,
    characteristic_id: int,
    lines: Lines,
    rules: RuleSet,
    last_sequence: int,
    stored: object | None = None,
) -> RollingWindow:
    """The window from its stored document (windows_cached) if that is current, else rebuilt from
    the database."""
    window = RollingWindow.from_json(stored, lines, rules, last_sequence)
    if window is None:
        window = window_rebuild(
            characteristic_id=characteristic_id, lines=lines, rules=rules, last_sequence=last_sequence
        )
    return window


def windows_store(documents: dict[int, object]) -> None:
    if not documents:
        return
    try:
        cache.set_many({window_key(pk): doc for pk, doc in documents.items()}, timeout=WINDOW_TTL)
    except Exception:
        logger.warning("could not store the windows of characteristics %s", sorted(documents), exc_info=True)


def windows_warm_up(*, characteristic_ids: Sequence[int] | None = None) -> int:
    """Rebuild and store the windows of active characteristics that have limits and judged samples
    but no current window stored (Redis restarted, the window expired while the line stood still), so
    the first value after a restart is judged as fast as the rest. Reads only; the number stored."""
    characteristics = Characteristic.objects.filter(active=True, chart_state__last_sequence__gt=0)
    if characteristic_ids is not None:
        characteristics = characteristics.filter(pk__in=list(characteristic_ids))
    by_pk = characteristics.select_related("chart_state").in_bulk()
    limits = limits_current_kept(list(by_pk))
    stored = windows_cached([pk for pk in by_pk if pk in limits])
    documents: dict[int, object] = {}
    for pk, current in limits.items():
        characteristic = by_pk[pk]
        state = characteristic.chart_state
        lines = lines_of(characteristic, current)
        assert lines is not None
        lines = replace(lines, stamp=f"{lines.stamp}:{state.rewinds}")
        rules = RuleSet.from_dict(characteristic.rules)
        if RollingWindow.from_json(stored.get(pk), lines, rules, state.last_sequence) is not None:
            continue  # current already
        window = window_rebuild(
            characteristic_id=pk, lines=lines, rules=rules, last_sequence=state.last_sequence
        )
        documents[pk] = window.to_json(state.last_sequence)
    windows_store(documents)
    return len(documents)


def window_invalidate(*, characteristic_id: int) -> None:
    try:
        cache.delete(window_key(characteristic_id))
    except Exception:
        logger.warning("could not drop the window of characteristic %s", characteristic_id, exc_info=True)


# --- Judging samples --------------------------------------------------------------------------


def _judge(
    characteristic: Characteristic,
    lines: Lines | None,
    window: RollingWindow | None,
    samples: Sequence[Sample],
) -> list[Violation]:
    """Judge the samples in sequence order (sets in_control, limits_version, evaluated_at);
    the caller writes them and the violations returned."""
    now = timezone.now()
    acknowledged = set(characteristic.acknowledge_rules or [])
    found: list[Violation] = []
    for sample in samples:
        sample.evaluated_at = now
        if lines is None or window is None or sample.invalidated:  # an invalidated result is never judged
            sample.in_control, sample.limits_version = None, None
            continue
        signals = window.judge(_point(sample))
        sample.in_control, sample.limits_version = not signals, lines.version
        for signal in signals:
            found.append(
                Violation(
                    characteristic=characteristic, sample=sample, rule=signal.rule, chart=signal.chart,
                    points=list(signal.points), limits_version=lines.version,
                    severity=Severity.CRITICAL if signal.rule == 1 else Severity.WARNING,
                    requires_acknowledgement=signal.rule in acknowledged,
                )
            )  # fmt: skip
    return found


# --- The calculation ------------------------------------------------------------------------------


@dataclass
class _Share:
    """One characteristic's part of a calculation run: its state and what is new."""

    characteristic: Characteristic
    state: ChartState
    limits: ControlLimits | None
    samples: list[Sample] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)


def _states_locked(characteristic_ids: Sequence[int], *, wait: float | None = None) -> list[ChartState]:
    """The chart states, created if missing, locked in id order (two runs never deadlock), each
    with `corrections`: whether its feed has corrections to take in (read in the same statement).
    With `wait` (seconds; PostgreSQL), those another run still holds after that long are left out."""
    flagged = SubgroupFeed.objects.filter(pk=OuterRef("pk")).exclude(
        recalculate_from__isnull=True, recalculate_lots=[]
    )

    def lock(*, skip_locked: bool = False) -> list[ChartState]:
        return rows_locked(
            model=ChartState, ids=characteristic_ids, skip_locked=skip_locked, corrections=Exists(flagged)
        )

    if wait is None or connection.vendor != "postgresql":
        return lock()
    try:
        with transaction.atomic():  # a savepoint: a lock timeout undoes only it (and its setting)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)",
                    [f"{round(wait * 1000)}ms"],
                )
                (usual, _) = cursor.fetchone()
            states = lock()
            with connection.cursor() as cursor:  # the rest of the transaction waits as usual
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [usual])
            return states
    except OperationalError as error:
        if getattr(error.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
    return lock(skip_locked=True)


def _after_cursors(
    model: type[Sample] | type[Observation], columns: Sequence[str], cursor: str, after: dict[int, int]
) -> tuple[str, list[object]]:
    """SQL for the first BATCH rows of `model` (these columns) past each characteristic's cursor
    (`cursor` > after[characteristic]), in characteristic and cursor order, for Model.raw: one join
    on a VALUES list whatever the number of characteristics. An OR of a condition pair per
    characteristic (50 for a Sparkplug node) cost more to build than to run. Observations: the
    confirmed ones only."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    values = ", ".join(["(%s, %s)"] * len(after))
    params: list[object] = [number for pair in after.items() for number in pair]
    confirmed = ""
    if model is Observation:
        confirmed = f"AND {table}.{quote('status')} = %s "
        params.append(str(ObservationStatus.CONFIRMED))
    sql = (
        f"SELECT {', '.join(f'{table}.{quote(column)}' for column in columns)} FROM {table} "
        f"JOIN (SELECT column1 AS cursor_of, column2 AS cursor_at FROM (VALUES {values}) AS cursors) AS c "
        f"ON {table}.{quote('characteristic_id')} = c.cursor_of AND {table}.{quote(cursor)} > c.cursor_at "
        f"{confirmed}ORDER BY {table}.{quote('characteristic_id')}, {table}.{quote(cursor)} LIMIT {BATCH}"
    )
    return sql, params


@dataclass(frozen=True)
class Handed:
    """Samples and observations the caller has just committed, as they were written (POST /samples:
    what its group stored and processed), so that the calculation need not read them back."""

    samples: Sequence[Sample] = ()
    observations: Sequence[Observation] = ()


def _following(rows: Sequence[M], cursor: str, after: int) -> list[M] | None:
    """`rows` in cursor order if they are exactly the next ones after `after` (no gap, none before):
    what reading past the cursor would return first. None: they are not, so read."""
    ordered = sorted(rows, key=lambda row: getattr(row, cursor))
    if not ordered or len(ordered) > BATCH:
        return None
    if [getattr(row, cursor) for row in ordered] != list(range(after + 1, after + 1 + len(ordered))):
        return None
    return ordered


def _shares(states: Sequence[ChartState], handed: Handed | None = None) -> dict[int, _Share]:
    """Each characteristic's state, configuration, current limits and next samples and observations
    (at most BATCH of each in all: a cut leaves a prefix of a characteristic's rows, which is
    what its cursors need).

    Rows `handed` over that follow on from a characteristic's cursors are taken as they are: rows
    committed after them (another request's) are left for the calculation that follows them."""
    ids = [state.pk for state in states]
    characteristics = characteristics_kept(ids)
    limits = limits_current_kept(ids)
    shares = {
        state.pk: _Share(characteristics[state.pk], state, limits.get(state.pk))
        for state in states
        if state.pk in characteristics
    }
    if not shares:
        return shares
    handed = handed or Handed()
    handed_samples: dict[int, list[Sample]] = defaultdict(list)
    for sample in handed.samples:
        handed_samples[sample.characteristic_id].append(sample)
    handed_observations: dict[int, list[Observation]] = defaultdict(list)
    for observation in handed.observations:
        if observation.status == ObservationStatus.CONFIRMED and observation.position is not None:
            handed_observations[observation.characteristic_id or 0].append(observation)
    sequences, positions = {}, {}
    for pk, share in shares.items():
        samples = _following(handed_samples[pk], "sequence", share.state.last_sequence)
        observations = _following(handed_observations[pk], "position", share.state.last_position)
        if samples is None or observations is None:  # both or neither: the statistics follow the samples
            sequences[pk], positions[pk] = share.state.last_sequence, share.state.last_position
        else:
            share.samples, share.observations = samples, observations
    if not sequences:
        return shares
    sample_columns = [str(field.column) for field in Sample._meta.concrete_fields]
    for sample in Sample.objects.raw(*_after_cursors(Sample, sample_columns, "sequence", sequences)):
        shares[sample.characteristic_id].samples.append(sample)
    # Only what the statistics read: a whole row (item, user, reasons, times) costs more to build
    # than the statistics cost to update.
    columns = ["id", "lot_id", "characteristic_id", "values", "position", "hash", "lot_checksum"]
    for observation in Observation.objects.raw(*_after_cursors(Observation, columns, "position", positions)):
        assert observation.characteristic_id is not None
        shares[observation.characteristic_id].observations.append(observation)
    return shares


class ShareCalculated(NamedTuple):
    """What judging one characteristic's part of a run produced."""

    violations: list[Violation]
    lot_statistics: list[LotStatistics]  # the lot statistics it changed
    # Called once the violations are saved: the events' data holds the violations' ids.
    make_events: Callable[[], list[Event]]
    window_document: dict[str, object] | None  # the window's new document (None: unchanged)


def _calculate_share(
    share: _Share,
    lots: dict[tuple[int, int], LotStatistics],
    product: ProductStatistics,
    stored_window: object | None,
) -> ShareCalculated:
    """Judge one characteristic's new samples and fold its observations into the statistics given;
    `stored_window` is its window's document from windows_cached."""
    characteristic, state, samples = share.characteristic, share.state, share.samples
    kind = characteristic.effective_chart_type
    lines = lines_of(characteristic, share.limits)
    if lines is not None:  # a window cached before the last correction was taken in is stale
        lines = replace(lines, stamp=f"{lines.stamp}:{state.rewinds}")
    rules = RuleSet.from_dict(characteristic.rules)
    window = None
    if lines is not None and samples:
        window = window_load(
            characteristic_id=characteristic.pk, lines=lines, rules=rules, last_sequence=state.last_sequence,
            stored=stored_window,
        )  # fmt: skip
    violations = _judge(characteristic, lines, window, samples)
    changed = lot_statistics_apply(
        characteristic=characteristic, observations=share.observations, cached=lots
    )
    product_statistics_apply(
        stats=product, characteristic=characteristic, kind=kind, lines=lines,
        observations=share.observations, samples=samples,
    )  # fmt: skip
    if samples:
        state.last_sequence = samples[-1].sequence
    if share.observations:
        state.last_position = share.observations[-1].position or state.last_position
    document = window.to_json(state.last_sequence) if window is not None else None

    def make_events() -> list[Event]:
        return calculation_events(characteristic, kind, samples, violations, changed, product)

    return ShareCalculated(violations, changed, make_events, document)


def _kept(
    busy: Sequence[_Share], violations: Sequence[Violation], keep: Collection[int]
) -> dict[int, tuple[Sample, list[Violation]]]:
    """The judged samples among `keep`, with their characteristic (which the answer's statistic
    reads) and their new violations: what POST /samples answers, without reading them back."""
    kept: dict[int, tuple[Sample, list[Violation]]] = {}
    for share in busy:
        for sample in share.samples:
            if sample.pk in keep:
                sample.characteristic = share.characteristic
                kept[sample.pk] = (sample, [v for v in violations if v.sample is sample])
    return kept


def _calculate_batch(
    characteristic_ids: Sequence[int], keep: Collection[int], lock_wait: float | None = None,
    handed: Handed | None = None,
) -> tuple[CalculationResult, bool]:  # fmt: skip
    """One transaction: the next samples and observations of the characteristics. (result, more?)"""
    from apps.calculations.services.rewind import corrections_take_in  # it judges with this module

    with transaction.atomic():
        states = _states_locked(characteristic_ids, wait=lock_wait)
        skipped = tuple(sorted(set(characteristic_ids) - {state.pk for state in states}))
        if not states:
            return CalculationResult(skipped=skipped), False
        # Corrections first (they take the characteristic back), then what is new.
        rewound = corrections_take_in(states=states)
        shares = _shares(states, handed)
        busy = [share for share in shares.values() if share.samples or share.observations]
        if not busy:
            return CalculationResult(violations=rewound, skipped=skipped), False
        lots = lot_statistics_load([(share.characteristic, share.observations) for share in busy])
        products = product_statistics_load([share.characteristic for share in busy])
        violations: list[Violation] = []
        judged: list[tuple[Characteristic, ChartState, list[Sample], list[Violation]]] = []
        changed: list[LotStatistics] = []
        make_events: list[Callable[[], list[Event]]] = []
        stored = windows_cached([share.characteristic.pk for share in busy if share.samples])
        documents: dict[int, object] = {}
        for share in busy:
            pk = share.characteristic.pk
            calculated = _calculate_share(share, lots, products[pk], stored.get(pk))
            violations += calculated.violations
            judged.append((share.characteristic, share.state, share.samples, calculated.violations))
            changed += calculated.lot_statistics
            make_events.append(calculated.make_events)
            if calculated.window_document is not None:
                documents[pk] = calculated.window_document
        samples = [sample for share in busy for sample in share.samples]
        gathered = events_gather(shares=judged)
        # The cursors move in this transaction, so a sample is judged once; the unique constraint on
        # (sample, rule, chart) would turn a second judgement into a rolled-back transaction.
        rows_insert(model=Violation, rows=violations)
        saved = statistics_saved(lots=changed, products=[products[share.characteristic.pk] for share in busy])
        now = timezone.now()
        states = [share.state for share in busy]
        for state in states:
            state.updated_at = now
        # The samples' verdicts, the statistics and the cursors: one statement.
        verdicts = ["in_control", "limits_version", "evaluated_at"]
        cursors = ["last_sequence", "last_position", "updated_at", "events"]
        rows_update_together(
            [
                RowsUpdate(model=Sample, rows=samples, fields=verdicts),
                *saved,
                RowsUpdate(model=ChartState, rows=states, fields=cursors),
            ]
        )
        transaction.on_commit(lambda: windows_store(documents))
        events_send_on_commit(
            [event for make in make_events for event in make()] + violation_event_events(gathered.events)
        )
    observations = sum(len(share.observations) for share in busy)
    more = len(samples) == BATCH or observations == BATCH
    kept = _kept(busy, violations, keep) if keep else {}
    result = CalculationResult(len(samples), observations, len(violations) + rewound, kept, skipped)
    return result, more


def characteristics_calculate(
    *, characteristic_ids: Sequence[int], keep: Collection[int] = (), lock_wait: float | None = None,
    handed: Handed | None = None,
) -> CalculationResult:  # fmt: skip
    """Bring the characteristics' samples, violations and statistics up to date, in one transaction
    per BATCH rows (a run per characteristic cost four times the queries). Idempotent. The samples
    of `keep` (ids) this run judges come back in `kept`.

    With `lock_wait` (seconds) a characteristic that another run holds longer than that is not
    waited for: it comes back in `skipped` (of the last transaction), and the caller must see that
    it is calculated again once that run is done, since the other run takes only what was
    committed when it read. Two workers fed the same characteristics (every Sparkplug message
    touches all 50 of a node) then do not queue behind each other for a whole run only to find
    the work done, while a short wait (the other run nearly done) still costs less than asking
    again later.

    `handed`: rows the caller just committed, taken without reading them back where they follow
    on from the cursors (see _shares); only by the first transaction."""
    total = CalculationResult()
    more = bool(characteristic_ids)
    while more:
        result, more = _calculate_batch(characteristic_ids, keep, lock_wait, handed)
        handed = None
        total = CalculationResult(
            total.samples + result.samples,
            total.observations + result.observations,
            total.violations + result.violations,
            {**total.kept, **result.kept},
            result.skipped,
        )
    return total


def characteristic_calculate(*, characteristic_id: int, keep: Collection[int] = ()) -> CalculationResult:
    """characteristics_calculate for one characteristic."""
    return characteristics_calculate(characteristic_ids=[characteristic_id], keep=keep)


def characteristics_behind() -> list[int]:
    """Characteristics with samples or confirmed observations the calculation has not taken in."""
    state = ChartState.objects.filter(pk=OuterRef("pk"))
    caught_up = state.filter(last_sequence=OuterRef("last_sequence"), last_position=OuterRef("last_position"))
    corrected = Q(recalculate_from__isnull=False) | ~Q(recalculate_lots=[])
    behind = SubgroupFeed.objects.filter(
        ((Q(last_sequence__gt=0) | Q(last_position__gt=0)) & ~Exists(caught_up)) | corrected
    )
    return list(behind.order_by("pk").values_list("pk", flat=True))

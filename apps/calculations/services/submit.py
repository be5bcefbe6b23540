"""POST /api/v1/samples (flow 1 of the seed): a whole subgroup, processed before the answer.

It goes through the same services as everything else: the measurements are stored
as one `received` observation, confirmed by the observations.in service, folded
into a sample (a full subgroup is never split or mixed), and the characteristic's
calculation runs. Only the order is synchronous. A rejected observation stays
stored with its reasons, and the answer says why.

Requests that arrive while a process is storing and judging others are taken together (group
commit, ADR 0019): each request checks its own body and context in its own thread, then waits;
the first to find no group running leads, and stores, processes and calculates every waiting
request's subgroup in the three transactions one request would use, then hands each its answer.
One client alone is a group of one; at 16 clients the fixed statements and the chart state lock
are paid once per group instead of once per request.
"""

import datetime
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.calculations.models import Violation
from apps.calculations.services.calculate import CalculationResult, Handed, characteristics_calculate
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


# How long a group's leader waits, at most, for requests still checking their context (in
# `_Groups.arriving`) to join it: they are a millisecond or two away, and a larger group costs less
# per request (at 16 clients 16 instead of 18-20 ms of the web process's CPU a sample, measured).
# Alone, a request finds nobody arriving and does not wait.
JOIN_WAIT_SECONDS = 0.005


@dataclass
class _Submission:
    """One request's subgroup, waiting for its group; then its answer, or the error it gets."""

    entry: ObservationEntry
    user: User
    characteristic_id: int
    observation_id: int | None = None
    result: SampleResult | None = None
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None

    def outcome(self) -> SampleResult:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


class _Groups:
    """Group commit among the requests of one process (each runs in a thread of its own). One group
    at a time: letting the next group store and process while one is calculated made the groups
    smaller, and cost a quarter of the throughput at 16 clients (measured, issue #20)."""

    def __init__(self) -> None:
        lock = threading.Lock()
        self._changed = threading.Condition(lock)  # a group started or ended
        self._arrived = threading.Condition(lock)  # a request stopped arriving (joined, or failed)
        self._waiting: list[_Submission] = []
        self._leading = False
        self._arriving = 0  # requests checking their context, about to join

    @contextmanager
    def arriving(self) -> Iterator[None]:
        with self._changed:
            self._arriving += 1
        try:
            yield
        finally:
            with self._changed:
                self._arriving -= 1
                self._arrived.notify()

    def submit(self, submission: _Submission) -> SampleResult:
        if transaction.get_connection().in_atomic_block:
            # The caller's transaction would hold the other requests' subgroups too, and could
            # roll them back after they were answered: alone, its own are all it can lose.
            _calculate(_store_and_process([submission]))
            return submission.outcome()
        with self._changed:
            self._waiting.append(submission)
            while self._leading and not submission.done:
                self._changed.wait()
            if submission.done:
                return submission.outcome()
            self._leading = True  # this thread takes every request waiting, its own among them
            self._arrived.wait_for(lambda: self._arriving == 0, timeout=JOIN_WAIT_SECONDS)
            group, self._waiting = self._waiting, []
        try:
            _calculate(_store_and_process(group))
        except Exception as error:  # the database went away, say: every request of the group fails
            for member in group:
                if not member.done:
                    member.error = error
        finally:
            with self._changed:
                self._leading = False
                self._changed.notify_all()
        return submission.outcome()


_groups = _Groups()


def _record(submissions: list[_Submission]) -> None:
    """Store one user's subgroups in one transaction. If that fails (an idempotency key reused
    with another body, say), each is stored alone, so the error is only its own request's."""
    try:
        recorded = observations_record(
            entries=[s.entry for s in submissions], source=ObservationSource.MANUAL,
            user=submissions[0].user, queue=False,
        )  # fmt: skip
    except Exception as error:
        if len(submissions) == 1:
            submissions[0].error = error
            return
        for submission in submissions:
            _record([submission])
        return
    for submission, pk in zip(submissions, recorded.ids, strict=True):
        submission.observation_id = pk


@dataclass(frozen=True)
class _Stored:
    """A group's submissions that were stored, and the rows as its processing left them."""

    submissions: list[_Submission]
    rows: dict[int, Observation]
    samples: tuple[Sample, ...] = ()


def _store_and_process(group: list[_Submission]) -> _Stored:
    """Store the group's subgroups (a request whose store failed has its error), then process them."""
    by_user: dict[int, list[_Submission]] = defaultdict(list)
    for submission in group:
        by_user[submission.user.pk].append(submission)
    for submissions in by_user.values():
        _record(submissions)
    stored = [s for s in group if s.observation_id is not None]
    ids = [s.observation_id for s in stored if s.observation_id is not None]
    if not ids:
        return _Stored([], {})
    # Stored and committed first: whatever happens next, the measurements are kept (a failure
    # below leaves the rows `received` for the sweep to process). Processed and calculated in
    # transactions of their own, as a worker does: one group's calculation (the chart state lock)
    # runs while the next group folds (the feed lock), and a calculation takes every sample
    # committed before it starts. One transaction for both held the chart state through the fold
    # too: at 4 clients on one characteristic that was a third of the throughput (issue #20).
    processed = observations_process(ids=ids, calculate=False)
    # The rows as this group processed them; none for a row stored before (a retry) or that
    # another worker holds, which is read after the calculation, as it stands.
    return _Stored(stored, {row.pk: row for row in processed.rows}, processed.samples)


def _calculate(stored: _Stored) -> None:
    """Calculate the characteristics of what the group stored, and answer each of its requests."""
    if not stored.submissions:
        return
    keep = [row.sample_id for row in stored.rows.values() if row.sample_id is not None]
    calculated = characteristics_calculate(
        characteristic_ids=sorted({s.characteristic_id for s in stored.submissions}), keep=keep,
        handed=Handed(samples=stored.samples, observations=list(stored.rows.values())),
    )  # fmt: skip
    for submission in stored.submissions:
        try:
            submission.result = _answer(submission, stored.rows, calculated)
        except Exception as error:
            submission.error = error


def _answer(
    submission: _Submission, rows: dict[int, Observation], calculated: CalculationResult
) -> SampleResult:
    assert submission.observation_id is not None
    observation = rows.get(submission.observation_id) or Observation.objects.get(pk=submission.observation_id)
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
    if observation.sample_id in calculated.kept:  # judged by this group: nothing to read back
        sample, found = calculated.kept[observation.sample_id]
        return SampleResult(sample, sorted(found, key=lambda v: (v.rule, v.chart)), observation)
    sample = Sample.objects.select_related("characteristic__test").get(pk=observation.sample_id)
    violations = list(sample.violations.select_related("sample").order_by("rule", "chart"))
    return SampleResult(sample, violations, observation)


def _entry(
    characteristic: Characteristic, measurements: list[Any], context: dict[str, Any], user: User
) -> ObservationEntry:
    """The request's subgroup as an entry to store, once its characteristic and context allow it."""
    if not characteristic.active:
        raise ValidationError({"characteristic_id": f"Characteristic {characteristic} is inactive."})
    size = 1 if characteristic.test.kind != TestKind.VARIABLE else characteristic.subgroup_size
    if len(measurements) != size:
        raise ValidationError(
            {"measurements": f"{characteristic} takes subgroups of {size} value(s); got {len(measurements)}."}
        )
    lot, item = _context(characteristic, context, user)
    observed_at: datetime.datetime | None = context.get("observed_at")
    # A key reused for another subgroup (test, lot, item, values or time) is a Conflict when stored.
    return ObservationEntry(
        lot=lot, item=item, test=characteristic.test, values=measurements, observed_at=observed_at,
        idempotency_key=context.get("idempotency_key"),
    )  # fmt: skip


def sample_submit(
    *, characteristic: Characteristic, measurements: list[Any], context: dict[str, Any], user: User
) -> SampleResult:
    """Store, confirm, group and judge one subgroup now (with those of other requests that are
    waiting, see the module's docstring); the sample and its violations."""
    with _groups.arriving():
        entry = _entry(characteristic, measurements, context, user)
    return _groups.submit(_Submission(entry=entry, user=user, characteristic_id=characteristic.pk))

"""Reads of lot records: the lot review (an item × test matrix of results with their verdicts, and
every reason the lot cannot be released), investigations, and the content a disposition signs.
Each runs a fixed number of queries, whatever the row count."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Prefetch, QuerySet, Sum

from apps.calculations.models import Violation
from apps.calculations.selectors import AWAITING_ACKNOWLEDGEMENT
from apps.config.models import Characteristic, TestPlan, TestPlanEntry
from apps.config.spec import any_outside_spec
from apps.observations.choices import LOT_TRANSITIONS, LotStatus, ObservationStatus
from apps.observations.models import Item, Lot, Observation
from apps.records.choices import InvestigationStatus, Verdict
from apps.records.models import LotDisposition, OosInvestigation
from apps.signatures.models import Signature
from apps.signatures.selectors import Manifest, manifest
from apps.signatures.services import content_hash

DONE = frozenset({Verdict.PASS, Verdict.OUT_OF_SPEC, Verdict.TO_BE_VERIFIED})
LISTED = 10  # results named one by one in a blocking reason; the rest are counted


def person(user: User | None) -> str | None:
    if user is None:
        return None
    return user.get_full_name() or user.get_username()


@dataclass(frozen=True)
class Column:
    """A required test of the lot: a column of the matrix."""

    test: int
    code: str
    name: str
    unit: str
    decimals: int
    lsl: float | None
    usl: float | None


@dataclass(frozen=True)
class Result:
    id: int
    values: list[Any]
    status: str
    verdict: str
    out_of_spec: bool
    needs_verification: bool
    entered_by: str | None
    entered_at: str
    verified_by: str | None
    verified_at: str | None
    retest_of: int | None


@dataclass(frozen=True)
class Cell:
    """One required test on one item: its verdict and its results, newest last."""

    test: int
    verdict: str
    current: Result | None
    results: list[Result]

    @property
    def verdict_label(self) -> str:
        return Verdict(self.verdict).label


@dataclass(frozen=True)
class Row:
    item: int
    serial: str
    tester: str | None
    cells: list[Cell | None]  # in column order; None: the test is not required on this item


@dataclass(frozen=True)
class LotLevel:
    """Lot-level data of one test (device data naming only the lot): counted, not judged per item."""

    test: int
    code: str
    confirmed: int
    received: int
    rejected: int


@dataclass(frozen=True)
class Reason:
    code: str
    message: str


@dataclass(frozen=True)
class InvestigationView:
    id: int
    status: str
    status_label: str
    outcome: str
    item: int | None
    serial: str | None
    test: int
    code: str
    observation: int
    owner: str | None
    opened_at: str


@dataclass
class LotReview:
    lot: int
    number: str
    product: str
    status: str
    columns: list[Column]
    rows: list[Row]
    lot_level: list[LotLevel]
    tests_required: int = 0
    tests_done: int = 0
    results_to_verify: int = 0
    results_verified: int = 0
    out_of_spec: int = 0
    being_checked: int = 0
    violations_unacknowledged: int = 0
    investigations: list[InvestigationView] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)
    signatures: list[Manifest] = field(default_factory=list)

    @property
    def investigations_open(self) -> int:
        return sum(1 for i in self.investigations if i.status != InvestigationStatus.CLOSED)

    @property
    def releasable(self) -> bool:
        return not self.reasons


def _result(row: Observation, limits: tuple[float | None, float | None], needs: bool) -> Result:
    out = row.status == ObservationStatus.CONFIRMED and any_outside_spec(_values(row), *limits)
    if row.status == ObservationStatus.RECEIVED:
        verdict = Verdict.PENDING
    elif row.status == ObservationStatus.INVALIDATED:
        invalidation = getattr(row, "invalidation", None)
        verdict = (
            Verdict.RETEST
            if invalidation is not None and invalidation.retest_requested
            else Verdict.INVALIDATED
        )
    elif row.status == ObservationStatus.REJECTED:
        verdict = Verdict.PENDING
    elif out:
        verdict = Verdict.OUT_OF_SPEC
    elif needs and row.verified_by_id is None:
        verdict = Verdict.TO_BE_VERIFIED
    else:
        verdict = Verdict.PASS
    return Result(
        id=row.pk,
        values=_values(row),
        status=row.status,
        verdict=verdict,
        out_of_spec=out,
        needs_verification=needs,
        entered_by=person(row.user),
        entered_at=row.observed_at.isoformat(),
        verified_by=person(row.verified_by),
        verified_at=row.verified_at.isoformat() if row.verified_at else None,
        retest_of=row.retest_of_id,
    )


def _values(row: Observation) -> list[Any]:
    return row.values if isinstance(row.values, list) else [row.values]


def _cell(test: int, results: list[Result]) -> Cell:
    """The current result is the last confirmed one; without one, the last one being checked, else
    the last invalidated one (a retest is due, or the test must be done again)."""
    for wanted in (ObservationStatus.CONFIRMED, ObservationStatus.RECEIVED, ObservationStatus.INVALIDATED):
        chosen = [r for r in results if r.status == wanted]
        if chosen:
            current = chosen[-1]
            return Cell(test=test, verdict=current.verdict, current=current, results=results)
    return Cell(test=test, verdict=Verdict.PENDING, current=None, results=results)


def _item_results(lot: Lot) -> QuerySet[Observation]:
    return (
        Observation.objects.filter(lot=lot, item__isnull=False)
        .select_related("user", "verified_by", "invalidation")
        .order_by("received_at", "id")
    )


def _lot_level(lot: Lot) -> list[LotLevel]:
    counts: dict[tuple[int, str], dict[str, int]] = {}
    for test, code, status, n in (
        Observation.objects.filter(lot=lot, item__isnull=True)
        .values_list("test", "test__code", "status")
        .annotate(n=Count("id"))
        .order_by("test__code")
    ):
        counts.setdefault((test, code), {})[status] = n
    return [
        LotLevel(
            test=test,
            code=code,
            confirmed=by.get(ObservationStatus.CONFIRMED, 0),
            received=by.get(ObservationStatus.RECEIVED, 0),
            rejected=by.get(ObservationStatus.REJECTED, 0),
        )
        for (test, code), by in counts.items()
    ]


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:LISTED])
    more = len(names) - LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def _reasons(review: LotReview, status_label: str) -> list[Reason]:
    """Every reason the lot cannot be released, in plain words."""
    reasons: list[Reason] = []
    if LotStatus.RELEASED not in LOT_TRANSITIONS[review.status]:
        reasons.append(
            Reason(
                "lot_status",
                f"Lot {review.number} is {status_label.lower()}: it cannot be released from there.",
            )
        )
    codes = {c.test: c.code for c in review.columns}
    pending, unverified, failed = [], [], []
    for row in review.rows:
        for cell in row.cells:
            if cell is None:
                continue
            where = f"{codes[cell.test]} on item {row.serial}"
            if cell.verdict not in DONE:
                label = Verdict(cell.verdict).label.lower()
                pending.append(f"{where} ({label})")
            elif cell.verdict == Verdict.OUT_OF_SPEC:
                failed.append(where)
            current = cell.current
            if cell.verdict in DONE and current and current.needs_verification and not current.verified_by:
                unverified.append(where)
    if review.tests_required == 0:
        reasons.append(Reason("no_tests", "The lot has no required tests: no item is on a test plan."))
    if pending:
        reasons.append(
            Reason(
                "tests_not_done", f"{_plural(len(pending), 'required test')} not done: {_listing(pending)}."
            )
        )
    if unverified:
        reasons.append(
            Reason(
                "not_verified",
                f"{_plural(len(unverified), 'result')} not verified by a second person: "
                f"{_listing(unverified)}.",
            )
        )
    if failed:
        reasons.append(
            Reason("out_of_spec", f"{_plural(len(failed), 'result')} out of spec: {_listing(failed)}.")
        )
    open_ones = [i for i in review.investigations if i.status != InvestigationStatus.CLOSED]
    if open_ones:
        names = [f"#{i.id} ({i.code} on item {i.serial or '—'}, {i.status_label.lower()})" for i in open_ones]
        reasons.append(
            Reason(
                "investigation_open",
                f"{_plural(len(open_ones), 'out-of-spec investigation')} still open: {_listing(names)}.",
            )
        )
    if review.violations_unacknowledged:
        n = review.violations_unacknowledged
        reasons.append(
            Reason(
                "violations_unacknowledged",
                f"{_plural(n, 'violation')} on the lot's control charts {'waits' if n == 1 else 'wait'} "
                "for acknowledgement.",
            )
        )
    if review.being_checked:
        reasons.append(
            Reason("results_being_checked", f"{_plural(review.being_checked, 'result')} still being checked.")
        )
    return reasons


def lot_review(*, lot: Lot) -> LotReview:
    """The lot's review: the matrix, the counts, the investigations, the violations waiting for
    acknowledgement, the signatures of its dispositions and every reason it cannot be released.
    Nine queries however many items and results (the lot comes with its product), two more
    once the lot has signed dispositions."""
    entries = TestPlanEntry.objects.select_related("test").order_by("position")
    items = list(
        Item.objects.filter(lot=lot)
        .select_related("tester")
        .prefetch_related(
            Prefetch(
                "plans",
                queryset=TestPlan.objects.order_by("code", "version").prefetch_related(
                    Prefetch("entries", queryset=entries)
                ),
            )
        )
        .order_by("serial", "id")
    )
    spec = {
        test: (lsl, usl)
        for test, lsl, usl in Characteristic.objects.filter(product=lot.product_id).values_list(
            "test", "lsl", "usl"
        )
    }
    by_pair: dict[tuple[int, int], list[Observation]] = {}
    for observation in _item_results(lot):
        by_pair.setdefault((observation.item_id, observation.test_id), []).append(observation)  # type: ignore[arg-type]

    columns: dict[int, Column] = {}
    required: dict[int, dict[int, bool]] = {}  # item -> {test: needs verification}
    for item in items:
        tests = required.setdefault(item.pk, {})
        for plan in item.plans.all():
            for entry in plan.entries.all():
                test = entry.test
                lsl, usl = spec.get(test.pk, (None, None))
                columns.setdefault(
                    test.pk, Column(test.pk, test.code, test.name, test.unit, test.decimals, lsl, usl)
                )
                needs = test.requires_verification or entry.requires_verification
                tests[test.pk] = tests.get(test.pk, False) or needs

    review = LotReview(
        lot=lot.pk, number=lot.number, product=lot.product.code, status=lot.status,
        columns=list(columns.values()), rows=[], lot_level=_lot_level(lot),
    )  # fmt: skip
    for item in items:
        cells: list[Cell | None] = []
        for column in review.columns:
            if column.test not in required[item.pk]:
                cells.append(None)
                continue
            needs = required[item.pk][column.test]
            results = [
                _result(o, (column.lsl, column.usl), needs) for o in by_pair.get((item.pk, column.test), [])
            ]
            cell = _cell(column.test, results)
            cells.append(cell)
            review.tests_required += 1
            if cell.verdict in DONE:
                review.tests_done += 1
                if needs:
                    review.results_to_verify += 1
                    review.results_verified += (
                        cell.current is not None and cell.current.verified_by is not None
                    )
                review.out_of_spec += cell.verdict == Verdict.OUT_OF_SPEC
        review.rows.append(Row(item=item.pk, serial=item.serial, tester=person(item.tester), cells=cells))
    review.being_checked = sum(
        1 for results in by_pair.values() for o in results if o.status == ObservationStatus.RECEIVED
    ) + sum(level.received for level in review.lot_level)
    serials = {item.pk: item.serial for item in items}
    review.investigations = [investigation_view(i, serials) for i in lot_investigations(lot=lot)]
    review.violations_unacknowledged = Violation.objects.filter(
        AWAITING_ACKNOWLEDGEMENT, sample__lot=lot
    ).count()
    review.reasons = _reasons(review, lot.get_status_display())
    review.signatures = _disposition_signatures(lot, by_pair)
    return review


def investigation_view(investigation: OosInvestigation, serials: dict[int, str]) -> InvestigationView:
    item = investigation.observation.item_id
    return InvestigationView(
        id=investigation.pk,
        status=investigation.status,
        status_label=investigation.get_status_display(),
        outcome=investigation.outcome,
        item=item,
        serial=serials.get(item) if item is not None else None,
        test=investigation.test_id,
        code=investigation.test.code,
        observation=investigation.observation_id,
        owner=person(investigation.owner),
        opened_at=investigation.opened_at.isoformat(),
    )


def investigation_queryset() -> QuerySet[OosInvestigation]:
    return OosInvestigation.objects.select_related(
        "lot__product", "test", "owner", "closed_by", "observation__item"
    ).prefetch_related(Prefetch("notes", queryset=_notes()))


def _notes() -> QuerySet[Any]:
    from apps.records.models import InvestigationNote

    return InvestigationNote.objects.select_related("written_by").order_by("written_at", "id")


def lot_investigations(*, lot: Lot) -> list[OosInvestigation]:
    return list(
        OosInvestigation.objects.filter(lot=lot)
        .select_related("test", "owner", "observation")
        .order_by("opened_at", "id")
    )


# --- What a disposition signs ------------------------------------------------------------------------


def _results_content(observations: Iterable[Observation]) -> list[dict[str, Any]]:
    return [
        {
            "id": o.pk,
            "item": o.item_id,
            "test": o.test_id,
            "values": o.values,
            "status": o.status,
            "verified_by": o.verified_by_id,
            "verified_at": o.verified_at.isoformat() if o.verified_at else None,
        }
        for o in sorted(observations, key=lambda o: o.pk)
    ]


def _lot_level_content(lot: Lot) -> dict[str, list[int]]:
    """Device data, summed up: per test the confirmed count and the sum of their hashes (what the
    lot checksum is made of), so a changed, added or invalidated device value changes it."""
    return {
        str(test): [n, int(total or 0) % 2**64]
        for test, n, total in Observation.objects.filter(
            lot=lot, item__isnull=True, status=ObservationStatus.CONFIRMED
        )
        .values_list("test")
        .annotate(n=Count("id"), total=Sum("hash"))
        .values_list("test", "n", "total")
        .order_by("test")
    }


def _content(
    disposition: LotDisposition, lot: Lot, results: list[dict[str, Any]], lot_level: dict[str, list[int]]
) -> dict[str, Any]:
    return {
        "lot": lot.pk, "number": lot.number, "product": lot.product.code, "decision": disposition.decision,
        "deviation": disposition.deviation, "results": results, "lot_level": lot_level,
    }  # fmt: skip


def disposition_content(disposition: LotDisposition) -> dict[str, Any]:
    """What a disposition's signature binds: the lot, the decision, the deviation, every item result
    (id, values, status, verification) and the lot-level data summed up. Three queries."""
    lot = Lot.objects.select_related("product").get(pk=disposition.lot_id)
    results = _results_content(Observation.objects.filter(lot=lot, item__isnull=False).only(
        "id", "item_id", "test_id", "values", "status", "verified_by_id", "verified_at"
    ))  # fmt: skip
    return _content(disposition, lot, results, _lot_level_content(lot))


def _disposition_signatures(lot: Lot, by_pair: dict[tuple[int, int], list[Observation]]) -> list[Manifest]:
    """The manifests of every signed disposition of the lot, oldest first, each checked against the
    lot as it is now. One query for a lot without dispositions, three with them."""
    dispositions = {d.pk: d for d in LotDisposition.objects.filter(lot=lot)}
    if not dispositions:
        return []
    signatures = list(
        Signature.objects.filter(
            content_type=ContentType.objects.get_for_model(LotDisposition),
            object_id__in=[str(pk) for pk in dispositions],
        )
        .select_related("user")
        .order_by("signed_at", "id")
    )
    if not signatures:
        return []
    results = _results_content(o for rows in by_pair.values() for o in rows)
    lot_level = _lot_level_content(lot)
    hashes = {pk: content_hash(_content(d, lot, results, lot_level)) for pk, d in dispositions.items()}
    return [manifest(s, hashes[int(s.object_id)]) for s in signatures]

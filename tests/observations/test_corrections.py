"""Corrections (issue #18): invalidate, retest and amend without losing history, and the chart,
violations, lot and product statistics and lot checksum recomputed as if the invalidated result had
never been posted."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError

from apps.audit.models import AuditEntry
from apps.calculations import services as calculations
from apps.calculations.models import (
    AcknowledgementReason,
    LotStatistics,
    ProductStatistics,
    Violation,
    ViolationEvent,
)
from apps.calculations.selectors import chart_data
from apps.config import services as config_services
from apps.config.models import Characteristic
from apps.observations import selectors, services
from apps.observations.checksum import checksum_of
from apps.observations.choices import InvalidationStatus, ObservationStatus
from apps.observations.models import Invalidation, Lot, Observation, Sample, SubgroupFeed
from apps.signatures.choices import SignedAction
from apps.signatures.models import Signature
from apps.signatures.services import signer_check
from openspc.api import DomainConflict
from tests.factories import ItemFactory, LotFactory, ProductFactory
from tests.support.plant import JAN_1, Plant, rows
from tests.support.signing import signer_for

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-only"

# Around 74.000 ± 0.010 (3 σ: 73.97 … 74.03). BAD is far below (rule 1), and it breaks a run of ten
# points above the centre: without it, rule 2 (nine on one side) fires at the 9th and 10th.
BEFORE = [74.0, 73.995, 74.004, 73.998, 74.003, 74.006, 74.002, 74.004, 74.005]
BAD = 73.90
AFTER = [74.003, 74.007, 74.001, 74.004, 74.002]
RETEST = 74.006


def approver(user: User) -> Any:
    return signer_check(
        user=user, action=SignedAction.INVALIDATION_APPROVAL, meaning="approved", password=PASSWORD
    )


def run(ids: list[int], characteristic: Characteristic) -> None:
    """What the workers do: confirm and fold, then calculate."""
    services.observations_process(ids=ids)
    calculations.characteristic_calculate(characteristic_id=characteristic.pk)


def post(plant: Plant, lot: Lot, values: list[float], characteristic: Characteristic) -> list[int]:
    items = [
        ItemFactory(lot=lot, serial=f"S{lot.pk}-{n:03d}", plans=[plant.ring], tester=plant.tester)
        for n in range(len(values))
    ]
    ids = plant.record(
        *[{"item": item, "test": plant.dia, "values": [v]} for item, v in zip(items, values, strict=True)]
    )
    run(ids, characteristic)
    return ids


def judged(plant: Plant, product: Any) -> Characteristic:
    dia = Characteristic.objects.get(product=product, test=plant.dia)
    calculations.limits_set_historical(
        characteristic=dia, center=74.0, sigma=0.01, reason="historical",
        signer=signer_for(SignedAction.CONTROL_LIMITS),
    )  # fmt: skip
    return dia


def chart(
    characteristic: Characteristic,
) -> tuple[list[tuple[float, bool | None]], list[tuple[int, str, int]]]:
    """The chart as a from-scratch computation gives it: the valid points (mean, in control) in order,
    and the standing violations by (rule, chart, index among the valid points)."""
    valid = list(Sample.objects.filter(characteristic=characteristic, invalidated=False).order_by("sequence"))
    index = {sample.pk: i for i, sample in enumerate(valid)}
    standing = Violation.objects.filter(characteristic=characteristic, withdrawn_at__isnull=True)
    return (
        [(s.mean, s.in_control) for s in valid],
        sorted((v.rule, v.chart, index[v.sample_id]) for v in standing),
    )


def standing_events(characteristic: Characteristic) -> list[tuple[int, str, int, tuple[int, ...]]]:
    """The violation events no correction withdrew: (rule, chart, violations gathered, rules involved)."""
    events = ViolationEvent.objects.filter(characteristic=characteristic, withdrawn_at__isnull=True)
    assert not Violation.objects.filter(characteristic=characteristic, event__isnull=True).exists()
    return sorted((e.rule, e.chart, e.violations_count, tuple(e.rules)) for e in events)


@pytest.fixture
def direct(plant: Plant) -> tuple[Characteristic, Lot]:
    """The same history on a second product, posted directly with the retest's value: what a
    computation from scratch without the bad value gives."""
    other = ProductFactory(code="RING-75")
    config_services.plan_assign(product=other, plan=plant.ring, effective_from=JAN_1)
    dia = judged(plant, other)
    lot = LotFactory(product=other, number="L-2")
    post(plant, lot, [*BEFORE, *AFTER, RETEST], dia)
    return dia, lot


def test_invalidate_and_retest_equal_a_computation_from_scratch(
    plant: Plant, quality_specialist: User, direct: tuple[Characteristic, Lot]
) -> None:
    dia = judged(plant, plant.product)
    ids = post(plant, plant.lot, [*BEFORE, BAD, *AFTER], dia)
    bad = Observation.objects.get(pk=ids[len(BEFORE)])
    bad_violation = Violation.objects.get(characteristic=dia, sample=bad.sample_id, rule=1, chart="location")
    calculations.violation_acknowledge(
        violation=bad_violation, user=quality_specialist, reason=AcknowledgementReason.objects.first()
    )
    assert not Violation.objects.filter(characteristic=dia, rule=2).exists()  # BAD broke the run

    services.invalidation_request(
        observation=bad,
        user=quality_specialist,
        reason="gauge dropped",
        retest=True,
        signer=approver(quality_specialist),
    )
    retest = services.observation_retest(observation=bad, user=plant.tester, values=[RETEST])
    run(retest.ids, dia)

    # The original stays, with its status, reason and who did it; the retest points at it.
    bad.refresh_from_db()
    assert (bad.status, bad.values) == (ObservationStatus.INVALIDATED, [BAD])
    assert (bad.invalidation.reason, bad.invalidation.requested_by, bad.invalidation.status) == (
        "gauge dropped",
        quality_specialist,
        InvalidationStatus.APPROVED,
    )
    new = Observation.objects.get(pk=retest.ids[0])
    assert (new.retest_of_id, new.status, new.values) == (bad.pk, ObservationStatus.CONFIRMED, [RETEST])

    # The chart's samples and violations equal the direct history's.
    direct_dia, direct_lot = direct
    assert chart(dia) == chart(direct_dia)
    assert (2, "location", len(BEFORE) + len(AFTER) - 2) in chart(dia)[1]  # the run now seen
    bad_sample = Sample.objects.get(pk=bad.sample_id)
    assert bad_sample.invalidated
    assert bad_sample.in_control is None
    bad_violation.refresh_from_db()  # withdrawn, kept, still acknowledged
    assert bad_violation.withdrawn_at is not None
    assert bad_violation.acknowledged_at is not None
    # Its event (issue #21) is withdrawn with it; the standing events equal the direct history's.
    assert ViolationEvent.objects.get(pk=bad_violation.event_id).withdrawn_at is not None
    assert standing_events(dia) == standing_events(direct_dia)
    # The run's three rule 2 signals and, on the same points, rule 7's (within 1σ): one event.
    assert (2, "location", 4, (2, 7)) in standing_events(dia)

    # Lot statistics, the lot checksum and product statistics equal a computation from scratch.
    stats = LotStatistics.objects.get(lot=plant.lot, test=plant.dia)
    expected = LotStatistics.objects.get(lot=direct_lot, test=plant.dia)
    for name in ("n", "observations", "out_of_spec", "disposition"):
        assert getattr(stats, name) == getattr(expected, name), name
    assert stats.mean == pytest.approx(expected.mean, rel=1e-12)
    assert stats.sd == pytest.approx(expected.sd, rel=1e-9)
    hashes = Observation.objects.filter(lot=plant.lot, status=ObservationStatus.CONFIRMED).values_list(
        "hash", flat=True
    )
    assert stats.checksum == checksum_of(hashes)
    assert SubgroupFeed.objects.get(pk=dia.pk).checksums[str(plant.lot.pk)] == checksum_of(hashes)
    assert new.lot_checksum == checksum_of(hashes)
    product, product_expected = (ProductStatistics.objects.get(characteristic=c) for c in (dia, direct_dia))
    assert (product.n, product.within_count) == (product_expected.n, product_expected.within_count)
    assert product.mean == pytest.approx(product_expected.mean, rel=1e-12)
    assert product.within_sum == pytest.approx(product_expected.within_sum, rel=1e-12)

    # Recalculated limits ignore the invalidated point: the same limits as without it.
    limits, limits_expected = (
        calculations.limits_recalculate(
            characteristic=c, sample_count=15, exclude_out_of_control=False, preview=True
        )
        for c in (dia, direct_dia)
    )
    assert limits.new.center == pytest.approx(limits_expected.new.center, rel=1e-12)
    assert limits.new.sigma == pytest.approx(limits_expected.new.sigma, rel=1e-12)
    assert limits.new.baseline["samples"] == 15

    # The chart draws it as invalidated, with the reason; no moving range from or to it.
    points = {p["id"]: p for p in chart_data(characteristic=dia, limit=100).points}
    assert (points[bad_sample.pk]["invalidated"], points[bad_sample.pk]["invalidation_reason"]) == (
        True,
        "gauge dropped",
    )
    after = Sample.objects.get(characteristic=dia, sequence=bad_sample.sequence + 1)
    assert points[after.pk]["dispersion"] == pytest.approx(abs(AFTER[0] - BEFORE[-1]))


def test_a_testers_request_waits_for_approval_and_changes_nothing_until_then(
    plant: Plant, quality_specialist: User
) -> None:
    dia = judged(plant, plant.product)
    ids = post(plant, plant.lot, [*BEFORE, BAD], dia)
    bad = Observation.objects.get(pk=ids[-1])
    stats_before = LotStatistics.objects.values().get(lot=plant.lot)
    invalidation = services.invalidation_request(observation=bad, user=plant.tester, reason="typo")
    bad.refresh_from_db()
    assert (invalidation.status, bad.status) == (InvalidationStatus.REQUESTED, ObservationStatus.CONFIRMED)
    assert not Sample.objects.filter(characteristic=dia, invalidated=True).exists()

    # Approving needs the signature: refused, nothing changed.
    with pytest.raises(ValidationError, match="needs your electronic signature"):
        services.invalidation_decide(invalidation=invalidation, user=quality_specialist, approve=True)
    invalidation.refresh_from_db()
    assert invalidation.status == InvalidationStatus.REQUESTED
    assert Observation.objects.get(pk=bad.pk).status == ObservationStatus.CONFIRMED

    services.invalidation_decide(
        invalidation=invalidation, user=quality_specialist, approve=True, signer=approver(quality_specialist)
    )
    assert dia.pk in calculations.characteristics_behind()  # the catch-up sweep would take it in
    calculations.characteristic_calculate(characteristic_id=dia.pk)
    assert dia.pk not in calculations.characteristics_behind()
    invalidation.refresh_from_db()
    assert (invalidation.status, invalidation.decided_by) == (InvalidationStatus.APPROVED, quality_specialist)
    assert Observation.objects.get(pk=bad.pk).status == ObservationStatus.INVALIDATED
    assert Signature.objects.get(action="invalidation_approval").meaning == "approved"
    stats = LotStatistics.objects.get(lot=plant.lot)
    assert (stats_before["n"], stats.n) == (len(BEFORE) + 1, len(BEFORE))
    assert stats.mean == pytest.approx(sum(BEFORE) / len(BEFORE), rel=1e-12)
    assert AuditEntry.objects.filter(object_id=str(bad.pk), reason="typo").exists()


def test_a_refused_invalidation_leaves_the_result_standing(plant: Plant, quality_specialist: User) -> None:
    dia = judged(plant, plant.product)
    (obs,) = post(plant, plant.lot, [74.0], dia)
    invalidation = services.invalidation_request(
        observation=Observation.objects.get(pk=obs), user=plant.tester, reason="typo"
    )
    with pytest.raises(ValidationError, match="Say why the invalidation is refused"):
        services.invalidation_decide(invalidation=invalidation, user=quality_specialist, approve=False)
    services.invalidation_decide(
        invalidation=invalidation, user=quality_specialist, approve=False, note="the value is right"
    )
    invalidation.refresh_from_db()
    assert (invalidation.status, invalidation.decision_note) == (
        InvalidationStatus.REFUSED,
        "the value is right",
    )
    assert Observation.objects.get(pk=obs).status == ObservationStatus.CONFIRMED
    with pytest.raises(DomainConflict, match="was refused already"):
        services.invalidation_decide(
            invalidation=invalidation,
            user=quality_specialist,
            approve=True,
            signer=approver(quality_specialist),
        )


def test_who_may_invalidate(plant: Plant, other_tester: User, manager: User) -> None:
    dia = judged(plant, plant.product)
    (obs,) = post(plant, plant.lot, [74.0], dia)
    observation = Observation.objects.get(pk=obs)
    before = rows()
    for user in (other_tester, manager):
        with pytest.raises(PermissionDenied, match="only results you entered yourself"):
            services.invalidation_request(observation=observation, user=user, reason="no")
    with pytest.raises(ValidationError, match="Say why"):
        services.invalidation_request(observation=observation, user=plant.tester, reason="  ")
    assert rows() == before
    assert not Invalidation.objects.exists()
    with pytest.raises(PermissionDenied, match="for quality specialists"):
        services.invalidation_decide(
            invalidation=services.invalidation_request(
                observation=observation, user=plant.tester, reason="x"
            ),
            user=plant.tester,
            approve=True,
        )


def test_without_approval_a_testers_invalidation_takes_effect_at_once(plant: Plant) -> None:
    plant.dia.invalidation_needs_approval = False
    plant.dia.save()
    dia = judged(plant, plant.product)
    (obs,) = post(plant, plant.lot, [74.0], dia)
    invalidation = services.invalidation_request(
        observation=Observation.objects.get(pk=obs), user=plant.tester, reason="wrong item"
    )
    assert (invalidation.status, invalidation.decided_by) == (InvalidationStatus.APPROVED, plant.tester)
    assert Observation.objects.get(pk=obs).status == ObservationStatus.INVALIDATED
    assert not Signature.objects.filter(action="invalidation_approval").exists()


def test_amend_is_invalidate_plus_a_new_value_never_an_update(plant: Plant, quality_specialist: User) -> None:
    dia = judged(plant, plant.product)
    (obs,) = post(plant, plant.lot, [74.9], dia)
    original = Observation.objects.get(pk=obs)
    services.observation_amend(
        observation=original,
        user=quality_specialist,
        values=[74.09],
        reason="typo: 74.9 for 74.09",
        signer=approver(quality_specialist),
    )
    original.refresh_from_db()
    assert (original.status, original.values) == (ObservationStatus.INVALIDATED, [74.9])
    amended = Observation.objects.get(retest_of=original)
    assert (amended.values, amended.user, amended.observed_at) == (
        [74.09],
        quality_specialist,
        original.observed_at,
    )
    run([amended.pk], dia)
    amended.refresh_from_db()
    assert amended.status == ObservationStatus.CONFIRMED
    stats = LotStatistics.objects.get(lot=plant.lot)
    assert (stats.n, stats.mean) == (1, 74.09)


def test_an_amendment_waiting_for_approval_records_its_value_when_approved(
    plant: Plant, quality_specialist: User
) -> None:
    dia = judged(plant, plant.product)
    (obs,) = post(plant, plant.lot, [74.9], dia)
    original = Observation.objects.get(pk=obs)
    invalidation = services.observation_amend(
        observation=original, user=plant.tester, values=[74.09], reason="typo"
    )
    assert not Observation.objects.filter(retest_of=original).exists()
    services.invalidation_decide(
        invalidation=invalidation, user=quality_specialist, approve=True, signer=approver(quality_specialist)
    )
    amended = Observation.objects.get(retest_of=original)
    assert (amended.values, amended.user) == ([74.09], plant.tester)


def test_a_retest_needs_an_invalidated_result_and_is_made_once(
    plant: Plant, quality_specialist: User
) -> None:
    dia = judged(plant, plant.product)
    (obs,) = post(plant, plant.lot, [74.0], dia)
    observation = Observation.objects.get(pk=obs)
    with pytest.raises(DomainConflict, match="not invalidated"):
        services.observation_retest(observation=observation, user=plant.tester, values=[74.0])
    services.invalidation_request(
        observation=observation, user=quality_specialist, reason="x", signer=approver(quality_specialist)
    )
    first = services.observation_retest(observation=observation, user=plant.tester, values=[74.001])
    again = services.observation_retest(observation=observation, user=plant.tester, values=[74.001])
    assert again.ids == first.ids
    assert again.duplicates == first.ids
    with pytest.raises(DomainConflict, match="was retested already"):
        services.observation_retest(
            observation=observation, user=plant.tester, values=[74.002], idempotency_key="second"
        )


def test_an_invalidated_result_is_due_again_on_the_worklist(plant: Plant, quality_specialist: User) -> None:
    dia = judged(plant, plant.product)
    ids = plant.record({"item": plant.items[0], "test": plant.dia, "values": [74.0]})
    run(ids, dia)
    item = next(i for i in selectors.tester_items(user=plant.tester) if i.pk == plant.items[0].pk)
    assert plant.dia.pk not in {t["test"] for t in services_due(item)}
    services.invalidation_request(
        observation=Observation.objects.get(pk=ids[0]),
        user=quality_specialist,
        reason="x",
        retest=True,
        signer=approver(quality_specialist),
    )
    item = next(i for i in selectors.tester_items(user=plant.tester) if i.pk == plant.items[0].pk)
    due = {t["test"]: t["retest_of"] for t in services_due(item)}
    assert due[plant.dia.pk] == ids[0]  # due again, as a retest of the invalidated result
    assert due[plant.wall.pk] is None


def services_due(item: Any) -> list[dict[str, Any]]:
    return selectors.item_tests_due(item)


def test_only_a_confirmed_result_is_invalidated(plant: Plant, quality_specialist: User) -> None:
    (received,) = plant.record({"item": plant.items[0], "test": plant.dia, "values": [74.0]})
    with pytest.raises(DomainConflict, match="still being checked"):
        services.invalidation_request(
            observation=Observation.objects.get(pk=received), user=plant.tester, reason="x"
        )
    (rejected,) = plant.record({"item": plant.items[0], "test": plant.dia, "values": [99.0]})  # implausible
    services.observations_process(ids=[received, rejected])
    with pytest.raises(DomainConflict, match="was rejected"):
        services.invalidation_request(
            observation=Observation.objects.get(pk=rejected), user=plant.tester, reason="x"
        )
    assert not Invalidation.objects.exists()


def test_a_value_filling_a_subgroup_invalidates_its_sample_whole_or_leaves_the_buffer(
    plant: Plant, quality_specialist: User
) -> None:
    """Subgroups of 2 filled by single values: an invalidated value still waiting leaves the
    buffer; one in a finished sample invalidates that sample, and the other value stays counted."""
    dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
    dia.subgroup_size = 2
    dia.save()
    ids = [
        plant.record({"item": plant.items[0], "test": plant.dia, "values": [v]})[0]
        for v in (74.0, 74.01, 74.02)
    ]
    run(ids, dia)
    sample = Sample.objects.get(characteristic=dia)
    assert sample.observation_ids == ids[:2]
    feed = SubgroupFeed.objects.get(pk=dia.pk)
    assert feed.pending[str(plant.lot.pk)]["observations"] == [ids[2]]

    for pk in (ids[2], ids[0]):
        services.invalidation_request(
            observation=Observation.objects.get(pk=pk),
            user=quality_specialist,
            reason="x",
            signer=approver(quality_specialist),
        )
    calculations.characteristic_calculate(characteristic_id=dia.pk)
    feed.refresh_from_db()
    assert str(plant.lot.pk) not in feed.pending
    sample.refresh_from_db()
    assert sample.invalidated
    stats = LotStatistics.objects.get(lot=plant.lot)
    assert (stats.n, stats.mean) == (1, 74.01)
    assert stats.checksum == checksum_of([Observation.objects.get(pk=ids[1]).hash])
    # The next value starts a subgroup of its own, without the invalidated one.
    (later,) = plant.record({"item": plant.items[1], "test": plant.dia, "values": [74.03]})
    run([later], dia)
    feed.refresh_from_db()
    assert feed.pending[str(plant.lot.pk)]["values"] == [74.03]
    assert LotStatistics.objects.get(lot=plant.lot).n == 2


def test_a_lot_checksum_read_back_from_the_observations_leaves_an_invalidated_one_out(
    plant: Plant, quality_specialist: User
) -> None:
    """A lot the feed no longer holds a checksum for (closed and reopened) is read from its newest
    result: never from an invalidated one, whose running checksum still counts itself."""
    dia = judged(plant, plant.product)
    ids = post(plant, plant.lot, [74.0, 74.01], dia)
    services.invalidation_request(
        observation=Observation.objects.get(pk=ids[1]), user=quality_specialist, reason="x",
        signer=approver(quality_specialist),
    )  # fmt: skip
    calculations.characteristic_calculate(characteristic_id=dia.pk)
    recomputed = LotStatistics.objects.get(lot=plant.lot).recomputed_at  # by the take-in
    SubgroupFeed.objects.filter(pk=dia.pk).update(checksums={})
    (later,) = plant.record({"item": plant.items[1], "test": plant.dia, "values": [74.02]})
    run([later], dia)
    hashes = Observation.objects.filter(lot=plant.lot, status=ObservationStatus.CONFIRMED).values_list(
        "hash", flat=True
    )
    assert Observation.objects.get(pk=later).lot_checksum == checksum_of(hashes)
    stats = LotStatistics.objects.get(lot=plant.lot)
    assert (stats.n, stats.checksum, stats.recomputed_at) == (2, checksum_of(hashes), recomputed)  # added


def test_a_rejected_retest_or_amendment_leaves_room_for_another(
    plant: Plant, quality_specialist: User
) -> None:
    dia = judged(plant, plant.product)
    (obs,) = post(plant, plant.lot, [74.9], dia)
    original = Observation.objects.get(pk=obs)
    services.observation_amend(
        observation=original, user=quality_specialist, values=[7.409], reason="typo",
        signer=approver(quality_specialist),
    )  # fmt: skip
    amended = Observation.objects.get(retest_of=original)
    services.observations_process(ids=[amended.pk])
    assert Observation.objects.get(pk=amended.pk).status == ObservationStatus.REJECTED  # implausible
    retest = services.observation_retest(observation=original, user=plant.tester, values=[74.09])
    run(retest.ids, dia)
    assert Observation.objects.get(pk=retest.ids[0]).status == ObservationStatus.CONFIRMED
    assert sorted(original.retests.values_list("status", flat=True)) == ["confirmed", "rejected"]

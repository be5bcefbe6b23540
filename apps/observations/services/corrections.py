"""Corrections of results without losing history (issue #18): invalidate (with a reason, approved
by a quality specialist where the test asks for it), retest (a new observation linked to the
invalidated one) and amend (invalidate + the corrected value, in one transaction). Nothing is
updated in place: the original keeps its values, its status says `invalidated`, and its
Invalidation says why, who asked and who decided. Every step is audited.

Once a result is invalidated its values leave the chart and the statistics: its samples are
marked invalidated, the lot checksum drops its hash, and the calculation worker is asked to take
the characteristic back from the first affected sample (docs/adr/0015).
"""

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from apps.audit.services import Actor, audit_change, audit_fields
from apps.observations.checksum import checksum_add
from apps.observations.choices import LOT_WORKING, InvalidationStatus, ObservationSource, ObservationStatus
from apps.observations.handoff import calculations_queue_on_commit
from apps.observations.models import Invalidation, Observation, Sample, SubgroupFeed
from apps.observations.services.entries import item_entry_check
from apps.observations.services.record import ObservationEntry, RecordResult, observations_record
from apps.signatures.choices import SignedAction
from apps.signatures.services import Signer, signature_record
from openspc.api import DomainConflict
from openspc.events import EventType, event, events_send_on_commit
from openspc.rows import rows_update

APPROVE = "observations.approve_invalidation"
ENTER = "observations.add_observation"
INVALIDATION_FIELDS = ["status", "decided_by", "decided_at", "decision_note"]
REQUEST_FIELDS = ["observation", "reason", "status", "retest_requested", "amended_values"]


def _locked(observation: Observation) -> Observation:
    """The result, locked, after its characteristic's feed: folding locks the feed and then updates
    observations, so taking them the other way round could deadlock with it."""
    characteristic_id = (
        Observation.objects.filter(pk=observation.pk).values_list("characteristic_id", flat=True).get()
    )  # set once, when confirmed
    if characteristic_id is not None:
        list(SubgroupFeed.objects.select_for_update().filter(pk=characteristic_id).values_list("pk"))
    rows = Observation.objects.select_for_update(of=("self",)).select_related("test", "lot", "item")
    return rows.get(pk=observation.pk)


def invalidation_content(invalidation: Invalidation) -> dict[str, Any]:
    """What an approval signs: the result as it was entered, and the decision."""
    observation = invalidation.observation
    return {
        "invalidation": invalidation.pk, "observation": observation.pk, "values": observation.values,
        "test": observation.test_id, "lot": observation.lot_id, "item": observation.item_id,
        "reason": invalidation.reason, "status": invalidation.status,
        "requested_by": invalidation.requested_by_id, "decided_by": invalidation.decided_by_id,
        "amended_values": invalidation.amended_values,
    }  # fmt: skip


def result_groups(observation: Observation) -> tuple[str, ...]:
    """Where news of a result goes: its lot, its product and its characteristic (if it has one)."""
    groups: tuple[str, ...] = (f"lot.{observation.lot_id}", f"product.{observation.lot.product_id}")
    if observation.characteristic_id is not None:
        groups += (f"characteristic.{observation.characteristic_id}",)
    return groups


def _may_invalidate(observation: Observation, user: User) -> bool:
    """Whether the user may invalidate the result, and whether their word is an approval (PermissionDenied
    in words otherwise): testers ask for their own results, quality specialists for any."""
    if user.has_perm(APPROVE):
        return True
    if observation.user_id == user.pk and user.has_perm(ENTER):
        return False
    raise PermissionDenied(
        f"You may ask to invalidate only results you entered yourself; result {observation.pk} was "
        "entered by someone else (a quality specialist invalidates it)."
    )


def _invalidatable(observation: Observation) -> None:
    if observation.status == ObservationStatus.RECEIVED:
        raise DomainConflict(f"Result {observation.pk} is still being checked; invalidate it once confirmed.")
    if observation.status == ObservationStatus.REJECTED:
        raise DomainConflict(f"Result {observation.pk} was rejected; it is not part of the record.")
    if observation.status == ObservationStatus.INVALIDATED:
        raise DomainConflict(f"Result {observation.pk} is invalidated already.")
    existing = Invalidation.objects.filter(observation=observation).first()
    if existing is not None:
        when = existing.requested_at.isoformat()
        if existing.status == InvalidationStatus.REQUESTED:
            raise DomainConflict(
                f"The invalidation of result {observation.pk} was asked for at {when} and waits for approval."
            )
        raise DomainConflict(
            f"The invalidation of result {observation.pk} asked for at {when} was refused; it stands."
        )


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why the result is invalid."})
    return reason


def _recalculation_ask(observation: Observation) -> None:
    """Take the invalidated result out of the chart's samples and the lot checksum, and ask the
    calculation to take the characteristic back (under the feed lock folding takes)."""
    if observation.characteristic_id is None or observation.position is None:
        return  # no chart and no statistics hold it
    feed = SubgroupFeed.objects.select_for_update().get(pk=observation.characteristic_id)
    lot_key = str(observation.lot_id)
    buffer = feed.pending.get(lot_key)
    if buffer and observation.pk in buffer.get("observations", []):  # its values still wait for a subgroup
        kept = [
            (value, owner)
            for value, owner in zip(buffer["values"], buffer["observations"], strict=True)
            if owner != observation.pk
        ]
        if kept:
            buffer["values"], buffer["observations"] = [v for v, _ in kept], [o for _, o in kept]
        else:
            feed.pending.pop(lot_key)
    if observation.sample_id is not None:
        # A sample holding any of its values is invalidated whole; an observation spans at most as
        # many samples as it has values, ending with its own.
        last = Sample.objects.filter(pk=observation.sample_id).values_list("sequence", flat=True).get()
        candidates = Sample.objects.filter(
            characteristic_id=observation.characteristic_id, lot_id=observation.lot_id, sequence__lte=last
        ).order_by("-sequence")[: len(observation.values)]
        held = [s.pk for s in candidates.only("pk", "observation_ids") if observation.pk in s.observation_ids]
        sequences = list(Sample.objects.filter(pk__in=held).values_list("sequence", flat=True))
        Sample.objects.filter(pk__in=held).update(invalidated=True)
        if sequences:
            first = min(sequences)
            earlier = feed.recalculate_from
            feed.recalculate_from = first if earlier is None else min(first, earlier)
    assert observation.hash is not None
    if lot_key in feed.checksums:
        feed.checksums[lot_key] = checksum_add(int(feed.checksums[lot_key]), -observation.hash)
    later = list(
        Observation.objects.filter(
            lot_id=observation.lot_id, test_id=observation.test_id, position__gt=observation.position
        ).only("pk", "lot_checksum")
    )
    for row in later:  # each one's running lot checksum no longer counts the invalidated result
        if row.lot_checksum is not None:
            row.lot_checksum = checksum_add(row.lot_checksum, -observation.hash)
    rows_update(model=Observation, rows=later, fields=["lot_checksum"])
    if observation.lot_id not in feed.recalculate_lots:
        feed.recalculate_lots = [*feed.recalculate_lots, observation.lot_id]
    feed.save(update_fields=["pending", "checksums", "recalculate_from", "recalculate_lots"])
    calculations_queue_on_commit([observation.characteristic_id])


def _replacement_record(invalidation: Invalidation) -> None:
    """An amendment's corrected values, recorded as a new result (by whoever asked) that goes through
    the same checks as any other."""
    observation = invalidation.observation
    entry = ObservationEntry(
        lot=observation.lot, test=observation.test, values=list(invalidation.amended_values or []),
        item=observation.item, observed_at=observation.observed_at,
        idempotency_key=f"amendment-of-{observation.pk}", retest_of=observation,
    )  # fmt: skip
    observations_record(entries=[entry], source=ObservationSource.MANUAL, user=invalidation.requested_by)


def _take_effect(
    invalidation: Invalidation, *, decider: User, note: str, signer: Signer | None, actor: Actor
) -> None:
    """The invalidation is approved (or needs no approval): the result's status becomes invalidated,
    its values leave the chart and statistics, and an amendment's values are recorded."""
    before = audit_fields(invalidation, INVALIDATION_FIELDS)
    invalidation.status = InvalidationStatus.APPROVED
    invalidation.decided_by, invalidation.decided_at = decider, timezone.now()
    invalidation.decision_note = note
    invalidation.save(update_fields=INVALIDATION_FIELDS)
    after = audit_fields(invalidation, INVALIDATION_FIELDS)
    audit_change(
        actor=actor, instance=invalidation, before=before, after=after, reason=note or invalidation.reason
    )
    if signer is not None or decider.has_perm(APPROVE):
        signature_record(
            signer=signer, action=SignedAction.INVALIDATION_APPROVAL, record=invalidation,
            content=invalidation_content(invalidation), comment=note,
        )  # fmt: skip
    observation = invalidation.observation
    audit_change(
        actor=actor, instance=observation, before={"status": observation.status},
        after={"status": ObservationStatus.INVALIDATED}, reason=invalidation.reason,
    )  # fmt: skip
    observation.status = ObservationStatus.INVALIDATED
    observation.save(update_fields=["status"])
    _recalculation_ask(observation)
    events_send_on_commit([event(
        EventType.RESULT_INVALIDATED, result_groups(observation), observation=observation.pk,
        lot=observation.lot_id, item=observation.item_id, test=observation.test_id,
        characteristic=observation.characteristic_id, reason=invalidation.reason,
        invalidation=invalidation.pk, decided_by=decider.get_username(),
        retest_requested=invalidation.retest_requested,
    )])  # fmt: skip
    if invalidation.amended_values is not None:
        _replacement_record(invalidation)


def invalidation_request(
    *,
    observation: Observation,
    user: User,
    reason: str,
    retest: bool = False,
    signer: Signer | None = None,
    amended_values: Sequence[Any] | None = None,
    source: str = "api",
) -> Invalidation:
    """Invalidate a confirmed result, or ask for it. A tester asks for their own results; a user with
    the approve right (a quality specialist) invalidates any result at once, with a signature
    (INVALIDATION_APPROVAL). A tester's request takes effect at once too when the test does not
    ask for approval (Test.invalidation_needs_approval); otherwise it waits as `requested`.
    `amended_values` (observation_amend): recorded as a new result when it takes effect."""
    reason = _reason(reason)
    approving = _may_invalidate(observation, user)
    if amended_values is not None and observation.lot.status not in LOT_WORKING:
        raise DomainConflict(
            f"Lot {observation.lot.number} is {observation.lot.status}; it takes no new values."
        )
    actor = Actor(user, source)
    with transaction.atomic():
        locked = _locked(observation)
        _invalidatable(locked)
        invalidation = Invalidation.objects.create(
            observation=locked, reason=reason, requested_by=user, retest_requested=retest,
            amended_values=list(amended_values) if amended_values is not None else None,
        )  # fmt: skip
        audit_change(
            actor=actor, instance=invalidation, before=None,
            after=audit_fields(invalidation, REQUEST_FIELDS),
            reason=reason,
        )  # fmt: skip
        if approving:
            _take_effect(invalidation, decider=user, note="", signer=signer, actor=actor)
        elif not locked.test.invalidation_needs_approval:
            note = f"Test {locked.test.code} needs no approval to invalidate a result."
            _take_effect(invalidation, decider=user, note=note, signer=None, actor=actor)
    return invalidation


def observation_amend(
    *,
    observation: Observation,
    user: User,
    values: Sequence[Any],
    reason: str,
    signer: Signer | None = None,
    source: str = "api",
) -> Invalidation:
    """Correct a typo: invalidate the result and record the corrected values as a new result linked
    to it, in one transaction (or both once the invalidation is approved). Never an update in place."""
    return invalidation_request(
        observation=observation, user=user, reason=reason, signer=signer, amended_values=values, source=source
    )


def invalidation_decide(
    *,
    invalidation: Invalidation,
    user: User,
    approve: bool,
    note: str = "",
    signer: Signer | None = None,
    source: str = "api",
) -> Invalidation:
    """Approve (signed: INVALIDATION_APPROVAL) or refuse (with a note) a waiting invalidation."""
    if not user.has_perm(APPROVE):
        raise PermissionDenied("Approving or refusing an invalidation is for quality specialists.")
    note = note.strip()
    if not approve and not note:
        raise ValidationError({"note": "Say why the invalidation is refused."})
    actor = Actor(user, source)
    with transaction.atomic():
        observation = _locked(invalidation.observation)  # feed, result, then the invalidation
        locked = (
            Invalidation.objects.select_for_update(of=("self",))
            .select_related("observation__test", "observation__lot", "observation__item", "requested_by")
            .get(pk=invalidation.pk)
        )
        if locked.status != InvalidationStatus.REQUESTED:
            assert locked.decided_at is not None
            raise DomainConflict(
                f"The invalidation of result {locked.observation_id} was {locked.status} already, "
                f"at {locked.decided_at.isoformat()}."
            )
        locked.observation = observation
        if approve:
            _take_effect(locked, decider=user, note=note, signer=signer, actor=actor)
            return locked
        before = audit_fields(locked, INVALIDATION_FIELDS)
        locked.status = InvalidationStatus.REFUSED
        locked.decided_by, locked.decided_at, locked.decision_note = user, timezone.now(), note
        locked.save(update_fields=INVALIDATION_FIELDS)
        audit_change(
            actor=actor, instance=locked, before=before, after=audit_fields(locked, INVALIDATION_FIELDS),
            reason=note,
        )  # fmt: skip
    return locked


def observation_retest(
    *,
    observation: Observation,
    user: User,
    values: Sequence[Any],
    observed_at: Any = None,
    idempotency_key: str | None = None,
) -> RecordResult:
    """Record a retest of an invalidated result: a new observation with `retest_of` set, through the
    normal recording path (stored, checked, folded and calculated as any other). One retest per
    invalidated result (besides rejected ones); a retry with the same key answers the same id."""
    with transaction.atomic():
        locked = _locked(observation)
        item_entry_check(item=locked.item, user=user)
        if locked.status != ObservationStatus.INVALIDATED:
            raise DomainConflict(
                f"Result {locked.pk} is {locked.status}, not invalidated: "
                "a retest replaces an invalidated result."
            )
        # A rejected retest (an implausible value) is no part of the record: another may follow,
        # under a key of its own unless the client gives one.
        rejected = locked.retests.filter(status=ObservationStatus.REJECTED).count()
        key = idempotency_key or f"retest-of-{observation.pk}" + (f"-{rejected}" if rejected else "")
        standing = locked.retests.exclude(status=ObservationStatus.REJECTED)
        earlier = standing.exclude(idempotency_key=f"{user.pk}:{key}").first()
        if earlier is not None:
            raise DomainConflict(f"Result {locked.pk} was retested already: result {earlier.pk}.")
        if locked.lot.status not in LOT_WORKING:
            raise DomainConflict(f"Lot {locked.lot.number} is {locked.lot.status}; it takes no new values.")
        entry = ObservationEntry(
            lot=locked.lot, test=locked.test, values=list(values), item=locked.item, observed_at=observed_at,
            idempotency_key=key, retest_of=locked,
        )  # fmt: skip
        return observations_record(entries=[entry], source=ObservationSource.MANUAL, user=user)

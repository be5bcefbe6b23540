"""Writes of lot records: a lot's signed disposition under the release policy, the request to
release it, and the out-of-spec investigations (opened by the pipeline, worked by people)."""

from collections.abc import Sequence

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.choices import AuditAction
from apps.audit.services import audit_record
from apps.config.models import Characteristic
from apps.config.spec import any_outside_spec
from apps.observations.choices import LOT_TRANSITIONS, LotStatus, ObservationSource, ObservationStatus
from apps.observations.models import Lot, Observation
from apps.observations.services import lot_status_set
from apps.records.choices import (
    APPROVE_PERMISSION,
    APPROVER_DECISIONS,
    DECISION_MEANING,
    DECISION_STATUS,
    INVESTIGATION_TRANSITIONS,
    Decision,
    InvestigationOutcome,
    InvestigationStatus,
)
from apps.records.models import InvestigationNote, LotDisposition, LotReleaseRequest, OosInvestigation
from apps.records.selectors import Reason, disposition_content, lot_review, person
from apps.signatures.choices import SignedAction
from apps.signatures.services import Signer, signature_record
from openspc.api import DomainConflict
from openspc.events import EventType, event, events_send_on_commit


class ReleaseBlocked(DomainConflict):
    """A release refused by the policy: 409 `release_blocked` with every reason; nothing changed."""

    code = "release_blocked"

    def __init__(self, number: str, reasons: Sequence[Reason]) -> None:
        self.reasons = list(reasons)
        super().__init__(
            f"Lot {number} cannot be released: {len(self.reasons)} reason"
            f"{'' if len(self.reasons) == 1 else 's'} listed. Resolve "
            f"{'it' if len(self.reasons) == 1 else 'them'}, or release under a documented deviation."
        )

    def api_extra(self) -> dict[str, object]:
        return {"reasons": [{"code": r.code, "message": r.message} for r in self.reasons]}


def disposition_may(*, user: User, decision: str) -> None:
    """PermissionDenied unless the user may take this decision: releasing and rejecting need the
    approve-lot-disposition right; a quarantine also whoever changes lots."""
    if decision in APPROVER_DECISIONS:
        if not user.has_perm(APPROVE_PERMISSION):
            raise PermissionDenied(
                "Only approvers of lot dispositions (Quality Specialists) release or reject lots; "
                "request the release instead."
            )
    elif not (user.has_perm(APPROVE_PERMISSION) or user.has_perm("observations.change_lot")):
        raise PermissionDenied("Your role does not quarantine lots.")


def disposition_validate(*, decision: str, deviation: str, meaning: str | None) -> None:
    if decision not in Decision.values:
        raise ValidationError({"decision": f"Unknown decision '{decision}'."})
    if deviation and decision != Decision.RELEASE:
        raise ValidationError({"deviation": "Only a release can be under deviation."})
    if meaning is not None and meaning != DECISION_MEANING[decision]:
        what = Decision(decision).label.lower()
        raise ValidationError({"signature.meaning": f"Sign a {what} as '{DECISION_MEANING[decision]}'."})


@transaction.atomic
def lot_disposition_decide(
    *, lot: Lot, decision: str, user: User, signer: Signer | None, deviation: str = "", reason: str = "",
    under_deviation: bool = False,
) -> LotDisposition:  # fmt: skip
    """Release, reject or quarantine the lot, signed. A release is refused (ReleaseBlocked, 409,
    nothing changed) while any reason of the lot review stands, unless it is under a documented
    deviation (`under_deviation` with its justification); the lot must be able to move to the
    decision's status either way."""
    deviation = deviation.strip()
    if under_deviation and not deviation:
        raise ValidationError({"deviation": "A release under deviation needs its justification."})
    disposition_validate(decision=decision, deviation=deviation, meaning=signer.meaning if signer else None)
    disposition_may(user=user, decision=decision)
    lot = Lot.objects.select_for_update(of=("self",)).select_related("product").get(pk=lot.pk)
    status = DECISION_STATUS[decision]
    if status not in LOT_TRANSITIONS[lot.status]:
        raise DomainConflict(
            f"Lot {lot.number} is {lot.get_status_display().lower()}; it cannot be {status} now."
        )
    blocking: list[Reason] = []
    if decision == Decision.RELEASE:
        blocking = lot_review(lot=lot).reasons
        if blocking and not deviation:
            raise ReleaseBlocked(lot.number, blocking)
    disposition = LotDisposition.objects.create(
        lot=lot, decision=decision, deviation=deviation, reason=reason.strip(), decided_by=user,
        blocking_reasons=[{"code": r.code, "message": r.message} for r in blocking],
    )  # fmt: skip
    lot_status_set(lot=lot, status=status, user=user)
    signature_record(
        signer=signer, action=SignedAction.LOT_DISPOSITION, record=disposition,
        content=disposition_content(disposition), comment=reason.strip(),
    )  # fmt: skip
    audit_record(
        user=user, action=AuditAction.CREATE, instance=disposition,
        after={"lot": lot.pk, "decision": decision, "deviation": deviation, "status": status,
               "blocking_reasons": disposition.blocking_reasons},
        reason=reason or deviation, source="api",
    )  # fmt: skip
    return disposition


@transaction.atomic
def lot_release_request(*, lot: Lot, user: User, note: str = "") -> LotReleaseRequest:
    """An operations lead asks the approvers to release the lot; each of them is notified
    (`lot.release_requested`, which apps.subscriptions hands to every approver directly)."""
    if not user.has_perm("observations.change_lot"):
        raise PermissionDenied("Only operations leads request the release of a lot.")
    lot = Lot.objects.select_for_update(of=("self",)).select_related("product").get(pk=lot.pk)
    if LotStatus.RELEASED not in LOT_TRANSITIONS[lot.status]:
        raise DomainConflict(
            f"Lot {lot.number} is {lot.get_status_display().lower()}; there is no release to ask for."
        )
    request = LotReleaseRequest.objects.create(lot=lot, requested_by=user, note=note.strip())
    reasons = lot_review(lot=lot).reasons
    audit_record(
        user=user, action=AuditAction.CREATE, instance=request, after={"lot": lot.pk, "note": request.note},
        source="api",
    )  # fmt: skip
    events_send_on_commit(
        [
            event(
                # To the lot's group like its other events; what reaches the approvers is the
                # fan-out, which notifies each directly (apps.subscriptions DIRECT_EVENTS).
                EventType.LOT_RELEASE_REQUESTED, (f"lot.{lot.pk}",), request=request.pk,
                lot=lot.pk, number=lot.number, product=lot.product_id, product_code=lot.product.code,
                by=user.pk, by_name=person(user), note=request.note, blocking=[r.message for r in reasons],
            )
        ]
    )  # fmt: skip
    return request


# --- Out-of-spec investigations ------------------------------------------------------------------


def oos_investigations_open(*, observation_ids: Sequence[int]) -> list[OosInvestigation]:
    """Open an investigation for each of these results that is a confirmed manual result on an item
    with a value outside its characteristic's specification limits, once (a redelivered task opens
    nothing new). What the pipeline asks for is checked again here: the task runs later."""
    rows = list(
        Observation.objects.filter(
            pk__in=list(observation_ids), status=ObservationStatus.CONFIRMED, source=ObservationSource.MANUAL,
            item__isnull=False, characteristic__isnull=False, oos_investigation__isnull=True,
        ).only("id", "lot_id", "test_id", "characteristic_id", "values")
    )  # fmt: skip
    limits = {
        pk: (lsl, usl)
        for pk, lsl, usl in Characteristic.objects.filter(
            pk__in={r.characteristic_id for r in rows}
        ).values_list("pk", "lsl", "usl")
    }
    opened = []
    for row in rows:
        values = row.values if isinstance(row.values, list) else [row.values]
        if not any_outside_spec(values, *limits[row.characteristic_id]):  # type: ignore[index]
            continue
        try:
            with transaction.atomic():
                investigation = OosInvestigation.objects.create(  # type: ignore[misc]
                    lot_id=row.lot_id,
                    observation=row,
                    characteristic_id=row.characteristic_id,
                    test_id=row.test_id,
                )
                audit_record(
                    user=None, action=AuditAction.CREATE, instance=investigation,
                    after={"lot": row.lot_id, "observation": row.pk, "values": values},
                    reason="confirmed result out of specification", source="worker",
                )  # fmt: skip
        except IntegrityError:
            continue  # opened by a concurrent run of the same task
        opened.append(investigation)
    return opened


def _investigation_lock(investigation: OosInvestigation) -> OosInvestigation:
    return (
        OosInvestigation.objects.select_for_update()
        .select_related("observation", "lot")
        .get(pk=investigation.pk)
    )


def _move(investigation: OosInvestigation, status: str) -> None:
    if status not in INVESTIGATION_TRANSITIONS[investigation.status]:
        now = investigation.get_status_display().lower()
        raise DomainConflict(f"Investigation {investigation.pk} is {now}; it cannot move to {status}.")


@transaction.atomic
def oos_investigation_start(
    *, investigation: OosInvestigation, user: User, owner: User | None = None
) -> OosInvestigation:
    """Phase I begins: the laboratory looks for an assignable cause. The owner is who starts it,
    unless another is named."""
    investigation = _investigation_lock(investigation)
    _move(investigation, InvestigationStatus.PHASE_ONE)
    investigation.status = InvestigationStatus.PHASE_ONE
    investigation.owner = owner or user
    investigation.started_at = timezone.now()
    investigation.save(update_fields=["status", "owner", "started_at"])
    audit_record(
        user=user, action=AuditAction.UPDATE, instance=investigation,
        before={"status": InvestigationStatus.OPEN},
        after={"status": investigation.status, "owner": investigation.owner_id}, source="api",
    )  # fmt: skip
    return investigation


@transaction.atomic
def oos_investigation_note(*, investigation: OosInvestigation, user: User, text: str) -> InvestigationNote:
    text = text.strip()
    if not text:
        raise ValidationError({"text": "Write the note."})
    investigation = _investigation_lock(investigation)
    if investigation.status == InvestigationStatus.CLOSED:
        raise DomainConflict(f"Investigation {investigation.pk} is closed; it takes no more notes.")
    note = InvestigationNote.objects.create(investigation=investigation, text=text, written_by=user)
    audit_record(
        user=user, action=AuditAction.UPDATE, instance=investigation, after={"note": note.pk, "text": text},
        source="api",
    )  # fmt: skip
    return note


@transaction.atomic
def oos_investigation_close(
    *, investigation: OosInvestigation, user: User, outcome: str, summary: str
) -> OosInvestigation:
    """Close phase I: a laboratory error (the result must have been invalidated first, so that a
    retest replaces it) or a confirmed out-of-spec result."""
    summary = summary.strip()
    if outcome not in InvestigationOutcome.values:
        raise ValidationError({"outcome": f"Unknown outcome '{outcome}'."})
    if not summary:
        raise ValidationError({"summary": "Say what the investigation found."})
    investigation = _investigation_lock(investigation)
    _move(investigation, InvestigationStatus.CLOSED)
    if (
        outcome == InvestigationOutcome.LAB_ERROR
        and investigation.observation.status != ObservationStatus.INVALIDATED
    ):
        raise DomainConflict(
            f"A laboratory error closes the investigation once result {investigation.observation_id} is "
            "invalidated: invalidate it (and ask for a retest) first."
        )
    before = {"status": investigation.status}
    investigation.status = InvestigationStatus.CLOSED
    investigation.outcome = outcome
    investigation.summary = summary
    investigation.closed_at = timezone.now()
    investigation.closed_by = user
    investigation.save(update_fields=["status", "outcome", "summary", "closed_at", "closed_by"])
    audit_record(
        user=user, action=AuditAction.UPDATE, instance=investigation, before=before,
        after={"status": investigation.status, "outcome": outcome}, reason=summary, source="api",
    )  # fmt: skip
    return investigation

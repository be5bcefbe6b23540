"""Enumerations of lot records: dispositions, out-of-spec investigations, result verdicts."""

from django.db import models

from apps.observations.choices import LotStatus
from apps.signatures.choices import SignatureMeaning


class Decision(models.TextChoices):
    RELEASE = "release", "Release"
    REJECT = "reject", "Reject"
    QUARANTINE = "quarantine", "Quarantine"


# The lot status each decision sets, and the meaning its signature states.
DECISION_STATUS: dict[str, str] = {
    Decision.RELEASE: LotStatus.RELEASED,
    Decision.REJECT: LotStatus.REJECTED,
    Decision.QUARANTINE: LotStatus.QUARANTINED,
}
DECISION_MEANING: dict[str, str] = {
    Decision.RELEASE: SignatureMeaning.RELEASED,
    Decision.REJECT: SignatureMeaning.REJECTED,
    Decision.QUARANTINE: SignatureMeaning.REVIEWED,
}
# Decisions only holders of the approve permission take; a quarantine may also come from whoever
# changes lots (an operations lead holding a suspect lot).
APPROVER_DECISIONS = frozenset({Decision.RELEASE, Decision.REJECT})
APPROVE_PERMISSION = "records.approve_lotdisposition"
# The right to verify results (apps.observations' verification service checks it; the lot page
# shows "Verify selected" to its holders).
VERIFY_PERMISSION = "observations.verify_observation"


class InvestigationStatus(models.TextChoices):
    OPEN = "open", "Open"
    PHASE_ONE = "phase_one", "Phase I: laboratory investigation"
    CLOSED = "closed", "Closed"


INVESTIGATION_TRANSITIONS: dict[str, frozenset[str]] = {
    InvestigationStatus.OPEN: frozenset({InvestigationStatus.PHASE_ONE}),
    InvestigationStatus.PHASE_ONE: frozenset({InvestigationStatus.CLOSED}),
    InvestigationStatus.CLOSED: frozenset(),
}


class InvestigationOutcome(models.TextChoices):
    LAB_ERROR = "lab_error", "Assignable laboratory cause: result invalidated, retest"
    CONFIRMED_OOS = "confirmed_oos", "No laboratory cause: out of specification confirmed"


class Verdict(models.TextChoices):
    """What the lot review says of one required test on one item."""

    PASS = "pass", "Pass"
    OUT_OF_SPEC = "out_of_spec", "Out of spec"
    PENDING = "pending", "Pending"
    TO_BE_VERIFIED = "to_be_verified", "To be verified"
    INVALIDATED = "invalidated", "Invalidated"
    RETEST = "retest", "Retest due"

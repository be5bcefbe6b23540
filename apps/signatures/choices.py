"""Enumerations of electronic signatures (21 CFR Part 11 §11.50: the meaning of a signature)."""

from django.db import models


class SignatureMeaning(models.TextChoices):
    RELEASED = "released", "Released"
    REJECTED = "rejected", "Rejected"
    REVIEWED = "reviewed", "Reviewed"
    VERIFIED = "verified", "Verified"
    APPROVED = "approved", "Approved"


class SignedAction(models.TextChoices):
    """What a signature is given for; SIGNATURES_REQUIRED_FOR lists those that need one."""

    LOT_DISPOSITION = "lot_disposition", "Lot disposition"
    INVALIDATION_APPROVAL = "invalidation_approval", "Approval of an invalidation"
    VERIFICATION = "verification", "Verification of results"
    CONTROL_LIMITS = "control_limits", "Control limit change"
    PLAN_RELEASE = "plan_release", "Test plan release"


# The meanings a signer may state for each action.
MEANINGS: dict[str, frozenset[str]] = {
    SignedAction.LOT_DISPOSITION: frozenset(
        {SignatureMeaning.RELEASED, SignatureMeaning.REJECTED, SignatureMeaning.REVIEWED}
    ),
    SignedAction.INVALIDATION_APPROVAL: frozenset({SignatureMeaning.APPROVED}),
    SignedAction.VERIFICATION: frozenset({SignatureMeaning.VERIFIED}),
    SignedAction.CONTROL_LIMITS: frozenset({SignatureMeaning.APPROVED, SignatureMeaning.REVIEWED}),
    SignedAction.PLAN_RELEASE: frozenset({SignatureMeaning.APPROVED, SignatureMeaning.RELEASED}),
}


class SignatureState(models.TextChoices):
    VALID = "valid", "Valid"
    CHANGED = "changed_after_signing", "Changed after signing"

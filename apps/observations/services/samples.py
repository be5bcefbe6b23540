"""Samples left out of control limits (and taken back in)."""

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.audit.choices import AuditAction
from apps.audit.services import Actor, audit_fields, audit_record
from apps.observations.models import Sample

EXCLUSION_FIELDS = ["excluded", "exclusion_reason"]


@transaction.atomic
def sample_exclude(*, sample: Sample, excluded: bool, reason: str, actor: Actor) -> Sample:
    """Leave a sample out of control-limit calculations (an assignable cause, a bad run), or take it
    back in. Excluding needs a reason; both are audited. The chart still shows the sample and its
    violations; the next recalculation of the limits leaves it out (or uses it again)."""
    reason = reason.strip()
    if excluded and not reason:
        raise ValidationError({"reason": "Say why the sample is left out of the limits."})
    locked = Sample.objects.select_for_update().get(pk=sample.pk)
    if locked.excluded == excluded:
        state = "excluded already" if excluded else "not excluded"
        raise ValidationError({"excluded": f"Sample {locked.sequence} is {state}."})
    before = audit_fields(locked, EXCLUSION_FIELDS)
    locked.excluded = excluded
    locked.exclusion_reason = reason if excluded else ""
    locked.save(update_fields=EXCLUSION_FIELDS)
    audit_record(
        user=actor.user, action=AuditAction.EXCLUDE if excluded else AuditAction.INCLUDE, instance=locked,
        before=before, after=audit_fields(locked, EXCLUSION_FIELDS), reason=reason, source=actor.source,
    )  # fmt: skip
    return locked

"""The violation workflow: acknowledging violations, audited and broadcast."""

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from apps.audit.models import AuditAction
from apps.audit.services import audit_fields, audit_record
from apps.calculations.models import AcknowledgementReason, Violation
from apps.calculations.services.calculate import violation_data
from openspc.events import event, events_send_on_commit

ACKNOWLEDGEMENT_FIELDS = [
    "acknowledged_at", "acknowledged_by", "acknowledgement_reason", "acknowledgement_comment",
    "corrective_action",
]  # fmt: skip


class AlreadyAcknowledged(Exception):
    """The violation was acknowledged before (409); nothing was changed."""


def violation_acknowledged_data(violation: Violation) -> dict[str, object]:
    user = violation.acknowledged_by
    reason = violation.acknowledgement_reason
    return {
        **violation_data(violation),
        "acknowledged_at": violation.acknowledged_at.isoformat() if violation.acknowledged_at else None,
        "acknowledged_by": user.pk if user else None,
        "acknowledged_by_name": (user.get_full_name() or user.get_username()) if user else None,
        "reason": reason.code if reason else None,
        "comment": violation.acknowledgement_comment,
        "corrective_action": violation.corrective_action,
    }


def violation_acknowledge(
    *,
    violation: Violation,
    user: User,
    reason: AcknowledgementReason,
    comment: str = "",
    corrective_action: str = "",
    source: str = "api",
) -> Violation:
    """Acknowledge as `user` (the authenticated user, never one named in a request): the reason,
    a comment and the corrective action are kept on the violation, one audit entry records it,
    and `violation.acknowledged` goes to the characteristic's, product's and lot's groups after
    commit. A violation acknowledged before raises AlreadyAcknowledged and changes nothing."""
    if not reason.active:
        raise ValidationError({"reason": f"Reason {reason.code} is no longer in use."})
    with transaction.atomic():
        locked = (
            Violation.objects.select_for_update(of=("self",))
            .select_related("sample", "characteristic")
            .get(pk=violation.pk)
        )
        if locked.acknowledged_at is not None:
            raise AlreadyAcknowledged(
                f"Violation {locked.pk} was acknowledged already, at {locked.acknowledged_at.isoformat()}."
            )
        before = audit_fields(locked, ACKNOWLEDGEMENT_FIELDS)
        locked.acknowledged_at = timezone.now()
        locked.acknowledged_by = user
        locked.acknowledgement_reason = reason
        locked.acknowledgement_comment = comment
        locked.corrective_action = corrective_action
        locked.save(update_fields=ACKNOWLEDGEMENT_FIELDS)
        after = audit_fields(locked, ACKNOWLEDGEMENT_FIELDS)
        why = f"{reason.code}: {comment}" if comment else reason.code
        audit_record(
            user=user, action=AuditAction.ACKNOWLEDGE, instance=locked, before=before, after=after,
            reason=why, source=source,
        )  # fmt: skip
        characteristic = locked.characteristic
        groups = (
            f"characteristic.{characteristic.pk}", f"product.{characteristic.product_id}",
            f"lot.{locked.sample.lot_id}",
        )  # fmt: skip
        events_send_on_commit(
            [event("violation.acknowledged", groups, **violation_acknowledged_data(locked))]
        )
    return locked

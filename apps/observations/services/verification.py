"""Verification by a second person (four eyes, issue #18): a result of a test or plan entry that
requires it stays 'to be verified' until another user with the verify right verifies it, signed
(VERIFICATION). The server refuses a user verifying their own results; a database check does too."""

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from apps.audit.services import Actor, audit_change
from apps.observations.choices import ObservationStatus
from apps.observations.models import Observation
from apps.observations.selectors import observations_with_verification
from apps.observations.services.corrections import result_groups
from apps.signatures.choices import SignedAction
from apps.signatures.services import Signer, signature_record
from openspc.api import DomainConflict
from openspc.events import EventType, event, events_send_on_commit

VERIFY = "observations.verify_observation"
MAX_VERIFY_BATCH = 500


def observation_content(observation: Observation) -> dict[str, Any]:
    """What a verification signs: the result as entered, and who verified it when."""
    return {
        "observation": observation.pk, "values": observation.values, "test": observation.test_id,
        "lot": observation.lot_id, "item": observation.item_id, "entered_by": observation.user_id,
        "observed_at": observation.observed_at, "status": observation.status,
        "verified_by": observation.verified_by_id, "verified_at": observation.verified_at,
    }  # fmt: skip


def _listed(ids: Sequence[int]) -> str:
    return ", ".join(str(pk) for pk in ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")


def _refusals(rows: Sequence[Any], user: User) -> None:
    """403 for the user's own results, 409 for results that cannot be verified; nothing changes."""
    own = [row.pk for row in rows if row.user_id == user.pk]
    if len(own) == 1:
        raise PermissionDenied(f"You entered result {own[0]} yourself; another person must verify it.")
    if own:
        raise PermissionDenied(
            f"You entered results {_listed(own)} yourself; another person must verify them."
        )
    problems = []
    for row in rows:
        if row.status != ObservationStatus.CONFIRMED:
            problems.append(f"result {row.pk} is {row.status}")
        elif row.verified_by_id is not None:
            problems.append(f"result {row.pk} was verified already, at {row.verified_at.isoformat()}")
        elif not row.needs_verification:
            problems.append(f"result {row.pk} needs no verification")
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise DomainConflict(f"Nothing was verified: {shown}.")


def results_verify(
    *, observations: Sequence[Observation], user: User, signer: Signer | None, source: str = "api"
) -> list[Observation]:
    """Verify results as `user`, all or none, each signed (VERIFICATION) and audited. Refused (403)
    for a user without the verify right or for any result they entered themselves; 409 for a
    result that is not confirmed, verified already or needs no verification."""
    if not user.has_perm(VERIFY):
        raise PermissionDenied("Verifying results is for quality specialists and testers.")
    if signer is not None and signer.user.pk != user.pk:
        raise ValueError("the signer is not the verifying user")
    ids = list(dict.fromkeys(o.pk for o in observations))
    if not ids:
        raise ValidationError({"observations": "Name the results to verify."})
    if len(ids) > MAX_VERIFY_BATCH:
        raise ValidationError(
            {"observations": f"At most {MAX_VERIFY_BATCH} results at once; got {len(ids)}."}
        )
    actor = Actor(user, source)
    with transaction.atomic():
        locked = {
            row.pk: row
            for row in observations_with_verification(
                Observation.objects.select_for_update(of=("self",))
                .select_related("lot")
                .filter(pk__in=ids)
                .order_by("pk")
            )
        }
        missing = [pk for pk in ids if pk not in locked]
        if missing:
            raise ValidationError({"observations": f"No result {_listed(missing)}."})
        rows = [locked[pk] for pk in ids]
        _refusals(rows, user)
        now = timezone.now()
        for row in rows:
            row.verified_by, row.verified_at = user, now
            row.save(update_fields=["verified_by", "verified_at"])
            audit_change(
                actor=actor, instance=row, before={"verified_by": None, "verified_at": None},
                after={"verified_by": user.pk, "verified_at": now}, reason="verified",
            )  # fmt: skip
            signature_record(
                signer=signer, action=SignedAction.VERIFICATION, record=row, content=observation_content(row)
            )
        events_send_on_commit([
            event(
                EventType.RESULT_VERIFIED, result_groups(row), observation=row.pk, lot=row.lot_id,
                item=row.item_id, test=row.test_id, verified_by=user.get_username(),
                verified_at=now.isoformat(),
            )
            for row in rows
        ])  # fmt: skip
    return rows

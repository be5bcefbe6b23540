"""Reading signatures with their manifests (printed name, date and time with time zone, meaning)
and whether each still fits its record."""

from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone

from apps.signatures.choices import SignatureMeaning, SignatureState, SignedAction
from apps.signatures.models import Signature
from apps.signatures.services import content_hash, signature_state, signed_content


@dataclass(frozen=True)
class Manifest:
    """What every view of a signed record shows of each signature (Part 11 §11.50)."""

    id: int
    signed_by: str
    username: str
    meaning: str
    action: str
    signed_at: str  # ISO 8601 with the offset of the time zone below
    time_zone: str
    state: str
    comment: str

    @property
    def counts(self) -> bool:
        return self.state == SignatureState.VALID

    @property
    def text(self) -> str:
        """One line, as printed: 'Approved by Ada Lovelace on 2026-12-07 10:15 CET'."""
        when = datetime_text(self.signed_at)
        changed = " — changed after signing" if not self.counts else ""
        return f"{SignatureMeaning(self.meaning).label} by {self.signed_by} on {when}{changed}"

    @property
    def meaning_label(self) -> str:
        return SignatureMeaning(self.meaning).label

    @property
    def action_label(self) -> str:
        return SignedAction(self.action).label

    @property
    def state_label(self) -> str:
        return SignatureState(self.state).label


def datetime_text(iso: str) -> str:
    from datetime import datetime

    moment = datetime.fromisoformat(iso)
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip() or iso


def manifest(signature: Signature, current_hash: str) -> Manifest:
    zone = ZoneInfo(signature.time_zone)
    return Manifest(
        id=signature.pk,
        signed_by=signature.full_name,
        username=signature.user.get_username(),
        meaning=signature.meaning,
        action=signature.action,
        signed_at=timezone.localtime(signature.signed_at, zone).isoformat(),
        time_zone=signature.time_zone,
        state=signature_state(signature, current_hash),
        comment=signature.comment,
    )


def signatures_of(record: models.Model) -> list[Manifest]:
    """The record's signatures, oldest first, each checked against the record as it is now. Two queries."""
    rows: Sequence[Signature] = list(
        Signature.objects.filter(
            content_type=ContentType.objects.get_for_model(record, for_concrete_model=False),
            object_id=str(record.pk),
        ).select_related("user")
    )
    if not rows:
        return []
    current = content_hash(signed_content(record))
    return [manifest(row, current) for row in rows]

"""Signing: the signer re-authenticates and states a meaning at the moment of signing
(21 CFR Part 11 §11.200, §11.100), and the signature is stored bound to what was signed.

Two steps, because a refused signature must be audited while the action it was for changes
nothing: `signer_check` runs before the action's transaction (a wrong password is recorded in a
transaction of its own and answered 403), and the action's service calls `signature_record`
inside its own transaction with the checked signer.
"""

import datetime
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from apps.audit.choices import AuditAction
from apps.audit.models import AuditEntry
from apps.audit.services import audit_record
from apps.signatures.choices import MEANINGS, SignatureMeaning, SignatureState, SignedAction
from apps.signatures.models import Signature
from openspc.events import EventType, event, events_send_on_commit

SIGNING_GROUP = "signing"  # the channel-layer group told when a user's signing is locked


class SigningRefused(PermissionDenied):
    """The signature was refused (wrong password or user name, or signing locked): 403, nothing
    signed, and the attempt is in the audit trail."""


@dataclass(frozen=True)
class Signer:
    """A user who has just re-authenticated to sign `action` with `meaning`."""

    user: User
    meaning: str
    action: str
    source: str = "api"  # through what the signer signed ("api", "admin"): the audit entry's source


def signature_required(action: str) -> bool:
    """Whether `action` needs a signature here (SIGNATURES_REQUIRED_FOR)."""
    return action in settings.SIGNATURES_REQUIRED_FOR


def signer_name(user: User) -> str:
    return user.get_full_name() or user.get_username()


def _lock_until(user: User, now: datetime.datetime) -> datetime.datetime | None:
    """When the user's signing lock ends, if it is locked now."""
    lock = (
        AuditEntry.objects.filter(
            action=AuditAction.SIGN_LOCKED,
            content_type=ContentType.objects.get_for_model(User),
            object_id=str(user.pk),
        )
        .order_by("-at", "-id")
        .values_list("after", flat=True)
        .first()
    )
    if not lock:
        return None
    until = datetime.datetime.fromisoformat(lock["until"])
    return until if until > now else None


def _failure_record(user: User, action: str, why: str, source: str) -> None:
    """Audit the failure; the limit's failure within the window locks signing (audited too) and
    tells the quality specialists. Committed whatever the caller does next."""
    now = timezone.now()
    window = datetime.timedelta(minutes=settings.SIGNING_LOCKOUT_MINUTES)
    user_type = ContentType.objects.get_for_model(User)
    with transaction.atomic():
        audit_record(
            user=user, action=AuditAction.SIGN_FAILED, instance=user, after={"action": action},
            reason=why, source=source,
        )  # fmt: skip
        last_lock = (
            AuditEntry.objects.filter(
                action=AuditAction.SIGN_LOCKED, content_type=user_type, object_id=str(user.pk)
            )
            .order_by("-at", "-id")
            .values_list("at", flat=True)
            .first()
        )
        since = max(now - window, last_lock) if last_lock else now - window
        failures = AuditEntry.objects.filter(
            action=AuditAction.SIGN_FAILED, content_type=user_type, object_id=str(user.pk), at__gt=since
        ).count()
        if failures >= settings.SIGNING_FAILURE_LIMIT:
            until = now + window
            audit_record(
                user=user, action=AuditAction.SIGN_LOCKED, instance=user, after={"until": until.isoformat()},
                reason=f"{failures} wrong signatures within {settings.SIGNING_LOCKOUT_MINUTES} minutes",
                source=source,
            )  # fmt: skip
            events_send_on_commit(
                [
                    event(
                        EventType.SIGNING_LOCKED, [SIGNING_GROUP], user=user.pk, username=user.get_username(),
                        full_name=signer_name(user), failures=failures, until=until.isoformat(),
                    )
                ]
            )  # fmt: skip


def signer_check(
    *,
    user: User,
    action: str,
    meaning: str,
    password: str,
    username: str | None = None,
    username_required: bool = False,
    source: str = "api",
) -> Signer:
    """The user re-authenticated to sign: ValidationError for a meaning the action does not take,
    SigningRefused (audited) for a wrong password or user name or while signing is locked. Call it
    outside the action's transaction."""
    if action not in SignedAction.values:
        raise ValueError(f"unknown signed action {action!r}")
    allowed = MEANINGS[action]
    if meaning not in allowed:
        choices = ", ".join(sorted(allowed))
        raise ValidationError(
            {"signature.meaning": f"Signing {SignedAction(action).label.lower()} means one of: {choices}."}
        )
    until = _lock_until(user, timezone.now())
    if until is not None:
        with transaction.atomic():
            audit_record(
                user=user, action=AuditAction.SIGN_FAILED, instance=user, after={"action": action},
                reason="signing locked", source=source,
            )  # fmt: skip
        shown = timezone.localtime(until).strftime("%H:%M %Z")
        raise SigningRefused(f"Signing is locked for you until {shown} after repeated wrong passwords.")
    if username_required and not username:
        raise ValidationError(
            {"signature.username": "Enter your user name as well for your first signature."}
        )
    if username and username != user.get_username():
        _failure_record(user, action, "wrong user name", source)
        raise SigningRefused("The user name is not yours: nothing was signed.")
    if not password or not user.check_password(password):
        _failure_record(user, action, "wrong password", source)
        raise SigningRefused("Wrong password: nothing was signed.")
    return Signer(user=user, meaning=meaning, action=action, source=source)


def canonical(content: Mapping[str, Any]) -> str:
    """The signed content as one canonical text (sorted keys, no spaces; dates as ISO text)."""
    return json.dumps(content, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"))


def content_hash(content: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(content).encode()).hexdigest()


def signature_record(
    *, signer: Signer | None, action: str, record: models.Model, content: Mapping[str, Any], comment: str = ""
) -> Signature | None:
    """Store the signature of `record` as `content` now, in the caller's transaction, and audit it.
    None when the action needs no signature here and none was given; ValidationError when it needs
    one and none was given (or the signer checked for another action)."""
    if signer is None:
        if signature_required(action):
            label = SignedAction(action).label
            raise ValidationError(
                {"signature": f"{label} needs your electronic signature: your password and its meaning."}
            )
        return None
    if signer.action != action:
        raise ValueError(f"the signer was checked for {signer.action}, not {action}")
    plain = json.loads(canonical(content))
    signature = Signature.objects.create(
        user=signer.user,
        full_name=signer_name(signer.user),
        meaning=signer.meaning,
        action=action,
        signed_at=timezone.now(),
        time_zone=timezone.get_current_timezone_name(),
        content_type=ContentType.objects.get_for_model(record, for_concrete_model=False),
        object_id=str(record.pk),
        object_repr=str(record)[:255],
        content=plain,
        content_hash=content_hash(plain),
        comment=comment,
    )
    signed = {"signature": signature.pk, "meaning": signer.meaning, "action": action}
    audit_record(
        user=signer.user, action=AuditAction.SIGN, instance=record,
        after={**signed, "hash": signature.content_hash}, reason=comment, source=signer.source,
    )  # fmt: skip
    return signature


# What each kind of signed record's content is, registered by the app that owns the record
# (AppConfig.ready), so that any view can tell whether a signature still fits its record.
_CONTENT: dict[type[models.Model], Callable[[Any], Mapping[str, Any]]] = {}


def signed_content_register(model: type[models.Model], content: Callable[[Any], Mapping[str, Any]]) -> None:
    _CONTENT[model] = content


def signed_content(record: models.Model) -> Mapping[str, Any]:
    return _CONTENT[type(record)](record)


def signature_state(signature: Signature, current_hash: str) -> SignatureState:
    return SignatureState.VALID if signature.content_hash == current_hash else SignatureState.CHANGED


def meaning_label(meaning: str) -> str:
    return SignatureMeaning(meaning).label

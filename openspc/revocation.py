"""Ending what a user's credentials opened when they stop being valid: a sign-out closes the live
connections (WebSockets) of that browser session; a password change or a deactivation closes
all of the user's connections and blacklists their refresh tokens. Access tokens need nothing
here: they carry a hash of the password (SIMPLE_JWT CHECK_REVOKE_TOKEN), and a deactivated user's
are refused as they are used.

Every live connection joins two channel-layer groups when it opens (openspc/sockets.py):
its user's and, when the session cookie signed it in, its session's. A close is one message to
one of them; the consumer answers it by closing with 4401 `credentials_revoked`.
"""

import functools
import hashlib
import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from openspc.events import EventType, event, events_send

logger = logging.getLogger(__name__)

# The channel-layer message a live connection closes on; its `reason` is one of the below.
CREDENTIALS_REVOKED = EventType.CREDENTIALS_REVOKED
SIGNED_OUT = "signed_out"
PASSWORD_CHANGED = "password_changed"
DEACTIVATED = "deactivated"


def user_sockets_group(user_id: int) -> str:
    return f"sockets.user.{user_id}"


def session_sockets_group(session_key: str) -> str:
    # A hash: the session key is a credential, and group names are visible in Redis.
    return f"sockets.session.{hashlib.sha256(session_key.encode()).hexdigest()[:40]}"


def session_signed_out(*, session_key: str | None) -> None:
    """Called on sign-out (user_logged_out): close the live connections of that session. Those
    opened with a token, or from another browser, stay open."""
    if session_key:
        events_send([event(CREDENTIALS_REVOKED, [session_sockets_group(session_key)], reason=SIGNED_OUT)])


def user_credentials_watch(*, user: AbstractBaseUser, update_fields: Any) -> None:
    """Called before a user is saved (pre_save): when the save deactivates the user or changes the
    password, revoke what the old credentials opened once the save commits. Whatever saves it
    (the admin, changepassword, a shell) is covered."""
    if user.pk is None or (update_fields is not None and not {"password", "is_active"} & set(update_fields)):
        return
    before = get_user_model()._default_manager.filter(pk=user.pk).values("password", "is_active").first()
    if before is None:
        return
    if before["is_active"] and not user.is_active:
        reason = DEACTIVATED
    elif before["password"] != user.password:
        reason = PASSWORD_CHANGED
    else:
        return
    transaction.on_commit(functools.partial(user_credentials_revoke, user_id=user.pk, reason=reason))


def user_credentials_revoke(*, user_id: int, reason: str) -> int:
    """Blacklist the user's unexpired refresh tokens and close all their live connections. Returns
    the number of tokens blacklisted."""
    outstanding = OutstandingToken.objects.filter(
        user_id=user_id, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    )
    created = BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
    )
    events_send([event(CREDENTIALS_REVOKED, [user_sockets_group(user_id)], reason=reason)])
    logger.info(
        "user %s: credentials revoked (%s), %d refresh tokens blacklisted", user_id, reason, len(created)
    )
    return len(created)

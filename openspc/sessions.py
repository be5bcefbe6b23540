"""How long a browser session lasts: SESSION_IDLE_MINUTES without a request (Django's own expiry,
moved on by every request: SESSION_SAVE_EVERY_REQUEST), and at most SESSION_MAX_HOURS after the
sign-in whatever the activity (here), so a session left open on a shared terminal ends."""

import datetime
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

# The session key holding when its user signed in (seconds since the epoch).
SIGNED_IN_AT = "openspc_signed_in_at"


def session_sign_in_record(*, session: SessionBase) -> None:
    """Called on every sign-in (user_logged_in): the session's life starts now."""
    session[SIGNED_IN_AT] = int(timezone.now().timestamp())


def session_is_past_max_age(*, session: SessionBase) -> bool:
    """True when the session's sign-in is older than SESSION_MAX_HOURS, or unknown (a session from
    before this rule, or one not started by a sign-in)."""
    signed_in_at = session.get(SIGNED_IN_AT)
    if not isinstance(signed_in_at, int):
        return True
    return timezone.now().timestamp() - signed_in_at >= settings.SESSION_MAX_HOURS * 3600


def session_ends_at(*, session: SessionBase) -> datetime.datetime | None:
    """When the session reaches SESSION_MAX_HOURS (None: unknown). A live connection signed in by
    the session closes then (openspc/sockets.py)."""
    signed_in_at = session.get(SIGNED_IN_AT)
    if not isinstance(signed_in_at, int):
        return None
    start = datetime.datetime.fromtimestamp(signed_in_at, tz=datetime.UTC)
    return start + datetime.timedelta(hours=settings.SESSION_MAX_HOURS)


class SessionLifetimeMiddleware:
    """Signs out a session user whose sign-in is older than SESSION_MAX_HOURS, before the view
    runs: the page then sends them to the sign-in page, the API answers as to anyone anonymous."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and session_is_past_max_age(session=request.session):
            logout(request)
        return self.get_response(request)

"""WebSocket authentication by JWT: `?token=<access token>` on the connection URL.

Browsers cannot set an Authorization header on a WebSocket, so API clients give the access
token (from /api/v1/auth/token/) as the `token` query parameter; the browser's session cookie
is read by Channels' AuthMiddlewareStack (openspc/asgi.py) and is used when no token is given.
A token that is given but invalid or expired never falls back to the session: the scope gets
an anonymous user and `auth_error` ("token_invalid" / "token_expired"), and the consumer
closes the connection with a distinct code (openspc/sockets.py).
"""

import datetime
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import ExpiredTokenError, InvalidToken, TokenError
from rest_framework_simplejwt.tokens import AccessToken

TOKEN_EXPIRED = "token_expired"
TOKEN_INVALID = "token_invalid"


def query_token(scope: dict[str, Any]) -> str | None:
    """The `token` query parameter, or None when there is none."""
    query = scope.get("query_string", b"").decode("latin-1")
    values = parse_qs(query).get("token")
    return values[-1] if values else None


def token_authenticate(raw: str) -> tuple[Any, str | None, datetime.datetime | None]:
    """(user, error code, token expiry): the token's active user, or AnonymousUser and why not.

    The same checks as the REST API's JWTAuthentication: signature, expiry, token type
    "access", the user exists and is active.
    """
    try:
        token = AccessToken(raw)  # type: ignore[arg-type]
    except ExpiredTokenError:
        return AnonymousUser(), TOKEN_EXPIRED, None
    except TokenError:
        return AnonymousUser(), TOKEN_INVALID, None
    try:
        user = JWTAuthentication().get_user(token)
    except (InvalidToken, AuthenticationFailed):
        return AnonymousUser(), TOKEN_INVALID, None
    expires_at = datetime.datetime.fromtimestamp(int(token["exp"]), tz=datetime.UTC)
    return user, None, expires_at


class JwtAuthMiddleware:
    """Sets scope["user"] from `?token=`; without one, leaves the session user in place.

    Also sets scope["auth_error"] (None or an error code), scope["token_expires_at"]
    (when the connection's credentials run out; None for a session) and scope["auth_via"]
    ("token" or "session").
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        raw = query_token(scope)
        via = "session" if raw is None else "token"
        scope = dict(scope, auth_error=None, token_expires_at=None, auth_via=via)
        if raw is not None:
            user, error, expires_at = await database_sync_to_async(token_authenticate)(raw)
            scope.update(user=user, auth_error=error, token_expires_at=expires_at)
        return await self.inner(scope, receive, send)

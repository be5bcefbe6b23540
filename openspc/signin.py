"""Signing in with a password, and the JWT endpoints: lockout, rate limits, revoked tokens.

django-axes counts failed sign-ins by user name and client address (settings AXES_*). It works
through authenticate(), so every entry point that checks a password passes the request to it:
the sign-in page, the admin's and the browsable API's (Django's LoginView does), and the token
endpoint (simplejwt's serializer does when the view gives it the request, which DRF's views do).
A locked-out client gets 429: in the API's error format under /api/, else the sign-in page with
the reason.
"""

from typing import Any

from axes.helpers import get_client_username
from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: behind the TLS proxy (BEHIND_TLS_PROXY), the last address in
    X-Forwarded-For, which is the one our proxy added (earlier ones are the client's to invent);
    otherwise the peer address. DRF's throttles use the same rule (NUM_PROXIES = 1)."""
    if settings.BEHIND_TLS_PROXY:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if forwarded[-1]:
            return forwarded[-1]
    address: str | None = request.META.get("REMOTE_ADDR")
    return address


def lockout_message() -> str:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return (
        f"Too many failed sign-ins for this user from this address: signing in is blocked for "
        f"{minutes} minutes. Wait, or ask an administrator to unlock it (admin: Access attempts)."
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the API's error format under /api/, else the sign-in page saying why."""
    if request.path.startswith("/api/"):
        error = {"code": "locked_out", "message": lockout_message(), "fields": {}}
        return JsonResponse({"error": error}, status=status.HTTP_429_TOO_MANY_REQUESTS)
    username = get_client_username(request, credentials if isinstance(credentials, dict) else None)
    form = AuthenticationForm(request, initial={"username": username or ""})
    context = {"form": form, "locked_out": lockout_message(), "next": request.POST.get("next", "")}
    return render(request, "registration/login.html", context, status=status.HTTP_429_TOO_MANY_REQUESTS)


class LockedOut(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = "Too many failed sign-ins."
    default_code = "locked_out"


class TokenObtainPairSerializer(jwt_serializers.TokenObtainPairSerializer):
    """A user name and password."""

    # A success clears the failures counted for this user and address, as a sign-in through a
    # page does (axes hears Django's user_logged_in there, which simplejwt never sends).

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        data = super().validate(attrs)
        assert self.user is not None  # validate() raised otherwise
        axes_reset(ip=client_ip(self.context["request"]), username=self.user.get_username())
        return data


class TokenRefreshSerializer(jwt_serializers.TokenRefreshSerializer):
    """A refresh token, usable once."""

    # Refused: the tokens of a user who is gone, deactivated, or has changed password since
    # (simplejwt checks the password claim on access tokens only).

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = RefreshToken(attrs["refresh"])  # expired, malformed or blacklisted: 401
        user = get_user_model().objects.filter(pk=refresh.get(jwt_settings.USER_ID_CLAIM)).first()
        if (
            user is None
            or not user.is_active
            or refresh.get(jwt_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password)
        ):
            raise exceptions.AuthenticationFailed(
                "This refresh token has been revoked (password changed or user deactivated): sign in again.",
                "token_revoked",
            )
        return super().validate(attrs)


class TokenPairSerializer(serializers.Serializer):
    """An access token (`Authorization: Bearer <access>`) and the refresh token for the next one."""

    access = serializers.CharField()
    refresh = serializers.CharField()


class TokenObtainPairView(jwt_views.TokenObtainPairView):
    """Takes a user name and password; returns an access and a refresh token.

    After LOGIN_FAILURE_LIMIT (default 5) wrong passwords for one user name from one address,
    that pair is refused for LOGIN_LOCKOUT_MINUTES (default 15), even with the right password:
    429 `locked_out`. Calls to this endpoint and the refresh endpoint together are limited per
    address (AUTH_THROTTLE_PER_MINUTE, default 20 a minute): 429 `throttled`.
    """

    serializer_class = TokenObtainPairSerializer
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(responses={200: TokenPairSerializer})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return super().post(request, *args, **kwargs)
        except exceptions.AuthenticationFailed:
            # Set by axes on this request (the failure that reached the limit, or any try after it).
            if getattr(request, "axes_locked_out", False):
                raise LockedOut(lockout_message()) from None
            raise


class TokenRefreshView(jwt_views.TokenRefreshView):
    """Takes a refresh token; returns a new access token and a new refresh token.

    Each refresh token works once: a used one is refused (401 `token_not_valid`). A password
    change or a deactivation revokes all of a user's tokens. Rate-limited with the token endpoint.
    """

    serializer_class = TokenRefreshSerializer
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(responses={200: TokenPairSerializer})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)

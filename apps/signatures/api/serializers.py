"""The signature a request carries, and the manifests a signed record shows."""

from typing import Any

from rest_framework import serializers
from rest_framework.request import Request

from apps.signatures.choices import SignatureMeaning
from apps.signatures.services import Signer, signer_check

# The session key set after the first signature of a browser session: later ones ask only the password.
SIGNED_IN_SESSION = "openspc_signed"


class SignatureInputSerializer(serializers.Serializer):
    """{"password", "meaning", "username"?}: the signer's password again, and what the signature means.
    The user name is asked for the first signature of a browser session, and always from API clients
    that sign with a token."""

    password = serializers.CharField(write_only=True, trim_whitespace=False, style={"input_type": "password"})
    meaning = serializers.ChoiceField(choices=SignatureMeaning.choices)
    username = serializers.CharField(required=False, allow_blank=True)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ManifestSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    signed_by = serializers.CharField(help_text="The signer's printed full name.")
    username = serializers.CharField()
    meaning = serializers.ChoiceField(choices=SignatureMeaning.choices)
    meaning_label = serializers.CharField()
    action = serializers.CharField()
    action_label = serializers.CharField()
    signed_at = serializers.DateTimeField(help_text="Date and time with the signer's time zone offset.")
    time_zone = serializers.CharField()
    state = serializers.CharField(help_text="valid, or changed_after_signing: the record changed since.")
    counts = serializers.BooleanField(help_text="False once the record changed after signing.")
    text = serializers.CharField(help_text="The manifest as one printed line.")
    comment = serializers.CharField()


def signer_from_request(request: Request, data: dict[str, Any] | None, *, action: str) -> Signer | None:
    """The checked signer of a request's `signature` (None if it has none): call it before the
    action's transaction. A browser session's first signature also needs the user name."""
    if not data:
        return None
    session = getattr(request._request, "session", None)
    by_session = (
        session is not None
        and request.successful_authenticator is not None
        and (type(request.successful_authenticator).__name__ == "SessionAuthentication")
    )
    username_required = not (by_session and session is not None and session.get(SIGNED_IN_SESSION))
    signer = signer_check(
        user=request.user,  # type: ignore[arg-type]
        action=action,
        meaning=data["meaning"],
        password=data["password"],
        username=data.get("username") or None,
        username_required=username_required,
    )
    if by_session and session is not None:
        session[SIGNED_IN_SESSION] = True
    return signer

"""Signing in tests: the factories give every user the password below, so a test signs as any user
it made: a request's `signature` body, or a checked Signer for a service call."""

from django.contrib.auth.models import AbstractBaseUser, User

from apps.signatures.choices import SignedAction
from apps.signatures.services import Signer, signer_check

PASSWORD = "pw-for-tests-only"  # tests/factories.py UserFactory's


def signature_body(user: AbstractBaseUser | str, meaning: str = "approved") -> dict[str, str]:
    """The `signature` of a request by `user` (or the user of that name), with the user name as for a
    first signature."""
    username = user if isinstance(user, str) else user.get_username()
    return {"password": PASSWORD, "meaning": meaning, "username": username}


# The signature of the conftest's quality specialist (user name "qs").
QS_SIGNATURE = signature_body("qs")


def signer_for(action: str, user: User | None = None, meaning: str = "approved") -> Signer:
    """A Signer checked with the test password (a new user if none is given)."""
    from tests.factories import UserFactory

    user = user or UserFactory()
    return signer_check(
        user=user, action=action, meaning=meaning, password=PASSWORD, username=user.get_username()
    )


def limits_signer(user: User | None = None) -> Signer:
    """A signer for storing control limits (meaning 'approved')."""
    return signer_for(SignedAction.CONTROL_LIMITS, user)


def release_signer(user: User | None = None) -> Signer:
    """A signer for releasing a test plan (meaning 'approved')."""
    return signer_for(SignedAction.PLAN_RELEASE, user)

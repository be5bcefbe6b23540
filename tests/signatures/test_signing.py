"""Signing (apps/signatures): re-authentication at the moment of signing, the meaning, the lock
after wrong passwords, and the binding of a signature to what was signed."""

import datetime
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.audit.choices import AuditAction
from apps.audit.models import AuditEntry
from apps.config.models import Product
from apps.signatures import services
from apps.signatures.choices import SignatureState, SignedAction
from apps.signatures.models import Signature
from apps.signatures.selectors import signatures_of
from apps.signatures.services import SigningRefused, signature_record, signer_check
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-only"


@pytest.fixture
def signer_user() -> User:
    return UserFactory(username="ada", first_name="Ada", last_name="Lovelace")


@pytest.fixture
def product_content() -> Iterator[None]:
    """Products as a signed record kind for these tests (the apps register their own records)."""
    services.signed_content_register(Product, lambda p: {"code": p.code, "name": p.name})
    yield
    services._CONTENT.pop(Product, None)


def check(user: User, password: str = PASSWORD, **kwargs: Any) -> services.Signer:
    return signer_check(
        user=user, action=SignedAction.PLAN_RELEASE, meaning=kwargs.pop("meaning", "approved"),
        password=password, **kwargs,
    )  # fmt: skip


def failures(user: User) -> list[str]:
    return list(
        AuditEntry.objects.filter(object_id=str(user.pk), action=AuditAction.SIGN_FAILED)
        .order_by("id")
        .values_list("reason", flat=True)
    )


def test_the_right_password_and_a_meaning_of_the_action_sign(
    signer_user: User, product_content: None
) -> None:
    product = ProductFactory(code="RING-74", name="Piston ring")
    signer = check(signer_user)
    signature = signature_record(
        signer=signer,
        action=SignedAction.PLAN_RELEASE,
        record=product,
        content={"code": "RING-74", "name": "Piston ring"},
    )
    assert signature is not None
    row = Signature.objects.get()
    assert (row.user, row.full_name, row.meaning, row.action) == (
        signer_user,
        "Ada Lovelace",
        "approved",
        "plan_release",
    )
    assert row.content == {"code": "RING-74", "name": "Piston ring"}
    assert row.content_hash == services.content_hash({"name": "Piston ring", "code": "RING-74"})  # key order
    entry = AuditEntry.objects.get(action=AuditAction.SIGN)
    assert (entry.user, entry.object_id, entry.after["meaning"]) == (signer_user, str(product.pk), "approved")
    (shown,) = signatures_of(product)
    assert (shown.state, shown.counts, shown.signed_by, shown.time_zone) == (
        "valid",
        True,
        "Ada Lovelace",
        "UTC",
    )
    assert shown.text.startswith("Approved by Ada Lovelace on ")
    assert shown.signed_at.endswith("+00:00")


def test_a_record_changed_after_signing_shows_it_and_the_signature_no_longer_counts(
    signer_user: User, product_content: None
) -> None:
    product = ProductFactory(code="RING-74", name="Piston ring")
    signature_record(
        signer=check(signer_user), action=SignedAction.PLAN_RELEASE, record=product,
        content=services.signed_content(product),
    )  # fmt: skip
    Product.objects.filter(pk=product.pk).update(name="Piston ring, changed")
    product.refresh_from_db()
    (shown,) = signatures_of(product)
    assert (shown.state, shown.counts) == (SignatureState.CHANGED, False)
    assert shown.text.endswith("changed after signing")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"password": "wrong"}, "Wrong password: nothing was signed."),
        ({"password": ""}, "Wrong password: nothing was signed."),
        ({"username": "grace"}, "The user name is not yours: nothing was signed."),
    ],
)
def test_a_wrong_password_or_user_name_is_refused_and_audited(
    signer_user: User, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(SigningRefused, match=message):
        check(signer_user, **kwargs)
    assert failures(signer_user) == ["wrong user name" if "username" in kwargs else "wrong password"]
    assert not Signature.objects.exists()


def test_the_first_signature_of_a_session_needs_the_user_name(signer_user: User) -> None:
    with pytest.raises(ValidationError, match="Enter your user name"):
        check(signer_user, username_required=True)
    assert check(signer_user, username="ada", username_required=True).user == signer_user


def test_a_meaning_the_action_does_not_take_is_a_400_not_a_failure(signer_user: User) -> None:
    with pytest.raises(ValidationError, match="means one of: approved, released"):
        check(signer_user, meaning="verified")
    assert failures(signer_user) == []


def test_five_wrong_passwords_lock_signing_for_fifteen_minutes(
    signer_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(4):
        with pytest.raises(SigningRefused, match="Wrong password"):
            check(signer_user, password="wrong")
    assert not AuditEntry.objects.filter(action=AuditAction.SIGN_LOCKED).exists()
    with pytest.raises(SigningRefused, match="Wrong password"):
        check(signer_user, password="wrong")  # the fifth: locks
    lock = AuditEntry.objects.get(action=AuditAction.SIGN_LOCKED)
    assert lock.reason == "5 wrong signatures within 15 minutes"
    # The sixth attempt is refused even with the right password, and audited.
    with pytest.raises(SigningRefused, match="Signing is locked for you until"):
        check(signer_user)
    assert failures(signer_user)[-1] == "signing locked"
    # Fifteen minutes on, the right password signs again.
    later = timezone.now() + datetime.timedelta(minutes=15, seconds=1)
    monkeypatch.setattr(services.timezone, "now", lambda: later)
    assert check(signer_user).user == signer_user


def test_failures_spread_over_more_than_the_window_do_not_lock(
    signer_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = timezone.now()
    for minute in (0, 4, 8, 12, 16):  # the first has left the window when the fifth comes
        monkeypatch.setattr(services.timezone, "now", lambda m=minute: start + datetime.timedelta(minutes=m))
        with pytest.raises(SigningRefused, match="Wrong password"):
            check(signer_user, password="wrong")
        AuditEntry.objects.filter(pk=AuditEntry.objects.latest("id").pk)
    assert not AuditEntry.objects.filter(action=AuditAction.SIGN_LOCKED).exists()


def test_an_action_that_needs_a_signature_refuses_none(settings: Any, signer_user: User) -> None:
    product = ProductFactory()
    with pytest.raises(ValidationError, match="Test plan release needs your electronic signature"):
        signature_record(signer=None, action=SignedAction.PLAN_RELEASE, record=product, content={})
    settings.SIGNATURES_REQUIRED_FOR = ["lot_disposition"]
    assert signature_record(signer=None, action=SignedAction.PLAN_RELEASE, record=product, content={}) is None


def test_the_signature_is_audited_with_the_way_the_signer_came(
    signer_user: User, product_content: None
) -> None:
    product = ProductFactory()
    signer = check(signer_user, source="admin")
    signature_record(signer=signer, action=SignedAction.PLAN_RELEASE, record=product, content={"x": 1})
    assert AuditEntry.objects.get(action=AuditAction.SIGN).source == "admin"

"""The signing rule of plan releases and control limits at the service level: a signer where
SIGNATURES_REQUIRED_FOR lists the action, none needed where it does not, and `signed_by_system`
(seed commands only) storing the record unsigned."""

import pytest
from django.core.exceptions import ValidationError

from apps.calculations.services import limits_set_historical
from apps.config import services
from apps.config.choices import PlanStatus
from apps.config.models import TestPlan
from apps.signatures.choices import SignedAction
from apps.signatures.models import Signature
from tests.factories import ProductFactory, TestFactory, TestPlanFactory, UserFactory, characteristic_for
from tests.support.signing import limits_signer, release_signer, signer_for

pytestmark = pytest.mark.django_db


def test_a_release_without_a_signer_is_refused_and_the_plan_stays_a_draft():
    plan = TestPlanFactory(tests=[TestFactory()])
    with pytest.raises(ValidationError) as refused:
        services.test_plan_release(plan=plan, user=UserFactory(), reason="Validated")
    assert "Test plan release needs your electronic signature" in str(refused.value.message_dict["signature"])
    assert TestPlan.objects.get(pk=plan.pk).status == PlanStatus.DRAFT


def test_a_signer_checked_for_limits_does_not_sign_a_release():
    plan = TestPlanFactory(tests=[TestFactory()])
    with pytest.raises(ValueError, match="checked for control_limits"):
        services.test_plan_release(plan=plan, user=UserFactory(), reason="Validated", signer=limits_signer())
    assert TestPlan.objects.get(pk=plan.pk).status == PlanStatus.DRAFT


def test_seeds_store_unsigned_only_when_they_say_so():
    plan = TestPlanFactory(tests=[TestFactory()])
    released = services.test_plan_release(
        plan=plan, user=UserFactory(), reason="Demo configuration", signed_by_system=True
    )
    assert released.status == PlanStatus.RELEASED
    assert not Signature.objects.filter(object_id=str(plan.pk), action=SignedAction.PLAN_RELEASE).exists()
    dia = characteristic_for(ProductFactory(), TestFactory())
    with pytest.raises(ValidationError) as refused:
        limits_set_historical(characteristic=dia, center=10.0, sigma=1.0, reason="study")
    assert "signature" in refused.value.message_dict
    assert not dia.limits.exists()
    change = limits_set_historical(
        characteristic=dia, center=10.0, sigma=1.0, reason="study", signed_by_system=True
    )
    assert not Signature.objects.filter(
        object_id=str(change.new.pk), action=SignedAction.CONTROL_LIMITS
    ).exists()


def test_where_an_action_needs_no_signature_none_is_stored(settings):
    settings.SIGNATURES_REQUIRED_FOR = ["lot_disposition"]
    plan = services.test_plan_release(
        plan=TestPlanFactory(tests=[TestFactory()]), user=UserFactory(), reason="Validated"
    )
    assert plan.status == PlanStatus.RELEASED
    assert not Signature.objects.filter(action=SignedAction.PLAN_RELEASE).exists()
    # A signature given anyway is stored.
    user = UserFactory()
    signed = services.test_plan_release(
        plan=TestPlanFactory(tests=[TestFactory()]), user=user, reason="Validated",
        signer=signer_for(SignedAction.PLAN_RELEASE, user, "released"),
    )  # fmt: skip
    assert Signature.objects.get(object_id=str(signed.pk), action=SignedAction.PLAN_RELEASE).user == user


def test_the_release_signature_is_audited_with_its_hash():
    from apps.audit.choices import AuditAction
    from apps.audit.models import AuditEntry

    user = UserFactory()
    plan = services.test_plan_release(
        plan=TestPlanFactory(tests=[TestFactory()]),
        user=user,
        reason="Validated",
        signer=release_signer(user),
    )
    signature = Signature.objects.get(object_id=str(plan.pk), action=SignedAction.PLAN_RELEASE)
    entry = AuditEntry.objects.get(
        action=AuditAction.SIGN, object_id=str(plan.pk), content_type__model="testplan"
    )
    assert entry.after == {
        "signature": signature.pk,
        "meaning": "approved",
        "action": "plan_release",
        "hash": signature.content_hash,
    }

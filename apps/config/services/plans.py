"""Writes of test plans: drafts, their tests, release, retirement and new versions."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.audit.services import SYSTEM, Actor, audit_change, audit_fields
from apps.config.choices import MAX_SUBGROUP_SIZE, PlanStatus
from apps.config.models import Test, TestPlan, TestPlanEntry
from apps.signatures.choices import SignedAction
from apps.signatures.services import Signer, signature_record
from openspc.rows import model_update


@dataclass(frozen=True)
class PlanEntryInput:
    test: Test
    replicates: int = 1
    requires_verification: bool = False  # its results need a second person's verification


PLAN_FIELDS = ("code", "version", "name", "description", "status")


def plan_snapshot(plan: TestPlan) -> dict[str, Any]:
    """A plan as the audit trail keeps it: its fields and its tests in order."""
    entries = plan.entries.order_by("position").values_list("test_id", "replicates", "requires_verification")
    return {
        **audit_fields(plan, list(PLAN_FIELDS)),
        "tests": [
            {"test": test, "replicates": replicates, "requires_verification": verify}
            for test, replicates, verify in entries
        ],
    }


def plan_signed_content(plan: TestPlan) -> dict[str, Any]:
    """What a plan release's signature binds: the plan's identity and text and its tests as
    released. Not its status: retiring the plan later does not change what was signed."""
    entries = plan.entries.order_by("position").values_list(
        "test__code", "position", "replicates", "requires_verification"
    )
    return {
        "plan": plan.pk, "code": plan.code, "version": plan.version, "name": plan.name,
        "description": plan.description,
        "entries": [
            {"test": code, "position": position, "replicates": replicates, "requires_verification": verify}
            for code, position, replicates, verify in entries
        ],
    }  # fmt: skip


def _plan_audited(plan: TestPlan, before: dict[str, Any] | None, actor: Actor, reason: str = "") -> None:
    audit_change(actor=actor, instance=plan, before=before, after=plan_snapshot(plan), reason=reason)


def _plan_require_draft(plan: TestPlan) -> None:
    if plan.status != PlanStatus.DRAFT:
        raise ValidationError(
            f"Test plan {plan.code} v{plan.version} is {plan.get_status_display().lower()} and cannot be "
            "changed. Create a new version of it instead.",
            code="plan_locked",
        )


def _plan_entries_write(*, plan: TestPlan, entries: Sequence[PlanEntryInput]) -> None:
    seen: set[int] = set()
    for index, entry in enumerate(entries):
        if entry.test.pk in seen:
            raise ValidationError({"tests": f"Test {entry.test.code} is listed twice (entry {index + 1})."})
        if not 1 <= entry.replicates <= MAX_SUBGROUP_SIZE:
            raise ValidationError(
                {"tests": f"Entry {index + 1}: replicates must be between 1 and {MAX_SUBGROUP_SIZE}."}
            )
        seen.add(entry.test.pk)
    plan.entries.all().delete()
    TestPlanEntry.objects.bulk_create(
        TestPlanEntry(
            plan=plan,
            test=entry.test,
            position=index + 1,
            replicates=entry.replicates,
            requires_verification=entry.requires_verification,
        )
        for index, entry in enumerate(entries)
    )


@transaction.atomic
def test_plan_create(
    *,
    code: str,
    name: str,
    description: str = "",
    entries: Sequence[PlanEntryInput] = (),
    actor: Actor = SYSTEM,
) -> TestPlan:
    if TestPlan.objects.filter(code=code).exists():
        raise ValidationError({"code": f"Test plan {code} exists; create a new version of it instead."})
    plan = TestPlan.objects.create(code=code, name=name, description=description)
    _plan_entries_write(plan=plan, entries=entries)
    _plan_audited(plan, None, actor)
    return plan


@transaction.atomic
def test_plan_update(
    *,
    plan: TestPlan,
    data: dict[str, Any],
    entries: Sequence[PlanEntryInput] | None = None,
    actor: Actor = SYSTEM,
) -> TestPlan:
    plan = TestPlan.objects.select_for_update().get(pk=plan.pk)
    _plan_require_draft(plan)
    if "code" in data and data["code"] != plan.code:
        raise ValidationError({"code": "The code of a plan cannot change; create a new plan."})
    before = plan_snapshot(plan)
    plan, _ = model_update(instance=plan, fields=("name", "description"), data=data)
    if entries is not None:
        _plan_entries_write(plan=plan, entries=entries)
    _plan_audited(plan, before, actor)
    return plan


@transaction.atomic
def test_plan_set_tests(
    *, plan: TestPlan, entries: Sequence[PlanEntryInput], actor: Actor = SYSTEM
) -> TestPlan:
    """Replace the plan's tests with `entries`, in that order (adds, removes and reorders)."""
    return test_plan_update(plan=plan, data={}, entries=entries, actor=actor)


@transaction.atomic
def test_plan_delete(*, plan: TestPlan, actor: Actor = SYSTEM) -> None:
    """Only a draft that was never used can be deleted; released plans are history."""
    _plan_require_draft(plan)
    audit_change(actor=actor, instance=plan, before=plan_snapshot(plan), after=None)
    plan.delete()


@transaction.atomic
def test_plan_release(
    *,
    plan: TestPlan,
    user: User,
    reason: str,
    signer: Signer | None = None,
    signed_by_system: bool = False,
    actor: Actor | None = None,
) -> TestPlan:
    """Release a draft plan, saying why (the reason is kept in the audit trail), signed.

    `signer` is the person who re-authenticated for SignedAction.PLAN_RELEASE (signer_check, before
    this transaction); without one the release is refused (ValidationError naming the signature)
    where SIGNATURES_REQUIRED_FOR lists plan_release. `signed_by_system` is reserved for seed
    commands with no person at the keyboard (demo_setup, the benchmarks): the release is stored
    unsigned, and says so in the audit trail (source "system"). No request path passes it."""
    plan = TestPlan.objects.select_for_update().get(pk=plan.pk)
    _plan_require_draft(plan)
    if not plan.entries.exists():
        raise ValidationError({"tests": "A plan needs at least one test before it is released."})
    if not reason.strip():
        raise ValidationError(
            {"reason": "Say why the plan is released: the reason is kept in the audit trail."}
        )
    before = plan_snapshot(plan)
    plan.status = PlanStatus.RELEASED
    plan.released_at = timezone.now()
    plan.released_by = user
    plan.save(update_fields=["status", "released_at", "released_by", "updated_at"])
    if not signed_by_system:
        signature_record(
            signer=signer, action=SignedAction.PLAN_RELEASE, record=plan, content=plan_signed_content(plan)
        )
    _plan_audited(plan, before, actor or Actor(user), reason=reason.strip())
    return plan


@transaction.atomic
def test_plan_retire(*, plan: TestPlan, actor: Actor = SYSTEM) -> TestPlan:
    plan = TestPlan.objects.select_for_update().get(pk=plan.pk)
    if plan.status != PlanStatus.RELEASED:
        raise ValidationError(
            f"Only a released plan can be retired; {plan.code} v{plan.version} is {plan.status}."
        )
    before = plan_snapshot(plan)
    plan.status = PlanStatus.RETIRED
    plan.save(update_fields=["status", "updated_at"])
    _plan_audited(plan, before, actor)
    return plan


def _plan_copy(*, plan: TestPlan, actor: Actor, reason: str = "") -> TestPlan:
    """A draft with the plan's name, description and tests under the same code, next version."""
    # Lock the plan's versions, then read the highest in a new statement: under READ COMMITTED
    # only a new statement sees a version that a transaction we waited for has just added.
    list(TestPlan.objects.select_for_update().filter(code=plan.code).values_list("pk", flat=True))
    latest = TestPlan.objects.filter(code=plan.code).aggregate(v=Max("version"))["v"]
    draft = TestPlan.objects.create(
        code=plan.code, version=latest + 1, name=plan.name, description=plan.description
    )
    _plan_entries_write(
        plan=draft,
        entries=[
            PlanEntryInput(
                test=e.test, replicates=e.replicates, requires_verification=e.requires_verification
            )
            for e in plan.entries.select_related("test")
        ],
    )
    audit_change(actor=actor, instance=draft, before=None, after=plan_snapshot(draft), reason=reason)
    return draft


@transaction.atomic
def test_plan_new_version(*, plan: TestPlan, actor: Actor = SYSTEM) -> TestPlan:
    """A draft copy of the plan under the same code, with the next version number."""
    return _plan_copy(plan=plan, actor=actor)


@transaction.atomic
def test_plan_reinstate(*, plan: TestPlan, actor: Actor = SYSTEM) -> TestPlan:
    """Bring a retired plan's content back as a new draft version (next number of its code), to be
    released and assigned like any other. The retired version stays retired: what was measured
    against it keeps pointing at it."""
    plan = TestPlan.objects.get(pk=plan.pk)
    if plan.status != PlanStatus.RETIRED:
        raise ValidationError(
            f"Only a retired plan is reinstated; {plan.code} v{plan.version} is {plan.status}. "
            "Create a new version of it instead.",
            code="plan_not_retired",
        )
    return _plan_copy(plan=plan, actor=actor, reason=f"Reinstated from retired {plan.code} v{plan.version}.")

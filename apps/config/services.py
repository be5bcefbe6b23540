"""Writes of the configuration domain. Views, admin and commands call these; nothing else writes.

Every function validates what the database cannot express in plain words and
raises django.core.exceptions.ValidationError keyed by field, before anything
is written; database constraints stay as the last line of defence.
"""

import copy
import datetime
import math
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from apps.audit.models import AuditAction
from apps.audit.services import SYSTEM, Actor, audit_change, audit_fields, audit_record
from apps.config.authentication import token_hash
from apps.config.choices import (
    DEFECTIVES_CHARTS,
    DEFECTS_CHARTS,
    MQTT_SOURCES,
    VARIABLE_CHARTS,
    ChartType,
    DataSource,
    LimitMethod,
    PlanStatus,
    RejectionCode,
    RulePreset,
    TestKind,
)
from apps.config.models import (
    Characteristic,
    ControlLimits,
    Device,
    PlanAssignment,
    Product,
    Test,
    TestPlan,
    TestPlanEntry,
)
from apps.config.roles import Role
from apps.config.rules import preset_rules, rules_normalize
from apps.config.selectors import PlanTest, ProductConfig, TestInfo
from openspc.services import model_update
from openspc.topics import PUBLISHED_ROOTS, topic_published_by_bridge

# --- Products and tests ------------------------------------------------------

PRODUCT_FIELDS = ("code", "name", "description", "active")
TEST_FIELDS = (
    "code",
    "name",
    "unit",
    "kind",
    "decimals",
    "instructions",
    "plausible_min",
    "plausible_max",
    "active",
)


# Every write below takes `actor` (who, and through what: "api", "admin") and appends one audit
# entry with the audited fields before and after; a change that changes nothing records nothing.


def _audited(
    instance: Any, fields: Sequence[str], before: dict[str, Any] | None, actor: Actor, deleted: bool = False
) -> None:
    after = None if deleted else audit_fields(instance, list(fields))
    audit_change(actor=actor, instance=instance, before=before, after=after)


@transaction.atomic
def product_create(
    *, code: str, name: str, description: str = "", active: bool = True, actor: Actor = SYSTEM
) -> Product:
    product = Product.objects.create(code=code, name=name, description=description, active=active)
    _audited(product, PRODUCT_FIELDS, None, actor)
    return product


@transaction.atomic
def product_update(*, product: Product, data: dict[str, Any], actor: Actor = SYSTEM) -> Product:
    before = audit_fields(product, list(PRODUCT_FIELDS))
    product, _ = model_update(instance=product, fields=PRODUCT_FIELDS, data=data)
    _audited(product, PRODUCT_FIELDS, before, actor)
    return product


@transaction.atomic
def product_delete(*, product: Product, actor: Actor = SYSTEM) -> None:
    """Only a product nothing refers to can go (ProtectedError otherwise: deactivate it instead)."""
    _audited(product, PRODUCT_FIELDS, audit_fields(product, list(PRODUCT_FIELDS)), actor, deleted=True)
    product.delete()


def test_validate(*, data: dict[str, Any], test: Test | None = None) -> None:
    low = data.get("plausible_min", test.plausible_min if test else None)
    high = data.get("plausible_max", test.plausible_max if test else None)
    if low is not None and high is not None and low >= high:
        raise ValidationError({"plausible_max": f"Must be above the plausible minimum ({low})."})
    if data.get("decimals", 0) > 10:
        raise ValidationError({"decimals": "At most 10 decimal places."})
    if test is not None and "kind" in data and data["kind"] != test.kind and test.characteristics.exists():
        raise ValidationError(
            {"kind": "The test is already charted on products; create a new test for another kind."}
        )


@transaction.atomic
def test_create(*, actor: Actor = SYSTEM, **data: Any) -> Test:
    test_validate(data=data)
    test = Test.objects.create(**{name: data[name] for name in TEST_FIELDS if name in data})
    _audited(test, TEST_FIELDS, None, actor)
    return test


@transaction.atomic
def test_update(*, test: Test, data: dict[str, Any], actor: Actor = SYSTEM) -> Test:
    test_validate(data=data, test=test)
    before = audit_fields(test, list(TEST_FIELDS))
    test, _ = model_update(instance=test, fields=TEST_FIELDS, data=data)
    _audited(test, TEST_FIELDS, before, actor)
    return test


@transaction.atomic
def test_delete(*, test: Test, actor: Actor = SYSTEM) -> None:
    """Only a test in no plan and no chart can go (ProtectedError otherwise: deactivate it instead)."""
    _audited(test, TEST_FIELDS, audit_fields(test, list(TEST_FIELDS)), actor, deleted=True)
    test.delete()


# --- Test plans ----------------------------------------------------------------


@dataclass(frozen=True)
class PlanEntryInput:
    test: Test
    replicates: int = 1


PLAN_FIELDS = ("code", "version", "name", "description", "status")


def plan_snapshot(plan: TestPlan) -> dict[str, Any]:
    """A plan as the audit trail keeps it: its fields and its tests in order."""
    entries = plan.entries.order_by("position").values_list("test_id", "replicates")
    return {
        **audit_fields(plan, list(PLAN_FIELDS)),
        "tests": [{"test": test, "replicates": replicates} for test, replicates in entries],
    }


def _plan_audited(plan: TestPlan, before: dict[str, Any] | None, actor: Actor) -> None:
    audit_change(actor=actor, instance=plan, before=before, after=plan_snapshot(plan))


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
        if not 1 <= entry.replicates <= 25:
            raise ValidationError({"tests": f"Entry {index + 1}: replicates must be between 1 and 25."})
        seen.add(entry.test.pk)
    plan.entries.all().delete()
    TestPlanEntry.objects.bulk_create(
        TestPlanEntry(plan=plan, test=entry.test, position=index + 1, replicates=entry.replicates)
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
def test_plan_release(*, plan: TestPlan, user: User, actor: Actor | None = None) -> TestPlan:
    plan = TestPlan.objects.select_for_update().get(pk=plan.pk)
    _plan_require_draft(plan)
    if not plan.entries.exists():
        raise ValidationError({"tests": "A plan needs at least one test before it is released."})
    before = plan_snapshot(plan)
    plan.status = PlanStatus.RELEASED
    plan.released_at = timezone.now()
    plan.released_by = user
    plan.save(update_fields=["status", "released_at", "released_by", "updated_at"])
    _plan_audited(plan, before, actor or Actor(user))
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


@transaction.atomic
def test_plan_new_version(*, plan: TestPlan, actor: Actor = SYSTEM) -> TestPlan:
    """A draft copy of the plan under the same code, with the next version number."""
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
            PlanEntryInput(test=e.test, replicates=e.replicates) for e in plan.entries.select_related("test")
        ],
    )
    _plan_audited(draft, None, actor)
    return draft


# --- Plan assignment and characteristics ----------------------------------------


def _characteristic_defaults(test: Test) -> dict[str, Any]:
    if test.kind == TestKind.DEFECTIVES:
        return {"chart_type": ChartType.P}
    if test.kind == TestKind.DEFECTS:
        return {"chart_type": ChartType.U}
    return {"chart_type": ChartType.AUTO}


def characteristics_ensure(*, product: Product, plan: TestPlan) -> list[Characteristic]:
    """Make sure every test of the plan has a characteristic on the product (existing ones are kept)."""
    existing = {c.test_id: c for c in Characteristic.objects.filter(product=product, test__plans=plan)}
    created = [
        Characteristic(product=product, test=entry.test, **_characteristic_defaults(entry.test))
        for entry in plan.entries.select_related("test")
        if entry.test_id not in existing
    ]
    Characteristic.objects.bulk_create(created)
    return [*existing.values(), *created]


def plan_assignment_validate(
    *,
    product: Product,
    plan: TestPlan,
    effective_from: datetime.date,
    effective_to: datetime.date | None,
) -> None:
    if plan.status != PlanStatus.RELEASED:
        raise ValidationError(
            {"plan": f"Only released plans can be assigned; {plan.code} v{plan.version} is {plan.status}."}
        )
    if not product.active:
        raise ValidationError({"product": f"Product {product.code} is inactive."})
    _assignment_overlap_check(
        product=product, plan=plan, effective_from=effective_from, effective_to=effective_to
    )


def _assignment_overlap_check(
    *,
    product: Product,
    plan: TestPlan,
    effective_from: datetime.date,
    effective_to: datetime.date | None,
    exclude: PlanAssignment | None = None,
) -> None:
    """One version of a plan (by code) per product on any day, so what testers are asked is clear."""
    if effective_to is not None and effective_to < effective_from:
        raise ValidationError({"effective_to": "Must be on or after effective_from."})
    overlapping = PlanAssignment.objects.filter(product=product, plan__code=plan.code).filter(
        Q(effective_to__isnull=True) | Q(effective_to__gte=effective_from)
    )
    if effective_to is not None:
        overlapping = overlapping.filter(effective_from__lte=effective_to)
    if exclude is not None:
        overlapping = overlapping.exclude(pk=exclude.pk)
    other = overlapping.select_related("plan").first()
    if other is not None:
        until = f"until {other.effective_to}" if other.effective_to else "with no end"
        field = "effective_to" if exclude is not None else "plan"
        raise ValidationError(
            {
                field: f"{other.plan.code} v{other.plan.version} is assigned to {product.code} from "
                f"{other.effective_from} {until}, which overlaps; end that assignment first."
            }
        )


@transaction.atomic
def plan_assign(
    *,
    product: Product,
    plan: TestPlan,
    effective_from: datetime.date | None = None,
    effective_to: datetime.date | None = None,
    user: User | None = None,
    actor: Actor | None = None,
) -> PlanAssignment:
    """Assign a released plan to a product, creating the characteristics of its tests."""
    effective_from = effective_from or timezone.localdate()
    # The product row lock serialises assignments to one product, so the overlap check holds.
    product = Product.objects.select_for_update().get(pk=product.pk)
    plan_assignment_validate(
        product=product, plan=plan, effective_from=effective_from, effective_to=effective_to
    )
    assignment = PlanAssignment.objects.create(
        product=product,
        plan=plan,
        effective_from=effective_from,
        effective_to=effective_to,
        assigned_by=user,
    )
    characteristics_ensure(product=product, plan=plan)
    _audited(assignment, ASSIGNMENT_FIELDS, None, actor or Actor(user))
    return assignment


ASSIGNMENT_FIELDS = ("product", "plan", "effective_from", "effective_to")


def plan_assignment_end_validate(*, assignment: PlanAssignment, effective_to: datetime.date | None) -> None:
    _assignment_overlap_check(
        product=assignment.product, plan=assignment.plan, effective_from=assignment.effective_from,
        effective_to=effective_to, exclude=assignment,
    )  # fmt: skip


@transaction.atomic
def plan_assignment_end(
    *, assignment: PlanAssignment, effective_to: datetime.date | None, actor: Actor = SYSTEM
) -> PlanAssignment:
    """Set (or clear) the last day of an assignment; it may not come to overlap another."""
    Product.objects.select_for_update().filter(pk=assignment.product_id).first()
    # Read back, as a form may hand over an instance it has already changed.
    assignment = PlanAssignment.objects.select_related("product", "plan").get(pk=assignment.pk)
    plan_assignment_end_validate(assignment=assignment, effective_to=effective_to)
    before = audit_fields(assignment, list(ASSIGNMENT_FIELDS))
    assignment.effective_to = effective_to
    assignment.save(update_fields=["effective_to"])
    _audited(assignment, ASSIGNMENT_FIELDS, before, actor)
    return assignment


CHARACTERISTIC_FIELDS = (
    "lsl", "target", "usl", "subgroup_size", "chart_type", "chart_params", "rules", "acknowledge_rules",
    "data_source", "tag", "subgroup_timeout", "subgroup_timeout_policy", "site", "area", "line", "cell",
    "decimals", "active",
)  # fmt: skip


def acknowledge_rules_validate(rules: Any) -> list[int]:
    """The rules whose violations need acknowledging: Nelson rule numbers 1–8, each once, sorted
    (empty, or an empty form field: every violation is informational)."""
    if rules is None:
        return []
    if not isinstance(rules, list | tuple) or any(
        isinstance(rule, bool) or not isinstance(rule, int) for rule in rules
    ):
        raise ValidationError({"acknowledge_rules": "Give a list of rule numbers, e.g. [1, 2, 5]."})
    outside = sorted({rule for rule in rules if not 1 <= rule <= 8})
    if outside:
        raise ValidationError(
            {"acknowledge_rules": f"Nelson rules are numbered 1 to 8; not {', '.join(map(str, outside))}."}
        )
    twice = sorted({rule for rule in rules if list(rules).count(rule) > 1})
    if twice:
        raise ValidationError({"acknowledge_rules": f"Rule {', '.join(map(str, twice))} is listed twice."})
    return sorted(rules)


def _chart_params_validate(chart_type: str, params: Any) -> dict[str, float]:
    if not isinstance(params, dict):
        raise ValidationError({"chart_params": 'Give an object, e.g. {} or {"lambda": 0.2, "L": 3}.'})
    allowed = {
        ChartType.EWMA: {"lambda": (0, 1), "L": (0, 10)},
        ChartType.CUSUM: {"k": (0, 10), "h": (0, 50)},
    }
    bounds = allowed.get(ChartType(chart_type), {})
    for name, value in params.items():
        if name not in bounds:
            raise ValidationError({"chart_params": f"'{name}' is not a parameter of a {chart_type} chart."})
        low, high = bounds[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not low < value <= high:
            raise ValidationError(
                {"chart_params": f"'{name}' must be a number above {low} and at most {high}."}
            )
    return params


def _characteristic_validate(c: Characteristic) -> None:
    """Cross-field checks on the characteristic as it would be saved."""
    if c.lsl is not None and c.usl is not None and c.lsl >= c.usl:
        raise ValidationError({"lsl": f"LSL ({c.lsl}) must be below USL ({c.usl})."})
    if c.target is not None and (
        (c.lsl is not None and c.target < c.lsl) or (c.usl is not None and c.target > c.usl)
    ):
        raise ValidationError({"target": "The target must lie within the specification limits."})
    if not 1 <= c.subgroup_size <= 25:
        raise ValidationError({"subgroup_size": "Subgroup size must be between 1 and 25."})
    if c.decimals is not None and c.decimals > 10:
        raise ValidationError({"decimals": "At most 10 decimal places."})
    compatible = {
        TestKind.VARIABLE: VARIABLE_CHARTS,
        TestKind.DEFECTIVES: DEFECTIVES_CHARTS,
        TestKind.DEFECTS: DEFECTS_CHARTS,
    }[TestKind(c.test.kind)]
    if c.chart_type != ChartType.AUTO and c.chart_type not in compatible:
        kind = c.test.get_kind_display().lower()
        raise ValidationError(
            {"chart_type": f"A {c.get_chart_type_display()} chart does not fit a {kind} test."}
        )
    if c.chart_type == ChartType.IMR and c.subgroup_size != 1:
        raise ValidationError({"chart_type": "An I-MR chart needs subgroup size 1."})
    if c.chart_type in {ChartType.XBAR_R, ChartType.XBAR_S} and c.subgroup_size < 2:
        raise ValidationError({"chart_type": "X̄ charts need a subgroup size of 2 or more."})
    if c.data_source in MQTT_SOURCES and not c.tag:
        raise ValidationError({"tag": "An MQTT data source needs the MQTT topic or Sparkplug metric name."})
    if c.data_source == DataSource.TAG and c.tag and not _topic_name_valid(c.tag):
        raise ValidationError(
            {"tag": "An MQTT topic has no wildcards (+, #), no empty text and does not start with $."}
        )
    if c.data_source == DataSource.TAG and c.tag and topic_published_by_bridge(c.tag):
        roots = " and ".join(f"{root}/..." for root in PUBLISHED_ROOTS)
        raise ValidationError(
            {"tag": f"OpenSPC publishes to {roots} itself: a characteristic fed by one would read its own "
             "violations and statistics back as measurements. Choose the topic the device publishes to."}
        )  # fmt: skip
    if c.subgroup_timeout is not None and not 1 <= c.subgroup_timeout <= SUBGROUP_TIMEOUT_MAX:
        raise ValidationError(
            {"subgroup_timeout": "Between 1 second and 7 days (604800 s), or empty for no limit."}
        )
    if c.tag and Characteristic.objects.filter(tag=c.tag).exclude(pk=c.pk).exists():
        raise ValidationError({"tag": f"Tag '{c.tag}' already feeds another characteristic."})


SUBGROUP_TIMEOUT_MAX = 7 * 24 * 3600  # seconds


def _topic_name_valid(topic: str) -> bool:
    """An MQTT topic name one can publish to (MQTT 3.1.1 §4.7): no wildcard, no NUL, not a $SYS topic."""
    return bool(topic) and not topic.startswith("$") and not any(c in topic for c in "+#\0")


def characteristic_apply(*, characteristic: Characteristic, data: dict[str, Any]) -> Characteristic:
    """The characteristic with `data` applied and validated, not saved (forms use it to show errors).

    `rule_preset` ('nelson', 'western_electric') replaces the rules with the preset's,
    unless `rules` are given too; the preset shown later is derived from the rules.
    """
    c = copy.copy(characteristic)
    data = dict(data)
    if "tag" in data:
        data["tag"] = (data["tag"] or "").strip() or None
    preset = data.pop("rule_preset", None)
    if "acknowledge_rules" in data:
        data["acknowledge_rules"] = acknowledge_rules_validate(data["acknowledge_rules"])
    if "rules" in data:
        data["rules"] = rules_normalize(data["rules"])
    elif preset not in (None, RulePreset.CUSTOM):
        data["rules"] = preset_rules(preset)
    if "chart_type" in data and data["chart_type"] != c.chart_type and "chart_params" not in data:
        data["chart_params"] = {}  # the old chart's parameters mean nothing to the new one
    for name in CHARACTERISTIC_FIELDS:
        if name in data:
            setattr(c, name, data[name])
    c.chart_params = _chart_params_validate(c.chart_type, c.chart_params)
    _characteristic_validate(c)
    return c


@transaction.atomic
def characteristic_update(
    *, characteristic: Characteristic, data: dict[str, Any], actor: Actor = SYSTEM
) -> Characteristic:
    """Change a characteristic's SPC settings (see characteristic_apply for the rules)."""
    locked = Characteristic.objects.select_for_update().select_related("test").get(pk=characteristic.pk)
    before = audit_fields(locked, list(CHARACTERISTIC_FIELDS))
    updated = characteristic_apply(characteristic=locked, data=data)
    updated.save()
    _audited(updated, CHARACTERISTIC_FIELDS, before, actor)
    return updated


LIMITS_FIELDS = [
    "version", "center", "sigma", "lcl", "ucl", "dispersion_center", "dispersion_lcl", "dispersion_ucl",
    "method", "frozen",
]  # fmt: skip


@transaction.atomic
def control_limits_set(
    *,
    characteristic: Characteristic,
    center: float,
    ucl: float,
    lcl: float,
    sigma: float,
    method: str,
    reason: str,
    user: User | None = None,
    dispersion: tuple[float, float, float] | None = None,
    baseline: dict[str, Any] | None = None,
    excluded: list[dict[str, Any]] | None = None,
    frozen: bool = False,
    source: str = "system",
) -> ControlLimits:
    """Add a new version of the characteristic's control limits (history is never overwritten).

    One audit entry on the characteristic records the limits before (empty for the first
    version) and after, with the reason: every limits change (calculated, historical,
    frozen or unfrozen) passes here once."""
    if not lcl <= center <= ucl:
        raise ValidationError({"center": "Limits must satisfy LCL ≤ centre ≤ UCL."})
    if sigma <= 0:
        raise ValidationError({"sigma": "Sigma must be positive."})
    if not reason.strip():
        raise ValidationError({"reason": "Say why the limits are set or changed."})
    if method not in LimitMethod.values:
        raise ValidationError({"method": f"Unknown method '{method}'."})
    Characteristic.objects.select_for_update().filter(pk=characteristic.pk).first()
    previous = characteristic.limits.order_by("-version").first()
    latest = previous.version if previous else 0
    d_center, d_ucl, d_lcl = dispersion if dispersion else (None, None, None)
    new = ControlLimits.objects.create(
        characteristic=characteristic, version=latest + 1, center=center, ucl=ucl, lcl=lcl, sigma=sigma,
        dispersion_center=d_center, dispersion_ucl=d_ucl, dispersion_lcl=d_lcl, method=method,
        baseline=baseline or {}, excluded=excluded or [], reason=reason.strip(), frozen=frozen, set_by=user,
    )  # fmt: skip
    audit_record(
        user=user, action=AuditAction.LIMITS, instance=characteristic, reason=new.reason, source=source,
        before=audit_fields(previous, LIMITS_FIELDS) if previous else None,
        after=audit_fields(new, LIMITS_FIELDS),
    )  # fmt: skip
    return new


# --- Devices -----------------------------------------------------------------------


DEVICE_FIELDS = ("name", "description", "active")  # never the token's hash
DEVICE_BINDING = ("characteristics", "products")  # what it may post to, audited as sorted ids


def _device_audit_fields(device: Device) -> dict[str, Any]:
    binding = {name: sorted(getattr(device, name).values_list("pk", flat=True)) for name in DEVICE_BINDING}
    return {**audit_fields(device, list(DEVICE_FIELDS)), **binding}


@transaction.atomic
def device_create(
    *,
    name: str,
    description: str = "",
    active: bool = True,
    characteristics: Collection[Characteristic] = (),
    products: Collection[Product] = (),
    actor: Actor = SYSTEM,
) -> tuple[Device, str]:
    """Register a device with its own service user in the Device group, bound to the characteristics
    and products it may post to (none: it may post nothing yet). Returns the token, once."""
    if Device.objects.filter(name=name).exists():
        raise ValidationError({"name": f"A device named '{name}' exists."})
    user_model = get_user_model()
    user = user_model.objects.create_user(username=f"device:{name}"[:150])
    user.set_unusable_password()
    user.save(update_fields=["password"])
    user.groups.add(Group.objects.get(name=Role.DEVICE))
    token = f"osd_{secrets.token_urlsafe(32)}"
    device = Device.objects.create(
        name=name,
        description=description,
        user=user,
        token_hash=token_hash(token),
        token_prefix=token[:12],
        active=active,
    )
    device.characteristics.set(characteristics)
    device.products.set(products)
    audit_change(actor=actor, instance=device, before=None, after=_device_audit_fields(device))
    return device, token


@transaction.atomic
def device_update(*, device: Device, data: dict[str, Any], actor: Actor = SYSTEM) -> Device:
    """Rename, describe, (de)activate or rebind a device; a deactivated device's token stops working
    at once, and a binding taken away refuses the device's next post to it."""
    if "name" in data and Device.objects.filter(name=data["name"]).exclude(pk=device.pk).exists():
        raise ValidationError({"name": f"A device named '{data['name']}' exists."})
    before = _device_audit_fields(device)
    device, _ = model_update(instance=device, fields=DEVICE_FIELDS, data=data)
    for name in DEVICE_BINDING:
        if name in data:
            getattr(device, name).set(data[name])
    audit_change(actor=actor, instance=device, before=before, after=_device_audit_fields(device))
    return device


# --- Observation confirmation --------------------------------------------------------


@dataclass(frozen=True)
class Rejection:
    code: str
    message: str


@dataclass(frozen=True)
class Confirmation:
    """The verdict on one observation: confirmed, or every reason it is not."""

    reasons: tuple[Rejection, ...]
    values: tuple[float, ...]
    characteristic_id: int | None

    @property
    def confirmed(self) -> bool:
        return not self.reasons


def _finite_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)  # an int beyond float range (JSON allows it) overflows
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _values_check(test: TestInfo, values: Sequence[object]) -> tuple[list[Rejection], list[float]]:
    reasons: list[Rejection] = []
    numbers: list[float] = []
    for position, value in enumerate(values, start=1):
        where = f"value {position}" if len(values) > 1 else "the value"
        number = _finite_float(value)
        if number is None:
            shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:37]}..."
            reasons.append(Rejection(RejectionCode.NOT_A_NUMBER, f"{where} ({shown}) is not a finite number"))
            continue
        if test.kind != TestKind.VARIABLE and (number < 0 or not number.is_integer()):
            reasons.append(
                Rejection(RejectionCode.NOT_A_COUNT, f"{where} ({value!r}) is not a whole count ≥ 0")
            )
            continue
        low, high = test.plausible_min, test.plausible_max
        if (low is not None and number < low) or (high is not None and number > high):
            reasons.append(
                Rejection(
                    RejectionCode.OUT_OF_RANGE,
                    f"{where} ({number:g}) is outside the plausible range of {test.code} "
                    f"[{'' if low is None else f'{low:g}'} … {'' if high is None else f'{high:g}'}]",
                )
            )
        numbers.append(number)
    return reasons, numbers


def _plan_tests_check(
    *,
    config: ProductConfig,
    test: TestInfo,
    plan_ids: Collection[int] | None,
    observed_on: datetime.date | None,
) -> tuple[list[Rejection], list[PlanTest]]:
    candidates = [pt for pt in config.plan_tests if pt.test_id == test.id]
    if plan_ids is not None:
        candidates = [pt for pt in candidates if pt.plan_id in plan_ids]
        if not candidates:
            return [
                Rejection(RejectionCode.TEST_NOT_IN_PLAN, f"{test.code} is not in the item's test plans")
            ], []
    live = [pt for pt in candidates if pt.plan_status != PlanStatus.RETIRED]
    if not live:
        labels = ", ".join(sorted({pt.plan_label for pt in candidates}))
        return [Rejection(RejectionCode.PLAN_RETIRED, f"test plan {labels} is retired")], []
    if observed_on is not None:
        live = [pt for pt in live if pt.effective_on(observed_on)]
        if not live:
            message = f"no plan with {test.code} is assigned to {config.product_code} on {observed_on}"
            return [Rejection(RejectionCode.NOT_EFFECTIVE, message)], []
    return [], live


def _observed_at_check(observed_at: datetime.datetime, received_at: datetime.datetime) -> list[Rejection]:
    """A time of measurement within OBSERVATION_MAX_FUTURE_SECONDS after its receipt and
    OBSERVATION_HORIZON_DAYS before it. Judged against when it was received, not when the worker
    runs: a backlog processed an hour late must not turn honest readings into future ones."""
    reasons = []
    ahead = (observed_at - received_at).total_seconds()
    allowed = settings.OBSERVATION_MAX_FUTURE_SECONDS
    if ahead > allowed:
        reasons.append(
            Rejection(
                RejectionCode.OBSERVED_IN_FUTURE,
                f"observed_at {observed_at.isoformat()} is {ahead:,.0f} s after the observation was "
                f"received ({received_at.isoformat()}); OBSERVATION_MAX_FUTURE_SECONDS allows {allowed} s",
            )
        )
    horizon = settings.OBSERVATION_HORIZON_DAYS
    if received_at - observed_at > datetime.timedelta(days=horizon):
        reasons.append(
            Rejection(
                RejectionCode.OBSERVED_TOO_EARLY,
                f"observed_at {observed_at.isoformat()} is more than {horizon} days before the observation "
                f"was received ({received_at.isoformat()}); OBSERVATION_HORIZON_DAYS is {horizon}",
            )
        )
    return reasons


def observation_confirm(
    *,
    config: ProductConfig,
    test_id: int,
    values: Sequence[object],
    plan_ids: Collection[int] | None = None,
    observed_at: datetime.datetime | None = None,
    received_at: datetime.datetime | None = None,
    check_replicates: bool = True,
) -> Confirmation:
    """Check one observation (all replicate values of one test) against the configuration.

    `config` comes from selectors.product_config_load, so a batch needs one load.
    `plan_ids` are the item's selected plans (None for lot- or device-level data:
    any plan assigned to the product). `observed_at` is checked against `received_at`
    (default: now) and its day must be in a plan assignment's effective period.
    `check_replicates` compares the number of values with the plan's replicate count
    (off for a device streaming single values). Every applicable reason is reported,
    not only the first.
    """
    characteristic_id = config.characteristic_ids.get(test_id)
    reasons: list[Rejection] = []
    observed_on = None
    if observed_at is not None:
        time_reasons = _observed_at_check(observed_at, received_at or timezone.now())
        reasons += time_reasons
        # A time out of bounds says all; its local day could even overflow (9999-12-31 in UTC+1).
        observed_on = None if time_reasons else timezone.localdate(observed_at)
    if not config.active:
        reasons.append(
            Rejection(RejectionCode.PRODUCT_INACTIVE, f"product {config.product_code} is inactive")
        )
    test = config.tests.get(test_id)
    plan_tests: list[PlanTest] = []
    if test is None:
        message = f"test {test_id} is in no test plan assigned to {config.product_code}"
        reasons.append(Rejection(RejectionCode.TEST_NOT_IN_PLAN, message))
        # The values are still checked as numbers, so every reason is reported at once.
        test = TestInfo(test_id, str(test_id), TestKind.VARIABLE, None, None)
    else:
        plan_reasons, plan_tests = _plan_tests_check(
            config=config, test=test, plan_ids=plan_ids, observed_on=observed_on
        )
        reasons += plan_reasons
    if not values:
        reasons.append(Rejection(RejectionCode.NO_VALUES, "no values were given"))
    value_reasons, numbers = _values_check(test, values)
    reasons += value_reasons
    expected = sorted({pt.replicates for pt in plan_tests})
    if check_replicates and values and expected and len(values) not in expected:
        wanted = " or ".join(str(n) for n in expected)
        reasons.append(
            Rejection(
                RejectionCode.REPLICATE_COUNT,
                f"{test.code} takes {wanted} value(s) per item; got {len(values)}",
            )
        )
    return Confirmation(tuple(reasons), tuple(numbers), characteristic_id)

"""Writes of characteristics (their SPC settings) and of their control limits."""

import copy
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.audit.choices import AuditAction
from apps.audit.services import SYSTEM, Actor, audit_fields, audit_record
from apps.config.choices import (
    DEFECTIVES_CHARTS,
    DEFECTS_CHARTS,
    MAX_SUBGROUP_SIZE,
    MQTT_SOURCES,
    RULE_PRIORITY_DEFAULT,
    VARIABLE_CHARTS,
    AlarmPriority,
    ChartType,
    DataSource,
    LimitMethod,
    RulePreset,
    TestKind,
)
from apps.config.models import Characteristic, ControlLimits
from apps.config.rules import preset_rules, rules_normalize
from apps.config.services.audited import audited
from apps.signatures.choices import SignedAction
from apps.signatures.services import Signer, signature_record
from openspc.topics import PUBLISHED_ROOTS, topic_published_by_bridge

CHARACTERISTIC_FIELDS = (
    "lsl", "target", "usl", "spec_warning_margin", "subgroup_size", "chart_type", "chart_params", "rules",
    "acknowledge_rules", "rule_priorities", "data_source", "tag", "subgroup_timeout",
    "subgroup_timeout_policy", "site", "area", "line", "cell", "decimals", "active",
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


def rule_priorities_validate(priorities: Any) -> dict[str, str]:
    """Priorities of rules' violation events that differ from the default, keyed by rule number
    ("1" … "8"): high, medium or low. Entries equal to the default are dropped."""
    if priorities is None:
        return {}
    if not isinstance(priorities, dict):
        raise ValidationError({"rule_priorities": 'Give an object of rule numbers, e.g. {"2": "low"}.'})
    allowed = [str(choice) for choice in AlarmPriority]
    cleaned: dict[str, str] = {}
    for key, value in priorities.items():
        if str(key) not in {str(rule) for rule in range(1, 9)}:
            raise ValidationError({"rule_priorities": f"Nelson rules are numbered 1 to 8; not {key}."})
        if value not in allowed:
            raise ValidationError(
                {"rule_priorities": f"Rule {key}: a priority is one of {', '.join(allowed)}; not {value!r}."}
            )
        if value != RULE_PRIORITY_DEFAULT[int(key)]:
            cleaned[str(int(key))] = value
    return dict(sorted(cleaned.items()))


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
    if c.spec_warning_margin is not None:
        if c.lsl is None and c.usl is None:
            raise ValidationError({"spec_warning_margin": "A warning band needs a spec limit to lie inside."})
        tolerance = (c.usl - c.lsl) if c.lsl is not None and c.usl is not None else None
        if not c.spec_warning_margin > 0 or (
            tolerance is not None and c.spec_warning_margin >= tolerance / 2
        ):
            raise ValidationError(
                {"spec_warning_margin": "The warning band is above 0 and narrower than half the tolerance."}
            )
    if not 1 <= c.subgroup_size <= MAX_SUBGROUP_SIZE:
        raise ValidationError({"subgroup_size": f"Subgroup size must be between 1 and {MAX_SUBGROUP_SIZE}."})
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
        roots = ", ".join(f"{root}/..." for root in PUBLISHED_ROOTS)
        raise ValidationError(
            {"tag": f"OpenSPC publishes to {roots} itself: a characteristic fed by one would read its own "
             "alarms and statistics back as measurements. Choose the topic the device publishes to."}
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
    if "rule_priorities" in data:
        data["rule_priorities"] = rule_priorities_validate(data["rule_priorities"])
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


# What only changes with a reason (21 CFR 11, EU GMP Annex 11): the specification and the rules.
REASONED_FIELDS = {
    "lsl": "LSL", "target": "target", "usl": "USL", "spec_warning_margin": "spec warning band",
    "rules": "rules",
    "acknowledge_rules": "rules to acknowledge", "rule_priorities": "rule priorities",
}  # fmt: skip


def characteristic_reason_check(*, before: Characteristic, after: Characteristic, reason: str) -> None:
    """A ValidationError on `reason` when the change touches the specification limits or the rules
    and gives no reason (the admin's form and characteristic_update ask the same)."""
    names = list(REASONED_FIELDS)
    old, new = audit_fields(before, names), audit_fields(after, names)
    changed = [label for name, label in REASONED_FIELDS.items() if old[name] != new[name]]
    if changed and not reason.strip():
        raise ValidationError(
            {"reason": f"Say why the {', '.join(changed)} change: the reason is kept in the audit trail."}
        )


@transaction.atomic
def characteristic_update(
    *, characteristic: Characteristic, data: dict[str, Any], actor: Actor = SYSTEM, reason: str = ""
) -> Characteristic:
    """Change a characteristic's SPC settings (see characteristic_apply for the rules). A change of
    the specification limits or the rules needs a `reason`; any change may carry one (audited)."""
    locked = Characteristic.objects.select_for_update().select_related("test").get(pk=characteristic.pk)
    before = audit_fields(locked, list(CHARACTERISTIC_FIELDS))
    updated = characteristic_apply(characteristic=locked, data=data)
    characteristic_reason_check(before=locked, after=updated, reason=reason)
    updated.save()
    audited(updated, CHARACTERISTIC_FIELDS, before, actor, reason=reason.strip())
    return updated


LIMITS_FIELDS = [
    "version", "center", "sigma", "lcl", "ucl", "dispersion_center", "dispersion_lcl", "dispersion_ucl",
    "method", "frozen",
]  # fmt: skip


@transaction.atomic
def limits_signed_content(limits: ControlLimits) -> dict[str, Any]:
    """What a control limits signature binds: the version's lines, how they were set, and why."""
    return {
        "characteristic": limits.characteristic_id, "version": limits.version, "center": limits.center,
        "sigma": limits.sigma, "lcl": limits.lcl, "ucl": limits.ucl,
        "dispersion_center": limits.dispersion_center, "dispersion_lcl": limits.dispersion_lcl,
        "dispersion_ucl": limits.dispersion_ucl, "method": limits.method, "frozen": limits.frozen,
        "reason": limits.reason,
    }  # fmt: skip


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
    signer: Signer | None = None,
    signed_by_system: bool = False,
) -> ControlLimits:
    """Add a new version of the characteristic's control limits (history is never overwritten),
    signed.

    `signer` is the person who re-authenticated for SignedAction.CONTROL_LIMITS (signer_check,
    before this transaction); the signature is stored on the new version and binds
    `limits_signed_content`. Without one the change is refused (ValidationError naming the
    signature) where SIGNATURES_REQUIRED_FOR lists control_limits. `signed_by_system` is reserved
    for seed commands with no person at the keyboard (demo_work, the benchmarks): the version is
    stored unsigned, and the audit trail shows its source. No request path passes it.

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
    if not signed_by_system:
        signature_record(
            signer=signer, action=SignedAction.CONTROL_LIMITS, record=new, content=limits_signed_content(new)
        )
    audit_record(
        user=user, action=AuditAction.LIMITS, instance=characteristic, reason=new.reason, source=source,
        before=audit_fields(previous, LIMITS_FIELDS) if previous else None,
        after=audit_fields(new, LIMITS_FIELDS),
    )  # fmt: skip
    return new

"""Control limits from the samples (flow 4 of the seed), from a historical mean and sigma, and freezing.

Every change adds a ControlLimits version through apps.config's control_limits_set (which
appends the audit entry: the limits before and after, the reason, who and through what),
drops the rolling window (the next sample rebuilds it under the new limits: runs do
not carry across limits), refreshes the product statistics' capability, and sends
`limits.changed` after commit.
"""

import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.calculations.events import characteristic_groups, limits_changed_data
from apps.calculations.models import ProductStatistics, Violation
from apps.calculations.services.calculate import limits_current, lines_of, window_invalidate
from apps.calculations.services.stats import product_statistics_finish
from apps.calculations.window import ATTRIBUTE_KINDS
from apps.config.choices import LimitMethod, chart_type_by_subgroup_size
from apps.config.models import Characteristic, ControlLimits
from apps.config.services.characteristics import control_limits_set
from apps.observations.models import Sample
from apps.signatures.services import Signer
from openspc.api import DomainConflict
from openspc.events import EventType, event, events_send_on_commit
from spc import (
    AttributeChart,
    VariablesChart,
    c_chart,
    individuals_chart,
    np_chart,
    p_chart,
    u_chart,
    xbar_r_chart,
    xbar_s_chart,
)

LIMITS_REASON_MISSING = "Say why the limits change: the reason is kept with them and in the audit trail."
MIN_SAMPLES = 2
MAX_SAMPLES = 10_000


class LimitsFrozen(DomainConflict):
    """The current limits are frozen: nothing recalculates them until they are unfrozen (a conflict
    with the characteristic's state, not bad input)."""


@dataclass(frozen=True)
class LimitsChange:
    previous: ControlLimits | None
    new: ControlLimits
    method: str  # how sigma was estimated: mrbar_d2, rbar_d2, sbar_c4, pbar, given, …
    used: int = 0
    excluded: tuple[dict[str, Any], ...] = ()


def _base_kind(characteristic: Characteristic) -> str:
    """The Shewhart chart whose limits the characteristic's chart uses (EWMA/CUSUM: by subgroup size)."""
    kind = characteristic.effective_chart_type
    if kind in ("ewma", "cusum"):
        return chart_type_by_subgroup_size(characteristic.subgroup_size)
    return kind


def _chart(
    kind: str,
    samples: list[Sample],
    n: int,
    *,
    exclude: Sequence[int] = (),
    center: float | None = None,
    sigma: float | None = None,
) -> VariablesChart | AttributeChart:
    """The engine's chart of `kind` over the samples (a given centre / sigma, if any)."""
    if kind == "imr":
        return individuals_chart([s.mean for s in samples], exclude=exclude, center=center, sigma=sigma)
    if kind in ("xbar_r", "xbar_s"):
        build = xbar_r_chart if kind == "xbar_r" else xbar_s_chart
        return build([s.values for s in samples], exclude=exclude, center=center, sigma=sigma)
    counts = [s.mean for s in samples]
    if kind == "p":
        return p_chart(counts, n, exclude=exclude, center=center)
    if kind == "np":
        return np_chart(counts, n, exclude=exclude, center=center)
    if kind == "c":
        return c_chart(counts, exclude=exclude, center=center)
    return u_chart(counts, n, exclude=exclude, center=center)


def _limits_values(chart: VariablesChart | AttributeChart) -> dict[str, Any]:
    """centre / ucl / lcl / sigma / dispersion of a chart (all its samples have the same n)."""
    if isinstance(chart, AttributeChart):
        lines = chart.chart
        return {
            "center": float(lines.center[0]), "ucl": float(lines.ucl[0]), "lcl": float(lines.lcl[0]),
            "sigma": float(lines.sigma[0]), "dispersion": None,
        }  # fmt: skip
    location, dispersion = chart.location, chart.dispersion
    return {
        "center": chart.center, "ucl": float(location.ucl[0]), "lcl": float(location.lcl[0]),
        "sigma": chart.sigma,
        "dispersion": (float(dispersion.center[0]), float(dispersion.ucl[0]), float(dispersion.lcl[0])),
    }  # fmt: skip


def _left_out(sample: Sample, why: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"sample": sample.pk, "sequence": sample.sequence, "why": why}
    if why == "excluded":
        entry["reason"] = sample.exclusion_reason
    return entry


def _sigma_method(chart: VariablesChart | AttributeChart) -> str:
    return chart.sigma_method if isinstance(chart, VariablesChart) else f"{chart.kind}bar"


def _after_change(characteristic: Characteristic, previous: ControlLimits | None, new: ControlLimits) -> None:
    lines = lines_of(characteristic, new)
    stats = ProductStatistics.objects.filter(characteristic=characteristic).first()
    if stats is not None:
        product_statistics_finish(
            stats, characteristic, lines, characteristic.effective_chart_type in ATTRIBUTE_KINDS
        )
        stats.save()
    transaction.on_commit(lambda: window_invalidate(characteristic_id=characteristic.pk))
    data = limits_changed_data(characteristic, new, previous)
    groups = characteristic_groups(characteristic)
    events_send_on_commit([event(EventType.LIMITS_CHANGED, groups, **data)])


def _locked(characteristic: Characteristic) -> tuple[Characteristic, ControlLimits | None]:
    locked = Characteristic.objects.select_for_update().select_related("test").get(pk=characteristic.pk)
    return locked, limits_current(locked)


def _baseline(
    characteristic: Characteristic,
    sample_count: int,
    start: datetime.datetime | None,
    end: datetime.datetime | None,
) -> list[Sample]:
    if not MIN_SAMPLES <= sample_count <= MAX_SAMPLES:
        raise ValidationError({"sample_count": f"Between {MIN_SAMPLES} and {MAX_SAMPLES} samples."})
    if start and end and start >= end:
        raise ValidationError({"end": "The end must be after the start."})
    # An invalidated result's sample is as if it had never been: it neither counts nor keeps a place.
    chosen = Sample.objects.filter(characteristic=characteristic, undersized=False, invalidated=False)
    if start:
        chosen = chosen.filter(created_at__gte=start)
    if end:
        chosen = chosen.filter(created_at__lt=end)
    return list(reversed(chosen.order_by("-sequence")[:sample_count]))


@transaction.atomic
def limits_recalculate(
    *,
    characteristic: Characteristic,
    sample_count: int = 25,
    exclude_out_of_control: bool = True,
    start: datetime.datetime | None = None,
    end: datetime.datetime | None = None,
    reason: str = "",
    user: User | None = None,
    source: str = "api",
    preview: bool = False,
    signer: Signer | None = None,
) -> LimitsChange:
    """New limits from the latest `sample_count` full samples (in [start, end) if given).

    Samples marked excluded (Sample.excluded, set by a quality specialist with a reason) are
    always left out of the estimate; with `exclude_out_of_control`, so are samples with a
    violation. Left-out samples keep their place, so moving ranges do not bridge them, and
    they count towards `sample_count`; the new limits list each with why.

    With `preview`, the same answer without writing anything: `new` is an unsaved version (no
    id, no time), nothing is audited, broadcast or invalidated, and no row is locked. Storing the
    limits needs a `reason` (kept with them and in the audit trail) and, where required, the
    `signer`'s signature (see control_limits_set); a preview is not signed.
    """
    if not preview and not reason.strip():
        raise ValidationError({"reason": LIMITS_REASON_MISSING})
    if preview:
        previous = limits_current(characteristic)
    else:
        characteristic, previous = _locked(characteristic)
    if previous is not None and previous.frozen:
        raise LimitsFrozen(f"The limits (v{previous.version}) are frozen; unfreeze them first.")
    samples = _baseline(characteristic, sample_count, start, end)
    flagged = set(
        Violation.objects.filter(sample__in=samples).values_list("sample_id", flat=True)
    ) if exclude_out_of_control else set()  # fmt: skip
    why = {s.pk: "violation" for s in samples if s.pk in flagged}
    why.update({s.pk: "excluded" for s in samples if s.excluded})  # the stored decision comes first
    exclude = [i for i, sample in enumerate(samples) if sample.pk in why]
    if len(samples) - len(exclude) < MIN_SAMPLES:
        stored = sum(1 for reason in why.values() if reason == "excluded")
        left_out = f"{len(exclude) - stored} of them out of control" + (
            f", {stored} excluded" if stored else ""
        )
        raise ValidationError(
            {"sample_count": f"{len(samples)} samples found, {left_out}: "
                             f"at least {MIN_SAMPLES} in-control samples are needed."}
        )  # fmt: skip
    kind = _base_kind(characteristic)
    try:
        chart = _chart(kind, samples, characteristic.subgroup_size, exclude=exclude)
        values = _limits_values(chart)
        if not (math.isfinite(values["sigma"]) and values["sigma"] > 0):
            raise ValueError("the samples show no variation (sigma is 0)")
    except ValueError as exc:
        raise ValidationError(
            {"sample_count": f"Cannot estimate limits from these samples: {exc}."}
        ) from None
    excluded = [_left_out(samples[i], why[samples[i].pk]) for i in exclude]
    baseline = {
        "samples": len(samples) - len(exclude), "first_sequence": samples[0].sequence,
        "last_sequence": samples[-1].sequence, "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None, "chart": kind,
    }  # fmt: skip
    why_text = reason.strip() or f"Recalculated from {baseline['samples']} samples"
    if preview:
        new = _unsaved(
            characteristic, previous, values, baseline=baseline, excluded=excluded, reason=why_text
        )
    else:
        new = control_limits_set(
            characteristic=characteristic, method=LimitMethod.CALCULATED, user=user, baseline=baseline,
            excluded=excluded, reason=why_text, source=source, signer=signer, **values,
        )  # fmt: skip
        _after_change(characteristic, previous, new)
    return LimitsChange(previous, new, _sigma_method(chart), len(samples) - len(exclude), tuple(excluded))


def _unsaved(
    characteristic: Characteristic,
    previous: ControlLimits | None,
    values: dict[str, Any],
    *,
    baseline: dict[str, Any],
    excluded: list[dict[str, Any]],
    reason: str,
) -> ControlLimits:
    """The version a recalculation would add, not stored (a preview)."""
    d_center, d_ucl, d_lcl = values["dispersion"] or (None, None, None)
    return ControlLimits(
        characteristic=characteristic, version=(previous.version if previous else 0) + 1,
        center=values["center"], ucl=values["ucl"], lcl=values["lcl"], sigma=values["sigma"],
        dispersion_center=d_center, dispersion_ucl=d_ucl, dispersion_lcl=d_lcl,
        method=LimitMethod.CALCULATED, baseline=baseline, excluded=excluded, reason=reason,
    )  # fmt: skip


@transaction.atomic
def limits_set_historical(
    *,
    characteristic: Characteristic,
    center: float,
    sigma: float | None = None,
    reason: str,
    user: User | None = None,
    source: str = "api",
    signer: Signer | None = None,
    signed_by_system: bool = False,
) -> LimitsChange:
    """Limits from a known process mean and sigma (variables), or a known p, np, c or u (attributes:
    their sigma follows from the centre). Signed by `signer` (or, for seed commands only,
    `signed_by_system`: see control_limits_set)."""
    characteristic, previous = _locked(characteristic)
    kind = _base_kind(characteristic)
    n = characteristic.subgroup_size
    attribute = kind in ATTRIBUTE_KINDS
    if not attribute and (sigma is None or not sigma > 0):
        raise ValidationError({"sigma": "Give the process sigma (of individual values), above 0."})
    template = Sample(mean=center, values=[center] * n, n=n)
    try:
        if attribute:
            counts = center * n if kind in ("p", "u") else center
            given = center / n if kind == "np" else center  # the np chart takes p itself
            chart = _chart(kind, [Sample(mean=counts, values=[counts], n=n)] * 2, n, center=given)
        else:
            chart = _chart(kind, [template, template], n, center=center, sigma=float(sigma or 0))
        values = _limits_values(chart)
        if not values["sigma"] > 0:
            raise ValueError("the centre gives no spread")
    except ValueError as exc:
        raise ValidationError({"center": f"Cannot build limits: {exc}."}) from None
    new = control_limits_set(
        characteristic=characteristic, method=LimitMethod.HISTORICAL, user=user,
        reason=reason, baseline={"given": {"center": center, "sigma": sigma}, "chart": kind},
        source=source, signer=signer, signed_by_system=signed_by_system, **values,
    )  # fmt: skip
    _after_change(characteristic, previous, new)
    return LimitsChange(previous, new, "given")


def _dispersion_of(limits: ControlLimits) -> tuple[float, float, float] | None:
    center, ucl, lcl = limits.dispersion_center, limits.dispersion_ucl, limits.dispersion_lcl
    return None if center is None or ucl is None or lcl is None else (center, ucl, lcl)


@transaction.atomic
def limits_freeze(
    *,
    characteristic: Characteristic,
    frozen: bool,
    reason: str,
    user: User | None = None,
    source: str = "api",
    signer: Signer | None = None,
) -> LimitsChange:
    """Freeze (or unfreeze) the current limits: a new version with the same lines and the flag,
    signed by `signer` (see control_limits_set)."""
    characteristic, previous = _locked(characteristic)
    if previous is None:
        raise ValidationError({"frozen": "The characteristic has no control limits to freeze."})
    if previous.frozen == frozen:
        state = "frozen" if frozen else "not frozen"
        raise ValidationError({"frozen": f"The limits (v{previous.version}) are already {state}."})
    new = control_limits_set(
        characteristic=characteristic, center=previous.center, ucl=previous.ucl, lcl=previous.lcl,
        sigma=previous.sigma, method=previous.method, reason=reason, user=user,
        dispersion=_dispersion_of(previous),
        baseline=previous.baseline, excluded=previous.excluded, frozen=frozen, source=source,
        signer=signer,
    )  # fmt: skip
    _after_change(characteristic, previous, new)
    return LimitsChange(previous, new, "unchanged")

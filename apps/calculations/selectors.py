"""Reads of the calculation domain: samples for catch-up, and everything one chart draws."""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, F, QuerySet

from apps.calculations.events import spec_outside
from apps.calculations.models import (
    AWAITING_ACKNOWLEDGEMENT,
    LotStatistics,
    ProductStatistics,
    Violation,
    ViolationEvent,
)
from apps.calculations.services.calculate import limits_current, lines_of
from apps.calculations.window import Point, dispersion_statistic, plotted_sigma, plotted_statistic
from apps.config.models import Characteristic, ControlLimits
from apps.config.selectors import current_limits_prefetch
from apps.observations.choices import InvalidationStatus
from apps.observations.models import Invalidation, Sample

CHART_POINTS = 100
MAX_CHART_POINTS = 5000  # the chart page's largest "Show the last"


def sample_queryset(user: User | AnonymousUser) -> QuerySet[Sample]:
    return Sample.objects.filter(characteristic__in=Characteristic.objects.visible_to(user)).select_related(
        "characteristic__test"
    )


# A violation still to be acknowledged: its rule is one the characteristic wants acknowledged (decided
# when it was found, Violation.requires_acknowledgement) and nobody has. The others are informational.
# A withdrawn violation (a correction invalidated a result its pattern used) awaits nothing.


def violation_queryset(user: User | AnonymousUser) -> QuerySet[Violation]:
    """The violations of the characteristics the user may read (role permissions decide the rest)."""
    return Violation.objects.filter(
        characteristic__in=Characteristic.objects.visible_to(user)
    ).select_related("sample", "acknowledgement_reason")


def violation_event_queryset(user: User | AnonymousUser) -> QuerySet[ViolationEvent]:
    """The violation events of the characteristics the user may read."""
    return ViolationEvent.objects.filter(
        characteristic__in=Characteristic.objects.visible_to(user)
    ).select_related("acknowledgement_reason", "acknowledged_by")


def violation_detail_queryset(user: User | AnonymousUser) -> QuerySet[Violation]:
    return violation_queryset(user).select_related("sample__characteristic__test")


def violation_pattern(violation: Violation) -> list[Sample]:
    """The samples that formed the violation's pattern, in sequence order."""
    return list(
        Sample.objects.filter(characteristic_id=violation.characteristic_id, sequence__in=violation.points)
        .select_related("characteristic__test")
        .order_by("sequence")
    )


def violation_stats(violations: QuerySet[Violation]) -> dict[str, Any]:
    """Counts of the given (filtered) violations: in all, awaiting acknowledgement, by rule and by
    characteristic (with product and test codes; most violations first)."""
    awaiting = Count("id", filter=AWAITING_ACKNOWLEDGEMENT)
    plain = violations.order_by()
    totals = plain.aggregate(total=Count("id"), unacknowledged=awaiting)
    by_rule = plain.values("rule").annotate(count=Count("id"), unacknowledged=awaiting).order_by("rule")
    by_characteristic = (
        plain.values(
            "characteristic",
            product_code=F("characteristic__product__code"),
            test_code=F("characteristic__test__code"),
        )
        .annotate(count=Count("id"), unacknowledged=awaiting)
        .order_by("-count", "characteristic")
    )
    return {**totals, "by_rule": list(by_rule), "by_characteristic": list(by_characteristic)}


def lot_statistics_queryset() -> QuerySet[LotStatistics]:
    return LotStatistics.objects.select_related("lot", "test")


def product_statistics_queryset() -> QuerySet[ProductStatistics]:
    # Listed as characteristics are, by product and test code (the model's own order is by id).
    return (
        ProductStatistics.objects.select_related("characteristic__product", "characteristic__test")
        .prefetch_related(current_limits_prefetch(lookup="characteristic__limits"))
        .order_by("characteristic__product__code", "characteristic__test__code")
    )


def _invalidation_reasons(samples: list[Sample]) -> dict[int, str]:
    """Why each invalidated sample is: the reasons of its results' approved invalidations. One query."""
    owners = {pk: sample.pk for sample in samples if sample.invalidated for pk in sample.observation_ids}
    if not owners:
        return {}
    reasons: dict[int, list[str]] = {}
    for observation_id, reason in Invalidation.objects.filter(
        observation_id__in=list(owners), status=InvalidationStatus.APPROVED
    ).values_list("observation_id", "reason"):
        reasons.setdefault(owners[observation_id], []).append(reason)
    return {pk: "; ".join(texts) for pk, texts in reasons.items()}


@dataclass(frozen=True)
class ChartData:
    characteristic: Characteristic
    kind: str
    limits: ControlLimits | None
    zones: dict[str, list[float]] | None
    points: list[dict[str, Any]]
    violations: list[Violation]


def chart_data(
    *, characteristic: Characteristic, limit: int = CHART_POINTS, lot_id: int | None = None
) -> ChartData:
    """The last `limit` points (of one lot, if given) with limits, zones and their violations."""
    kind = characteristic.effective_chart_type
    chosen = Sample.objects.filter(characteristic=characteristic)
    if lot_id is not None:
        chosen = chosen.filter(lot_id=lot_id)
    # One more than shown, so the first shown point has its moving range.
    samples = list(reversed(chosen.order_by("-sequence")[: limit + 1]))
    limits = limits_current(characteristic)
    lines = lines_of(characteristic, limits)
    zones = None
    if lines is not None:
        sigma = plotted_sigma(lines, characteristic.subgroup_size)
        zones = {f"sigma_{k}": [lines.center - k * sigma, lines.center + k * sigma] for k in (1, 2, 3)}
    points: list[dict[str, Any]] = []
    previous = None
    reasons = _invalidation_reasons(samples)
    for sample in samples:
        statistic = plotted_statistic(kind, sample.mean, sample.n)
        point = Point(sample.sequence, sample.mean, sample.n, sample.range, sample.sd)
        # An invalidated point has no moving range and gives none: the line bridges it.
        dispersion = None if sample.invalidated else dispersion_statistic(kind, point, previous)
        points.append(
            {
                "id": sample.pk, "sequence": sample.sequence, "lot": sample.lot_id, "n": sample.n,
                "values": sample.values, "statistic": statistic, "dispersion": dispersion,
                "mean": sample.mean, "range": sample.range, "sd": sample.sd, "in_control": sample.in_control,
                "limits_version": sample.limits_version, "undersized": sample.undersized,
                "invalidated": sample.invalidated, "invalidation_reason": reasons.get(sample.pk, ""),
                "out_of_spec": spec_outside(sample, characteristic), "created_at": sample.created_at,
            }
        )  # fmt: skip
        if not sample.invalidated:
            previous = statistic
    points = points[-limit:]
    shown = [point["id"] for point in points]
    violations = list(
        Violation.objects.filter(sample_id__in=shown, withdrawn_at__isnull=True)
        .select_related("sample")
        .order_by("sample__sequence", "rule", "chart")
    )
    return ChartData(characteristic, kind, limits, zones, points, violations)

"""The calculation domain's events (openspc.events): their groups and payloads.

A payload carries what a chart needs to draw the event without another request
(docs/asyncapi.yaml). The MQTT publisher reuses the violation and statistics payloads.
"""

from collections.abc import Sequence

from apps.calculations.models import LotStatistics, ProductStatistics, Violation, ViolationEvent
from apps.calculations.window import plotted_statistic
from apps.config.choices import TestKind
from apps.config.models import Characteristic, ControlLimits
from apps.config.spec import any_outside_spec
from apps.observations.models import Sample
from openspc.events import Event, EventType, event


def characteristic_groups(characteristic: Characteristic, lot_id: int | None = None) -> tuple[str, ...]:
    """The characteristic's and its product's groups, and the lot's when the event is about one."""
    groups = (f"characteristic.{characteristic.pk}", f"product.{characteristic.product_id}")
    return groups if lot_id is None else (*groups, f"lot.{lot_id}")


def sample_data(sample: Sample, kind: str, *, out_of_spec: bool = False) -> dict[str, object]:
    return {
        "id": sample.pk, "characteristic": sample.characteristic_id, "lot": sample.lot_id,
        "sequence": sample.sequence, "n": sample.n, "values": sample.values, "mean": sample.mean,
        "range": sample.range, "sd": sample.sd, "statistic": plotted_statistic(kind, sample.mean, sample.n),
        "in_control": sample.in_control, "limits_version": sample.limits_version,
        "undersized": sample.undersized, "out_of_spec": out_of_spec,
        "created_at": sample.created_at.isoformat(),
    }  # fmt: skip


def spec_outside(sample: Sample, characteristic: Characteristic) -> bool:
    """A value of the subgroup outside the specification limits (variables only)."""
    if characteristic.test.kind != TestKind.VARIABLE:
        return False
    return any_outside_spec(sample.values or [], characteristic.lsl, characteristic.usl)


def violation_data(violation: Violation) -> dict[str, object]:
    return {
        "id": violation.pk, "characteristic": violation.characteristic_id, "sample": violation.sample_id,
        "sequence": violation.sample.sequence, "lot": violation.sample.lot_id, "rule": violation.rule,
        "chart": violation.chart, "points": violation.points, "severity": violation.severity,
        "limits_version": violation.limits_version,
        "requires_acknowledgement": violation.requires_acknowledgement, "event": violation.event_id,
        # Set when its event was acknowledged before it came: it never awaits acknowledgement.
        "acknowledged_at": violation.acknowledged_at.isoformat() if violation.acknowledged_at else None,
    }  # fmt: skip


def violation_event_data(event: ViolationEvent) -> dict[str, object]:
    """An event as a chart and an inbox draw it (GET /api/v1/violation-events/<id>/ has the same)."""
    user = event.acknowledged_by
    reason = event.acknowledgement_reason
    return {
        "id": event.pk, "characteristic": event.characteristic_id, "lot": event.lot_id, "rule": event.rule,
        "rules": event.rules or [event.rule], "chart": event.chart, "priority": event.priority,
        "first_point": event.first_point,
        "last_point": event.last_point, "points": event.points, "violations": event.violations_count,
        "limits_version": event.limits_version, "requires_acknowledgement": event.requires_acknowledgement,
        "ongoing": event.ongoing, "started_at": event.started_at.isoformat(),
        "updated_at": event.updated_at.isoformat(),
        "ended_at": event.ended_at.isoformat() if event.ended_at else None,
        "acknowledged_at": event.acknowledged_at.isoformat() if event.acknowledged_at else None,
        "acknowledged_by": user.pk if user else None,
        "acknowledged_by_name": (user.get_full_name() or user.get_username()) if user else None,
        "reason": reason.code if reason else None, "comment": event.acknowledgement_comment,
        "corrective_action": event.corrective_action,
        "withdrawn_at": event.withdrawn_at.isoformat() if event.withdrawn_at else None,
    }  # fmt: skip


def violation_event_events(
    events: Sequence[ViolationEvent], name: EventType = EventType.VIOLATION_EVENT_UPDATED
) -> list[Event]:
    """`violation_event.updated` (started, grew, ended) or `.acknowledged`, to each event's groups."""
    return [
        event(name, characteristic_groups(e.characteristic, e.lot_id), **violation_event_data(e))
        for e in events
    ]


def violation_acknowledged_data(violation: Violation) -> dict[str, object]:
    user = violation.acknowledged_by
    reason = violation.acknowledgement_reason
    return {
        **violation_data(violation),
        "acknowledged_at": violation.acknowledged_at.isoformat() if violation.acknowledged_at else None,
        "acknowledged_by": user.pk if user else None,
        "acknowledged_by_name": (user.get_full_name() or user.get_username()) if user else None,
        "reason": reason.code if reason else None,
        "comment": violation.acknowledgement_comment,
        "corrective_action": violation.corrective_action,
    }


def lot_statistics_data(stats: LotStatistics) -> dict[str, object]:
    return {
        "scope": "lot", "lot": stats.lot_id, "test": stats.test_id, "characteristic": stats.characteristic_id,
        "n": stats.n, "mean": stats.mean, "sd": stats.sd, "min": stats.minimum, "max": stats.maximum,
        "out_of_spec": stats.out_of_spec, "cpk": stats.cpk, "disposition": stats.disposition,
    }  # fmt: skip


def product_statistics_data(stats: ProductStatistics) -> dict[str, object]:
    return {
        "scope": "product", "characteristic": stats.characteristic_id, "n": stats.n, "mean": stats.mean,
        "sd": stats.sd, "min": stats.minimum, "max": stats.maximum, "out_of_spec": stats.out_of_spec,
        "sigma_within": stats.sigma_within, "cp": stats.cp, "cpk": stats.cpk, "pp": stats.pp,
        "ppk": stats.ppk, "limits_version": stats.limits_version,
    }  # fmt: skip


def limits_changed_data(
    characteristic: Characteristic, new: ControlLimits, previous: ControlLimits | None
) -> dict[str, object]:
    return {
        "characteristic": characteristic.pk, "version": new.version, "center": new.center, "ucl": new.ucl,
        "lcl": new.lcl, "sigma": new.sigma, "dispersion_center": new.dispersion_center,
        "dispersion_ucl": new.dispersion_ucl, "dispersion_lcl": new.dispersion_lcl, "method": new.method,
        "frozen": new.frozen, "previous_version": previous.version if previous else None,
    }  # fmt: skip


def calculation_events(
    characteristic: Characteristic,
    kind: str,
    samples: Sequence[Sample],
    violations: Sequence[Violation],
    lots: Sequence[LotStatistics],
    product: ProductStatistics | None,
) -> list[Event]:
    """One calculation run's events, in the order a chart applies them."""
    out = [
        event(
            EventType.SAMPLE_CREATED,
            characteristic_groups(characteristic, s.lot_id),
            **sample_data(s, kind, out_of_spec=spec_outside(s, characteristic)),
        )
        for s in samples
    ]
    out += [
        event(
            EventType.VIOLATION_CREATED,
            characteristic_groups(characteristic, v.sample.lot_id),
            **violation_data(v),
        )
        for v in violations
    ]
    out += [
        event(
            EventType.STATISTICS_UPDATED,
            characteristic_groups(characteristic, s.lot_id),
            **lot_statistics_data(s),
        )
        for s in lots
    ]
    if product is not None:
        out.append(
            event(
                EventType.STATISTICS_UPDATED,
                characteristic_groups(characteristic),
                **product_statistics_data(product),
            )
        )
    return out

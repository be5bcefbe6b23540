"""Sampling schedules (docs/alarms.md "Sampling schedules"): one per characteristic, or one per test
for its characteristics without their own. Every write is audited."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.audit.services import SYSTEM, Actor
from apps.config.choices import ScheduleKind
from apps.config.models import SamplingSchedule
from apps.config.services.audited import audited, audited_delete, audited_update

SCHEDULE_FIELDS = [
    "characteristic",
    "test",
    "kind",
    "every_minutes",
    "every_units",
    "grace_minutes",
    "active",
]
MAX_EVERY_MINUTES = 7 * 24 * 60  # a week


def schedule_validate(*, data: dict[str, Any], schedule: SamplingSchedule | None = None) -> None:
    """Plain words for what the constraints refuse: one target, and the number the kind needs."""

    def given(name: str) -> Any:
        return data[name] if name in data else getattr(schedule, name, None)

    characteristic, test, kind = given("characteristic"), given("test"), given("kind")
    if (characteristic is None) == (test is None):
        raise ValidationError(
            {"characteristic": "Give a characteristic or a test (for all its characteristics), not both."}
        )
    if kind not in ScheduleKind.values:
        raise ValidationError({"kind": f"Kind must be one of {', '.join(ScheduleKind.values)}."})
    minutes, units = given("every_minutes"), given("every_units")
    if kind == ScheduleKind.INTERVAL and not (minutes and 1 <= minutes <= MAX_EVERY_MINUTES):
        raise ValidationError({"every_minutes": f"Every how many minutes (1 to {MAX_EVERY_MINUTES})?"})
    if kind == ScheduleKind.UNITS and not (units and units >= 1):
        raise ValidationError({"every_units": "Every how many units (items) made (1 or more)?"})
    target = {"characteristic": characteristic} if characteristic is not None else {"test": test}
    others = SamplingSchedule.objects.filter(**target)
    if schedule is not None:
        others = others.exclude(pk=schedule.pk)
    if others.exists():
        name = next(iter(target))
        raise ValidationError({name: f"This {name} has a sampling schedule already: change that one."})


@transaction.atomic
def schedule_create(*, actor: Actor = SYSTEM, **data: Any) -> SamplingSchedule:
    schedule_validate(data=data)
    schedule = SamplingSchedule.objects.create(
        **{name: data[name] for name in SCHEDULE_FIELDS if name in data}
    )
    audited(schedule, SCHEDULE_FIELDS, None, actor)
    return schedule


@transaction.atomic
def schedule_update(
    *, schedule: SamplingSchedule, data: dict[str, Any], actor: Actor = SYSTEM
) -> SamplingSchedule:
    schedule_validate(data=data, schedule=schedule)
    return audited_update(instance=schedule, fields=SCHEDULE_FIELDS, data=data, actor=actor)


@transaction.atomic
def schedule_delete(*, schedule: SamplingSchedule, actor: Actor = SYSTEM) -> None:
    audited_delete(instance=schedule, fields=SCHEDULE_FIELDS, actor=actor)

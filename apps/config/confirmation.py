"""Observation confirmation: a pure check of one observation against the product configuration
(selectors.product_config_load), which reads nothing and writes nothing itself."""

import datetime
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from apps.config.choices import PlanStatus, RejectionCode, TestKind
from apps.config.selectors import PlanTest, ProductConfig, TestInfo


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
    observed_at: datetime.datetime | None,
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
    if observed_at is not None:
        live = [pt for pt in live if pt.effective_at(observed_at)]
        if not live:
            when = timezone.localtime(observed_at).isoformat()
            message = f"no plan with {test.code} is assigned to {config.product_code} at {when}"
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
    (default: now) and must fall in a plan assignment's effective period [from, to).
    `check_replicates` compares the number of values with the plan's replicate count
    (off for a device streaming single values). Every applicable reason is reported,
    not only the first.
    """
    characteristic_id = config.characteristic_ids.get(test_id)
    reasons: list[Rejection] = []
    checked_at = None
    if observed_at is not None:
        time_reasons = _observed_at_check(observed_at, received_at or timezone.now())
        reasons += time_reasons
        # A time out of bounds says all: no plan period is looked up for it.
        checked_at = None if time_reasons else observed_at
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
            config=config, test=test, plan_ids=plan_ids, observed_at=checked_at
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

"""observation_confirm (apps.config.confirmation) against the snapshot product_config_load (selectors) takes.

Every RejectionCode has a case here; CoverageTests checks that none is left out.
"""

import datetime
import math
from decimal import Decimal

import pytest

from apps.config import selectors, services
from apps.config.choices import RejectionCode, TestKind
from apps.config.confirmation import observation_confirm
from apps.config.models import Characteristic, Product
from tests.factories import ProductFactory, TestFactory, UserFactory, released_plan

pytestmark = pytest.mark.django_db


def _day(month: int, day: int, year: int = 2025) -> datetime.datetime:
    return datetime.datetime(year, month, day, tzinfo=datetime.UTC)


JAN_1, JAN_31, FEB_1, MAR_1 = _day(1, 1), _day(1, 31), _day(2, 1), _day(3, 1)


def _noon(day: datetime.datetime) -> datetime.datetime:
    return day.replace(hour=12)


class Plant:
    """Product RING-74 with plan RING (DIA ×1, WALL ×3) and plan ATTR (SURF defects, LEAK defectives),
    both assigned from 2025-01-01, open-ended."""

    def __init__(self) -> None:
        self.product = ProductFactory(code="RING-74")
        self.dia = TestFactory(code="DIA", plausible_min=70.0, plausible_max=78.0)
        self.wall = TestFactory(code="WALL")
        self.surf = TestFactory(code="SURF", kind=TestKind.DEFECTS)
        self.leak = TestFactory(code="LEAK", kind=TestKind.DEFECTIVES, plausible_max=1.0)
        self.ring = released_plan(self.dia, (self.wall, 3), code="RING")
        self.attr = released_plan(self.surf, self.leak, code="ATTR")
        self.ring_assignment = services.plan_assign(
            product=self.product, plan=self.ring, effective_from=JAN_1
        )
        services.plan_assign(product=self.product, plan=self.attr, effective_from=JAN_1)

    def confirm(self, test, values, **kwargs):
        config = selectors.product_config_load(product_id=self.product.pk)
        return observation_confirm(config=config, test_id=test.pk, values=values, **kwargs)


@pytest.fixture
def plant() -> Plant:
    return Plant()


def codes(result) -> list[str]:
    return [reason.code for reason in result.reasons]


class ConfirmedTests:
    def test_confirmed_observation(self, plant):
        result = plant.confirm(plant.dia, [74])
        assert result.confirmed
        assert result.reasons == ()
        assert result.values == (74.0,)
        assert all(type(value) is float for value in result.values)
        assert (
            result.characteristic_id == Characteristic.objects.get(product=plant.product, test=plant.dia).pk
        )

    def test_replicates_keep_their_order(self, plant):
        result = plant.confirm(plant.wall, [4.01, 3.99, 4])
        assert result.confirmed
        assert result.values == (4.01, 3.99, 4.0)

    @pytest.mark.parametrize("value", [70.0, 78.0, 70, 78], ids=["min", "max", "int-min", "int-max"])
    def test_plausible_range_is_inclusive(self, plant, value):
        result = plant.confirm(plant.dia, [value])
        assert result.confirmed, result.reasons
        assert result.values == (float(value),)

    @pytest.mark.parametrize("value", [0, 3, 3.0, 250])
    def test_whole_counts_on_a_defects_test(self, plant, value):
        result = plant.confirm(plant.surf, [value])
        assert result.confirmed, result.reasons
        assert result.values == (float(value),)

    def test_item_plans_that_contain_the_test(self, plant):
        assert plant.confirm(plant.dia, [74.0], plan_ids={plant.ring.pk}).confirmed
        assert plant.confirm(plant.dia, [74.0], plan_ids=[plant.attr.pk, plant.ring.pk]).confirmed

    @pytest.mark.parametrize("day", [JAN_1, _day(1, 1, year=2030)])
    def test_effective_on_the_day(self, plant, day):
        assert plant.confirm(plant.dia, [74.0], observed_at=_noon(day), received_at=_noon(day)).confirmed

    def test_last_day_of_an_ended_assignment_is_effective(self, plant):
        services.plan_assignment_end(assignment=plant.ring_assignment, effective_to=FEB_1)
        assert plant.confirm(plant.dia, [74.0], observed_at=_noon(JAN_31)).confirmed

    def test_the_period_is_half_open_to_the_microsecond(self, plant):
        """[from, to): the start is in, the end is out, so a replacement starting at the end of the
        old assignment takes every measurement from that moment on and none before."""
        switch = _noon(JAN_31).replace(minute=30)
        services.plan_assignment_end(assignment=plant.ring_assignment, effective_to=switch)
        replacement = released_plan(plant.dia, code="RING-FIX")
        services.plan_assign(product=plant.product, plan=replacement, effective_from=switch)
        tick = datetime.timedelta(microseconds=1)
        before = plant.confirm(plant.dia, [74.0], observed_at=switch - tick, received_at=switch)
        at = plant.confirm(
            plant.dia, [74.0], plan_ids={plant.ring.pk}, observed_at=switch, received_at=switch
        )
        under_new = plant.confirm(
            plant.dia, [74.0], plan_ids={replacement.pk}, observed_at=switch, received_at=switch
        )
        assert before.confirmed
        assert codes(at) == [RejectionCode.NOT_EFFECTIVE]
        assert under_new.confirmed

    def test_a_retired_plan_does_not_block_a_live_one(self, plant):
        other = released_plan(plant.dia, code="RING-EXTRA")
        services.plan_assign(product=plant.product, plan=other, effective_from=JAN_1)
        services.test_plan_retire(plan=plant.ring)
        assert plant.confirm(plant.dia, [74.0]).confirmed


class RejectedTests:
    def test_test_in_no_plan_of_the_product(self, plant):
        stranger = TestFactory(code="STRANGER")
        elsewhere = ProductFactory(code="OTHER")
        services.plan_assign(product=elsewhere, plan=released_plan(stranger), effective_from=JAN_1)
        result = plant.confirm(stranger, [1.0])
        assert codes(result) == [RejectionCode.TEST_NOT_IN_PLAN]
        assert "RING-74" in result.reasons[0].message
        assert result.characteristic_id is None
        assert not result.confirmed

    def test_unknown_test_id(self, plant):
        config = selectors.product_config_load(product_id=plant.product.pk)
        result = observation_confirm(config=config, test_id=999999, values=[1.0])
        assert codes(result) == [RejectionCode.TEST_NOT_IN_PLAN]

    @pytest.mark.parametrize("plan_ids", ["attr", "none"])
    def test_test_not_in_the_items_plans(self, plant, plan_ids):
        chosen = {plant.attr.pk} if plan_ids == "attr" else set()
        result = plant.confirm(plant.dia, [74.0], plan_ids=chosen)
        assert codes(result) == [RejectionCode.TEST_NOT_IN_PLAN]
        assert "DIA is not in the item's test plans" in result.reasons[0].message
        # The characteristic exists; the item simply did not ask for this test.
        assert result.characteristic_id is not None

    def test_plan_retired(self, plant):
        services.test_plan_retire(plan=plant.ring)
        result = plant.confirm(plant.dia, [74.0])
        assert codes(result) == [RejectionCode.PLAN_RETIRED]
        assert "RING v1" in result.reasons[0].message
        assert result.values == (74.0,)

    def test_assignment_ended_before_the_day(self, plant):
        services.plan_assignment_end(assignment=plant.ring_assignment, effective_to=FEB_1)
        result = plant.confirm(plant.dia, [74.0], observed_at=_noon(FEB_1))
        assert codes(result) == [RejectionCode.NOT_EFFECTIVE]
        assert "2025-02-01" in result.reasons[0].message

    def test_assignment_starts_after_the_day(self):
        product, test = ProductFactory(), TestFactory()
        services.plan_assign(product=product, plan=released_plan(test), effective_from=MAR_1)
        config = selectors.product_config_load(product_id=product.pk)
        result = observation_confirm(config=config, test_id=test.pk, values=[1.0], observed_at=_noon(FEB_1))
        assert codes(result) == [RejectionCode.NOT_EFFECTIVE]
        later = observation_confirm(config=config, test_id=test.pk, values=[1.0], observed_at=_noon(MAR_1))
        assert later.confirmed

    def test_without_a_day_the_period_is_not_checked(self, plant):
        services.plan_assignment_end(assignment=plant.ring_assignment, effective_to=FEB_1)
        assert plant.confirm(plant.dia, [74.0]).confirmed

    def test_no_values(self, plant):
        result = plant.confirm(plant.wall, [])
        assert codes(result) == [RejectionCode.NO_VALUES]  # and no replicate-count reason on top
        assert result.values == ()

    @pytest.mark.parametrize(
        "value",
        [math.nan, math.inf, -math.inf, "74.0", "", True, False, None, Decimal("74.0"), [74.0], {"v": 74}],
        ids=["nan", "inf", "-inf", "string", "empty", "true", "false", "none", "decimal", "list", "dict"],
    )
    def test_not_a_number(self, plant, value):
        result = plant.confirm(plant.dia, [value])
        assert codes(result) == [RejectionCode.NOT_A_NUMBER]
        assert result.values == ()

    def test_huge_integer_is_not_a_number(self, plant):
        result = plant.confirm(plant.dia, [10**400])
        assert codes(result) == [RejectionCode.NOT_A_NUMBER]

    def test_only_the_bad_replicate_is_dropped(self, plant):
        result = plant.confirm(plant.wall, [4.0, "x", 4.1])
        assert codes(result) == [RejectionCode.NOT_A_NUMBER]
        assert "value 2" in result.reasons[0].message
        assert result.values == (4.0, 4.1)

    @pytest.mark.parametrize("value", [-1, -1.0, 1.5, 0.001])
    @pytest.mark.parametrize("test_name", ["surf", "leak"])
    def test_not_a_count_on_attribute_tests(self, plant, test_name, value):
        result = plant.confirm(getattr(plant, test_name), [value])
        assert codes(result) == [RejectionCode.NOT_A_COUNT]
        assert result.values == ()

    def test_negative_and_fractional_values_are_fine_on_variable_tests(self, plant):
        assert plant.confirm(plant.wall, [-1.5, 0.25, 3.75]).confirmed

    @pytest.mark.parametrize("value", [69.999, 78.001, 0.0, 1e9])
    def test_outside_the_plausible_range(self, plant, value):
        result = plant.confirm(plant.dia, [value])
        assert codes(result) == [RejectionCode.OUT_OF_RANGE]
        assert "plausible range of DIA" in result.reasons[0].message
        assert result.values == (value,)  # kept, so the rejected row can show what was typed

    def test_outside_a_one_sided_range(self, plant):
        assert codes(plant.confirm(plant.leak, [2])) == [RejectionCode.OUT_OF_RANGE]
        assert plant.confirm(plant.leak, [1]).confirmed

    @pytest.mark.parametrize("count", [1, 2, 4])
    def test_wrong_replicate_count(self, plant, count):
        result = plant.confirm(plant.wall, [4.0] * count)
        assert codes(result) == [RejectionCode.REPLICATE_COUNT]
        assert "WALL takes 3 value(s) per item; got" in result.reasons[0].message

    def test_replicate_count_not_checked_when_asked(self, plant):
        result = plant.confirm(plant.wall, [4.0], check_replicates=False)
        assert result.confirmed
        assert result.values == (4.0,)

    def test_any_assigned_plans_replicate_count_is_accepted(self, plant):
        five = released_plan((plant.wall, 5), code="RING-LONG")
        services.plan_assign(product=plant.product, plan=five, effective_from=JAN_1)
        assert plant.confirm(plant.wall, [4.0] * 3).confirmed
        assert plant.confirm(plant.wall, [4.0] * 5).confirmed
        result = plant.confirm(plant.wall, [4.0] * 4)
        assert "3 or 5" in result.reasons[0].message
        assert plant.confirm(plant.wall, [4.0] * 5, plan_ids={plant.ring.pk}).reasons[0].code == (
            RejectionCode.REPLICATE_COUNT
        )

    def test_product_inactive(self, plant):
        Product.objects.filter(pk=plant.product.pk).update(active=False)
        result = plant.confirm(plant.dia, [74.0])
        assert codes(result) == [RejectionCode.PRODUCT_INACTIVE]
        assert "RING-74" in result.reasons[0].message

    def test_every_reason_is_reported(self, plant):
        Product.objects.filter(pk=plant.product.pk).update(active=False)
        result = plant.confirm(plant.dia, [math.nan, 80.0])
        assert codes(result) == [
            RejectionCode.PRODUCT_INACTIVE,
            RejectionCode.NOT_A_NUMBER,
            RejectionCode.OUT_OF_RANGE,
            RejectionCode.REPLICATE_COUNT,
        ]
        assert result.values == (80.0,)

    def test_plan_and_value_reasons_together(self, plant):
        services.plan_assignment_end(assignment=plant.ring_assignment, effective_to=FEB_1)
        result = plant.confirm(plant.dia, [69.0], observed_at=_noon(FEB_1))
        assert codes(result) == [RejectionCode.NOT_EFFECTIVE, RejectionCode.OUT_OF_RANGE]


class ConfigLoadTests:
    def test_snapshot_contents(self, plant):
        config = selectors.product_config_load(product_id=plant.product.pk)
        assert (config.product_id, config.product_code, config.active) == (plant.product.pk, "RING-74", True)
        assert set(config.tests) == {plant.dia.pk, plant.wall.pk, plant.surf.pk, plant.leak.pk}
        dia = config.tests[plant.dia.pk]
        assert (dia.code, dia.kind, dia.plausible_min, dia.plausible_max) == ("DIA", "variable", 70.0, 78.0)
        by_test = {pt.test_id: pt for pt in config.plan_tests}
        assert len(config.plan_tests) == 4
        wall = by_test[plant.wall.pk]
        assert (wall.plan_id, wall.plan_label, wall.plan_status, wall.replicates) == (
            plant.ring.pk,
            "RING v1",
            "released",
            3,
        )
        assert (wall.effective_from, wall.effective_to) == (JAN_1, None)
        assert config.characteristic_ids == dict(
            Characteristic.objects.filter(product=plant.product).values_list("test_id", "id")
        )

    def test_a_plan_assigned_twice_appears_per_assignment(self, plant):
        services.plan_assignment_end(assignment=plant.ring_assignment, effective_to=FEB_1)
        services.plan_assign(product=plant.product, plan=plant.ring, effective_from=MAR_1)
        config = selectors.product_config_load(product_id=plant.product.pk)
        periods = sorted(
            (pt.effective_from, pt.effective_to) for pt in config.plan_tests if pt.test_id == plant.dia.pk
        )
        assert periods == [(JAN_1, FEB_1), (MAR_1, None)]
        result = observation_confirm(
            config=config, test_id=plant.dia.pk, values=[74.0], observed_at=_noon(FEB_1)
        )
        assert codes(result) == [RejectionCode.NOT_EFFECTIVE]
        assert observation_confirm(
            config=config, test_id=plant.dia.pk, values=[74.0], observed_at=_noon(MAR_1)
        ).confirmed

    def test_product_without_plans(self):
        product = ProductFactory()
        config = selectors.product_config_load(product_id=product.pk)
        assert (config.tests, config.plan_tests, config.characteristic_ids) == ({}, (), {})

    def test_unknown_product(self):
        with pytest.raises(Product.DoesNotExist):
            selectors.product_config_load(product_id=999999)

    def test_bounded_queries(self, plant, django_assert_num_queries):
        with django_assert_num_queries(2):
            small = selectors.product_config_load(product_id=plant.product.pk)
        for n in range(5):
            plan = released_plan(TestFactory(), TestFactory(), TestFactory(), code=f"MORE-{n}")
            services.plan_assign(product=plant.product, plan=plan, effective_from=JAN_1, user=UserFactory())
        with django_assert_num_queries(2):
            big = selectors.product_config_load(product_id=plant.product.pk)
        assert len(big.plan_tests) == len(small.plan_tests) + 15
        assert len(big.tests) == 19


class ObservedAtTests:
    """observed_at within OBSERVATION_MAX_FUTURE_SECONDS after receipt and OBSERVATION_HORIZON_DAYS
    before it; judged against received_at, whenever the check runs."""

    RECEIVED = datetime.datetime(2025, 3, 1, 8, 0, tzinfo=datetime.UTC)

    def _codes(self, plant, **delta):
        observed_at = self.RECEIVED + datetime.timedelta(**delta)
        return codes(plant.confirm(plant.dia, [74.0], observed_at=observed_at, received_at=self.RECEIVED))

    def test_up_to_five_minutes_ahead_by_default(self, plant):
        assert self._codes(plant, seconds=300) == []
        assert self._codes(plant, seconds=301) == [RejectionCode.OBSERVED_IN_FUTURE]

    def test_the_year_9999_is_rejected_with_the_limit_named_and_no_other_reason(self, plant):
        observed_at = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)
        result = plant.confirm(plant.dia, [74.0], observed_at=observed_at, received_at=self.RECEIVED)
        (reason,) = result.reasons
        assert reason.code == RejectionCode.OBSERVED_IN_FUTURE
        assert reason.message.startswith("observed_at 9999-12-31T23:59:59+00:00 is 251,")
        assert reason.message.endswith(
            "s after the observation was received (2025-03-01T08:00:00+00:00); "
            "OBSERVATION_MAX_FUTURE_SECONDS allows 300 s"
        )

    def test_the_horizon_in_days_before_receipt(self, plant, settings):
        settings.OBSERVATION_HORIZON_DAYS = 30
        assert self._codes(plant, days=-30) == []
        assert self._codes(plant, days=-30, seconds=-1) == [RejectionCode.OBSERVED_TOO_EARLY]
        observed_at = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
        result = plant.confirm(plant.dia, [74.0], observed_at=observed_at, received_at=self.RECEIVED)
        assert [r.message for r in result.reasons] == [
            "observed_at 1970-01-01T00:00:00+00:00 is more than 30 days before the observation was "
            "received (2025-03-01T08:00:00+00:00); OBSERVATION_HORIZON_DAYS is 30"
        ]

    def test_the_skew_is_a_setting(self, plant, settings):
        settings.OBSERVATION_MAX_FUTURE_SECONDS = 0
        assert self._codes(plant, seconds=0) == []
        assert self._codes(plant, seconds=1) == [RejectionCode.OBSERVED_IN_FUTURE]

    def test_received_at_defaults_to_now(self, plant):
        ahead = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
        assert codes(plant.confirm(plant.dia, [74.0], observed_at=ahead)) == [
            RejectionCode.OBSERVED_IN_FUTURE
        ]


def _retired(plant):
    services.test_plan_retire(plan=plant.ring)
    return plant.confirm(plant.dia, [74.0])


def _ended(plant):
    services.plan_assignment_end(assignment=plant.ring_assignment, effective_to=FEB_1)
    return plant.confirm(plant.dia, [74.0], observed_at=_noon(FEB_1))


def _inactive(plant):
    Product.objects.filter(pk=plant.product.pk).update(active=False)
    return plant.confirm(plant.dia, [74.0])


ONE_CASE_PER_CODE = {
    RejectionCode.PRODUCT_INACTIVE: _inactive,
    RejectionCode.TEST_NOT_IN_PLAN: lambda plant: plant.confirm(plant.dia, [74.0], plan_ids=[plant.attr.pk]),
    RejectionCode.PLAN_RETIRED: _retired,
    RejectionCode.NOT_EFFECTIVE: _ended,
    RejectionCode.NO_VALUES: lambda plant: plant.confirm(plant.dia, []),
    RejectionCode.NOT_A_NUMBER: lambda plant: plant.confirm(plant.dia, ["74"]),
    RejectionCode.NOT_A_COUNT: lambda plant: plant.confirm(plant.surf, [2.5]),
    RejectionCode.OUT_OF_RANGE: lambda plant: plant.confirm(plant.dia, [99.0]),
    RejectionCode.REPLICATE_COUNT: lambda plant: plant.confirm(plant.wall, [4.0]),
    RejectionCode.OBSERVED_IN_FUTURE: lambda plant: plant.confirm(
        plant.dia, [74.0], observed_at=_noon(MAR_1), received_at=_noon(FEB_1)
    ),
    RejectionCode.OBSERVED_TOO_EARLY: lambda plant: plant.confirm(
        plant.dia, [74.0], observed_at=_noon(FEB_1), received_at=_noon(FEB_1) + datetime.timedelta(days=3651)
    ),
}


class CoverageTests:
    def test_every_rejection_code_has_a_case(self):
        assert set(ONE_CASE_PER_CODE) == set(RejectionCode.values)

    @pytest.mark.parametrize("code", list(ONE_CASE_PER_CODE), ids=str)
    def test_each_code_alone(self, plant, code):
        result = ONE_CASE_PER_CODE[code](plant)
        assert codes(result) == [code]
        assert not result.confirmed
        assert result.reasons[0].message

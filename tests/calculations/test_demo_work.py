"""manage.py demo_work (make run, after demo_setup): the simulated charts' limits through the SPC
engine, dispersion chart included, and a lab lot on the demo tester's worklist; safe to run again."""

import math
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.config.choices import LimitMethod
from apps.config.models import ControlLimits
from apps.observations.models import Item, Lot

pytestmark = pytest.mark.django_db

D2_5, D4_5 = 2.326, 2.114  # the control chart constants for subgroups of 5


@pytest.fixture
def demo(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("demo_setup", stdout=StringIO())


def _run() -> str:
    out = StringIO()
    call_command("demo_work", stdout=out)
    return out.getvalue()


class DemoWorkTests:
    def test_ring_diameter_gets_xbar_and_r_limits_from_the_engine(self, demo):
        _run()
        (limits,) = ControlLimits.objects.filter(
            characteristic__product__code="RING-74", characteristic__test__code="RING-DIA"
        )
        half_width = 3 * 0.010 / math.sqrt(5)
        assert limits.version == 1
        assert (limits.center, limits.sigma) == (74.0, 0.010)
        assert limits.ucl == pytest.approx(74.0 + half_width)
        assert limits.lcl == pytest.approx(74.0 - half_width)
        assert limits.dispersion_center == pytest.approx(D2_5 * 0.010, abs=1e-5)
        assert limits.dispersion_ucl == pytest.approx(D4_5 * D2_5 * 0.010, abs=1e-4)
        assert limits.dispersion_lcl == 0
        assert limits.method == LimitMethod.HISTORICAL
        assert limits.set_by.username == "quality"

    def test_shaft_od_gets_individuals_and_moving_range_limits(self, demo):
        _run()
        (limits,) = ControlLimits.objects.filter(characteristic__test__code="SHAFT-OD")
        assert limits.ucl == pytest.approx(20.012)
        assert limits.dispersion_center == pytest.approx(1.128 * 0.004, abs=1e-5)  # d2 = 2/√π

    def test_the_demo_tester_has_a_lab_lot_to_test(self, demo):
        output = _run()
        lot = Lot.objects.get(number="LAB-RING-74-1", product__code="RING-74")
        items = Item.objects.filter(lot=lot)
        assert items.count() == 4
        assert {item.tester.username for item in items} == {"tester"}
        assert all(item.plans.count() == 1 for item in items)
        assert "lab lot LAB-RING-74-1" in output

    def test_running_it_again_changes_nothing(self, demo):
        _run()
        before = (ControlLimits.objects.count(), Lot.objects.count(), Item.objects.count())
        assert _run() == ""
        assert (ControlLimits.objects.count(), Lot.objects.count(), Item.objects.count()) == before

    def test_without_the_demo_users_it_says_what_to_run(self, settings):
        with pytest.raises(CommandError, match="demo_setup"):
            _run()

"""The row factories (tests/factories.py) make rows the database accepts, numbered as the workers
number them, with the fields that follow from others filled in consistently."""

import math

import pytest

from apps.config.models import ControlLimits
from apps.observations.models import Sample
from tests.factories import (
    ControlLimitsFactory,
    EdgeNodeFactory,
    NotificationFactory,
    QaPackageFactory,
    SampleFactory,
    SubscriptionFactory,
    ViolationFactory,
)

pytestmark = pytest.mark.django_db


def test_samples_of_a_characteristic_are_numbered_1_2_3_with_their_statistics() -> None:
    first = SampleFactory(values=[1.0, 3.0, 5.0])
    second = SampleFactory(characteristic=first.characteristic, values=[2.0])
    other = SampleFactory()

    rows = Sample.objects.filter(characteristic=first.characteristic).order_by("sequence")
    assert [(s.sequence, s.n, s.mean, s.range, s.sd) for s in rows] == [
        (1, 3, 3.0, 4.0, 2.0),
        (2, 1, 2.0, None, None),
    ]
    assert second.lot.product == first.characteristic.product
    assert other.sequence == 1
    assert other.characteristic != first.characteristic


def test_a_violation_points_at_its_out_of_control_sample() -> None:
    violation = ViolationFactory(rule=5)
    violation.refresh_from_db()
    assert violation.characteristic == violation.sample.characteristic
    assert (violation.rule, violation.points, violation.sample.in_control) == (
        5,
        [violation.sample.sequence],
        False,
    )


def test_limits_are_the_next_version_center_plus_minus_three_sigma() -> None:
    first = ControlLimitsFactory(center=74.0, sigma=0.01)
    ControlLimitsFactory(characteristic=first.characteristic)
    rows = ControlLimits.objects.filter(characteristic=first.characteristic).order_by("version")
    assert [row.version for row in rows] == [1, 2]
    assert math.isclose(first.ucl, 74.03)
    assert math.isclose(first.lcl, 73.97)


def test_subscriptions_notifications_packages_and_nodes() -> None:
    subscription = SubscriptionFactory()
    notification = NotificationFactory(user=subscription.user, subscription=subscription)
    package = QaPackageFactory()
    node = EdgeNodeFactory()
    assert (subscription.scope, subscription.product is not None) == ("product", True)
    assert list(subscription.user.notifications.all()) == [notification]
    assert notification.read_at is None
    assert (package.auth_display, package.generator) == ("none", "spec")
    assert (node.group, node.device, node.online) == ("G", "", True)

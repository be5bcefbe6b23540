"""The upgrade binds existing devices to what they fed, so a running plant keeps posting."""

import importlib

import pytest
from django.apps import apps

from apps.config import services as config_services
from apps.config.models import Characteristic
from apps.observations.choices import ObservationSource, ObservationStatus
from tests.factories import ObservationFactory

pytestmark = pytest.mark.django_db

bind = importlib.import_module("apps.observations.migrations.0008_bind_devices_to_what_they_posted").bind


def test_devices_are_bound_to_the_characteristics_of_their_confirmed_posts(plant):
    dia, wall = (Characteristic.objects.get(product=plant.product, test=t) for t in (plant.dia, plant.wall))
    fed, _ = config_services.device_create(name="fed")
    idle, _ = config_services.device_create(name="idle")
    bridge, _ = config_services.device_create(name="mqtt-bridge")
    posts = [
        (fed, ObservationSource.DEVICE, ObservationStatus.CONFIRMED, dia),
        (fed, ObservationSource.DEVICE, ObservationStatus.CONFIRMED, dia),
        (fed, ObservationSource.DEVICE, ObservationStatus.REJECTED, None),  # refused anyway: no binding
        (bridge, ObservationSource.MQTT, ObservationStatus.CONFIRMED, wall),  # never checked
        (None, ObservationSource.MANUAL, ObservationStatus.CONFIRMED, wall),  # a tester's
    ]
    for device, source, status, characteristic in posts:
        ObservationFactory(
            item=plant.items[0], test=plant.dia, source=source, status=status, characteristic=characteristic,
            processed_at=plant.lot.created_at, **({"user": device.user} if device else {}),
        )  # fmt: skip
    bind(apps, None)
    bind(apps, None)  # run again (a migration re-applied after a fake): nothing more
    assert list(fed.characteristics.all()) == [dia]
    assert not idle.characteristics.exists()
    assert not bridge.characteristics.exists()
    assert not fed.products.exists()

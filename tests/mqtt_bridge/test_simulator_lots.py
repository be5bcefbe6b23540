"""The plant simulator feeds production lots of its own (--open-lots); a lab lot, whose items testers
measure, takes no machine values while a production lot is open."""

import datetime
import json
from typing import Any

import pytest

from apps.config.choices import DataSource
from apps.config.models import Characteristic, Device
from apps.mqtt_bridge.readings import json_reading
from apps.mqtt_bridge.selectors import Fed, lots_current
from apps.mqtt_bridge.services import Stored, bridge_device, bridge_store, lots_open_where_missing
from apps.observations.choices import LotStatus
from apps.observations.models import Lot, Observation
from tests.factories import ItemFactory, LotFactory, ProductFactory, TestFactory, characteristic_for

pytestmark = pytest.mark.django_db

TOPIC = "plant/line1/dia"


@pytest.fixture
def bridge(db: None) -> Device:
    return bridge_device(name="mqtt-bridge")


@pytest.fixture
def fed(plant: Any) -> Fed:
    dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
    return Fed(dia.pk, plant.product.pk, plant.dia.pk, TOPIC)


def _store(bridge: Device, fed: Fed, document: dict[str, Any]) -> Stored:
    reading = json_reading(fed, TOPIC, json.dumps(document).encode())
    return bridge_store(readings=[reading], device=bridge, listener="test")


class CurrentLotTests:
    def test_a_production_lot_takes_the_stream_before_a_newer_lab_lot(self, plant, fed, bridge):
        production = LotFactory(product=plant.product, number="P-1")
        lab = LotFactory(product=plant.product, number="LAB-2")  # newer, with an item
        ItemFactory(lot=lab, serial="0001")
        assert _store(bridge, fed, {"value": 74.01}) == Stored(observations=1)
        assert Observation.objects.get().lot == production
        assert lots_current(product_ids=[plant.product.pk]) == {plant.product.pk: production}

    def test_a_lab_lot_named_in_the_message_still_takes_it(self, plant, fed, bridge):
        LotFactory(product=plant.product, number="P-1")
        _store(bridge, fed, {"value": 74.01, "lot": "L-1"})
        assert Observation.objects.get().lot == plant.lot


class OpenLotsTests:
    def test_a_production_lot_is_opened_beside_a_lab_lot_with_a_product_specific_number(self, plant, bridge):
        """The plant's only working lot is lab lot L-1 (three items): it is not the simulator's."""
        shaft = ProductFactory(code="SHAFT-20")
        od = characteristic_for(shaft, TestFactory(), data_source=DataSource.SPARKPLUG, tag="Line1/OD")
        dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
        result = lots_open_where_missing(characteristic_ids=[dia.pk, od.pk], user=bridge.user)

        numbers = sorted(lot.number for lot in result.opened)
        stamps = {number.removeprefix("SIM-RING-74-").removeprefix("SIM-SHAFT-20-") for number in numbers}
        assert len(numbers) == 2
        assert numbers[0].startswith("SIM-RING-74-")
        assert numbers[1].startswith("SIM-SHAFT-20-")
        assert len(stamps) == 1  # opened together, yet no two lots share a number
        ring_lot = Lot.objects.get(product=plant.product, number=numbers[0])
        assert result.numbers == {dia.pk: numbers[0], od.pk: numbers[1]}
        assert not ring_lot.items.exists()
        assert Lot.objects.get(pk=plant.lot.pk).status == LotStatus.OPEN  # the lab lot is left alone

        again = lots_open_where_missing(characteristic_ids=[dia.pk, od.pk], user=bridge.user)
        assert (again.opened, again.numbers) == ([], result.numbers)

    def test_simulated_values_go_to_the_simulators_lot_not_the_lab_lot(self, plant, fed, bridge):
        dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
        numbers = lots_open_where_missing(characteristic_ids=[dia.pk], user=bridge.user).numbers
        moment = datetime.datetime.now(datetime.UTC).isoformat()
        for value in (74.01, 74.02):
            _store(bridge, fed, {"value": value, "ts": moment, "lot": numbers[dia.pk]})
        _store(bridge, fed, {"value": 74.03})  # a stream naming no lot, too
        assert set(Observation.objects.values_list("lot__number", flat=True)) == {numbers[dia.pk]}
        assert not Observation.objects.filter(lot=plant.lot).exists()

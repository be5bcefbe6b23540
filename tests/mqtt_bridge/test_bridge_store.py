"""Storing a batch (apps/mqtt_bridge/services.py): readings into observations in the lot they name or the
product's current one, dead letters counted per topic and payload, edge node state, one transaction."""

import datetime
import json
from typing import Any

import pytest

from apps.config.models import Characteristic, Device
from apps.mqtt_bridge import services
from apps.mqtt_bridge.models import DeadLetter, DeadLetterReason, EdgeNode
from apps.mqtt_bridge.nodes import NodeChange
from apps.mqtt_bridge.readings import Reading, fingerprint, json_reading
from apps.mqtt_bridge.selectors import Fed, KnownNode, edge_nodes_online
from apps.mqtt_bridge.services import Dead, Stored, bridge_device, bridge_store
from apps.observations.choices import LotStatus, ObservationSource, ObservationStatus
from apps.observations.models import Observation
from openspc.roles import Role
from tests.factories import ItemFactory, LotFactory, ProductFactory

TOPIC = "plant/line1/dia"
T0 = datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.UTC)


@pytest.fixture
def fed(plant: Any) -> Fed:
    dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
    return Fed(dia.pk, plant.product.pk, plant.dia.pk, TOPIC)


@pytest.fixture
def bridge(db: None) -> Device:
    return bridge_device(name="mqtt-bridge")


def reading(fed: Fed, document: dict[str, Any] | None = None, *, raw: bytes | None = None) -> Reading:
    payload = raw if raw is not None else json.dumps(document).encode()
    result = json_reading(fed, TOPIC, payload)
    assert isinstance(result, Reading), result
    return result


def store(bridge: Device, *readings: Reading, **kwargs: Any) -> Stored:
    return bridge_store(readings=readings, device=bridge, listener="test-listener", **kwargs)


def dead_letter() -> DeadLetter:
    (row,) = DeadLetter.objects.all()
    return row


class LotTests:
    def test_no_lot_named_goes_to_the_products_newest_working_lot(self, plant: Any, fed: Fed, bridge: Device):
        testing = LotFactory(product=plant.product, number="L-2", status=LotStatus.IN_TESTING)
        LotFactory(product=plant.product, number="L-3", status=LotStatus.RELEASED)  # newer, but closed
        LotFactory(product=plant.product, number="L-4", status=LotStatus.REJECTED)
        LotFactory(product=ProductFactory(code="SHAFT"), number="S-1")  # newest open lot, other product
        assert store(bridge, reading(fed, {"value": 74.01})) == Stored(observations=1)
        (row,) = Observation.objects.all()
        assert row.lot == testing

    def test_the_open_lot_when_it_is_the_newest_working_one(self, plant: Any, fed: Fed, bridge: Device):
        LotFactory(product=plant.product, number="L-0", status=LotStatus.RELEASED)
        store(bridge, reading(fed, {"value": 74.01}))
        assert Observation.objects.get().lot == plant.lot

    def test_a_named_lot(self, plant: Any, fed: Fed, bridge: Device) -> None:
        LotFactory(product=plant.product, number="L-2")  # the current lot, not named
        store(bridge, reading(fed, {"value": 74.01, "lot": "L-1"}))
        assert Observation.objects.get().lot == plant.lot

    @pytest.mark.parametrize(
        ("number", "message"),
        [("L-0", "Lot L-0 is released; it takes no more observations."),
         ("L-9", "Lot L-9 of product {product} does not exist."),
         ("S-1", "Lot S-1 of product {product} does not exist.")],
    )  # fmt: skip
    def test_a_named_lot_that_takes_no_values(
        self, plant: Any, fed: Fed, bridge: Device, number: str, message: str
    ) -> None:
        LotFactory(product=plant.product, number="L-0", status=LotStatus.RELEASED)
        LotFactory(product=ProductFactory(code="SHAFT"), number="S-1")
        r = reading(fed, {"value": 74.01, "lot": number})
        assert store(bridge, r) == Stored(dead_letters=1)
        assert not Observation.objects.exists()
        row = dead_letter()
        assert (row.reason, row.message, row.topic, bytes(row.payload)) == (
            DeadLetterReason.UNKNOWN_LOT, message.format(product=plant.product.code), TOPIC, r.payload,
        )  # fmt: skip

    def test_no_open_lot_keeps_the_payload_byte_for_byte(self, plant: Any, fed: Fed, bridge: Device) -> None:
        plant.lot.status = LotStatus.RELEASED
        plant.lot.save()
        raw = b'{ "value" :74.0100,\t"id": "caf\\u00e9", "extra": [1, 2] }\r\n'
        assert store(bridge, reading(fed, raw=raw)) == Stored(dead_letters=1)
        row = dead_letter()
        assert (row.reason, row.message) == (
            DeadLetterReason.NO_LOT,
            f"Product {plant.product.code} has no open lot; open one, or name the lot.",
        )
        assert bytes(row.payload) == raw
        assert (row.count, row.listener, row.fingerprint) == (1, "test-listener", fingerprint(TOPIC, raw))

    def test_an_item_of_the_lot(self, plant: Any, fed: Fed, bridge: Device) -> None:
        store(bridge, reading(fed, {"value": 74.01, "item": "0002"}))
        row = Observation.objects.get()
        assert (row.item, row.lot) == (plant.items[1], plant.lot)

    @pytest.mark.parametrize("serial", ["9999", "L2-0001"])
    def test_an_item_not_in_the_lot(self, plant: Any, fed: Fed, bridge: Device, serial: str) -> None:
        other = LotFactory(product=plant.product, number="L-0", status=LotStatus.RELEASED)
        ItemFactory(lot=other, serial="L2-0001")  # in another lot of the product
        assert store(bridge, reading(fed, {"value": 74.01, "item": serial})) == Stored(dead_letters=1)
        row = dead_letter()
        assert (row.reason, row.message) == (
            DeadLetterReason.UNKNOWN_LOT,
            f"Item {serial} does not exist in lot L-1.",
        )

    def test_a_batch_of_several_products_and_lots(self, plant: Any, fed: Fed, bridge: Device) -> None:
        shaft = ProductFactory(code="SHAFT")
        s1 = LotFactory(product=shaft, number="L-1")  # the same number as the plant's lot
        other = Fed(fed.id, shaft.pk, fed.test_id, "other/topic")  # what matters here: the product
        store(
            bridge, reading(fed, {"value": 74.01, "lot": "L-1"}), reading(other, {"value": 1.0, "lot": "L-1"})
        )
        assert sorted((o.lot_id, o.values[0]) for o in Observation.objects.all()) == sorted(
            [(plant.lot.pk, 74.01), (s1.pk, 1.0)]
        )


class ObservationTests:
    def test_stored_as_received_mqtt_by_the_devices_user(self, plant: Any, fed: Fed, bridge: Device) -> None:
        r = reading(fed, {"values": [74.01, "abc"], "id": "m-1", "ts": "2026-03-01T08:00:00Z"})
        store(bridge, r)
        row = Observation.objects.get()
        assert (row.source, row.status, row.user, row.test, row.item) == (
            ObservationSource.MQTT, ObservationStatus.RECEIVED, bridge.user, plant.dia, None,
        )  # fmt: skip
        assert (row.values, row.observed_at) == ([74.01, "abc"], T0)
        assert row.idempotency_key == f"{bridge.user.pk}:{r.key}"

    def test_the_same_message_twice_is_one_observation(self, fed: Fed, bridge: Device) -> None:
        r = reading(fed, {"value": 74.01, "id": "m-1"})
        assert store(bridge, r) == Stored(observations=1)
        assert store(bridge, r) == Stored(duplicates=1)
        assert Observation.objects.count() == 1

    def test_the_same_message_twice_in_one_batch(self, fed: Fed, bridge: Device) -> None:
        """A redelivered message can land in the same batch as the first delivery."""
        r = reading(fed, {"value": 74.01, "id": "m-1"})
        assert store(bridge, r, r) == Stored(observations=1, duplicates=1)
        assert Observation.objects.count() == 1

    def test_a_message_delivered_again_after_the_lot_changed_is_still_a_duplicate(
        self, plant: Any, fed: Fed, bridge: Device
    ) -> None:
        """The key is the message's own hash: the same bytes are the same message, even when the
        product's current lot is another one by the redelivery (no 409 here, the first stored wins)."""
        r = reading(fed, {"value": 74.01, "id": "m-1"})
        assert store(bridge, r) == Stored(observations=1)
        LotFactory(product=plant.product, number="L-2")  # the newest open lot from now on
        assert store(bridge, r) == Stored(duplicates=1)
        assert list(Observation.objects.values_list("lot__number", flat=True)) == ["L-1"]

    def test_readings_without_a_key_are_each_kept(self, fed: Fed, bridge: Device) -> None:
        r = reading(fed, {"value": 74.01})
        assert r.key is None
        assert store(bridge, r, r) == Stored(observations=2)
        assert store(bridge, r) == Stored(observations=1)
        assert Observation.objects.count() == 3

    def test_nothing_to_store(self, bridge: Device) -> None:
        assert store(bridge) == Stored()


def dead(payload: bytes, at: datetime.datetime, topic: str = TOPIC) -> Dead:
    return Dead(topic, payload, DeadLetterReason.NOT_JSON, "the payload is not JSON", at)


class DeadLetterTests:
    def test_counted_per_topic_and_payload_within_a_batch(self, bridge: Device) -> None:
        minute = datetime.timedelta(minutes=1)
        batch = [dead(b"x", T0), dead(b"y", T0), dead(b"x", T0 + minute), dead(b"x", T0 + minute, "other")]
        assert store(bridge, dead=batch) == Stored(dead_letters=4)
        rows = {(row.topic, bytes(row.payload)): row for row in DeadLetter.objects.all()}
        assert {key: row.count for key, row in rows.items()} == {
            (TOPIC, b"x"): 2, (TOPIC, b"y"): 1, ("other", b"x"): 1,
        }  # fmt: skip
        x = rows[TOPIC, b"x"]
        assert (x.first_received_at, x.last_received_at) == (T0, T0 + minute)

    def test_counted_across_batches(self, bridge: Device) -> None:
        store(bridge, dead=[dead(b"x", T0)])
        later = T0 + datetime.timedelta(hours=1)
        bridge_store(
            readings=(), dead=[dead(b"x", later), dead(b"x", later)], device=bridge, listener="second"
        )
        row = dead_letter()
        assert (row.count, row.first_received_at, row.last_received_at, row.listener) == (
            3, T0, later, "second",
        )  # fmt: skip

    def test_unplaced_readings_and_dead_messages_together(self, plant: Any, fed: Fed, bridge: Device):
        r = reading(fed, {"value": 74.01, "lot": "L-9"})
        stored = store(bridge, r, reading(fed, {"value": 74.02}), dead=[dead(r.payload, T0)])
        assert stored == Stored(observations=1, dead_letters=2)
        row = dead_letter()  # the same topic and bytes: one row, whatever the reason was
        assert row.count == 2


class TransactionTests:
    @pytest.mark.parametrize("failing", ["observations_record", "_node_changes_store"])
    def test_a_failure_stores_nothing(
        self, plant: Any, fed: Fed, bridge: Device, monkeypatch: pytest.MonkeyPatch, failing: str
    ) -> None:
        real = getattr(services, failing)

        def fail(*args: Any, **kwargs: Any) -> Any:
            real(*args, **kwargs)
            raise RuntimeError("the database went away")

        monkeypatch.setattr(services, failing, fail)
        change = NodeChange("G", "N", "", True, T0, ("m",))
        with pytest.raises(RuntimeError, match="went away"):
            store(
                bridge, reading(fed, {"value": 74.01}), reading(fed, {"value": 1, "lot": "L-9"}),
                dead=[dead(b"x", T0)], changes=[change],
            )  # fmt: skip
        assert not Observation.objects.exists()
        assert not DeadLetter.objects.exists()
        assert not EdgeNode.objects.exists()


def change(
    device: str, online: bool, at: datetime.datetime, *metrics: str, node: str = "Line1"
) -> NodeChange:
    return NodeChange("G1", node, device, online, at, metrics)


class EdgeNodeTests:
    def nodes(self) -> dict[tuple[str, str], tuple[bool, list[str]]]:
        return {(n.node, n.device): (n.online, n.metrics) for n in EdgeNode.objects.all()}

    def test_births_and_deaths(self, bridge: Device) -> None:
        t1, t2, t3 = (T0 + datetime.timedelta(minutes=k) for k in (1, 2, 3))
        store(bridge, changes=[change("", True, T0, "bdSeq"), change("Gauge3", True, T0, "Cell1/Dia"),
                               change("Gauge4", True, T0, "Cell2/Dia"), change("", True, T0, node="Line2"),
                               change("Gauge9", True, T0, node="Line2")])  # fmt: skip
        node = EdgeNode.objects.get(node="Line1", device="")
        assert (node.online, node.metrics, node.born_at, node.died_at) == (True, ["bdSeq"], T0, None)
        assert str(node) == "G1/Line1"

        store(bridge, changes=[change("Gauge3", False, t1)])
        gauge3 = EdgeNode.objects.get(device="Gauge3")
        assert (gauge3.online, gauge3.metrics, gauge3.died_at) == (False, ["Cell1/Dia"], t1)
        assert EdgeNode.objects.get(device="Gauge4").online

        store(bridge, changes=[change("", False, t2)])
        assert self.nodes() == {
            ("Line1", ""): (False, ["bdSeq"]), ("Line1", "Gauge3"): (False, ["Cell1/Dia"]),
            ("Line1", "Gauge4"): (False, ["Cell2/Dia"]), ("Line2", ""): (True, []),
            ("Line2", "Gauge9"): (True, []),
        }  # fmt: skip
        assert EdgeNode.objects.get(device="Gauge4").died_at == t2
        assert EdgeNode.objects.get(device="Gauge3").died_at == t1  # was dead already

        store(bridge, changes=[change("", True, t3, "bdSeq", "Uptime")])
        node.refresh_from_db()
        assert (node.online, node.metrics, node.born_at) == (True, ["bdSeq", "Uptime"], t3)
        assert not EdgeNode.objects.get(device="Gauge4").online  # until its own DBIRTH
        assert EdgeNode.objects.count() == 5

    def test_what_the_births_said_is_kept_for_a_restart(self, bridge: Device) -> None:
        """Issue #19, item 2: aliases, datatypes and bdSeq on the rows; what a listener reads back."""
        store(bridge, changes=[
            NodeChange("G1", "Line1", "", True, T0, ("bdSeq", "Node Control/Rebirth"),
                       aliases={1: "Node Control/Rebirth"}, types={"bdSeq": 4, "Node Control/Rebirth": 11},
                       bdseq=7),
            NodeChange("G1", "Line1", "Gauge3", True, T0, ("Cell1/Dia",), aliases={7: "Cell1/Dia"},
                       types={"Cell1/Dia": 10}),
            NodeChange("G1", "Line1", "Gauge4", True, T0, ("Cell2/Dia",), aliases={8: "Cell2/Dia"}),
            NodeChange("G1", "Line1", "Gauge4", False, T0),  # offline: its aliases are not read back
            NodeChange("G1", "Line1", "Gauge5", True, T0 - datetime.timedelta(minutes=1), ("Old",),
                       aliases={9: "Old"}),  # born in the node's session before: not read back
            NodeChange("G1", "Line2", "", True, T0, ("bdSeq",)),  # no aliases kept: asked to rebirth
            NodeChange("G1", "Line3", "", False, T0),
        ])  # fmt: skip
        assert EdgeNode.objects.get(node="Line1", device="").bdseq == 7
        assert EdgeNode.objects.get(device="Gauge3").aliases == {"7": "Cell1/Dia"}
        assert edge_nodes_online() == [
            KnownNode("G1", "Line1", {"": {1: "Node Control/Rebirth"}, "Gauge3": {7: "Cell1/Dia"}},
                      {"bdSeq": 4, "Node Control/Rebirth": 11, "Cell1/Dia": 10}, 7),
            KnownNode("G1", "Line2", {}, {}, None),
        ]  # fmt: skip

    def test_an_ignored_ndeath_is_counted_on_the_node(self, bridge: Device) -> None:
        """Issue #19, item 9."""
        store(bridge, changes=[change("", True, T0, "bdSeq")])
        t1 = T0 + datetime.timedelta(minutes=1)
        stale = NodeChange("G1", "Line1", "", True, t1, stale_death=True)
        store(bridge, changes=[stale, stale])
        node = EdgeNode.objects.get(node="Line1", device="")
        assert (node.online, node.stale_deaths, node.stale_death_at, node.born_at) == (True, 2, t1, T0)


class BridgeDeviceTests:
    def test_created_once_then_reused(self, db: None) -> None:
        device = bridge_device(name="mqtt-bridge")
        assert device.user.username == "device:mqtt-bridge"
        assert list(device.user.groups.values_list("name", flat=True)) == [Role.DEVICE]
        assert device.active
        again = bridge_device(name="mqtt-bridge")
        assert (again.pk, again.user.pk) == (device.pk, device.user.pk)
        assert Device.objects.count() == 1

"""Sparkplug B edge node state (apps/mqtt_bridge/nodes.py): BIRTH, DATA, DEATH, aliases, sequence
numbers and bdSeq, one message at a time. Pure: no database, no broker."""

import datetime

import pytest

from apps.mqtt_bridge.nodes import NodeChange, Nodes, Tracked
from apps.mqtt_bridge.sparkplug import BDSEQ_METRIC, DataType, MessageType, Metric, Payload, Topic

AT = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
GROUP, NODE, DEVICE = "G1", "Line1", "Gauge3"


def topic(kind: MessageType, device: str | None = None, node: str = NODE) -> Topic:
    return Topic(GROUP, kind, node, device)


def bdseq(value: int) -> Metric:
    return Metric(name=BDSEQ_METRIC, datatype=DataType.Int64, value=value)


def nbirth(seq: int = 0, *metrics: Metric, bd: int | None = 3) -> Payload:
    return Payload(timestamp=1, seq=seq, metrics=((bdseq(bd),) if bd is not None else ()) + metrics)


def alias_only(seq: int, *aliases: int) -> Payload:
    return Payload(seq=seq, metrics=tuple(Metric(alias=a, value=74.0 + a) for a in aliases))


DIA = Metric(name="Cell1/Diameter", alias=7, datatype=DataType.Float, value=74.0)
TEMP = Metric(name="Cell1/Temperature", alias=8, datatype=DataType.Int32, value=21)


def born(nodes: Nodes, *, node: str = NODE) -> None:
    """NBIRTH (seq 0) and a DBIRTH (seq 1) announcing DIA and TEMP."""
    assert nodes.track(topic(MessageType.NBIRTH, node=node), nbirth(0), AT).rebirth == ""
    dbirth = Payload(seq=1, metrics=(DIA, TEMP))
    assert nodes.track(topic(MessageType.DBIRTH, DEVICE, node=node), dbirth, AT).rebirth == ""


def names(tracked: Tracked) -> list[tuple[str, object, DataType | None]]:
    return [(name, metric.value, datatype) for name, metric, datatype in tracked.data]


class BirthTests:
    def test_nbirth_dbirth_then_alias_only_ddata(self) -> None:
        nodes = Nodes()
        first = nodes.track(topic(MessageType.NBIRTH), nbirth(0, Metric(name="Node/Uptime", alias=1)), AT)
        assert first.change == NodeChange(GROUP, NODE, "", True, AT, (BDSEQ_METRIC, "Node/Uptime"))
        assert (first.data, first.rebirth) == ([], "")
        dbirth = nodes.track(topic(MessageType.DBIRTH, DEVICE), Payload(seq=1, metrics=(DIA, TEMP)), AT)
        assert dbirth.change == NodeChange(GROUP, NODE, DEVICE, True, AT, (DIA.name, TEMP.name))
        assert dbirth.data == []  # BIRTH values are state, not measurements

        data = nodes.track(topic(MessageType.DDATA, DEVICE), alias_only(2, 7, 8), AT)
        assert names(data) == [(DIA.name, 81.0, DataType.Float), (TEMP.name, 82.0, DataType.Int32)]
        assert (data.rebirth, data.unknown_aliases, data.change) == ("", [], None)

    def test_metrics_with_a_name_need_no_alias(self) -> None:
        nodes = Nodes()
        born(nodes)
        named = Metric(name="Cell1/Unannounced", datatype=DataType.Double, value=1.5)
        data = nodes.track(topic(MessageType.NDATA), Payload(seq=2, metrics=(named,)), AT)
        assert names(data) == [("Cell1/Unannounced", 1.5, DataType.Double)]
        assert data.rebirth == ""

    def test_the_datatype_of_a_data_metric_wins_over_the_birth(self) -> None:
        nodes = Nodes()
        born(nodes)
        metric = Metric(alias=7, datatype=DataType.Double, value=74.5)
        data = nodes.track(topic(MessageType.DDATA, DEVICE), Payload(seq=2, metrics=(metric,)), AT)
        assert names(data) == [(DIA.name, 74.5, DataType.Double)]

    def test_a_new_nbirth_starts_afresh(self) -> None:
        nodes = Nodes()
        born(nodes)
        again = nodes.track(topic(MessageType.NBIRTH), nbirth(0, bd=4), AT)
        assert again.rebirth == ""
        data = nodes.track(topic(MessageType.DDATA, DEVICE), alias_only(1, 7), AT)
        assert data.unknown_aliases == [7]  # the device has not been born again yet
        assert data.rebirth == "unknown metric alias 7"


class SequenceTests:
    def test_in_order_across_the_wrap_is_no_gap(self) -> None:
        nodes = Nodes()
        nodes.track(topic(MessageType.NBIRTH), nbirth(250), AT)
        for seq in (251, 252, 253, 254, 255, 0, 1, 2):
            tracked = nodes.track(topic(MessageType.NDATA), alias_only(seq), AT)
            assert tracked.rebirth == "", seq

    def test_a_gap_names_both_numbers(self) -> None:
        nodes = Nodes()
        born(nodes)
        gap = nodes.track(topic(MessageType.DDATA, DEVICE), alias_only(9, 7), AT)
        assert gap.rebirth == "sequence number 9 after 1"
        assert names(gap) == [(DIA.name, 81.0, DataType.Float)]  # the values still count
        after = nodes.track(topic(MessageType.DDATA, DEVICE), alias_only(10, 7), AT)
        assert after.rebirth == ""  # continues from the new number

    @pytest.mark.parametrize(("last", "seq"), [(255, 1), (0, 0), (5, 4), (255, 255)])
    def test_other_gaps(self, last: int, seq: int) -> None:
        nodes = Nodes()
        nodes.track(topic(MessageType.NBIRTH), nbirth(last), AT)
        assert nodes.track(topic(MessageType.NDATA), alias_only(seq), AT).rebirth == (
            f"sequence number {seq} after {last}"
        )

    def test_device_messages_share_the_node_sequence(self) -> None:
        nodes = Nodes()
        born(nodes)  # NBIRTH 0, DBIRTH 1
        assert nodes.track(topic(MessageType.NDATA), alias_only(2), AT).rebirth == ""
        assert nodes.track(topic(MessageType.DDATA, DEVICE), alias_only(3, 7), AT).rebirth == ""
        assert nodes.track(topic(MessageType.DDATA, "Other"), alias_only(5), AT).rebirth == (
            "sequence number 5 after 3"
        )

    def test_data_before_any_nbirth_asks_every_time_until_the_nbirth(self) -> None:
        nodes = Nodes()
        why = "no NBIRTH seen from this node since the listener started"
        for seq in (17, 18, 19):
            tracked = nodes.track(topic(MessageType.DDATA, DEVICE), alias_only(seq, 7), AT)
            assert tracked.rebirth == why
            assert tracked.unknown_aliases == [7]
        named = nodes.track(topic(MessageType.NDATA), Payload(seq=20, metrics=(DIA,)), AT)
        assert named.rebirth == why
        assert names(named) == [(DIA.name, 74.0, DataType.Float)]
        born(nodes)
        assert nodes.track(topic(MessageType.DDATA, DEVICE), alias_only(2, 7), AT).rebirth == ""

    def test_nodes_are_tracked_apart(self) -> None:
        nodes = Nodes()
        born(nodes, node="A")
        born(nodes, node="B")
        assert nodes.track(topic(MessageType.NDATA, node="A"), alias_only(2), AT).rebirth == ""
        assert nodes.track(topic(MessageType.NDATA, node="B"), alias_only(2), AT).rebirth == ""


class AliasTests:
    def test_unknown_alias_is_listed_and_asks_for_rebirth(self) -> None:
        nodes = Nodes()
        born(nodes)
        tracked = nodes.track(topic(MessageType.DDATA, DEVICE), alias_only(2, 7, 99, 100), AT)
        assert tracked.unknown_aliases == [99, 100]
        assert tracked.rebirth == "unknown metric alias 99"
        assert names(tracked) == [(DIA.name, 81.0, DataType.Float)]

    def test_a_metric_with_neither_name_nor_alias(self) -> None:
        nodes = Nodes()
        born(nodes)
        tracked = nodes.track(topic(MessageType.NDATA), Payload(seq=2, metrics=(Metric(value=1.0),)), AT)
        assert (tracked.unknown_aliases, tracked.rebirth) == ([-1], "unknown metric alias -1")

    def test_a_gap_is_the_reason_given_before_an_unknown_alias(self) -> None:
        nodes = Nodes()
        born(nodes)
        tracked = nodes.track(topic(MessageType.DDATA, DEVICE), alias_only(7, 99), AT)
        assert tracked.rebirth == "sequence number 7 after 1"
        assert tracked.unknown_aliases == [99]


class DeathTests:
    def test_ndeath_with_the_births_bdseq_forgets_the_node(self) -> None:
        nodes = Nodes()
        born(nodes)
        death = nodes.track(topic(MessageType.NDEATH), Payload(metrics=(bdseq(3),)), AT)
        assert death.change == NodeChange(GROUP, NODE, "", False, AT)
        after = nodes.track(topic(MessageType.DDATA, DEVICE), alias_only(2, 7), AT)
        assert after.rebirth == "no NBIRTH seen from this node since the listener started"
        assert after.unknown_aliases == [7]

    def test_ndeath_with_a_stale_bdseq_is_ignored(self) -> None:
        nodes = Nodes()
        born(nodes)
        stale = nodes.track(topic(MessageType.NDEATH), Payload(metrics=(bdseq(2),)), AT)
        assert stale == Tracked()
        data = nodes.track(topic(MessageType.DDATA, DEVICE), alias_only(2, 7), AT)
        assert (data.rebirth, names(data)) == ("", [(DIA.name, 81.0, DataType.Float)])

    @pytest.mark.parametrize("payload", [None, Payload(), Payload(metrics=(bdseq(9),))])
    def test_ndeath_without_a_comparable_bdseq_is_trusted(self, payload: Payload | None) -> None:
        nodes = Nodes()
        if payload is None or payload.metrics == ():
            born(nodes)
        else:
            nodes.track(topic(MessageType.NBIRTH), nbirth(0, bd=None), AT)  # a node that sends no bdSeq
        death = nodes.track(topic(MessageType.NDEATH), payload, AT)
        assert death.change == NodeChange(GROUP, NODE, "", False, AT)

    def test_ndeath_of_a_node_never_seen(self) -> None:
        death = Nodes().track(topic(MessageType.NDEATH), Payload(metrics=(bdseq(1),)), AT)
        assert death.change == NodeChange(GROUP, NODE, "", False, AT)

    def test_ddeath_takes_the_device_offline(self) -> None:
        nodes = Nodes()
        born(nodes)
        death = nodes.track(topic(MessageType.DDEATH, DEVICE), Payload(seq=2), AT)
        assert death.change == NodeChange(GROUP, NODE, DEVICE, False, AT)
        assert death.rebirth == ""
        assert nodes.track(topic(MessageType.NDATA), alias_only(3), AT).rebirth == ""

    def test_an_unreadable_data_payload_changes_nothing(self) -> None:
        nodes = Nodes()
        born(nodes)
        assert nodes.track(topic(MessageType.DDATA, DEVICE), None, AT) == Tracked()
        assert nodes.track(topic(MessageType.DDATA, DEVICE), alias_only(2, 7), AT).rebirth == ""

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
        assert first.change == NodeChange(
            GROUP, NODE, "", True, AT, (BDSEQ_METRIC, "Node/Uptime"), aliases={1: "Node/Uptime"},
            types={BDSEQ_METRIC: DataType.Int64}, bdseq=3,
        )  # fmt: skip
        assert (first.data, first.rebirth) == ([], "")
        dbirth = nodes.track(topic(MessageType.DBIRTH, DEVICE), Payload(seq=1, metrics=(DIA, TEMP)), AT)
        assert dbirth.change == NodeChange(
            GROUP, NODE, DEVICE, True, AT, (DIA.name, TEMP.name), aliases={7: DIA.name, 8: TEMP.name},
            types={DIA.name: DataType.Float, TEMP.name: DataType.Int32},
        )  # fmt: skip
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
        """Nothing from a node not born is trusted, named metrics included (issue #19, item 5)."""
        nodes = Nodes()
        why = "no NBIRTH seen from this node since the listener started"
        for seq in (17, 18, 19):
            tracked = nodes.track(topic(MessageType.DDATA, DEVICE), alias_only(seq, 7), AT)
            assert (tracked.rebirth, tracked.not_born, tracked.data) == (why, True, [])
        named = nodes.track(topic(MessageType.NDATA), Payload(seq=20, metrics=(DIA,)), AT)
        assert (named.rebirth, named.not_born, named.data) == (why, True, [])
        dbirth = nodes.track(topic(MessageType.DBIRTH, DEVICE), Payload(seq=21, metrics=(DIA,)), AT)
        assert (dbirth.not_born, dbirth.change) == (True, None)  # a DBIRTH needs its node's NBIRTH
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
        assert (after.not_born, after.data) == (True, [])

    def test_ndeath_with_a_stale_bdseq_is_ignored(self) -> None:
        nodes = Nodes()
        born(nodes)
        stale = nodes.track(topic(MessageType.NDEATH), Payload(metrics=(bdseq(2),)), AT)
        assert stale.stale_death == "its bdSeq 2 is not the NBIRTH's (3)"
        assert stale.change == NodeChange(
            GROUP, NODE, "", True, AT, stale_death=True
        )  # counted, still online
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
        nothing = nodes.track(topic(MessageType.DDATA, DEVICE), None, AT)
        assert (nothing.data, nothing.change, nothing.rebirth, nothing.not_born) == ([], None, "", False)
        assert nodes.track(topic(MessageType.DDATA, DEVICE), alias_only(2, 7), AT).rebirth == ""


class RefusedBirthTests:
    """One alias for two metrics in a BIRTH (issue #19, item 8): the BIRTH is refused, nothing of the
    node is trusted until it births again."""

    def test_duplicate_aliases_in_an_nbirth(self) -> None:
        nodes = Nodes()
        bore = Metric(name="Cell1/Bore", alias=7, datatype=DataType.Double, value=74.0)
        birth = nodes.track(topic(MessageType.NBIRTH), nbirth(0, DIA, bore), AT)
        assert birth.refused == "alias 7 is given to both 'Cell1/Diameter' and 'Cell1/Bore'"
        assert birth.rebirth.startswith("NBIRTH refused: alias 7")
        # Kept as born with no metrics: a restarted listener must not trust the aliases before it.
        assert birth.change == NodeChange(GROUP, NODE, "", True, AT, bdseq=3)
        data = nodes.track(topic(MessageType.NDATA), alias_only(1, 7), AT)
        assert (data.not_born, data.data) == (True, [])

    def test_a_dbirth_that_takes_another_devices_alias(self) -> None:
        nodes = Nodes()
        born(nodes)  # Gauge3: aliases 7 and 8
        clash = Payload(seq=2, metrics=(Metric(name="Cell2/Bore", alias=8, datatype=DataType.Double),))
        refused = nodes.track(topic(MessageType.DBIRTH, "Gauge4"), clash, AT)
        assert refused.refused == "alias 8 is given to both 'Cell1/Temperature' and 'Cell2/Bore'"
        assert refused.change == NodeChange(GROUP, NODE, "Gauge4", True, AT)
        assert nodes.track(topic(MessageType.DDATA, DEVICE), alias_only(3, 7), AT).not_born

    def test_a_device_may_birth_again_with_its_own_aliases(self) -> None:
        nodes = Nodes()
        born(nodes)
        again = Payload(seq=2, metrics=(Metric(name="Cell1/Temperature", alias=7, datatype=DataType.Int32),))
        assert nodes.track(topic(MessageType.DBIRTH, DEVICE), again, AT).refused == ""
        data = nodes.track(topic(MessageType.DDATA, DEVICE), alias_only(3, 7, 8), AT)
        assert names(data) == [("Cell1/Temperature", 81.0, DataType.Int32)]
        assert data.unknown_aliases == [8]  # its old alias 8 went with its old BIRTH


class StaleDeathTests:
    def test_counted_and_the_node_stays(self) -> None:
        """Issue #19, item 9: ignored as the specification says, but reported (logged and counted)."""
        nodes = Nodes()
        born(nodes)
        for _ in range(3):
            stale = nodes.track(topic(MessageType.NDEATH), Payload(metrics=(bdseq(1),)), AT)
            assert stale.change == NodeChange(GROUP, NODE, "", True, AT, stale_death=True)
        assert names(nodes.track(topic(MessageType.DDATA, DEVICE), alias_only(2, 7), AT)) == [
            (DIA.name, 81.0, DataType.Float)
        ]


class UnreadableTests:
    def test_an_unreadable_nbirth_leaves_the_node_not_born(self) -> None:
        nodes = Nodes()
        born(nodes)
        assert nodes.unreadable(topic(MessageType.NBIRTH)) == []
        assert nodes.track(topic(MessageType.DDATA, DEVICE), alias_only(1, 7), AT).not_born

    def test_an_unreadable_message_takes_its_sequence_number(self) -> None:
        """Issue #19, item 4: the message after a dead-lettered one is not a gap."""
        nodes = Nodes()
        born(nodes)  # seq 1
        assert nodes.unreadable(topic(MessageType.DDATA, DEVICE)) == []  # it was seq 2
        assert nodes.track(topic(MessageType.DDATA, DEVICE), alias_only(3, 7), AT).rebirth == ""

    def test_an_unreadable_message_closes_a_gap(self) -> None:
        nodes = Nodes(reorder_timeout=10)
        born(nodes)
        assert nodes.arrive(topic(MessageType.DDATA, DEVICE), alias_only(3, 7), AT, now=0) == []
        (released,) = nodes.unreadable(topic(MessageType.DDATA, DEVICE))
        assert (released.payload.seq if released.payload else None, released.rebirth) == (3, "")


class ReorderTests:
    """Sparkplug 3.0's reorder timeout (issue #19, item 6)."""

    def test_a_late_message_inside_the_timeout_is_put_in_its_place(self) -> None:
        nodes = Nodes(reorder_timeout=2.0)
        born(nodes)  # seq 1
        dd = topic(MessageType.DDATA, DEVICE)
        assert nodes.arrive(dd, alias_only(3, 7), AT, now=10.0, token="3") == []
        assert nodes.arrive(dd, alias_only(4, 7), AT, now=10.5, token="4") == []
        assert nodes.expired(11.9) == []
        released = nodes.arrive(dd, alias_only(2, 7), AT, now=11.0, token="2")
        assert [(t.token, t.rebirth) for t in released] == [("2", ""), ("3", ""), ("4", "")]
        assert not nodes.holding()
        assert nodes.track(dd, alias_only(5, 7), AT).rebirth == ""

    def test_after_the_timeout_the_held_messages_go_in_order_and_a_rebirth_is_asked(self) -> None:
        nodes = Nodes(reorder_timeout=2.0)
        born(nodes)
        dd = topic(MessageType.DDATA, DEVICE)
        nodes.arrive(dd, alias_only(5, 7), AT, now=10.0, token="5")
        nodes.arrive(dd, alias_only(4, 7), AT, now=10.1, token="4")
        assert nodes.expired(11.9) == []
        released = nodes.expired(12.0)
        assert [(t.token, t.rebirth) for t in released] == [("4", "sequence number 4 after 1"), ("5", "")]
        assert [names(t) for t in released] == [[(DIA.name, 81.0, DataType.Float)]] * 2
        # A second gap, later, is held and reported again in its turn.
        nodes.arrive(dd, alias_only(9, 7), AT, now=20.0, token="9")
        assert [(t.token, t.rebirth) for t in nodes.expired(22.0)] == [("9", "sequence number 9 after 5")]

    def test_the_wrap_from_255_to_0(self) -> None:
        nodes = Nodes(reorder_timeout=2.0)
        nodes.track(topic(MessageType.NBIRTH), nbirth(0, DIA), AT)
        nd = topic(MessageType.NDATA)
        for seq in range(1, 255):
            assert len(nodes.arrive(nd, alias_only(seq, 7), AT, now=0, token=seq)) == 1
        assert nodes.arrive(nd, alias_only(0, 7), AT, now=0, token=0) == []  # 255 is missing
        released = nodes.arrive(nd, alias_only(255, 7), AT, now=0, token=255)
        assert [t.token for t in released] == [255, 0]
        assert all(t.rebirth == "" for t in released)

    def test_a_birth_takes_the_held_messages_first(self) -> None:
        nodes = Nodes(reorder_timeout=2.0)
        born(nodes)
        nodes.arrive(topic(MessageType.DDATA, DEVICE), alias_only(4, 7), AT, now=0, token="old")
        out = nodes.arrive(topic(MessageType.NBIRTH), nbirth(0, DIA), AT, now=0.5, token="birth")
        assert [t.token for t in out] == ["old", "birth"]
        assert not nodes.holding()

    def test_without_a_timeout_nothing_waits(self) -> None:
        nodes = Nodes(reorder_timeout=0)
        born(nodes)
        (now,) = nodes.arrive(topic(MessageType.DDATA, DEVICE), alias_only(5, 7), AT, now=0)
        assert now.rebirth == "sequence number 5 after 1"

    def test_at_most_hold_limit_messages_wait(self) -> None:
        nodes = Nodes(reorder_timeout=60, hold_limit=3)
        born(nodes)
        dd = topic(MessageType.DDATA, DEVICE)
        for seq in (5, 6, 7):
            assert nodes.arrive(dd, alias_only(seq, 7), AT, now=0, token=seq) == []
        assert [t.token for t in nodes.arrive(dd, alias_only(8, 7), AT, now=0, token=8)] == [5, 6, 7, 8]


class RestoreTests:
    """Issue #19, item 2: what the BIRTHs said survives a listener restart (kept on EdgeNode rows)."""

    def test_alias_only_data_after_a_restart(self) -> None:
        nodes = Nodes(reorder_timeout=2.0)
        nodes.restore(GROUP, NODE, aliases={"": {1: "Node/Uptime"}, DEVICE: {7: DIA.name}},
                      types={DIA.name: int(DataType.Float)}, bdseq=3)  # fmt: skip
        (first,) = nodes.arrive(topic(MessageType.DDATA, DEVICE), alias_only(42, 7), AT, now=0)
        assert (first.rebirth, first.not_born, names(first)) == (
            "",
            False,
            [(DIA.name, 81.0, DataType.Float)],
        )
        (second,) = nodes.arrive(topic(MessageType.DDATA, DEVICE), alias_only(43, 7), AT, now=0)
        assert second.rebirth == ""
        stale = nodes.track(topic(MessageType.NDEATH), Payload(metrics=(bdseq(2),)), AT)
        assert stale.stale_death  # the kept bdSeq still tells a stale will from a real death

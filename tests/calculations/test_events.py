"""Events reach the channel layer (real Redis) after commit, in order, with what a chart draws."""

import asyncio

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from apps.calculations import services
from apps.config.models import Characteristic
from apps.observations import services as obs_services
from apps.observations.models import Sample
from openspc.events import events_unpack
from tests.support.signing import limits_signer


async def _silent(layer, channel, seconds=0.3) -> bool:
    try:
        await asyncio.wait_for(layer.receive(channel), timeout=seconds)
    except TimeoutError:
        return True
    return False


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_samples_violations_and_statistics_are_sent_to_their_groups_after_commit(plant):
    dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
    services.limits_set_historical(
        signer=limits_signer(), characteristic=dia, center=74.0, sigma=0.01, reason="historical"
    )
    ids = plant.record(
        {"item": plant.items[0], "test": plant.dia, "values": [74.001]},
        {"item": plant.items[1], "test": plant.dia, "values": [74.5]},  # beyond UCL 74.03
    )
    obs_services.observations_process(ids=ids)
    outer = transaction.atomic()

    def calculate_uncommitted() -> None:
        outer.__enter__()
        services.characteristic_calculate(characteristic_id=dia.pk)

    async def scenario():
        layer = get_channel_layer()
        chart, lot = await layer.new_channel(), await layer.new_channel()
        await layer.group_add(f"characteristic.{dia.pk}", chart)
        await layer.group_add(f"lot.{plant.lot.pk}", lot)
        # Same thread as the test (thread_sensitive), so the same connection and transaction.
        await sync_to_async(calculate_uncommitted)()
        silent_before_commit = await _silent(layer, chart)
        await sync_to_async(outer.__exit__)(None, None, None)
        chart_message, lot_message = await layer.receive(chart), await layer.receive(lot)
        silent_after = await _silent(layer, chart) and await _silent(layer, lot)
        return silent_before_commit, chart_message, lot_message, silent_after

    silent_before_commit, chart_message, lot_message, silent_after = async_to_sync(scenario)()

    assert silent_before_commit, "an event was sent before the data it describes was committed"
    # One message per group for the whole run, its events in order.
    assert chart_message["type"] == lot_message["type"] == "events.batch"
    assert silent_after, "a group got more than one message for one calculation run"
    messages, lot_messages = events_unpack(chart_message), events_unpack(lot_message)
    # 2 samples, the violations of 74.5 (I chart and MR chart, rule 1), lot and product statistics.
    # Then the two events the violations started (issue #21), each naming its violation's event.
    assert [m["type"] for m in messages] == [
        "sample.created", "sample.created", "violation.created", "violation.created",
        "statistics.updated", "statistics.updated", "violation_event.updated", "violation_event.updated",
    ]  # fmt: skip
    assert {m["id"] for m in messages[6:]} == {m["event"] for m in messages[2:4]}
    # The MR chart's point at sample 2 is the range of samples 1 and 2.
    assert sorted((m["chart"], m["points"], m["ongoing"], m["priority"]) for m in messages[6:]) == [
        ("dispersion", [1, 2], True, "high"),
        ("location", [2], True, "high"),
    ]
    first, second = messages[0], messages[1]
    assert (first["sequence"], second["sequence"]) == (1, 2)
    assert second["statistic"] == 74.5
    assert second["in_control"] is False
    assert second["id"] == Sample.objects.get(characteristic=dia, sequence=2).pk
    assert {(m["rule"], m["chart"]) for m in messages[2:4]} == {(1, "location"), (1, "dispersion")}
    # A chart pulses a violation only while it awaits acknowledgement.
    assert [m["requires_acknowledgement"] for m in messages[2:4]] == [True, True]
    assert [m["scope"] for m in messages[4:6]] == ["lot", "product"]
    assert messages[4]["n"] == 2
    assert all("timestamp" in m for m in messages)
    # lot.<id> gets samples, violations and lot statistics, not product statistics.
    assert [m["type"] for m in lot_messages] == [m["type"] for m in messages[:5] + messages[6:]]


def test_a_group_with_one_event_gets_the_event_itself_and_unpack_reads_both_shapes():
    from openspc.events import event, group_messages

    sample = event("sample.created", ["characteristic.1", "lot.2"], id=1)
    stats = event("statistics.updated", ["characteristic.1"], scope="product")
    messages = group_messages([sample, stats])

    assert messages["lot.2"] == sample[1]
    assert messages["characteristic.1"] == {"type": "events.batch", "events": [sample[1], stats[1]]}
    assert events_unpack(messages["lot.2"]) == [sample[1]]
    assert [m["type"] for m in events_unpack(messages["characteristic.1"])] == [
        "sample.created", "statistics.updated",
    ]  # fmt: skip

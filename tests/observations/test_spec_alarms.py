"""Spec alarms (issue #21): a confirmed value outside the specification limits is an alarm of its
own (`spec.violated`), apart from the control chart's rules: told to subscribers of the "spec"
kind, and marked on the chart whether or not it has control limits."""

import pytest
from django.core.exceptions import ValidationError

from apps.calculations.selectors import chart_data
from apps.calculations.services import characteristic_calculate
from apps.config.models import Characteristic
from apps.config.services import characteristic_update
from apps.observations import services
from apps.observations.models import PlantMessage
from apps.subscriptions.models import Notification
from apps.subscriptions.services import notifications_fanout, subscription_create
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def dia(plant) -> Characteristic:
    characteristic = Characteristic.objects.get(product=plant.product, test=plant.dia)
    return characteristic_update(
        characteristic=characteristic, data={"lsl": 73.9, "usl": 74.1}, reason="spec"
    )


@pytest.fixture
def sent(monkeypatch) -> list[dict]:
    out: list[dict] = []
    monkeypatch.setattr(
        "apps.observations.services.process.events_send_on_commit",
        lambda events: out.extend(message for _, message in events),
    )
    return out


def record(plant, values: list[float]) -> list[int]:
    items = [
        ItemFactory(lot=plant.lot, serial=f"S{n:04d}", plans=[plant.ring], tester=plant.tester)
        for n in range(len(values))
    ]
    ids = plant.record(
        *({"item": i, "test": plant.dia, "values": [v]} for i, v in zip(items, values, strict=True))
    )
    services.observations_process(ids=ids, calculate=False)
    return ids


def test_a_value_outside_the_spec_is_an_alarm_of_its_own(plant, dia, manager, sent):
    ids = record(plant, [74.0, 74.2, 73.95])

    (alarm,) = [m for m in sent if m["type"] == "spec.violated"]
    assert (alarm["id"], alarm["characteristic"], alarm["values"], alarm["outside"]) == (
        ids[1],
        dia.pk,
        [74.2],
        [74.2],
    )
    assert (alarm["lsl"], alarm["usl"], alarm["lot_number"]) == (73.9, 74.1, plant.lot.number)

    subscription_create(user=manager, scope="characteristic", characteristic=dia.pk, events=["spec"])
    notifications_fanout(events=[alarm, alarm])  # a redelivery adds nothing
    (note,) = Notification.objects.filter(user=manager)
    assert note.title.startswith(f"Value out of specification on DIA {plant.dia.name} of RING-74, lot ")
    unit = f" {plant.dia.unit}" if plant.dia.unit else ""
    decimals = plant.dia.decimals
    assert (
        note.message == f"{74.2:.{decimals}f}{unit} is above the USL {74.1:.{decimals}f} (result {ids[1]})."
    )


def test_the_chart_marks_the_point_without_control_limits(plant, dia):
    record(plant, [74.0, 74.2, 73.95])
    characteristic_calculate(characteristic_id=dia.pk)
    data = chart_data(characteristic=Characteristic.objects.select_related("test").get(pk=dia.pk))
    assert data.limits is None
    assert [(p["sequence"], p["out_of_spec"]) for p in data.points] == [(1, False), (2, True), (3, False)]


def test_a_subscriber_to_violations_only_hears_no_spec_alarm(plant, dia, manager, sent):
    record(plant, [74.2])
    subscription_create(user=manager, scope="characteristic", characteristic=dia.pk, events=["violations"])
    notifications_fanout(events=[m for m in sent if m["type"] == "spec.violated"])
    assert not Notification.objects.filter(user=manager).exists()


def test_history_a_source_forwards_raises_no_spec_alarm(plant, dia, sent):
    """Sparkplug store and forward marks what it sends late as historical: not happening now."""
    from apps.observations.choices import ObservationSource
    from apps.observations.services import ObservationEntry, observations_record

    entries = [
        ObservationEntry(lot=plant.lot, test=plant.dia, values=[74.2], idempotency_key=f"h{n}", historical=h)
        for n, h in enumerate([True, False])
    ]
    ids = observations_record(
        entries=entries, source=ObservationSource.MANUAL, user=plant.tester, queue=False
    ).ids
    services.observations_process(ids=ids, calculate=False)
    assert [m["id"] for m in sent if m["type"] == "spec.violated"] == [ids[1]]


def test_a_value_inside_the_warning_band_is_a_spec_warning_told_to_spec_subscribers(
    plant, dia, manager, sent
):
    characteristic_update(characteristic=dia, data={"spec_warning_margin": 0.02}, reason="warning band")
    # 74.2 is out of spec (a violation, not a warning); 74.07 is 0.03 from the USL: outside the band.
    ids = record(plant, [74.0, 74.09, 74.2, 73.91, 74.07])

    warnings = [m for m in sent if m["type"] == "spec.warning"]
    assert (
        [(w["id"], w["near"], w["margin"]) for w in warnings]
        == [
            (ids[1], [74.09], 0.02),
            (ids[3], [73.91], 0.02),
        ]
    )  # fmt: skip
    assert [m["id"] for m in sent if m["type"] == "spec.violated"] == [ids[2]]
    assert sorted(PlantMessage.objects.values_list("event", flat=True)) == [
        "spec.violated", "spec.warning", "spec.warning",
    ]  # fmt: skip

    subscription_create(user=manager, scope="characteristic", characteristic=dia.pk, events=["spec"])
    notifications_fanout(events=warnings[:1])
    (note,) = Notification.objects.filter(user=manager)
    assert note.title == f"Value near a spec limit on DIA {plant.dia.name} of RING-74, lot {plant.lot.number}"
    assert (
        note.message == f"74.090 is within 0.020 of a spec limit (LSL 73.900, USL 74.100; result {ids[1]})."
    )


def test_a_warning_band_needs_a_spec_limit_and_fits_inside_the_tolerance(plant, dia):
    with pytest.raises(ValidationError) as wide:
        characteristic_update(characteristic=dia, data={"spec_warning_margin": 0.1}, reason="too wide")
    assert "narrower than half the tolerance" in str(wide.value)
    with pytest.raises(ValidationError) as none:
        characteristic_update(
            characteristic=dia, data={"lsl": None, "usl": None, "spec_warning_margin": 0.01}, reason="no spec"
        )
    assert "needs a spec limit" in str(none.value)
    dia.refresh_from_db()
    assert dia.spec_warning_margin is None

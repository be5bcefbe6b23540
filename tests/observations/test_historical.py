"""Historical values (Sparkplug store and forward) placed by the time they were measured
(apps/observations/subgroups.py, docs/adr/0016): one measured before the chart's last point is
kept apart, on no sample; a batch of them is charted in time order. Ordinary values keep arrival
order, whatever their time.

Values are recorded as a device would, one per observation, and processed by
observations_process; the chart has historical limits 10 ± 3 · 1, so a value of 30 is a rule 1
violation wherever it is charted.
"""

import datetime
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from django.utils import timezone

from apps.calculations import services
from apps.calculations.models import ChartState, Violation
from apps.config.models import Characteristic, PlanAssignment
from apps.mqtt_bridge.readings import Reading
from apps.mqtt_bridge.selectors import Fed
from apps.mqtt_bridge.services import Stored, bridge_device, bridge_store
from apps.observations import services as obs_services
from apps.observations.checksum import checksum_of
from apps.observations.choices import ObservationStatus
from apps.observations.models import Observation
from tests.support.lines import Stream
from tests.support.signing import limits_signer

pytestmark = pytest.mark.django_db

MINUTE = datetime.timedelta(minutes=1)


def _stream() -> Stream:
    stream = Stream(size=1, lots="A")
    # Assigned since yesterday: a value measured an hour ago is in its plan.
    PlanAssignment.objects.filter(product=stream.product).update(
        effective_from=timezone.now() - datetime.timedelta(days=1)
    )
    services.limits_set_historical(
        signer=limits_signer(), characteristic=stream.characteristic, center=10.0, sigma=1.0, reason="r"
    )
    return stream


def _send(
    stream: Stream, *values: tuple[float, datetime.datetime], historical: bool | Sequence[bool] = False
) -> list[int]:
    """Record (value, observed_at) pairs in one batch, in the order given, and process them."""
    flags = [historical] * len(values) if isinstance(historical, bool) else list(historical)
    entries = [
        obs_services.ObservationEntry(
            lot=stream.lots["A"], test=stream.test, values=[value], observed_at=at,
            idempotency_key=uuid.uuid4().hex, historical=flag,
        )
        for (value, at), flag in zip(values, flags, strict=True)
    ]  # fmt: skip
    ids = obs_services.observations_record(
        entries=entries, source="device", user=stream.user, queue=False
    ).ids
    obs_services.observations_process(ids=ids)
    return ids


def _charted(stream: Stream) -> list[tuple[int, list[float], list[int]]]:
    return [(s.sequence, s.values, s.observation_ids) for s in stream.samples()]


def _five_charted(stream: Stream, now: datetime.datetime) -> list[int]:
    """Five ordinary values measured 5 to 1 minutes ago; the last point is 1 minute ago."""
    return _send(stream, *[(10.0 + k / 10, now - (5 - k) * MINUTE) for k in range(5)])


class LateTests:
    def test_a_value_measured_before_the_last_point_stays_confirmed_on_no_sample(self):
        stream = _stream()
        now = timezone.now()
        _five_charted(stream, now)
        stream.calculate()
        before = _charted(stream)
        state = ChartState.objects.get(pk=stream.characteristic.pk)
        assert (len(before), state.last_sequence) == (5, 5)

        (late,) = _send(stream, (30.0, now - 60 * MINUTE), historical=True)
        stream.calculate()

        row = Observation.objects.get(pk=late)
        assert (row.status, row.historical, row.late, row.sample_id) == (
            ObservationStatus.CONFIRMED, True, True, None,
        )  # fmt: skip
        assert row.position == 6  # numbered and hashed like any confirmed value
        assert _charted(stream) == before
        assert ChartState.objects.get(pk=stream.characteristic.pk).last_sequence == 5
        assert not Violation.objects.filter(characteristic=stream.characteristic).exists()
        # In the lot's statistics and checksum, as a discarded subgroup's values are.
        rows = Observation.objects.filter(lot=stream.lots["A"]).order_by("position")
        assert (stream.lot("A").n, stream.lot("A").checksum) == (6, checksum_of(r.hash for r in rows))
        assert stream.lot("A").maximum == 30.0

    def test_one_measured_at_or_after_the_last_point_is_charted(self):
        stream = _stream()
        now = timezone.now()
        ids = _five_charted(stream, now)
        last_at = Observation.objects.get(pk=ids[-1]).observed_at
        same, after = _send(stream, (10.7, last_at), (30.0, now), historical=True)
        stream.calculate()
        assert _charted(stream)[5:] == [(6, [10.7], [same]), (7, [30.0], [after])]
        assert (
            list(Observation.objects.filter(pk__in=[same, after]).values_list("late", flat=True))
            == [False] * 2
        )
        assert Violation.objects.filter(characteristic=stream.characteristic, sample__sequence=7).exists()

    def test_the_last_point_charted_earlier_in_the_same_batch_counts(self):
        stream = _stream()
        now = timezone.now()
        _five_charted(stream, now)  # the last point stored: 1 minute ago
        ordinary, historical = _send(
            stream, (10.2, now), (30.0, now - 0.5 * MINUTE), historical=[False, True]
        )
        assert _charted(stream)[5:] == [(6, [10.2], [ordinary])]
        assert Observation.objects.get(pk=historical).late is True

    def test_a_chart_without_points_takes_a_historical_value(self):
        stream = _stream()
        (pk,) = _send(stream, (10.0, timezone.now() - 60 * MINUTE), historical=True)
        assert _charted(stream) == [(1, [10.0], [pk])]


class TimeOrderTests:
    def test_historical_values_of_one_batch_are_charted_in_the_order_measured(self):
        stream = _stream()
        now = timezone.now()
        _five_charted(stream, now)
        newest, middle, oldest = _send(
            stream, (10.3, now - 0.25 * MINUTE), (10.2, now - 0.5 * MINUTE), (10.1, now - 0.75 * MINUTE),
            historical=True,
        )  # fmt: skip
        assert _charted(stream)[5:] == [(6, [10.1], [oldest]), (7, [10.2], [middle]), (8, [10.3], [newest])]
        positions = dict(
            Observation.objects.filter(pk__in=[newest, middle, oldest]).values_list("pk", "position")
        )
        assert [positions[pk] for pk in (oldest, middle, newest)] == [6, 7, 8]

    def test_a_flush_that_straddles_the_last_point_charts_only_what_follows_it(self):
        stream = _stream()
        now = timezone.now()
        _five_charted(stream, now)  # the last point: 1 minute ago
        after, before = _send(stream, (10.4, now), (30.0, now - 2 * MINUTE), historical=True)
        assert _charted(stream)[5:] == [(6, [10.4], [after])]
        late = dict(Observation.objects.filter(pk__in=[after, before]).values_list("pk", "late"))
        assert late == {after: False, before: True}

    def test_ordinary_values_keep_arrival_order_whatever_their_time(self):
        stream = _stream()
        now = timezone.now()
        _five_charted(stream, now)
        ids = _send(stream, (10.3, now - 20 * MINUTE), (10.2, now - 40 * MINUTE), (10.1, now - 60 * MINUTE))
        assert _charted(stream)[5:] == [(6, [10.3], ids[:1]), (7, [10.2], ids[1:2]), (8, [10.1], ids[2:])]
        rows = Observation.objects.filter(pk__in=ids).order_by("pk")
        assert [(r.historical, r.late, r.position) for r in rows] == [(False, False, 6), (False, False, 7),
                                                                      (False, False, 8)]  # fmt: skip

    def test_ordinary_values_keep_their_places_among_historical_ones(self):
        stream = _stream()
        now = timezone.now()
        _five_charted(stream, now)
        ids = _send(
            stream, (10.3, now - 0.3 * MINUTE), (10.9, now - 0.1 * MINUTE), (10.2, now - 0.6 * MINUTE),
            historical=[True, False, True],
        )  # fmt: skip
        # The ordinary value stays second; after it (the newest point) the later historical value is late.
        assert _charted(stream)[5:] == [(6, [10.2], ids[2:]), (7, [10.9], ids[1:2])]
        assert Observation.objects.get(pk=ids[0]).late is True


class BridgeTests:
    def test_a_historical_reading_is_stored_historical(self, plant: Any):
        dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
        fed = Fed(dia.pk, plant.product.pk, plant.dia.pk, "spBv1.0/plant/DDATA/line1/gauge")
        at = timezone.now() - 60 * MINUTE
        readings = [
            Reading(fed, fed.tag, b"x", [74.01], at, f"k:{n}", historical=historical)
            for n, historical in enumerate((True, False))
        ]
        device = bridge_device(name="mqtt-bridge")
        assert bridge_store(readings=readings, device=device, listener="test") == Stored(observations=2)
        stored = Observation.objects.filter(lot=plant.lot).order_by("pk").values_list("historical", flat=True)
        assert list(stored) == [True, False]

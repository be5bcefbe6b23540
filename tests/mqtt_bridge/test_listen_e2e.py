"""`manage.py mqtt_listen` end to end: a real broker (Mosquitto in CI, the embedded broker
elsewhere), the listener process, a real Celery worker, the test database.

* JSON values on a characteristic's topic become confirmed observations; five messages form
  one subgroup of five; the shifted subgroup's violation is published back on
  spc/violations/<site>/<area>/<line>/<cell>/<product>-<test> and a test subscriber gets it.
* Sparkplug B built by pysparkplug (not our code): metrics named by alias after the BIRTH are
  stored under the right characteristic; a sequence gap makes the listener publish an NCMD
  `Node Control/Rebirth`; NDEATH marks the node offline.
* 1,000 malformed messages mixed into valid traffic: the listener stays up, every valid value is
  stored once, every bad message is accounted for (dead letter or rejected observation).
* SIGTERM: the listener stores what it holds, disconnects and exits 0.
"""

import json
import time
import uuid
from typing import Any

import numpy as np
import pysparkplug as psp
import pytest

from apps.calculations import services as calculations
from apps.calculations.models import Violation
from apps.config.choices import DataSource
from apps.config.models import Characteristic
from apps.mqtt_bridge.models import DeadLetter, DeadLetterReason, EdgeNode
from apps.mqtt_bridge.sparkplug import REBIRTH_METRIC, payload_decode
from apps.observations.choices import ObservationSource, ObservationStatus
from apps.observations.models import Observation, Sample
from tests.support.mqtt import Client, ListenerProcess, fed_by, wait_until
from tests.support.signing import limits_signer
from tests.support.workers import CeleryWorkers, pipeline_idle

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

CENTER, SIGMA = 74.0, 0.01


def live_stats(client: Client) -> list[Any]:
    """Statistics published during the test (a retained one from an earlier run arrives flagged)."""
    return [m for m in client.messages("spc/stats/") if not m.retain and m.payload]


def confirmed(characteristic: Characteristic) -> list[list[float]]:
    rows = Observation.objects.filter(characteristic=characteristic, status=ObservationStatus.CONFIRMED)
    return [row.values for row in rows.order_by("position")]


@pytest.mark.timeout(180)
def test_json_values_form_subgroups_and_the_violation_comes_back_over_mqtt(
    plant, quality_specialist, tmp_path
):
    topic = f"test/{uuid.uuid4().hex[:8]}/line1/cell1/ring-diameter"
    dia = fed_by(plant, source=DataSource.TAG, tag=topic, subgroup_size=5)
    calculations.limits_set_historical(
        signer=limits_signer(),
        characteristic=dia,
        center=CENTER,
        sigma=SIGMA,
        reason="historical",
        user=quality_specialist,
    )
    rng = np.random.default_rng(7)
    calm = [round(CENTER + SIGMA * float(z), 4) for z in np.clip(rng.standard_normal(5), -1, 1)]
    shifted = [round(CENTER + 5 * SIGMA + SIGMA * 0.1 * k, 4) for k in range(5)]  # X̄ beyond the UCL
    values = calm + shifted
    messages = [
        (topic, json.dumps({"value": v, "id": f"m{k}", "ts": f"2026-11-24T10:00:{k:02d}Z"}))
        for k, v in enumerate(values)
    ]
    plant_side = Client(subscribe=["spc/violations/#", "spc/stats/#"])
    try:
        with (
            CeleryWorkers(count=1, log_dir=tmp_path) as workers,
            ListenerProcess(log_dir=tmp_path, MQTT_PUBLISH_STATISTICS="1") as listener,
        ):
            assert (
                "characteristics loaded: 1 fed by MQTT (1 JSON topics, 0 Sparkplug B metrics)"
                in listener.log_text()
            )
            Client().publish_all(messages)
            flagged = lambda: Violation.objects.filter(characteristic=dia).exists() and pipeline_idle()  # noqa: E731
            workers.wait_for(flagged, timeout=60, what="the violation")
            wait_until(
                lambda: plant_side.messages("spc/violations/"), timeout=15, what="the violation over MQTT"
            )
            wait_until(lambda: any(json.loads(m.payload)["n"] == 10 for m in live_stats(plant_side)),
                       timeout=15, what="the statistics of all ten values over MQTT")  # fmt: skip
            assert listener.stop() == 0
        assert "stopped" in listener.log_text()
    finally:
        for topic in {m.topic for m in plant_side.messages("spc/stats/")}:  # leave no retained state behind
            plant_side.publish(topic, b"", qos=1, retain=True)
        plant_side.close()

    assert confirmed(dia) == [[v] for v in values]
    rows = Observation.objects.filter(characteristic=dia)
    assert {(row.source, row.user.username) for row in rows} == {
        (ObservationSource.MQTT, "device:mqtt-bridge")
    }
    assert [row.observed_at.second for row in rows.order_by("position")] == list(range(10))
    samples = list(Sample.objects.filter(characteristic=dia).order_by("sequence"))
    assert [(s.sequence, s.n, s.values, s.undersized) for s in samples] == [
        (1, 5, calm, False), (2, 5, shifted, False),
    ]  # fmt: skip
    violation = Violation.objects.get(characteristic=dia, rule=1, chart="location")
    assert violation.sample_id == samples[1].pk

    stats = [m for m in live_stats(plant_side) if json.loads(m.payload)["n"] == 10][-1]
    assert stats.topic == f"spc/stats/Plant 1/Machining/Line 1/Cell 1/{plant.product.code}-{plant.dia.code}"
    assert json.loads(stats.payload)["mean"] == pytest.approx(sum(values) / 10)
    (message,) = [m for m in plant_side.messages("spc/violations/") if json.loads(m.payload)["rule"] == 1]
    assert (
        message.topic
        == f"spc/violations/Plant 1/Machining/Line 1/Cell 1/{plant.product.code}-{plant.dia.code}"
    )
    assert message.qos == 1
    body = json.loads(message.payload)
    assert (body["id"], body["sample"], body["characteristic"]) == (violation.pk, samples[1].pk, dia.pk)
    assert (body["values"], body["severity"], body["lot_number"]) == (shifted, "critical", plant.lot.number)


def _metric(name: str | None, value: float, *, alias: int, datatype=psp.DataType.DOUBLE) -> psp.Metric:
    return psp.Metric(
        timestamp=int(time.time() * 1000), name=name, datatype=datatype, value=value, alias=alias
    )


@pytest.mark.timeout(180)
def test_sparkplug_b_from_another_library_aliases_gap_rebirth_and_death(plant, tmp_path):
    group, node, device = f"G{uuid.uuid4().hex[:6]}", "Line1", "Gauge3"
    metric_name = f"Cell1/RingDiameter-{uuid.uuid4().hex[:4]}"
    dia = fed_by(plant, source=DataSource.SPARKPLUG, tag=metric_name)
    now = lambda: int(time.time() * 1000)  # noqa: E731
    base = f"spBv1.0/{group}"
    nbirth = psp.NBirth(timestamp=now(), seq=0, metrics=(
        _metric("bdSeq", 3, alias=0, datatype=psp.DataType.INT64),
        psp.Metric(timestamp=now(), name=REBIRTH_METRIC, datatype=psp.DataType.BOOLEAN, value=False),
    ))  # fmt: skip
    dbirth = psp.DBirth(timestamp=now(), seq=1, metrics=(
        _metric(metric_name, 74.001, alias=7), _metric("Uncharted/Temperature", 21.5, alias=8),
    ))  # fmt: skip

    def ddata(seq: int, value: float) -> bytes:
        return psp.DData(timestamp=now(), seq=seq, metrics=(_metric(None, value, alias=7),)).encode()

    scada = Client(subscribe=[f"{base}/NCMD/#"])
    try:
        with (
            CeleryWorkers(count=1, log_dir=tmp_path) as workers,
            ListenerProcess(log_dir=tmp_path) as listener,
        ):
            edge = Client()
            edge.publish_all([
                (f"{base}/NBIRTH/{node}", nbirth.encode()),
                (f"{base}/DBIRTH/{node}/{device}", dbirth.encode()),
                (f"{base}/DDATA/{node}/{device}", ddata(2, 74.002)),
                (f"{base}/DDATA/{node}/{device}", ddata(3, 74.003)),
            ])  # fmt: skip
            workers.wait_for(lambda: len(confirmed(dia)) == 2, timeout=30, what="two confirmed values")
            assert scada.messages() == [], "no rebirth is asked while the sequence is intact"
            edge.publish_all([(f"{base}/DDATA/{node}/{device}", ddata(9, 74.009))])  # 4–8 lost: a gap
            wait_until(lambda: scada.messages(), timeout=15, what="the rebirth request")
            workers.wait_for(
                lambda: len(confirmed(dia)) == 3 and pipeline_idle(), timeout=30, what="the third value"
            )
            edge.publish_all([(f"{base}/NDEATH/{node}", psp.NDeath(timestamp=now(), bd_seq_metric=_metric(
                "bdSeq", 3, alias=0, datatype=psp.DataType.INT64)).encode())])  # fmt: skip
            wait_until(lambda: not EdgeNode.objects.get(group=group, node=node, device="").online,
                       timeout=15, what="the node marked offline")  # fmt: skip
            edge.close()
            assert "sequence number 9 after 3" in listener.log_text()
    finally:
        scada.close()

    assert confirmed(dia) == [[74.002], [74.003], [74.009]]  # BIRTH values are state, not measurements
    (request,) = scada.messages()
    assert request.topic == f"{base}/NCMD/{node}"
    (rebirth,) = payload_decode(request.payload).metrics
    assert (rebirth.name, rebirth.value) == (REBIRTH_METRIC, True)
    decoded_by_them = psp.NCmd.decode(request.payload)
    assert [(m.name, m.value) for m in decoded_by_them.metrics] == [(REBIRTH_METRIC, True)]
    nodes = {(n.node, n.device): n for n in EdgeNode.objects.filter(group=group)}
    assert set(nodes) == {(node, ""), (node, device)}
    assert not nodes[node, ""].online
    assert not nodes[node, device].online  # the node's death takes its devices with it
    assert nodes[node, device].metrics == [metric_name, "Uncharted/Temperature"]
    assert not DeadLetter.objects.exists()


@pytest.mark.timeout(240)
def test_a_thousand_malformed_messages_among_valid_ones(plant, tmp_path):
    topic = f"test/{uuid.uuid4().hex[:8]}/dia"
    dia = fed_by(plant, source=DataSource.TAG, tag=topic)
    rng = np.random.default_rng(11)
    valid, bad = [], []
    for k in range(500):
        valid.append(
            (topic, json.dumps({"value": round(74 + float(rng.normal(0, 0.01)), 4), "id": f"ok-{k}"}))
        )
    kinds = [
        lambda k: (topic, f"not json {k}"),
        lambda k: (topic, json.dumps({"val": k})),  # no value
        lambda k: (topic, json.dumps({"value": None, "id": k})),
        lambda k: (topic, json.dumps({"value": 1, "ts": f"yesterday {k}"})),
        lambda k: (topic, json.dumps({"values": [], "id": k})),
        lambda k: (topic, '{"value": NaN, "id": "nan-' + str(k) + '"}'),  # stored, then rejected: not finite
        lambda k: (topic, json.dumps({"value": f"abc{k}", "id": f"text-{k}"})),  # stored, then rejected
        lambda k: (topic, bytes([0xFF, 0xFE, k % 256])),
    ]
    bad = [kinds[k % len(kinds)](k) for k in range(1000)]
    mixed = valid + bad
    order = rng.permutation(len(mixed))
    with CeleryWorkers(count=1, log_dir=tmp_path) as workers, ListenerProcess(log_dir=tmp_path) as listener:
        Client(url=listener.url).publish_all([mixed[i] for i in order], rate=500)  # a busy line
        workers.wait_for(
            lambda: Observation.objects.filter(characteristic=dia).count() == 500 and pipeline_idle()
            and Observation.objects.count() == 500 + 250,
            timeout=120, what="every message stored and decided",
        )  # fmt: skip
        assert listener.alive()
        time.sleep(1)  # anything more would arrive now
        assert listener.stop() == 0

    stored = Observation.objects.filter(lot=plant.lot)
    assert sorted(
        json.dumps(row.values[0]) for row in stored.filter(status=ObservationStatus.CONFIRMED)
    ) == sorted(json.dumps(json.loads(payload)["value"]) for _, payload in valid)
    rejected = stored.filter(status=ObservationStatus.REJECTED)
    assert rejected.count() == 250  # NaN and text: 125 each
    assert {reason["code"] for row in rejected for reason in row.reasons} == {"not_a_number"}
    dead = DeadLetter.objects.all()
    by_reason = {
        reason: sum(d.count for d in dead if d.reason == reason) for reason in DeadLetterReason.values
    }
    assert by_reason == {
        DeadLetterReason.NOT_JSON: 250, DeadLetterReason.BAD_SHAPE: 500, DeadLetterReason.UNKNOWN_TOPIC: 0,
        DeadLetterReason.NOT_SPARKPLUG: 0, DeadLetterReason.UNKNOWN_ALIAS: 0, DeadLetterReason.NO_LOT: 0,
        DeadLetterReason.UNKNOWN_LOT: 0, DeadLetterReason.FAILED: 0, DeadLetterReason.TOO_LARGE: 0,
        DeadLetterReason.NOT_BORN: 0, DeadLetterReason.BAD_BIRTH: 0, DeadLetterReason.BAD_METRIC: 0,
    }  # fmt: skip
    assert sum(by_reason.values()) + rejected.count() == 1000
    log = listener.log_text()
    assert log.count(f"bad message on {topic}") == 1, "logged once per topic per interval"

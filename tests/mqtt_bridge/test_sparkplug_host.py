"""`manage.py mqtt_listen` as a Sparkplug B 3.0 primary host application, on the real broker (issue #19):

* its STATE on spBv1.0/STATE/<host id>, retained: online once connected, offline by its will after a
  kill -9, online again (a newer timestamp) on restart, offline when it stops; an offline STATE
  read while it is connected is answered with online;
* what the BIRTHs said survives the restart: alias-only data right after it is stored, without a
  rebirth request or a dead letter.
"""

import json
import time
import uuid

import pytest

from apps.config.choices import DataSource
from apps.mqtt_bridge.models import DeadLetter, EdgeNode
from apps.mqtt_bridge.sparkplug import BDSEQ_METRIC, REBIRTH_METRIC, DataType, Metric, Payload, payload_encode
from apps.observations.models import Observation
from tests.support.mqtt import Client, ListenerProcess, fed_by, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _states(client: Client, topic: str) -> list[dict[str, object]]:
    return [json.loads(m.payload) for m in client.messages(topic) if m.payload]


@pytest.mark.timeout(120)
def test_state_birth_will_restart_and_aliases_kept(plant, tmp_path):
    host = f"test-host-{uuid.uuid4().hex[:8]}"
    state_topic = f"spBv1.0/STATE/{host}"
    group, node, device = f"G{uuid.uuid4().hex[:6]}", "Line1", "Gauge3"
    metric_name = f"Cell1/Bore-{uuid.uuid4().hex[:4]}"
    fed_by(plant, source=DataSource.SPARKPLUG, tag=metric_name)
    base = f"spBv1.0/{group}"
    now = lambda: int(time.time() * 1000)  # noqa: E731

    def ddata(seq: int, value: float) -> bytes:
        metric = Metric(alias=7, timestamp=now(), datatype=DataType.Double, value=value)
        return payload_encode(Payload(timestamp=now(), seq=seq, metrics=(metric,)))

    def stored() -> list[float]:
        rows = Observation.objects.filter(lot__product=plant.product, test=plant.dia).order_by("id")
        return [row.values[0] for row in rows]

    witness = Client(subscribe=[state_topic, f"{base}/NCMD/#"])
    edge = Client()
    listener = ListenerProcess(log_dir=tmp_path, MQTT_SPARKPLUG_HOST_ID=host)
    try:
        listener.start()
        wait_until(lambda: _states(witness, state_topic), timeout=10, what="the STATE birth")
        (online,) = _states(witness, state_topic)
        assert online["online"] is True
        assert isinstance(online["timestamp"], int)
        assert abs(online["timestamp"] - now()) < 60_000
        assert witness.messages(state_topic)[0].retain is False  # live; a new subscriber gets it retained

        birth = Payload(timestamp=now(), seq=0, metrics=(
            Metric(name=BDSEQ_METRIC, datatype=DataType.Int64, value=4),
            Metric(name=REBIRTH_METRIC, datatype=DataType.Boolean, value=False),
        ))  # fmt: skip
        dbirth = Payload(timestamp=now(), seq=1, metrics=(
            Metric(name=metric_name, alias=7, datatype=DataType.Double, value=70.0),
        ))  # fmt: skip
        edge.publish_all([
            (f"{base}/NBIRTH/{node}", payload_encode(birth)),
            (f"{base}/DBIRTH/{node}/{device}", payload_encode(dbirth)),
            (f"{base}/DDATA/{node}/{device}", ddata(2, 70.25)),
        ])  # fmt: skip
        wait_until(lambda: stored() == [70.25], timeout=15, what="the first value stored")

        listener.kill()  # no word: the broker sends the will
        wait_until(lambda: len(_states(witness, state_topic)) == 2, timeout=60, what="the will")
        offline = _states(witness, state_topic)[1]
        assert offline == {"online": False, "timestamp": online["timestamp"]}

        listener.start()
        wait_until(lambda: len(_states(witness, state_topic)) >= 3, timeout=10, what="STATE online again")
        time.sleep(1)  # the earlier connection's will, read back by the new one, is not answered
        assert len(_states(witness, state_topic)) == 3
        again = _states(witness, state_topic)[2]
        assert again["online"] is True
        assert isinstance(again["timestamp"], int)
        assert again["timestamp"] > online["timestamp"]
        # The restarted listener knows alias 7 from the rows: no rebirth, no dead letter.
        edge.publish_all([(f"{base}/DDATA/{node}/{device}", ddata(3, 70.5))])
        wait_until(lambda: stored() == [70.25, 70.5], timeout=15, what="alias-only data after the restart")
        assert witness.messages(f"{base}/NCMD") == []
        assert not DeadLetter.objects.filter(topic__startswith=base).exists()

        # Someone (another host with our id, a hand on the broker) says we are offline: online again.
        edge.publish(state_topic, json.dumps({"online": False, "timestamp": again["timestamp"]}), retain=True)
        wait_until(lambda: len(_states(witness, state_topic)) >= 5, timeout=10, what="online said again")
        stamp = again["timestamp"]
        assert _states(witness, state_topic)[3:] == [
            {"online": False, "timestamp": stamp}, {"online": True, "timestamp": stamp},
        ]  # fmt: skip

        assert listener.stop() == 0
        wait_until(lambda: len(_states(witness, state_topic)) >= 6, timeout=10, what="offline on stop")
        assert _states(witness, state_topic)[5] == {"online": False, "timestamp": again["timestamp"]}
        assert EdgeNode.objects.get(group=group, node=node, device="").bdseq == 4
    finally:
        listener.stop()
        edge.publish(state_topic, b"", retain=True)  # leave no retained STATE behind
        edge.close()
        witness.close()

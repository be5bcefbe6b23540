"""The listener as Sparkplug B 3.0 primary host application, against an edge node built on another library
(mqtt-spb-wrapper and its Eclipse Tahu payloads: tests/mqtt_bridge/sparkplug_node/edge_node.py, run in
.venv-spb-node), with the real broker, the real `manage.py mqtt_listen`, a Celery worker and the test
database.

The node starts first and publishes nothing until the listener's STATE reads online; it births, sends a
burst by alias (its sequence number wraps 255 → 0) and answers a rebirth request. The listener is killed
(-9): the broker publishes its will, STATE offline, retained; the node ends its session and keeps what it
measures. The listener comes back: STATE online, a newer timestamp; the node births again and sends what
it kept as historical metrics (newest first: the specification orders only live metrics), then live
ones. Every value the node sent is stored once, measured when the node says, and charted in the order
measured.
"""

import itertools
import json
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from apps.config.choices import DataSource
from apps.mqtt_bridge.models import DeadLetter, EdgeNode
from apps.mqtt_bridge.readings import epoch_ms
from apps.mqtt_bridge.sparkplug import BDSEQ_METRIC, REBIRTH_METRIC, payload_decode, rebirth_request
from apps.observations.choices import ObservationStatus
from apps.observations.models import Observation, Sample
from tests.support.mqtt import Client, ListenerProcess, fed_by, wait_until
from tests.support.workers import BASE_DIR, CeleryWorkers, pipeline_idle

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

NODE_PYTHON = BASE_DIR / ".venv-spb-node" / "bin" / "python"
NODE_SCRIPT = Path(__file__).parent / "sparkplug_node" / "edge_node.py"
TEMPERATURE = "Cell1/Temperature"  # the node's metric that no characteristic charts
BURST = 300  # live values 10 ms apart once born: the sequence number wraps
INTERVAL = 0.5  # seconds between values after the burst: the listener is killed in such a pause
KEPT = 4  # values the node keeps while the listener is dead, at least


def now_ms() -> int:
    return int(time.time() * 1000)


class EdgeNodeProcess:
    """The edge node in its own virtualenv, and the JSON lines it writes of what it did and sent."""

    def __init__(self, *, log_dir: Path, url: str, group: str, node: str, host_id: str, metric: str) -> None:
        self.log = log_dir / "edge-node.jsonl"
        self.output = log_dir / "edge-node.out"
        self.args = [
            "--url", url, "--group", group, "--node", node, "--host-id", host_id, "--metric", metric,
            "--log", str(self.log), "--burst", str(BURST), "--burst-interval", "0.01",
            "--interval", str(INTERVAL), "--flush", "newest-first",
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert NODE_PYTHON.exists(), f"{NODE_PYTHON} is missing: `make test-deps` builds it"
        with self.output.open("ab") as out:
            self.process = subprocess.Popen(
                [str(NODE_PYTHON), str(NODE_SCRIPT), *self.args], stdout=out, stderr=subprocess.STDOUT
            )
        wait_until(lambda: self.entries("subscribed") or not self.alive(), timeout=15,
                   what="the edge node to subscribe")  # fmt: skip
        assert self.alive(), self.output.read_text()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int | None:
        if not self.alive():
            return self.process.returncode if self.process else None
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("the edge node did not stop on SIGTERM") from None

    def entries(self, event: str | None = None) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        lines = self.log.read_text().splitlines()
        # The last line may be half written while the node runs.
        rows = [json.loads(line) for line in lines if line.endswith("}")]
        return [row for row in rows if event is None or row["event"] == event]

    def values(self, metric: str) -> list[dict[str, Any]]:
        return [row for row in self.entries("value") if row["metric"] == metric]


def stored(test: Any, value: float) -> bool:
    """The value is stored (confirmed or not yet: `characteristic` is set on confirmation)."""
    return Observation.objects.filter(test=test, values=[value]).exists()


def retained(topic: str) -> Any:
    """The retained message on `topic`, as a new subscriber gets it (None: nothing retained)."""
    reader = Client(subscribe=[topic])
    try:
        wait_until(lambda: bool(reader.messages(topic)), timeout=2, what="the retained message")
    except AssertionError:
        return None
    finally:
        reader.close()
    (message,) = reader.messages(topic)
    assert message.retain
    return json.loads(message.payload)


@pytest.mark.timeout(240)
def test_an_edge_node_of_another_library_waits_for_our_state_and_forwards_what_it_kept(plant, tmp_path):
    run = uuid.uuid4().hex[:8]
    host_id, group, node, metric = f"openspc-test-{run}", f"G{run}", "Line1", f"Cell1/RingDiameter-{run}"
    dia = fed_by(plant, source=DataSource.SPARKPLUG, tag=metric)
    state_topic, base = f"spBv1.0/STATE/{host_id}", f"spBv1.0/{group}"
    witness = Client(subscribe=[state_topic, f"{base}/#"])  # sees every message, in the broker's order
    commands = Client()
    edge = EdgeNodeProcess(log_dir=tmp_path, url=settings.MQTT_URL, group=group, node=node,
                           host_id=host_id, metric=metric)  # fmt: skip
    listener = ListenerProcess(log_dir=tmp_path, MQTT_SPARKPLUG_HOST_ID=host_id)
    try:
        with CeleryWorkers(count=1, log_dir=tmp_path) as workers:
            edge.start()
            time.sleep(2)  # measuring, not publishing: no primary host yet
            assert witness.messages(base) == [], "the node published before the host's STATE was online"
            assert edge.entries("kept"), "the node measures while it waits"

            listener.start()
            wait_until(lambda: edge.entries("birth"), timeout=15, what="the node's NBIRTH after STATE online")
            wait_until(lambda: len([v for v in edge.values(metric) if not v["historical"]]) > BURST,
                       timeout=30, what="the burst")  # fmt: skip
            asked_at = now_ms()
            commands.publish(f"{base}/NCMD/{node}", rebirth_request(timestamp=asked_at), qos=0)
            wait_until(lambda: _rebirths_since(edge, asked_at), timeout=10, what="the rebirth")

            def pause_after_a_stored_value() -> bool:
                live = [v for v in edge.values(metric) if not v["historical"]]
                return (
                    bool(live)
                    and now_ms() - live[-1]["sent_at"] < 250
                    and stored(plant.dia, live[-1]["value"])
                )

            wait_until(
                pause_after_a_stored_value, timeout=10, what="a pause after a stored value", interval=0.02
            )
            kill_started = now_ms()
            listener.kill()
            wait_until(lambda: any(not s["online"] for s in edge.entries("state")), timeout=10,
                       what="the node to see the host offline")  # fmt: skip
            will = retained(state_topic)
            wait_until(lambda: len(_kept_while_away(edge.entries(), metric)) >= KEPT, timeout=15,
                       what="values kept while the host is away")  # fmt: skip
            assert _state_births(edge) == 1, "the node births only for a host that is online"

            listener.start()
            wait_until(lambda: _state_births(edge) == 2, timeout=15, what="the birth after the outage")
            wait_until(lambda: len(_live_after_last_birth(edge, metric)) >= 3, timeout=15,
                       what="live values after the outage")  # fmt: skip
            assert edge.stop() == 0
            sent = edge.values(metric)
            at_risk = {  # sent live after the kill, before the node saw the will: QoS 0, no host to take it
                v["value"] for v in sent
                if not v["historical"] and kill_started <= v["sent_at"] <= _offline_seen_at(edge)
            }  # fmt: skip
            required = {v["value"] for v in sent} - at_risk
            workers.wait_for(
                lambda: required <= set(_stored_values(plant.dia)) and pipeline_idle(),
                timeout=60, what="every value the node sent stored and charted",
            )  # fmt: skip
            wait_until(lambda: not EdgeNode.objects.get(group=group, node=node, device="").online,
                       timeout=15, what="the node marked offline")  # fmt: skip
            time.sleep(1)  # a duplicate would arrive now
            assert listener.stop() == 0
    finally:
        edge.stop()
        listener.stop()
        commands.publish(state_topic, b"", qos=1, retain=True)  # leave no retained STATE behind
        commands.close()
        witness.close()

    log = edge.entries()
    messages = witness.messages()
    states = [
        (i, json.loads(m.payload)) for i, m in enumerate(messages) if m.topic == state_topic and m.payload
    ]
    node_messages = [  # (index among all messages, type, payload) of what the node published
        (i, m.topic.split("/")[2], payload_decode(m.payload))
        for i, m in enumerate(messages)
        if m.topic.split("/")[2:3] in (["NBIRTH"], ["NDATA"], ["NDEATH"])
    ]

    # STATE: online, the will (offline, the same timestamp, retained), online again with a newer timestamp
    # (and offline when the listener stops, if it says so).
    assert [s["online"] for _, s in states][:3] == [True, False, True]
    first, offline, second = (s for _, s in states[:3])
    assert will == offline == {"online": False, "timestamp": first["timestamp"]}
    assert second["timestamp"] > first["timestamp"]
    assert [s for _, s in states[3:]] in ([], [{"online": False, "timestamp": second["timestamp"]}])

    # The node waited for STATE online: nothing before it, only its NDEATH while the host was away.
    (online_at, _), (offline_at, _), (again_at, _) = states[:3]
    assert node_messages[0][0] > online_at
    assert [kind for i, kind, _ in node_messages if offline_at < i < again_at] == ["NDEATH"]
    assert _no_birth_or_live_value_while_offline(log)

    # Sessions: NBIRTH (seq 0) then NDATA seq 1, 2, … wrapping after 255; bdSeq per connection, the same
    # in a rebirth. (Other hosts on a shared broker may ask for rebirths too: any number of them.)
    births = [(kind, _metric(p, BDSEQ_METRIC).value) for _, kind, p in node_messages if kind != "NDATA"]
    assert births.count(("NBIRTH", 0)) >= 2
    assert [b for b, previous in zip(births, [None, *births], strict=False) if b != previous] == [
        ("NBIRTH", 0), ("NDEATH", 0), ("NBIRTH", 1), ("NDEATH", 1),
    ]  # fmt: skip
    seqs = [(kind, p.seq) for _, kind, p in node_messages if kind in ("NBIRTH", "NDATA")]
    for (_, previous), (kind, seq) in itertools.pairwise(seqs):
        assert seq == (0 if kind == "NBIRTH" else (previous + 1) % 256), f"{kind} seq {seq} after {previous}"
    assert ("NDATA", 0) in seqs, "the sequence number wrapped"
    nbirth = next(p for _, kind, p in node_messages if kind == "NBIRTH")
    assert {m.name: m.alias for m in nbirth.metrics if m.name != BDSEQ_METRIC} == {
        REBIRTH_METRIC: 1, metric: 2, TEMPERATURE: 3,
    }  # fmt: skip
    ndata = [p for _, kind, p in node_messages if kind == "NDATA"]
    assert all(m.name is None and m.alias in (2, 3) for p in ndata for m in p.metrics), "by alias only"

    # What it kept, before the first STATE online and while the host was away: sent right after the next
    # birth, as historical metrics, newest first.
    kept = [row["value"] for row in log if row["event"] == "kept" and row["metric"] == metric]
    away = _kept_while_away(log, metric)
    historical = {
        bdseq: [v["value"] for v in sent if v["historical"] and v["bdseq"] == bdseq] for bdseq in (0, 1)
    }
    assert historical == {
        0: sorted(kept[: len(kept) - len(away)], reverse=True),
        1: sorted(away, reverse=True),
    }
    assert len(away) >= KEPT

    # Stored: every value once, measured when the node measured it; nothing of the other metric.
    rows = list(Observation.objects.filter(test=plant.dia).order_by("position"))
    assert {row.status for row in rows} == {ObservationStatus.CONFIRMED}
    values = [row.values[0] for row in rows]
    assert len(values) == len(set(values)), "a value stored twice"
    assert required <= set(values) <= required | at_risk
    measured = {v["value"]: v["timestamp"] for v in sent}
    assert [row.observed_at for row in rows] == [epoch_ms(measured[value]) for value in values]
    assert len(at_risk) <= 1, "the kill fell in a pause between two values"
    assert not DeadLetter.objects.filter(topic__startswith=base).exists()

    # Charted in the order measured: the kept values were measured after the chart's last point.
    samples = list(Sample.objects.filter(characteristic=dia).order_by("sequence"))
    by_id = {row.pk: row for row in rows}
    charted = [by_id[pk].observed_at for sample in samples for pk in sample.observation_ids]
    assert len(charted) == len(rows)
    assert charted == sorted(charted), "a chart point out of the order measured"
    assert not Observation.objects.filter(test=plant.dia, late=True).exists()

    edge_node = EdgeNode.objects.get(group=group, node=node, device="")
    assert not edge_node.online
    assert set(edge_node.metrics) == {BDSEQ_METRIC, REBIRTH_METRIC, metric, TEMPERATURE}


def _metric(payload: Any, name: str) -> Any:
    (found,) = [m for m in payload.metrics if m.name == name]
    return found


def _rebirths_since(edge: EdgeNodeProcess, at: int) -> int:
    return sum(1 for birth in edge.entries("birth") if birth["reason"] == "rebirth" and birth["at"] >= at)


def _state_births(edge: EdgeNodeProcess) -> int:
    """Births for a STATE online (not for a rebirth request)."""
    return sum(1 for birth in edge.entries("birth") if birth["reason"] == "state")


def _stored_values(test: Any) -> list[float]:
    return [row[0] for row in Observation.objects.filter(test=test).values_list("values", flat=True)]


def _kept_while_away(log: list[dict[str, Any]], metric: str) -> list[float]:
    """The values of `metric` the node kept after its first birth: while the host was away."""
    first_birth = next((i for i, row in enumerate(log) if row["event"] == "birth"), len(log))
    return [row["value"] for row in log[first_birth:] if row["event"] == "kept" and row["metric"] == metric]


def _live_after_last_birth(edge: EdgeNodeProcess, metric: str) -> list[dict[str, Any]]:
    log = edge.entries()
    last_birth = max(i for i, row in enumerate(log) if row["event"] == "birth")
    return [
        r for r in log[last_birth:] if r["event"] == "value" and not r["historical"] and r["metric"] == metric
    ]


def _offline_seen_at(edge: EdgeNodeProcess) -> int:
    return next(row["at"] for row in edge.entries("state") if not row["online"])


def _no_birth_or_live_value_while_offline(log: list[dict[str, Any]]) -> bool:
    online = False
    for row in log:
        if row["event"] == "state" and not row["ignored"]:
            online = row["online"]
        elif row["event"] in ("birth", "value") and not online:
            return False
    return True

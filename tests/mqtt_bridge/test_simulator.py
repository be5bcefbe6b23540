"""The plant simulator: its value streams seen through OpenSPC's own SPC engine, and
`manage.py simulate_plant` publishing to the real broker (JSON and Sparkplug B, read back with
pysparkplug, a decoder that is not ours)."""

import io
import itertools
import json
import math
import os
import queue
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import paho.mqtt.client as mqtt
import pysparkplug as psp
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from apps.config import services as config_services
from apps.config.choices import DataSource, LimitMethod
from apps.mqtt_bridge.simulator import (
    EPISODE_RULES,
    Episode,
    ProcessModel,
    ValueStream,
    process_model_of,
    simulated_models,
)
from apps.observations.models import Lot
from spc import evaluate_batch
from tests.factories import ItemFactory, LotFactory, ProductFactory, TestFactory, characteristic_for
from tests.support.signing import limits_signer
from tests.support.workers import database_url_for_workers


def model(**changes: Any) -> ProcessModel:
    fields: dict[str, Any] = {
        "characteristic_id": 1,
        "name": "RING-74 / DIA",
        "source": DataSource.TAG,
        "tag": "plant/dia",
        "kind": "variable",
        "mean": 74.0,
        "sigma": 0.01,
        "subgroup_size": 1,
        "decimals": 4,
    }
    return ProcessModel(**{**fields, **changes})


def plotted(stream: ValueStream, subgroups: int) -> np.ndarray:
    """What the location chart plots: the values (n = 1) or the subgroup means."""
    n = stream.model.subgroup_size
    values = np.array(stream.values(subgroups * n))
    return values.reshape(subgroups, n).mean(axis=1)


class ValueStreamTests:
    @pytest.mark.parametrize("n", [1, 5])
    def test_every_episode_fires_its_nelson_rules_on_the_location_chart(self, n):
        checked: dict[Episode, int] = dict.fromkeys(Episode, 0)
        for seed in range(20):
            stream = ValueStream(model(subgroup_size=n), rng=random.Random(seed), calm_points=12)
            points = plotted(stream, 600)
            result = evaluate_batch(points, center=74.0, sigma=0.01 / math.sqrt(n))
            for span in stream.episodes:
                if span.start + span.length > len(points):
                    continue
                for rule in EPISODE_RULES[span.kind]:
                    hits = result.flagged[rule]
                    inside = hits[(hits >= span.start) & (hits < span.start + span.length)]
                    assert inside.size, f"{span} (n={n}, seed {seed}) did not fire rule {rule}"
                checked[span.kind] += 1
        assert min(checked.values()) >= 50, checked

    def test_in_control_stream_has_the_model_mean_and_sigma_and_rarely_fires_rule_1(self):
        stream = ValueStream(model(), rng=random.Random(7), calm_points=None)
        values = stream.values(20_000)
        result = evaluate_batch(values, center=74.0, sigma=0.01)
        assert stream.episodes == []
        assert len(result.flagged[1]) / len(values) < 0.006  # 0.27 % expected
        assert statistics.fmean(values) == pytest.approx(74.0, abs=0.0005)
        assert statistics.stdev(values) == pytest.approx(0.01, rel=0.03)

    def test_values_are_rounded_to_the_resolution_and_kept_in_the_plausible_range(self):
        stream = ValueStream(model(decimals=3, low=73.99, high=74.01), rng=random.Random(3), calm_points=10)
        values = stream.values(5000)
        assert all(round(v, 3) == v for v in values)
        assert min(values) == 73.99
        assert max(values) == 74.01

    def test_the_same_seed_gives_the_same_stream(self):
        first = ValueStream(model(), rng=random.Random("42:1"), calm_points=20).values(500)
        again = ValueStream(model(), rng=random.Random("42:1"), calm_points=20).values(500)
        other = ValueStream(model(), rng=random.Random("43:1"), calm_points=20).values(500)
        assert first == again
        assert first != other

    def test_episodes_come_after_calm_stretches_and_cycle_through_every_kind(self):
        stream = ValueStream(model(subgroup_size=5), rng=random.Random(1), calm_points=30)
        stream.values(5 * 2000)
        kinds = [span.kind for span in stream.episodes]
        assert len(kinds) >= 12
        assert set(kinds[:6]) == set(Episode)  # each round of six shows every kind
        assert set(kinds[6:12]) == set(Episode)
        gaps = [b.start - (a.start + a.length) for a, b in itertools.pairwise(stream.episodes)]
        assert min(gaps) >= 10
        assert 15 < statistics.fmean(gaps) < 50  # exponential, mean 30 subgroups

    def test_attribute_characteristics_stream_whole_counts_without_episodes(self):
        stream = ValueStream(model(kind="defects", mean=2.0, decimals=0), rng=random.Random(5), calm_points=5)
        values = stream.values(5000)
        assert all(v == int(v) and v >= 0 for v in values)
        assert statistics.fmean(values) == pytest.approx(2.0, abs=0.1)
        assert stream.episodes == []


class ProcessModelTests:
    @pytest.fixture
    def product(self, db):
        return ProductFactory(code="RING-74")

    def test_current_limits_give_the_mean_and_sigma(self, product):
        test = TestFactory(code="DIA", decimals=3)
        dia = characteristic_for(product, test, target=74.0, lsl=73.9, usl=74.1)
        for center, sigma in ((74.01, 0.02), (74.002, 0.011)):  # the newest version counts
            config_services.control_limits_set(
                signer=limits_signer(),
                characteristic=dia, center=center, ucl=center + 3 * sigma, lcl=center - 3 * sigma,
                sigma=sigma, method=LimitMethod.HISTORICAL, reason="study",
            )  # fmt: skip
        found = process_model_of(dia)
        assert (found.mean, found.sigma, found.decimals) == (74.002, 0.011, 4)

    def test_without_limits_target_and_spec_width_or_midpoint_and_one_percent(self, product):
        dia = characteristic_for(product, TestFactory(code="DIA"), target=74.0, lsl=73.9, usl=74.3)
        wall = characteristic_for(product, TestFactory(code="WALL"), lsl=3.9, usl=4.1)
        od = characteristic_for(product, TestFactory(code="OD", plausible_min=18, plausible_max=22))
        assert (process_model_of(dia).mean, process_model_of(dia).sigma) == (74.0, pytest.approx(0.05))
        assert (process_model_of(wall).mean, process_model_of(wall).sigma) == (4.0, pytest.approx(0.025))
        assert (process_model_of(od).mean, process_model_of(od).sigma) == (20.0, 0.2)

    def test_only_active_mqtt_characteristics_are_simulated(self, product):
        json_fed = characteristic_for(product, TestFactory(), data_source=DataSource.TAG, tag="a/b")
        node_fed = characteristic_for(product, TestFactory(), data_source=DataSource.SPARKPLUG, tag="m")
        characteristic_for(product, TestFactory())  # manual
        characteristic_for(product, TestFactory(), data_source=DataSource.TAG, tag="c/d", active=False)
        found = {(m.characteristic_id, m.source, m.tag) for m in simulated_models()}
        assert found == {(json_fed.pk, "tag", "a/b"), (node_fed.pk, "sparkplug", "m")}


# --- The command against the real broker ---------------------------------------------------------


class Listener:
    """A test subscriber on the broker of settings.MQTT_URL: every message, with arrival order."""

    def __init__(self, topic: str) -> None:
        url = urlsplit(settings.MQTT_URL)
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        subscribed: queue.Queue[int] = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}")
        if url.username:
            self.client.username_pw_set(url.username, url.password)
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)
        self.client.on_subscribe = lambda _c, _u, mid, _rc, _p: subscribed.put(mid)
        self.client.connect(url.hostname or "127.0.0.1", url.port or 1883)
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)
        subscribed.get(timeout=5)

    def drain(self, quiet: float = 0.5) -> list[mqtt.MQTTMessage]:
        got = []
        while True:
            try:
                got.append(self.messages.get(timeout=quiet))
            except queue.Empty:
                return got

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def listen():
    listeners: list[Listener] = []

    def make(topic: str) -> Listener:
        listeners.append(Listener(topic))
        return listeners[-1]

    yield make
    for listener in listeners:
        listener.close()


def acknowledged(output: str) -> int:
    match = re.search(r"acknowledged by the broker (\d+)", output)
    assert match, output
    return int(match.group(1))


def run_command(*args: str) -> str:
    out = io.StringIO()
    call_command("simulate_plant", *args, stdout=out)
    return out.getvalue()


ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.mark.slow
@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class SimulatePlantJsonTests:
    def test_publishes_documented_json_on_the_tag_topics_and_logs_every_acknowledged_id(
        self, listen, tmp_path: Path
    ):
        base = f"simtest/{uuid.uuid4().hex}"
        product = ProductFactory()
        dia = characteristic_for(
            product, TestFactory(decimals=3), data_source=DataSource.TAG, tag=f"{base}/dia", subgroup_size=5,
            target=74.0, lsl=73.95, usl=74.05,
        )  # fmt: skip
        wall = characteristic_for(
            product, TestFactory(decimals=2), data_source=DataSource.TAG, tag=f"{base}/wall"
        )
        listener = listen(f"{base}/#")
        log = tmp_path / "acked.log"
        output = run_command(
            "--seconds", "2", "--rate", "200", "--run-id", "run7", "--lot", "L-1", "--acked-log", str(log),
            "--seed", "11",
        )  # fmt: skip
        messages = listener.drain()

        assert "simulating 2 characteristics (json: 2, sparkplug: 0) at 200 msg/s on mqtt://" in output
        ids = log.read_text().splitlines()
        assert len(ids) == acknowledged(output)
        # 200 msg/s for 2 s, acknowledged: never more than the rate allows; at least half of it, since
        # a loaded machine (CI runs the soak beside the suite) once gave 340 of 400.
        assert 200 <= len(ids) <= 410
        assert {m.topic for m in messages} == {dia.tag, wall.tag}
        bodies = [json.loads(m.payload) for m in messages]
        assert len(bodies) == len(ids)
        assert sorted(b["id"] for b in bodies) == sorted(ids)
        assert len(set(ids)) == len(ids)
        for body in bodies:
            assert set(body) == {"value", "ts", "id", "lot"}
            assert isinstance(body["value"], float)
            assert ISO_MS.match(body["ts"]), body["ts"]
            assert re.fullmatch(r"run7-\d+", body["id"])
            assert body["lot"] == "L-1"
        dia_values = [b["value"] for m, b in zip(messages, bodies, strict=True) if m.topic == dia.tag]
        assert 73.97 < statistics.fmean(dia_values) < 74.03  # around the target
        assert all(round(v, 4) == v for v in dia_values)  # the test's 3 decimals + 1
        assert re.search(rf"{re.escape(str(dia))}\s+tag\s+\d+\s+\d+", output)

    def test_open_lots_names_the_simulators_own_lot_not_the_lab_lot(self, listen):
        """make run's --open-lots: a production lot of the simulator's own beside the lab lot, and
        every JSON message names it, so no machine value lands in the lab lot."""
        base = f"simtest/{uuid.uuid4().hex}"
        product = ProductFactory(code=f"P-{uuid.uuid4().hex[:6]}")
        characteristic_for(product, TestFactory(), data_source=DataSource.TAG, tag=f"{base}/dia")
        lab = LotFactory(product=product, number="LAB-1")
        ItemFactory(lot=lab, serial="0001")
        listener = listen(f"{base}/#")
        output = run_command("--count", "10", "--rate", "100", "--open-lots")
        (own,) = Lot.objects.filter(product=product).exclude(pk=lab.pk)
        assert own.number.startswith(f"SIM-{product.code}-")
        assert f"opened lot {own.number} of {product.code}" in output
        bodies = [json.loads(m.payload) for m in listener.drain()]
        assert len(bodies) == 10
        assert {body["lot"] for body in bodies} == {own.number}

    def test_sustains_500_messages_a_second(self, tmp_path: Path):
        product = ProductFactory()
        base = f"simtest/{uuid.uuid4().hex}"
        for name in ("a", "b", "c", "d"):
            characteristic_for(product, TestFactory(), data_source=DataSource.TAG, tag=f"{base}/{name}")
        log = tmp_path / "acked.log"
        output = run_command("--seconds", "3", "--rate", "500", "--acked-log", str(log))
        assert 1450 <= acknowledged(output) <= 1510
        assert len(log.read_text().splitlines()) == acknowledged(output)

    def test_stops_after_count_messages(self):
        product = ProductFactory()
        tag = f"simtest/{uuid.uuid4().hex}"
        characteristic_for(product, TestFactory(), data_source=DataSource.TAG, tag=tag)
        output = run_command("--count", "25", "--rate", "100")
        assert acknowledged(output) == 25
        assert "published 25 messages" in output


def _sparkplug_run(group: str, stop_after: float, started: threading.Event) -> dict[str, Any]:
    """The command in a thread (so the test can send it an NCMD meanwhile)."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            started.set()
            result["output"] = run_command(
                "--seconds", str(stop_after), "--rate", "200", "--sparkplug-group", group, "--seed", "3"
            )
        except Exception as error:  # shown by the test
            result["error"] = error
        finally:
            connection.close()

    result["thread"] = threading.Thread(target=run)
    result["thread"].start()
    return result


def rebirth_command() -> bytes:
    now = psp.get_current_timestamp()
    metric = psp.Metric(timestamp=now, name="Node Control/Rebirth", datatype=psp.DataType.BOOLEAN, value=True)
    return psp.NCmd(timestamp=now, metrics=(metric,)).encode(include_dtypes=True)


@pytest.mark.slow
@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class SimulatePlantSparkplugTests:
    def test_births_data_rebirth_and_deaths_decode_with_pysparkplug(self, listen):
        group = f"simtest{uuid.uuid4().hex[:10]}"
        product = ProductFactory()
        where = {"data_source": DataSource.SPARKPLUG, "line": "Line 1", "subgroup_size": 1}
        dia = characteristic_for(product, TestFactory(), tag=f"{group}/dia", cell="Cell 1", **where)
        wall = characteristic_for(product, TestFactory(), tag=f"{group}/wall", cell="Cell 2", **where)
        listener = listen(f"spBv1.0/{group}/#")
        run = _sparkplug_run(group, stop_after=3, started=threading.Event())
        received: list[mqtt.MQTTMessage] = []
        deadline = time.monotonic() + 10
        while sum(m.topic.split("/")[2] == "DDATA" for m in received) < 100 and time.monotonic() < deadline:
            received.append(listener.messages.get(timeout=5))
        rebirth_sent_after = len(received)
        listener.client.publish(f"spBv1.0/{group}/NCMD/line-1", rebirth_command(), qos=1).wait_for_publish(5)
        run["thread"].join(timeout=20)
        assert "error" not in run, run.get("error")
        received += listener.drain()
        received = [m for m in received if "/NCMD/" not in m.topic]  # our own command

        kinds = [m.topic.split("/")[2] for m in received]
        assert kinds[:3] == ["NBIRTH", "DBIRTH", "DBIRTH"]
        assert kinds[-3:] == ["DDEATH", "DDEATH", "NDEATH"]
        births: dict[str, Any] = {}
        seqs: list[tuple[str, int]] = []
        names: set[str] = set()
        bd_seqs: list[int] = []  # the NBIRTHs' and the NDEATH's: one session, one bdSeq
        for message in received:
            topic = psp.Topic.from_str(message.topic)
            decoded = psp.Message.from_mqtt_message(message, birth=births.get(topic.device_id))
            payload = decoded.payload
            if topic.message_type == psp.MessageType.NDEATH:
                bd_seqs.append(payload.bd_seq_metric.value)
                continue
            seqs.append((topic.message_type.name, payload.seq))
            if topic.message_type == psp.MessageType.NBIRTH:
                metrics = {m.name: m.value for m in payload.metrics}
                assert metrics["Node Control/Rebirth"] is False
                bd_seqs.append(metrics["bdSeq"])
            elif topic.message_type == psp.MessageType.DBIRTH:
                births[topic.device_id] = payload
                assert [(m.name, m.datatype) for m in payload.metrics] in (
                    [(dia.tag, psp.DataType.DOUBLE)],
                    [(wall.tag, psp.DataType.DOUBLE)],
                )
            elif topic.message_type == psp.MessageType.DDATA:
                (metric,) = payload.metrics
                names.add(metric.name)  # resolved from the alias through the DBIRTH
                assert isinstance(metric.value, float)
                assert metric.timestamp == payload.timestamp
                assert abs(metric.timestamp / 1000 - time.time()) < 60
        assert names == {dia.tag, wall.tag}
        assert len(bd_seqs) == 3
        assert len(set(bd_seqs)) == 1
        assert {d: b.metrics[0].name for d, b in births.items()} == {"cell-1": dia.tag, "cell-2": wall.tag}
        # seq: 0 on every NBIRTH, then +1 (mod 256) for every message of the node
        for (_, before), (kind, seq) in itertools.pairwise(seqs):
            assert seq == (0 if kind == "NBIRTH" else (before + 1) % 256), seqs
        assert sum(1 for kind, _ in seqs if kind == "DDATA") > 300  # wrapped past 255
        # the rebirth request: a new NBIRTH (seq 0) and both DBIRTHs, after the command was sent
        rebirths = [i for i, kind in enumerate(kinds) if kind == "NBIRTH" and i > 0]
        assert len(rebirths) == 1
        assert rebirths[0] >= rebirth_sent_after
        assert kinds[rebirths[0] + 1 : rebirths[0] + 3] == ["DBIRTH", "DBIRTH"]
        assert acknowledged(run["output"]) == kinds.count("DDATA")

    def test_json_and_sparkplug_characteristics_run_together(self, listen):
        group = f"simtest{uuid.uuid4().hex[:10]}"
        product = ProductFactory()
        characteristic_for(product, TestFactory(), data_source=DataSource.SPARKPLUG, tag=f"{group}/m")
        characteristic_for(product, TestFactory(), data_source=DataSource.TAG, tag=f"{group}/json")
        nodes, plain = listen(f"spBv1.0/{group}/#"), listen(f"{group}/json")
        output = run_command("--count", "40", "--rate", "200", "--sparkplug-group", group)
        assert "(json: 1, sparkplug: 1)" in output
        assert len(plain.drain()) == 20
        topics = [m.topic for m in nodes.drain()]
        assert topics.count(f"spBv1.0/{group}/DDATA/sim/dev") == 20  # no line: node "sim"; no cell: "dev"
        assert acknowledged(output) == 40


@pytest.mark.slow
@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class SimulatePlantSignalTests:
    def test_sigterm_drains_says_goodbye_and_exits_0_with_the_summary(self, listen, tmp_path: Path):
        group = f"simtest{uuid.uuid4().hex[:10]}"
        product = ProductFactory()
        where = {"data_source": DataSource.SPARKPLUG, "line": "L2"}
        characteristic_for(product, TestFactory(), tag=f"{group}/m", **where)
        characteristic_for(product, TestFactory(), data_source=DataSource.TAG, tag=f"{group}/json")
        nodes = listen(f"spBv1.0/{group}/#")
        log = tmp_path / "acked.log"
        env = {**os.environ, "DATABASE_URL": database_url_for_workers(), "DEBUG": "1"}
        command = [sys.executable, "manage.py", "simulate_plant", "--rate", "300", "--sparkplug-group", group]
        process = subprocess.Popen(
            [*command, "--acked-log", str(log)],
            cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            assert "simulating 2 characteristics" in process.stdout.readline()
            time.sleep(1.5)
            process.send_signal(signal.SIGTERM)
            output = process.stdout.read()
            assert process.wait(timeout=15) == 0, output
        finally:
            process.kill()
        assert 300 <= acknowledged(output) <= 600
        assert len(log.read_text().splitlines()) == acknowledged(output)
        topics = [m.topic for m in nodes.drain()]
        assert topics[-2:] == [f"spBv1.0/{group}/DDEATH/l2/dev", f"spBv1.0/{group}/NDEATH/l2"]

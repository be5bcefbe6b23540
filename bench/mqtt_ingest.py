"""The plant loop over MQTT: Sparkplug B and JSON values from publish to stored, calculated and
violation out, with 2 Celery workers, against the broker's own ceiling.

Run from the repository root against real services (never the embedded ones):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/8 \\
        .venv/bin/python bench/mqtt_ingest.py [--rates 2000,10000] [--json-rates 1000,3000] \\
        [--seconds 10] [--saturation] [--listeners 1|2] [--rest-seconds 10]

Sets up (as bench/mqtt_listen.py and bench/ingest_rest.py do, reusing their code): a private
Mosquitto (mqtt_listen.Broker; needs `mosquitto`), the database `openspc_mqtt_ingest_bench`
(created, migrated, dropped), the plant of bench/ingest_common.py with 50 characteristics fed by
Sparkplug B metrics (data source "sparkplug", tag = metric name `m01`..`m50`), 4 fed by JSON topics
(`bench/json/1`..`4`, data source "tag") and 4 left to REST; 2 Celery workers
(ingest_rest.Processes: queues celery, observations.in, calculations) and `manage.py
mqtt_listen` (MQTT_PUBLISH_INTERVAL_MS=50; with --listeners 2, two in the shared group
MQTT_SHARED_GROUP=bench).

The publisher is one paho client, QoS 1, up to 1,000 messages in flight, an edge node
`spBv1.0/bench/.../node-1/gauges`: NBIRTH (bdSeq, Rebirth) and DBIRTH with the 50 metrics (names and
aliases, Double), then DDATA with the 50 metrics by alias, each with its timestamp (the publish time,
ms), seq 0-255 wrapping. JSON: `{"value", "id", "ts"}` (ts: the publish time, us) round robin
over the 4 topics. Each run publishes at a fixed offered rate (measurements/s: DDATA messages are
rate / 50 a second) for --seconds; --saturation adds a run per kind that publishes as fast as it
can while at most --saturation-backlog measurements are published but not yet judged (closed loop:
the figure is what the pipeline takes, not a queue that grows for as long as the run lasts). One
value in ~200 is a seeded special cause (CENTER + 30 sigma: its subgroup's mean is far beyond the
limits).

Definitions, per run (every time is the same machine's clock):

* stored: Observation.received_at - its publish time (observed_at, which the publisher set).
* calculated: the sample's Sample.evaluated_at (the calculation worker judged it: in_control set)
  - the publish time of the sample's LAST value (a sample can be judged only once its subgroup of 5
  is complete, which takes 5 DDATA messages: that wait is the publisher's, not the pipeline's).
* violation out: when a test subscriber on `spc/violations/#` received the first violation of a
  sample holding a seeded value - the publish time of that sample's last value.
* measurements/s: values in judged samples / (first publish -> last evaluated_at).
* lost: measurements the broker acknowledged to the publisher - observation rows stored, once no
  new row came for --stall s. uncalculated: stored values not in a judged sample, beyond the (at
  most 4 per characteristic) left in an incomplete subgroup. missing violations: seeded samples
  judged but whose violation never reached the subscriber.
* ceiling: the same publisher, the same DDATA (and JSON) payloads, as fast as it can, on a topic only
  a bare paho subscriber (QoS 1) reads, in the same run: messages/s that subscriber received.
  ceiling_ratio: Sparkplug messages/s calculated (best run) / the DDATA ceiling.
* first after restart: the listener stopped (SIGTERM) and started again; once it is connected, DDATA
  at 2,000 measurements/s; the first sample judged after the restart, from its last value's publish
  to evaluated_at.
* REST: batches of 100 through daphne at 2,000 observations/s offered (ingest_rest's clients and
  poller, on the 4 REST characteristics), p99 from POST to stored (ChartState moved).

* WebSocket: a client of daphne's `ws/samples/` (a manager's JWT, subscribed to the 54 MQTT-fed
  characteristics, in a thread of this process) times the `violation` message of the same seeded
  samples, from the same moment (p99_ws_ms; missing ws: seeded samples it never got).

A figure that could not be measured is null in the JSON and "-" in the table.

Prints a table for people; the LAST line is one line of JSON: sparkplug_measurements_per_s and
json_measurements_per_s (the best run of each kind, to calculated), p50_ms / p99_ms (publish to
violation out) and p50_ws_ms / p99_ws_ms of the Sparkplug run at 2,000/s (null without one),
ceiling_messages_per_s (DDATA), ceiling_ratio, first_after_restart_ms, rest_p99_ms_at_2000, lost,
and every run under "runs" (with the cores each part kept busy and the database's wait events).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest_common import (  # noqa: E402
    SUBGROUP,
    BenchError,
    Plant,
    bench_database_url,
    database_recreate,
    django_start,
    migrate,
    queues_check,
    queues_clear,
    services_check,
)
from bench.ingest_rest import (  # noqa: E402
    LOG_DIR,
    Feeder,
    Processes,
    Tracker,
    machine_busy,
    percentile,
    post_batches,
    runs_measured,
    wait_stored,
)
from bench.mqtt_ingest_clients import (  # noqa: E402
    JSON_TOPIC,
    JSON_TOPICS,
    METRICS,
    REST_RATE,
    VIOLATIONS,
    EdgeNode,
    Publisher,
    Subscriber,
    Values,
    WsClient,
    ceiling,
)
from bench.mqtt_ingest_rows import (  # noqa: E402
    DatabaseWaits,
    Row,
    counts_of,
    plant_feed,
    profile_report,
    rows_of,
    wait_settled,
)
from bench.mqtt_listen import Broker, Cpu, Listener, mosquitto_binary  # noqa: E402
from bench.ws_fanout import manager_token  # noqa: E402

# --- One run -------------------------------------------------------------------------------------


@dataclass
class Run:
    kind: str  # sparkplug | json
    rate: int  # offered measurements/s; 0: saturation
    published: int  # measurements
    acked: int
    stored: int
    calculated: int
    stored_per_s: float
    measurements_per_s: float  # to calculated
    stored_p50_ms: float | None
    stored_p99_ms: float | None
    calc_p50_ms: float | None
    calc_p99_ms: float | None
    seeded_samples: int
    violation_p50_ms: float | None
    violation_p99_ms: float | None
    missing_violations: int
    ws_p50_ms: float | None
    ws_p99_ms: float | None
    missing_ws: int
    lost: int
    uncalculated: int
    cores: dict[str, float] = field(default_factory=dict)
    db_waits: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.kind}_{self.rate or 'saturation'}"


def ms(values: Sequence[float], q: float) -> float | None:
    return round(percentile([v * 1000 for v in values], q), 1) if values else None


def summarise(
    kind: str,
    rate: int,
    published: int,
    acked: int,
    first: float,
    rows: Sequence[Row],
    violations: dict[int, float],
    characteristics: int,
    cores: dict[str, float],
    ws: dict[int, float] | None = None,
) -> Run:
    """The run's figures (see the module docstring) from its stored rows."""
    samples: dict[int, list[Row]] = {}
    for row in rows:
        if row.sample is not None and row.evaluated is not None:
            samples.setdefault(row.sample, []).append(row)
    ws = ws or {}
    calc, seeded_lat, ws_lat, seeded, missing, missing_ws = [], [], [], 0, 0, 0
    for sample, members in samples.items():
        if len(members) < SUBGROUP:  # a subgroup begun in the run before: not this run's alone
            continue
        last = max(r.published for r in members)
        calc.append((members[0].evaluated or 0.0) - last)
        if any(r.seeded for r in members):
            seeded += 1
            if sample in violations:
                seeded_lat.append(violations[sample] - last)
            else:
                missing += 1
            if sample in ws:
                ws_lat.append(ws[sample] - last)
            else:
                missing_ws += 1
    calculated = sum(len(m) for m in samples.values())
    last_received = max((r.received for r in rows), default=first)
    last_evaluated = max((r.evaluated or 0.0 for r in rows), default=first)
    stored_lat = [r.received - r.published for r in rows]
    return Run(
        kind=kind, rate=rate, published=published, acked=acked, stored=len(rows), calculated=calculated,
        stored_per_s=round(len(rows) / (last_received - first), 1) if last_received > first else 0.0,
        measurements_per_s=round(calculated / (last_evaluated - first), 1) if last_evaluated > first else 0.0,
        stored_p50_ms=ms(stored_lat, 50), stored_p99_ms=ms(stored_lat, 99), calc_p50_ms=ms(calc, 50),
        calc_p99_ms=ms(calc, 99), seeded_samples=seeded, violation_p50_ms=ms(seeded_lat, 50),
        violation_p99_ms=ms(seeded_lat, 99), missing_violations=missing,
        ws_p50_ms=ms(ws_lat, 50), ws_p99_ms=ms(ws_lat, 99), missing_ws=missing_ws,
        lost=max(0, acked - len(rows)),
        uncalculated=max(0, len(rows) - calculated - (SUBGROUP - 1) * characteristics), cores=cores,
    )  # fmt: skip


class Loop:
    """Everything a run needs: the broker, the plant, the workers, the listener(s), the subscriber."""

    def __init__(self, args: argparse.Namespace, broker: Broker, env: dict[str, str]) -> None:
        self.args, self.broker = args, broker
        self.env = {**env, "MQTT_PUBLISH_INTERVAL_MS": "50"}
        if args.listeners > 1:
            self.env["MQTT_SHARED_GROUP"] = "bench"
        self.feeds = plant_feed()
        self.processes = Processes(self.env, args.profile, "mqtt-ingest")
        self.listeners: list[Listener] = []
        self.node = EdgeNode()
        self.values = Values(7)
        self.restarts = 0
        self.processes.start_workers(2)
        self.processes.wait_workers_ready()
        self.web = Processes(self.env, None, "mqtt-ingest-web")
        self.port = self.web.start_web()
        self.ws = WsClient(self.port, manager_token(), [*self.feeds.sparkplug, *self.feeds.json])
        self.listeners_start()
        self.violations = Subscriber(broker, VIOLATIONS, keep=True)
        self.publisher = Publisher(broker, will=self.node.will())

    def listeners_start(self) -> None:
        self.restarts += 1
        self.listeners = [
            Listener(self.env, broker=self.broker, protocol="3.1.1", label=f"ingest-{self.restarts}-{n}")
            for n in range(1, self.args.listeners + 1)
        ]
        for listener in self.listeners:
            listener.wait_connected()

    def listeners_stop(self) -> None:
        for listener in self.listeners:
            listener.stop()
            self.broker.session_clear(listener.client_id)

    def alive(self) -> None:
        self.processes.check_alive()
        for listener in self.listeners:
            listener.check_alive()

    def pids(self) -> dict[str, int | None]:
        pids: dict[str, int | None] = {
            f"listener-{n}": lis.process.pid for n, lis in enumerate(self.listeners, 1)
        }
        pids.update({f"worker-{n}": pid for n, pid in enumerate(self.processes.pids("worker"), 1)})
        pids["broker"] = self.broker.pid()
        return pids

    def ddata(self, index: int) -> tuple[str, bytes]:
        return self.node.data([self.values.next() for _ in range(METRICS)])

    def json_message(self, index: int) -> tuple[str, bytes]:
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")
        topic = JSON_TOPIC.format(index % JSON_TOPICS + 1)
        key = f"{self.restarts}-{secrets.token_hex(6)}"
        return topic, json.dumps({"value": self.values.next(), "id": key, "ts": now}).encode()

    def births(self, timeout: float = 30) -> None:
        """NBIRTH and DBIRTH, then DDATA until one is stored (again births every second till then)."""
        since = datetime.datetime.now(datetime.UTC)
        deadline = time.monotonic() + timeout
        while counts_of(self.feeds.sparkplug, since)[0] == 0:
            self.alive()
            if time.monotonic() > deadline:
                raise BenchError(
                    f"no Sparkplug value was stored in {timeout:.0f} s; see {self.listeners[0].log}"
                )
            for message in self.node.births():
                self.publisher.publish(*message)
            for _ in range(5):
                self.publisher.publish(*self.ddata(0))
                time.sleep(0.2)

    def measure(self, kind: str, rate: int) -> Run:
        characteristics = self.feeds.sparkplug if kind == "sparkplug" else self.feeds.json
        per_message = METRICS if kind == "sparkplug" else 1
        message = self.ddata if kind == "sparkplug" else self.json_message
        time.sleep(0.5)
        since = datetime.datetime.now(datetime.UTC)
        acked_before = self.publisher.acked
        waits = DatabaseWaits(self.args.database)
        before, postgres = Cpu(self.pids()), waits.cpu()
        started = time.monotonic()
        waits.thread.start()
        try:
            gate = None if rate else self.backlog_gate(characteristics, since, per_message)
            count, first, _ = self.publisher.publish_at(rate / per_message, self.args.seconds, message, gate)
            self.publisher.wait_acked(acked_before + count, self.args.timeout)
            acked = (self.publisher.acked - acked_before) * per_message
            wait_settled(characteristics, since, acked, self.args.stall, self.args.timeout, self.alive)
        finally:
            waits.stop.set()
            waits.thread.join(timeout=5)
        seconds = time.monotonic() - started
        cores = before.cores(Cpu(self.pids()), seconds)
        cores["postgres"] = round(waits.cpu_since(postgres) / seconds, 2)
        time.sleep(0.3)  # the outbox publisher's interval: the last violations
        rows = rows_of(characteristics, since)
        run = summarise(kind, rate, count * per_message, acked, first, rows, self.violations.violations(),
                        len(characteristics), cores, self.ws.violations())  # fmt: skip
        run.db_waits = waits.shares()
        return run

    def backlog_gate(self, characteristics: Sequence[int], since: datetime.datetime,
                     per_message: int) -> Callable[[int], None]:  # fmt: skip
        """At saturation: before a message, wait while more than --saturation-backlog measurements are
        published but not judged (the database is asked every 50 ms at most)."""
        judged, asked = 0, 0.0

        def gate(index: int) -> None:
            nonlocal judged, asked
            while index * per_message - judged > self.args.saturation_backlog:
                if time.monotonic() - asked > 0.05:
                    judged, asked = counts_of(characteristics, since)[1], time.monotonic()
                else:
                    time.sleep(0.01)

        return gate

    def first_after_restart(self) -> float | None:
        """The listener restarted: the first sample judged after, from its last value's publish."""
        self.listeners_stop()
        self.listeners_start()
        since = datetime.datetime.now(datetime.UTC)
        rate = 2000 / METRICS
        deadline = time.monotonic() + self.args.timeout
        index = 0
        start = time.monotonic()
        while counts_of(self.feeds.sparkplug, since)[1] == 0 and time.monotonic() < deadline:
            self.alive()
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.publisher.publish(*self.ddata(index))
            index += 1
        rows = rows_of(self.feeds.sparkplug, since)
        judged: dict[int, list[Row]] = {}
        for row in rows:
            if row.sample is not None and row.evaluated is not None:
                judged.setdefault(row.sample, []).append(row)
        if not judged:
            return None
        first = min(judged.values(), key=lambda members: members[0].evaluated or 0.0)
        return round(((first[0].evaluated or 0.0) - max(r.published for r in first)) * 1000, 1)

    def rest_p99(self) -> tuple[float | None, int]:
        """REST batches at REST_RATE observations/s offered, through daphne and the same workers."""
        plant = Plant(lot_id=self.feeds.plant.lot_id, lot_number=self.feeds.plant.lot_number,
                      characteristic_ids=self.feeds.rest, token=self.feeds.plant.token)  # fmt: skip
        web, port = self.web, self.port
        tracker = Tracker(plant.characteristic_ids, 0.01, 10_000)  # open loop: never waits for slots
        try:
            tracker.thread.start()
            key = secrets.token_hex(4)
            post_batches(
                port=port,
                plant=plant,
                tracker=tracker,
                feeder=Feeder(count=4, seconds=None, rate=0),
                clients=2,
                key=f"warm-{key}",
            )
            wait_stored(tracker, web, self.args.timeout)
            feeder = Feeder(count=None, seconds=self.args.rest_seconds, rate=REST_RATE)
            batches = post_batches(port=port, plant=plant, tracker=tracker, feeder=feeder, clients=4, key=key)
            wait_stored(tracker, web, self.args.timeout)
        finally:
            tracker.stop.set()
            if tracker.thread.is_alive():
                tracker.thread.join(timeout=5)
        latencies = [((b.stored or 0.0) - b.sent) * 1000 for b in batches]
        return (round(percentile(latencies, 99), 1) if latencies else None), sum(len(b.ids) for b in batches)

    def close(self) -> None:
        for closing in (
            self.publisher.close,
            self.violations.close,
            self.ws.close,
            self.listeners_stop,
            self.web.stop,
            self.processes.stop,
        ):
            try:
                closing()
            except Exception as exc:  # the rest must stop too
                print(f"stopping: {exc!r}", file=sys.stderr)


# --- Output --------------------------------------------------------------------------------------


def cell(value: float | None, width: int = 9) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width},.1f}"


def table(runs: Sequence[Run]) -> list[str]:
    lines = [f"{'run':>21}{'acked':>9}{'stored':>9}{'calc':>9}{'stored/s':>9}{'calc/s':>9}"
             f"{'st p50':>9}{'st p99':>9}{'calc p50':>9}{'calc p99':>9}{'viol p50':>9}{'viol p99':>9}"
             f"{'ws p50':>9}{'ws p99':>9}{'seeded':>7}{'missing':>8}{'miss ws':>8}{'lost':>6}"
             f"{'uncalc':>7}"]  # fmt: skip
    for r in runs:
        lines.append(f"{r.label:>21}{r.acked:>9,}{r.stored:>9,}{r.calculated:>9,}{r.stored_per_s:>9,.0f}"
                     f"{r.measurements_per_s:>9,.0f}{cell(r.stored_p50_ms)}{cell(r.stored_p99_ms)}"
                     f"{cell(r.calc_p50_ms)}{cell(r.calc_p99_ms)}{cell(r.violation_p50_ms)}"
                     f"{cell(r.violation_p99_ms)}{cell(r.ws_p50_ms)}{cell(r.ws_p99_ms)}{r.seeded_samples:>7}"
                     f"{r.missing_violations:>8}{r.missing_ws:>8}{r.lost:>6,}"
                     f"{r.uncalculated:>7,}")  # fmt: skip
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rates", default="2000,10000", help="Sparkplug measurements/s offered")
    parser.add_argument("--json-rates", default="1000,3000", help="JSON measurements/s offered")
    parser.add_argument("--seconds", type=float, default=10.0, help="publish for this long per run")
    parser.add_argument("--saturation", action="store_true", help="also a run per kind as fast as possible")
    parser.add_argument("--saturation-backlog", type=int, default=5000,
                        help="at saturation, measurements published but not yet judged at most")  # fmt: skip
    parser.add_argument("--listeners", type=int, choices=(1, 2), default=1, help="2: a shared group")
    parser.add_argument("--ceiling-seconds", type=float, default=5.0, help="the bare subscriber's run")
    parser.add_argument("--rest-seconds", type=float, default=10.0, help="REST at 2,000/s; 0: skip")
    parser.add_argument("--broker-inflight", type=int, default=20, help="the private broker's max_inflight")
    parser.add_argument(
        "--stall", type=float, default=15.0, help="seconds without progress: the rest is lost"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for a backlog")
    parser.add_argument("--database", default="openspc_mqtt_ingest_bench", help="database to create and drop")
    parser.add_argument("--purge-queues", action="store_true", help="delete messages already queued")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="run the workers under cProfile into DIR")
    args = parser.parse_args(argv)
    try:
        args.rate_list = [int(p) for p in args.rates.split(",") if p.strip()]
        args.json_rate_list = [int(p) for p in args.json_rates.split(",") if p.strip()]
    except ValueError:
        parser.error("--rates and --json-rates take numbers separated by commas")
    if min(args.rate_list + args.json_rate_list, default=1) < 1 or args.seconds <= 0:
        parser.error("rates must be at least 1 measurement/s and --seconds positive")
    if mosquitto_binary() is None:
        parser.error("needs Mosquitto: the benchmark starts a private one")
    return args


def plan(args: argparse.Namespace) -> list[tuple[str, int]]:
    saturation = [0] if args.saturation else []
    return [("sparkplug", rate) for rate in [*args.rate_list, *saturation]] + [
        ("json", rate) for rate in [*args.json_rate_list, *saturation]
    ]


def summary(runs: Sequence[Run], extra: dict[str, Any]) -> dict[str, Any]:
    def best(kind: str) -> float | None:
        figures = [r.measurements_per_s for r in runs if r.kind == kind]
        return max(figures) if figures else None

    at_2000 = next((r for r in runs if r.kind == "sparkplug" and r.rate == 2000), None)
    sparkplug, json_best = best("sparkplug"), best("json")
    ceiling_ = extra.get("ceiling_messages_per_s")
    json_ceiling = extra.get("ceiling_json_messages_per_s")
    return {
        "sparkplug_measurements_per_s": sparkplug,
        "json_measurements_per_s": json_best,
        "p50_ms": at_2000.violation_p50_ms if at_2000 else None,
        "p99_ms": at_2000.violation_p99_ms if at_2000 else None,
        "p99_calculated_ms": at_2000.calc_p99_ms if at_2000 else None,
        "p50_ws_ms": at_2000.ws_p50_ms if at_2000 else None,
        "p99_ws_ms": at_2000.ws_p99_ms if at_2000 else None,
        "ceiling_ratio": round(sparkplug / METRICS / ceiling_, 3) if sparkplug and ceiling_ else None,
        "json_ceiling_ratio": round(json_best / json_ceiling, 3) if json_best and json_ceiling else None,
        "lost": sum(r.lost for r in runs),
        "uncalculated": sum(r.uncalculated for r in runs),
        "missing_violations": sum(r.missing_violations for r in runs),
        "missing_ws": sum(r.missing_ws for r in runs),
        **extra,
        "runs": [asdict(r) for r in runs],
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    database_url, redis_url = services_check()
    queues_check(redis_url, purge=args.purge_queues)
    env = django_start(database_url=bench_database_url(database_url, args.database))
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        args.profile = args.profile.resolve()
        for old in args.profile.glob("mqtt-ingest-worker-*.prof"):
            old.unlink()
    broker = Broker(private=True, inflight=args.broker_inflight)
    print(f"MQTT plant loop benchmark: {METRICS} Sparkplug metrics per DDATA, {JSON_TOPICS} JSON topics, "
          f"QoS 1, {args.seconds:g} s per run, 2 workers, {args.listeners} listener(s); broker: "
          f"{broker.description}; Python {platform.python_version()}, {os.cpu_count()} CPUs; logs in "
          f"{LOG_DIR}", flush=True)  # fmt: skip
    busy = machine_busy()
    if busy is not None and busy > 0.25:
        print(f"warning: {busy:.2f} cores were busy before the benchmark started; the figures will be "
              "lower than on an idle machine", flush=True)  # fmt: skip
    database_recreate(database_url, args.database)
    migrate(env)
    extra: dict[str, Any] = {
        "broker": broker.description,
        "listeners": args.listeners,
        "seconds": args.seconds,
        "cpus": os.cpu_count(),
        "machine_busy_before": busy,
    }
    loop: Loop | None = None

    def measures() -> Any:
        nonlocal loop
        loop = Loop(args, broker, env)
        loop.births()
        for kind, rate in plan(args):
            yield lambda k=kind, r=rate: loop.measure(k, r) if loop else None

    def cleanup() -> None:
        if loop is not None:
            loop.close()
        queues_clear(env["REDIS_URL"])
        database_recreate(database_url, args.database, drop_only=True)
        broker.stop()

    def after() -> None:  # the rows that are no run of the table, before the cleanup
        assert loop is not None
        extra["first_after_restart_ms"] = loop.first_after_restart()
        print(f"  first value after a listener restart, to calculated: {extra['first_after_restart_ms']} ms",
              flush=True)  # fmt: skip
        if args.rest_seconds > 0:
            extra["rest_p99_ms_at_2000"], extra["rest_observations"] = loop.rest_p99()
        else:
            extra["rest_p99_ms_at_2000"], extra["rest_observations"] = None, 0
        print(
            f"  REST batches at {REST_RATE:,} obs/s offered: p99 {extra['rest_p99_ms_at_2000']} ms",
            flush=True,
        )
        loop.listeners_stop()
        extra["ceiling_messages_per_s"] = ceiling(broker, loop.ddata, args.ceiling_seconds)
        extra["ceiling_json_messages_per_s"] = ceiling(broker, loop.json_message, args.ceiling_seconds)
        print(f"  ceiling, one bare subscriber: {extra['ceiling_messages_per_s']:,} DDATA messages/s, "
              f"{extra['ceiling_json_messages_per_s']:,} JSON messages/s", flush=True)  # fmt: skip

    def all_measures() -> Any:
        yield from measures()
        yield lambda: after()

    def row(done: list[Run | None]) -> list[str]:
        return table([r for r in done if r is not None]) if done[-1] is not None else ["(the rows above)"]

    measured = runs_measured(all_measures(), row, cleanup)
    if isinstance(measured, int):
        return measured
    runs = [r for r in measured if isinstance(r, Run)]
    print()
    for line in table(runs):
        print(line)
    result = summary(runs, extra)
    print(
        f"first after restart {cell(result.get('first_after_restart_ms'), 0)} ms; REST p99 at 2,000/s "
        f"{cell(result.get('rest_p99_ms_at_2000'), 0)} ms; "
        f"ceiling {cell(result['ceiling_messages_per_s'], 0)} "
        f"DDATA/s (ratio {result['ceiling_ratio']})"
    )
    if result["lost"]:
        print(f"LOST: {result['lost']:,} measurements acknowledged by the broker were never stored")
    if args.profile is not None:
        profile_report(args.profile)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

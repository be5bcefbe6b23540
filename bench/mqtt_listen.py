"""MQTT ingestion benchmark: JSON messages at fixed rates through `manage.py mqtt_listen` into stored rows.

Run from the repository root against real services (never the embedded ones):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/8 \\
        MQTT_URL=mqtt://127.0.0.1:1883 .venv/bin/python bench/mqtt_listen.py \\
        [--rates 500,1000,2000] [--seconds 10] [--protocols 3.1.1,5]

The broker: a private Mosquitto (`mosquitto` on the PATH or /usr/sbin/mosquitto) on a free
port, with Mosquitto's defaults but for `max_queued_messages 1000000`, when one is installed;
else (or with --broker url) the broker of MQTT_URL, with whatever settings it has. The
default queue of 1,000 messages per client drops the rest when the listener falls behind:
loss the benchmark would count, but a broker's setting rather than the listener's. The
table header says which broker was used. --broker-inflight sets the private broker's
max_inflight_messages (Mosquitto's default, 20: the QoS 1 messages sent to a client and not
yet acknowledged; the listener acknowledges a batch once it is stored).

For each run the benchmark (re)creates the database `openspc_mqtt_bench` like
bench/ingest_rest.py (its own, marked, dropped at the end) and migrates it; sets up the
plant of bench/ingest_common.py with one characteristic (n = 5, an open lot) and feeds it
from one JSON topic (data source "tag"); starts `manage.py mqtt_listen` with a client id of
its own and MQTT_PROTOCOL of the run, waits until a warm-up message is stored, then
publishes with paho-mqtt (MQTT 3.1.1 for every run, so only the listener's protocol
changes; QoS 1, max_inflight_messages_set(1000)) `{"value": x, "id": "...", "ts": "<the
publish time, ISO 8601 with microseconds>"}` at a fixed rate for --seconds. MQTT 3.1.1
runs every rate; MQTT 5 runs the highest one.

No Celery workers run: this measures the bridge up to *stored*, a `received` observation
row committed by the listener (what it acknowledges to the broker after). The
observations.process tasks the listener queues on commit stay in Redis and are deleted
after each run, so REDIS_URL must name a Redis database nothing else uses (or pass
--purge-queues).

Definitions, per run:

* acked: messages the broker acknowledged to the publisher (PUBACK).
* stored: observation rows with source "mqtt" from the timed messages.
* stored/s: stored / (first publish -> the last row's received_at).
* latency: Observation.received_at - the payload's ts (observed_at). received_at is taken
  in the listener's insert, just before the commit, so a latency is short by the commit
  (a few ms). Publisher and listener read the same clock.
* backlog: published - stored when the last message has been published; drain: from then
  until the last row's received_at. kept up: nothing lost and drained within 1 s.
* lost: acked - stored once no new row arrived for --stall seconds. Reported, never hidden.
* cores: CPU seconds / wall seconds from the first publish to the end of the drain, from
  /proc/<pid>/stat (utime + stime): the listener, its PostgreSQL server process, the
  private broker, this benchmark (the publisher), and other (the rest of the machine).

Prints a table for people; the LAST line is one line of JSON: stored_per_s, p50_ms, p99_ms
and kept_up per run label (`<rate>` for MQTT 3.1.1, `<rate>_mqtt5`), lost (all runs),
the broker, and every run under "runs".
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest_common import (  # noqa: E402
    CENTER,
    SIGMA,
    BenchError,
    bench_database_url,
    database_recreate,
    django_start,
    migrate,
    plant_setup,
    queues_check,
    queues_clear,
    services_check,
)
from bench.ingest_rest import (  # noqa: E402
    LOG_DIR,
    cpu_seconds,
    machine_busy,
    machine_busy_seconds,
    percentile,
    runs_measured,
)
from openspc.embedded import free_port, wait_for_port  # noqa: E402

TOPIC = "bench/line-1/diameter"
APP_NAME = "openspc-mqtt-bench-listener"  # PGAPPNAME of the listener: finds its PostgreSQL process
KEPT_UP_S = 1.0  # drained within this long after the last publish


# --- The broker -----------------------------------------------------------------------------


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None


class Broker:
    """The private Mosquitto (started and stopped here) or the broker of MQTT_URL."""

    def __init__(self, *, private: bool, inflight: int) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.inflight = inflight
        if not private:
            self.url = os.environ.get("MQTT_URL", "").strip() or "mqtt://127.0.0.1:1883"
            self.description = f"the broker of MQTT_URL ({self.url}; its own settings)"
            return
        binary = mosquitto_binary()
        assert binary is not None
        port = free_port()
        config = LOG_DIR / "mqtt-mosquitto.conf"
        config.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"max_queued_messages 1000000\nmax_inflight_messages {inflight}\n"
        )
        log = LOG_DIR / "mqtt-mosquitto.log"
        with log.open("wb") as out:
            self.process = subprocess.Popen([binary, "-c", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)  # fmt: skip
        wait_for_port(port, self.process, "mosquitto", log)
        version = subprocess.run([binary, "-h"], capture_output=True, text=True, check=False).stdout
        self.url = f"mqtt://127.0.0.1:{port}"
        self.description = (f"private {version.splitlines()[0] if version else 'mosquitto'} on port {port}, "
                            f"max_queued_messages 1000000, max_inflight_messages {inflight}")  # fmt: skip

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or 1883

    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def session_clear(self, client_id: str) -> None:
        """A clean connection under the listener's client id ends its persistent session, so a
        shared broker keeps nothing of the benchmark."""
        import paho.mqtt.client as mqtt

        client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             clean_session=True)  # fmt: skip
        try:
            client.connect(*self.address)
            client.loop_start()
            time.sleep(0.3)
            client.disconnect()
            client.loop_stop()
        except OSError:
            pass

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


# --- The listener ---------------------------------------------------------------------------


class Listener:
    """`manage.py mqtt_listen` on the bench database, in a session of its own."""

    def __init__(self, env: dict[str, str], *, broker: Broker, protocol: str, label: str) -> None:
        self.client_id = f"openspc-bench-{label}-{secrets.token_hex(3)}"
        self.log = LOG_DIR / f"mqtt-{label}-listener.log"
        env = {**env, "MQTT_URL": broker.url, "MQTT_CLIENT_ID": self.client_id, "MQTT_PROTOCOL": protocol,
               "PGAPPNAME": APP_NAME}  # fmt: skip
        with self.log.open("wb") as out:
            self.process = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "mqtt_listen"], env=env,
                                            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)  # fmt: skip

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_connected(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while "broker connected" not in self.text():
            self.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"the listener did not connect in {timeout:.0f} s; see {self.log}")
            time.sleep(0.1)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchError(f"the listener exited with code {self.process.returncode}; see {self.log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: stores and acknowledges what it holds, disconnects
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def backend_pid(database: str) -> int | None:
    """The PostgreSQL server process of the listener's connection (it keeps one)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
                       [APP_NAME, database])  # fmt: skip
        rows = cursor.fetchall()
    return rows[0][0] if len(rows) == 1 else None


# --- The publisher ----------------------------------------------------------------------------


class Publisher:
    """paho-mqtt, QoS 1, up to 1,000 messages in flight; counts the broker's acknowledgements."""

    def __init__(self, broker: Broker) -> None:
        import paho.mqtt.client as mqtt

        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"openspc-bench-publisher-{secrets.token_hex(3)}")  # fmt: skip
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)  # unlimited: a message waits in paho, never dropped
        self.acked = 0
        self.client.on_publish = self._on_publish
        self.client.connect(*broker.address)
        self.client.loop_start()
        self.rng = random.Random(7)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self.acked += 1  # paho's network thread only

    def publish(self, key: str) -> None:
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")
        payload = json.dumps({"value": round(self.rng.gauss(CENTER, SIGMA), 4), "id": key, "ts": now})
        info = self.client.publish(TOPIC, payload, qos=1)
        if info.rc != 0:
            raise BenchError(f"paho refused to publish: rc {info.rc}")

    def publish_at(self, rate: float, seconds: float, prefix: str) -> tuple[int, float, float]:
        """Publish `rate` messages a second for `seconds`, each at its slot (late ones at once):
        the count, and the wall-clock times of the first and the last publish."""
        count = int(rate * seconds)
        start = time.monotonic()
        first = time.time()
        for index in range(count):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.publish(f"{prefix}-{index}")
        return count, first, time.time()

    def wait_acked(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.acked < count and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --- What is stored -----------------------------------------------------------------------------


def stored_count(since: datetime.datetime) -> int:
    from apps.observations.models import Observation

    return Observation.objects.filter(source="mqtt", observed_at__gte=since).count()


def stored_times(since: datetime.datetime) -> list[tuple[float, float]]:
    """(received_at, received_at - observed_at) in seconds, per stored row of the run."""
    from apps.observations.models import Observation

    rows = Observation.objects.filter(source="mqtt", observed_at__gte=since).values_list(
        "received_at", "observed_at"
    )
    return [(received.timestamp(), (received - observed).total_seconds()) for received, observed in rows]


def warm_up(publisher: Publisher, listener: Listener, timeout: float = 30) -> None:
    """Publish until a message is stored: the listener is connected and subscribed."""
    since = datetime.datetime.now(datetime.UTC)
    deadline = time.monotonic() + timeout
    index = 0
    while stored_count(since) == 0:
        listener.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"no warm-up message was stored in {timeout:.0f} s; see {listener.log}")
        publisher.publish(f"warm-{index}")
        index += 1
        time.sleep(0.2)


# --- One run ----------------------------------------------------------------------------------


@dataclass
class Run:
    protocol: str
    rate: int
    published: int
    published_per_s: float
    acked: int
    stored: int
    stored_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    backlog: int
    drain_s: float
    lost: int
    kept_up: bool
    dead_letters: int
    cores: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.rate}" if self.protocol == "3.1.1" else f"{self.rate}_mqtt5"


class Cpu:
    """CPU seconds of each part so far; two snapshots give the cores each kept busy."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.parts: dict[str, float] = {"bench": sum(os.times()[:2])}
        try:
            for name, pid in pids.items():
                if pid is not None:
                    self.parts[name] = cpu_seconds(pid)
            self.parts["machine"] = machine_busy_seconds()
        except (OSError, ValueError, IndexError):  # no Linux /proc: only the benchmark's own time
            self.parts = {"bench": self.parts["bench"]}

    def cores(self, later: Cpu, seconds: float) -> dict[str, float]:
        used = {name: later.parts[name] - self.parts[name] for name in self.parts if name in later.parts}
        if "machine" in used:
            used["other"] = used["machine"] - sum(v for k, v in used.items() if k != "machine")
        return {name: round(value / seconds, 2) for name, value in used.items()}


def wait_drained(
    listener: Listener, since: datetime.datetime, acked: int, stall: float, timeout: float
) -> None:
    """Wait until every acknowledged message is stored, or none arrived for `stall` seconds."""
    stored = stored_count(since)
    last_change = time.monotonic()
    deadline = time.monotonic() + timeout
    while stored < acked and time.monotonic() - last_change < stall and time.monotonic() < deadline:
        listener.check_alive()
        time.sleep(0.05)
        now_stored = stored_count(since)
        if now_stored != stored:
            stored, last_change = now_stored, time.monotonic()


@dataclass(frozen=True)
class Published:
    """What the publisher did in a run: wall-clock times of its first and last publish."""

    rate: int
    count: int
    first: float
    last: float
    acked: int
    backlog: int  # published - stored when the last message was published


def summarise(
    protocol: str, published: Published, times: Sequence[tuple[float, float]], dead_letters: int,
    cores: dict[str, float],
) -> Run:  # fmt: skip
    """The run's figures (see the module docstring) from the stored rows' (received_at, latency)."""
    p = published
    last_stored = max(received for received, _ in times)
    latencies = [latency * 1000 for _, latency in times]
    drain = max(0.0, last_stored - p.last)
    lost = max(0, p.acked - len(times))
    return Run(
        protocol=protocol, rate=p.rate, published=p.count,
        published_per_s=round(p.count / (p.last - p.first), 1) if p.last > p.first else 0.0, acked=p.acked,
        stored=len(times), stored_per_s=round(len(times) / (last_stored - p.first), 1),
        p50_ms=round(percentile(latencies, 50), 1), p99_ms=round(percentile(latencies, 99), 1),
        max_ms=round(max(latencies), 1), backlog=p.backlog, drain_s=round(drain, 2), lost=lost,
        kept_up=lost == 0 and p.acked == p.count and drain <= KEPT_UP_S, dead_letters=dead_letters,
        cores=cores,
    )  # fmt: skip


def measure(args: argparse.Namespace, broker: Broker, listener: Listener, rate: int, protocol: str) -> Run:
    from apps.mqtt_bridge.models import DeadLetter

    publisher = Publisher(broker)
    try:
        warm_up(publisher, listener)
        time.sleep(0.5)  # the warm-up's last messages
        pids = {
            "listener": listener.process.pid,
            "postgres": backend_pid(args.database),
            "broker": broker.pid(),
        }
        since = datetime.datetime.now(datetime.UTC)
        acked_before = publisher.acked
        before = Cpu(pids)
        started = time.monotonic()
        count, first, last = publisher.publish_at(rate, args.seconds, secrets.token_hex(3))
        backlog = count - stored_count(since)
        publisher.wait_acked(acked_before + count, args.timeout)
        acked = publisher.acked - acked_before
        wait_drained(listener, since, acked, args.stall, args.timeout)
        cores = before.cores(Cpu(pids), time.monotonic() - started)
    finally:
        publisher.close()
    times = stored_times(since)
    if not times:
        raise BenchError(f"nothing of the {count} messages at {rate}/s was stored; see {listener.log}")
    published = Published(rate=rate, count=count, first=first, last=last, acked=acked, backlog=backlog)
    return summarise(protocol, published, times, DeadLetter.objects.count(), cores)


def plant_feed() -> None:
    """The plant of ingest_common, its one characteristic fed by TOPIC, its lot open."""
    from apps.config import services as config
    from apps.config.models import Characteristic
    from apps.observations.choices import LOT_WORKING
    from apps.observations.models import Lot

    plant = plant_setup(characteristics=1)
    characteristic = Characteristic.objects.get(pk=plant.characteristic_ids[0])
    config.characteristic_update(characteristic=characteristic, data={"data_source": "tag", "tag": TOPIC})
    if Lot.objects.get(pk=plant.lot_id).status not in LOT_WORKING:
        raise BenchError(f"lot {plant.lot_number} is not open: the listener would dead-letter every value")


def run_once(args: argparse.Namespace, broker: Broker, env: dict[str, str], admin_url: str, rate: int,
             protocol: str) -> Run:  # fmt: skip
    from django.db import connections

    database_recreate(admin_url, args.database)
    migrate(env)
    plant_feed()
    label = f"{rate}-v{protocol}"
    listener = Listener(env, broker=broker, protocol=protocol, label=label)
    try:
        listener.wait_connected()
        return measure(args, broker, listener, rate, protocol)
    finally:
        listener.stop()
        broker.session_clear(listener.client_id)
        queues_clear(env["REDIS_URL"])  # the observations.process tasks nobody consumes
        connections.close_all()


# --- Output -------------------------------------------------------------------------------------


CPU_PARTS = ("listener", "postgres", "broker", "bench", "other", "machine")


def table(runs: Sequence[Run]) -> list[str]:
    lines = [f"{'MQTT':>5}{'rate':>6}{'acked':>8}{'stored':>8}{'stored/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
             f"{'max ms':>9}{'backlog':>8}{'drain s':>8}{'lost':>6}  kept up  cores:"
             + "".join(f"{p:>9}" for p in CPU_PARTS)]  # fmt: skip
    for r in runs:
        cores = "".join(f"{r.cores[p]:>9.2f}" if p in r.cores else f"{'':>9}" for p in CPU_PARTS)
        lines.append(f"{r.protocol:>5}{r.rate:>6}{r.acked:>8,}{r.stored:>8,}{r.stored_per_s:>9,.0f}"
                     f"{r.p50_ms:>9,.1f}{r.p99_ms:>9,.1f}{r.max_ms:>9,.0f}{r.backlog:>8,}{r.drain_s:>8.2f}"
                     f"{r.lost:>6,}  {'yes' if r.kept_up else 'NO':<7}       {cores}")  # fmt: skip
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rates", default="500,1000,2000", help="messages/s to publish, e.g. 500,1000,2000")
    parser.add_argument("--seconds", type=float, default=10.0, help="publish for this long per run")
    parser.add_argument("--protocols", default="3.1.1,5", help="listener protocols; 5 runs the highest rate")
    parser.add_argument("--broker", choices=["auto", "private", "url"], default="auto",
                        help="private Mosquitto (auto: when installed) or MQTT_URL's broker")  # fmt: skip
    parser.add_argument("--broker-inflight", type=int, default=20,
                        help="the private broker's max_inflight_messages (Mosquitto's: 20)")  # fmt: skip
    parser.add_argument(
        "--stall", type=float, default=15.0, help="seconds without a new row: the rest is lost"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the backlog")
    parser.add_argument("--database", default="openspc_mqtt_bench", help="database to create and drop")
    parser.add_argument("--purge-queues", action="store_true", help="delete messages already queued")
    args = parser.parse_args(argv)
    try:
        args.rate_list = [int(part) for part in args.rates.split(",") if part.strip()]
    except ValueError:
        parser.error(f"--rates takes numbers separated by commas; got {args.rates!r}")
    args.protocol_list = [part.strip() for part in args.protocols.split(",") if part.strip()]
    if not args.rate_list or min(args.rate_list) < 1 or args.seconds <= 0:
        parser.error("--rates must be at least 1 message/s and --seconds positive")
    if not args.protocol_list or not set(args.protocol_list) <= {"3.1.1", "5"}:
        parser.error(f"--protocols takes 3.1.1 and/or 5; got {args.protocols!r}")
    if args.broker == "private" and mosquitto_binary() is None:
        parser.error("--broker private: no mosquitto binary found")
    return args


def plan(args: argparse.Namespace) -> list[tuple[int, str]]:
    """(rate, protocol) per run: every rate with MQTT 3.1.1, the highest with MQTT 5."""
    runs = []
    for protocol in args.protocol_list:
        rates = args.rate_list if protocol == "3.1.1" else [max(args.rate_list)]
        runs += [(rate, protocol) for rate in rates]
    return runs


def summary(
    runs: Sequence[Run], args: argparse.Namespace, broker: Broker, busy: float | None
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for r in runs:
        result[f"stored_per_s_{r.label}"] = r.stored_per_s
        result[f"p50_ms_{r.label}"] = r.p50_ms
        result[f"p99_ms_{r.label}"] = r.p99_ms
        result[f"kept_up_{r.label}"] = r.kept_up
    result.update(lost=sum(r.lost for r in runs), broker=broker.description, seconds=args.seconds,
                  cpus=os.cpu_count(), machine_busy_before=busy, runs=[asdict(r) for r in runs])  # fmt: skip
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    database_url, redis_url = services_check()
    queues_check(redis_url, purge=args.purge_queues)
    env = django_start(database_url=bench_database_url(database_url, args.database))
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    private = args.broker == "private" or (args.broker == "auto" and mosquitto_binary() is not None)
    broker = Broker(private=private, inflight=args.broker_inflight)
    print(f"MQTT listener benchmark: JSON on one topic, QoS 1, {args.seconds:g} s per rate, no Celery "
          f"workers (up to stored); broker: {broker.description}; Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; logs in {LOG_DIR}", flush=True)  # fmt: skip
    busy = machine_busy()
    if busy is not None and busy > 0.25:
        print(f"warning: {busy:.2f} cores were busy before the benchmark started; the figures will be "
              "lower than on an idle machine", flush=True)  # fmt: skip

    def cleanup() -> None:
        database_recreate(database_url, args.database, drop_only=True)
        broker.stop()

    measures = (lambda r=rate, p=protocol: run_once(args, broker, env, database_url, r, p)
                for rate, protocol in plan(args))  # fmt: skip
    measured = runs_measured(measures, table, cleanup)
    if isinstance(measured, int):
        return measured
    runs = measured
    print()
    for line in table(runs):
        print(line)
    lost = sum(r.lost for r in runs)
    if lost:
        print(f"LOST: {lost:,} messages acknowledged by the broker were never stored")
    print(json.dumps(summary(runs, args, broker, busy), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the MQTT bridge tests share: a listener process, a test subscriber and publisher, and a
private Mosquitto for the tests that need broker settings of their own."""

import os
import pwd
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from django.conf import settings

from apps.config import services as config_services
from apps.config.models import Characteristic
from openspc.embedded import free_port, wait_for_port
from tests.calculations.api_helpers import window_forget
from tests.support.workers import BASE_DIR, Started, database_url_for_workers

LOG_TAIL = 4000


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass(frozen=True)
class Tls:
    """A CA to trust, and a certificate with its key to show (the broker's, or a client's)."""

    ca: Path
    cert: Path
    key: Path


def broker_address(url: str | None = None) -> tuple[str, int]:
    parts = urlsplit(url or settings.MQTT_URL)
    return parts.hostname or "127.0.0.1", parts.port or 1883


class ListenerProcess(Started):
    """`manage.py mqtt_listen` on the test database; a context manager that stops it on exit."""

    def __init__(
        self, *, log_dir: Path, url: str | None = None, client_id: str | None = None, **env: str
    ) -> None:
        self.url = url or settings.MQTT_URL
        self.client_id = client_id or f"test-listen-{uuid.uuid4().hex[:8]}"
        self.log = log_dir / f"{self.client_id}.log"
        self.env = {
            **os.environ, "DATABASE_URL": database_url_for_workers(), "MQTT_URL": self.url,
            "MQTT_CLIENT_ID": self.client_id, "MQTT_RELOAD_SECONDS": "1", "MQTT_PUBLISH_INTERVAL_MS": "100",
            **env,
        }  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, *, ready_within: float = 30.0, connected: bool = True) -> None:
        """Start and wait until it is ready and (unless `connected` is off) connected to the broker."""
        self.starts += 1
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(BASE_DIR / "manage.py"), "mqtt_listen"],
                env=self.env, cwd=BASE_DIR, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_until(
            lambda: self.log_text().count("INFO openspc.mqtt: ready") >= self.starts or not self.alive(),
            timeout=ready_within, what="the listener to be ready",
        )  # fmt: skip
        assert self.alive(), self.log_text()
        if not connected:
            return
        wait_until(lambda: self.log_text().count("broker connected") >= self.starts, timeout=10,
                   what="the listener to connect")  # fmt: skip

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last acknowledgement."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, *, within: float = 20.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("the listener did not stop on SIGTERM\n" + self.log_text()) from None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self) -> str:
        return self.log_text()[-LOG_TAIL:]


class Client:
    """A paho client for the test: publishes with QoS 1 (counting the broker's acknowledgements) and
    collects what arrives on its subscriptions."""

    def __init__(
        self, *, url: str | None = None, subscribe: Iterable[str] = (), tls: Tls | None = None
    ) -> None:
        host, port = broker_address(url)
        self.received: list[mqtt.MQTTMessage] = []
        self.acknowledged: set[int] = set()
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:10]}"
        )
        parts = urlsplit(url or settings.MQTT_URL)
        if parts.username:
            self.client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
        if tls is not None:
            self.client.tls_set(ca_certs=str(tls.ca), certfile=str(tls.cert), keyfile=str(tls.key))
        self.client.max_inflight_messages_set(100)
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.connect(host, port)
        self.client.loop_start()
        topics = list(subscribe)
        if topics:
            self.client.subscribe([(topic, 1) for topic in topics])
            assert self._subscribed.wait(10), "the test subscriber was not subscribed"

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append(message)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._lock:
            self.acknowledged.add(mid)

    def publish(self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False) -> int:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos:
            info.wait_for_publish(timeout=10)
        return info.mid

    def publish_all(
        self, messages: Iterable[tuple[str, bytes | str]], *, rate: float | None = None, timeout: float = 30
    ) -> None:
        """Publish with QoS 1, `rate` messages per second (None: as fast as possible), and wait until
        the broker acknowledged every one. (A burst faster than the listener stores overflows
        Mosquitto's per-client queue, max_queued_messages, 1,000 by default: docs/mqtt.md.)"""
        infos = []
        start = time.monotonic()
        for index, (topic, payload) in enumerate(messages):
            if rate:
                time.sleep(max(0.0, start + index / rate - time.monotonic()))
            infos.append(self.client.publish(topic, payload, qos=1))
        for info in infos:
            info.wait_for_publish(timeout=timeout)
            assert info.is_published(), "the broker did not acknowledge a message"

    def messages(self, prefix: str = "") -> list[mqtt.MQTTMessage]:
        with self._lock:
            return [m for m in self.received if m.topic.startswith(prefix)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class PrivateMosquitto:
    """A Mosquitto of the test's own on a free port, for broker settings the shared one lacks: a
        queue for an offline listener's session large enough for a kill at 500 messages/s; TLS with
        client certificates (`tls`: the broker's certificate, and the CA its clients' must be signed
        by); users and passwords (`password_file`, made by mosquitto_passwd; no anonymous clients);
    `options` replace or add settings (e.g. a tiny max_queued_messages, so that it drops)."""

    def __init__(
        self,
        *,
        log_dir: Path,
        tls: Tls | None = None,
        password_file: Path | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        self.log_dir = log_dir
        self.tls = tls
        self.password_file = password_file
        self.options = options or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.url = ""

    @staticmethod
    def available() -> bool:
        return shutil.which("mosquitto") is not None or Path("/usr/sbin/mosquitto").exists()

    def _config(self, port: int) -> str:
        lines = [f"listener {port} 127.0.0.1"]
        if self.tls is not None:  # settings of the listener above
            lines += [f"cafile {self.tls.ca}", f"certfile {self.tls.cert}", f"keyfile {self.tls.key}",
                      "require_certificate true"]  # fmt: skip
        if self.password_file is not None:
            lines += [f"password_file {self.password_file}", "allow_anonymous false"]
        else:
            lines += ["allow_anonymous true"]
        options = {"persistence": "false", "max_queued_messages": "1000000", "max_inflight_messages": "100",
                   # Started as root, Mosquitto would become user mosquitto, who cannot read the test's files.
                   "user": pwd.getpwuid(os.getuid()).pw_name, **self.options}  # fmt: skip
        lines += [f"{name} {value}" for name, value in options.items()]
        return "\n".join(lines) + "\n"

    def __enter__(self) -> "PrivateMosquitto":
        self.start(free_port())
        return self

    def start(self, port: int) -> None:
        config = self.log_dir / f"mosquitto-{port}.conf"
        config.write_text(self._config(port))
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        log = self.log_dir / f"mosquitto-{port}.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen([binary, "-c", str(config)], stdout=out, stderr=subprocess.STDOUT)
        wait_for_port(port, self.process, "mosquitto", log)
        self.port = port
        self.url = f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{port}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def __exit__(self, *exc: object) -> None:
        self.stop()


def broker_version(url: str) -> str:
    """What the broker says it is ($SYS/broker/version: "mosquitto version 2.0.11"), or "" if it
    does not say within two seconds."""
    client = Client(url=url, subscribe=["$SYS/broker/version"])
    try:
        wait_until(lambda: bool(client.messages("$SYS/broker/version")), timeout=2, what="the version")
    except AssertionError:
        return ""
    finally:
        client.close()
    return bytes(client.messages("$SYS/broker/version")[0].payload).decode(errors="replace")


def speaks_mqtt5(url: str) -> bool:
    """Whether the broker accepts an MQTT 5 CONNECT."""
    host, port = broker_address(url)
    accepted = threading.Event()
    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"test-v5-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    client.on_connect = lambda c, u, flags, reason, props: reason.is_failure or accepted.set()
    try:
        client.connect(host, port)
    except OSError:
        return False
    client.loop_start()
    try:
        return accepted.wait(5)
    finally:
        client.disconnect()
        client.loop_stop()


def keeps_sessions(url: str) -> bool:
    """Whether the broker keeps a session (clean session off) once its client disconnects, with what
    is published to its subscriptions meanwhile."""
    host, port = broker_address(url)
    client_id, topic = f"test-session-{uuid.uuid4().hex[:8]}", f"test/session/{uuid.uuid4().hex[:8]}"

    def session(*, clean: bool, subscribe: bool = False, wait: float = 0) -> list[mqtt.MQTTMessage]:
        received: list[mqtt.MQTTMessage] = []
        ready = threading.Event()
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean
        )
        client.on_message = lambda c, u, message: received.append(message)
        client.on_subscribe = lambda *args: ready.set()
        client.connect(host, port)
        client.loop_start()
        if subscribe:
            client.subscribe(topic, 1)
            assert ready.wait(5), "the probe was not subscribed"
        time.sleep(wait)
        client.disconnect()
        client.loop_stop()
        return received

    session(clean=False, subscribe=True)
    publisher = Client(url=url)
    publisher.publish_all([(topic, b"kept?")])
    publisher.close()
    kept = session(clean=False, wait=1.0)
    session(clean=True)  # leaves no session behind
    return bool(kept)


def fed_by(plant: Any, *, source: str, tag: str, subgroup_size: int = 1) -> Characteristic:
    """The plant's ring diameter fed by `tag` (an MQTT topic, or a Sparkplug metric name)."""
    dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
    window_forget(dia)
    return config_services.characteristic_update(
        characteristic=dia,
        data={"data_source": source, "tag": tag, "subgroup_size": subgroup_size, "site": "Plant 1",
              "area": "Machining", "line": "Line 1", "cell": "Cell 1"},
    )  # fmt: skip

"""`manage.py mqtt_listen` against what a production broker asks of it.

* A persistent session (MQTT 3.1.1 and 5): what is published while the listener is stopped
  is stored, once, when it comes back under the same client id; a topic a characteristic left
  while it was stopped is dropped from the session.
* mqtts:// with a CA, a client certificate and a password; a wrong password is refused by the
  broker, and the listener stays up and stores nothing.
* Two listeners in one shared subscription group split the traffic: every message stored
  once, and both took part.
* A characteristic's new topic is subscribed (and the old one dropped) without a restart.

Mosquitto where the test needs it: a private one when the binary is installed, else the
configured broker if it is Mosquitto; the tests that need Mosquitto skip otherwise. The embedded
broker (amqtt) keeps no session for its (anonymous) clients and speaks no MQTT 5.
"""

import json
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db.models import Count, QuerySet

from apps.config import services as config_services
from apps.config.choices import DataSource
from apps.config.models import Characteristic
from apps.mqtt_bridge.models import DeadLetter
from apps.observations.choices import ObservationStatus
from apps.observations.models import Observation
from tests.support.mqtt import (
    Client,
    ListenerProcess,
    PrivateMosquitto,
    Tls,
    broker_version,
    fed_by,
    keeps_sessions,
    speaks_mqtt5,
    wait_until,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

NO_MOSQUITTO = "the mosquitto binary is missing (a fresh machine without Mosquitto)"


@contextmanager
def broker(tmp_path: Path, *, mosquitto: str = "") -> Iterator[str]:
    """The URL of a broker of the test's own (Mosquitto) if the binary is there, else the configured
    one; if `mosquitto` names what the test needs of Mosquitto, skip when that one is not."""
    if PrivateMosquitto.available():
        with PrivateMosquitto(log_dir=tmp_path) as private:
            yield private.url
        return
    version = broker_version(settings.MQTT_URL)
    if mosquitto and not version.startswith("mosquitto"):
        pytest.skip(f"{mosquitto} needs Mosquitto; the broker is {version or 'not Mosquitto'}")
    yield settings.MQTT_URL


def stored(characteristic: Characteristic) -> QuerySet[Observation]:
    """The characteristic's observations (they are linked to it only once confirmed)."""
    c = characteristic
    return Observation.objects.filter(test_id=c.test_id, lot__product_id=c.product_id)


def skip_unless_sessions_kept(url: str) -> None:
    if not keeps_sessions(url):
        pytest.skip(
            f"the broker at {url} keeps no session once its client disconnects (the embedded amqtt "
            "broker takes every client for anonymous, and forgets anonymous sessions)"
        )


def received(characteristic: Characteristic) -> list[Observation]:
    """Stored and waiting for the pipeline (no Celery worker runs here)."""
    return list(stored(characteristic).filter(status=ObservationStatus.RECEIVED))


def numbered(topic: str, count: int, prefix: str) -> list[tuple[str, str]]:
    return [(topic, json.dumps({"value": 74 + k / 10000, "id": f"{prefix}-{k}"})) for k in range(count)]


def new_topic() -> str:
    return f"test/{uuid.uuid4().hex[:8]}/line1/cell1/ring-diameter"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_a_persistent_session_keeps_what_arrives_while_the_listener_is_stopped(plant, tmp_path, protocol):
    topic = new_topic()
    dia = fed_by(plant, source=DataSource.TAG, tag=topic)
    messages = numbered(topic, 50, "offline")
    with broker(tmp_path) as url:
        if protocol == "5" and not speaks_mqtt5(url):
            pytest.skip(f"the broker at {url} does not speak MQTT 5 (the embedded amqtt broker does not)")
        skip_unless_sessions_kept(url)
        with ListenerProcess(log_dir=tmp_path, url=url, MQTT_PROTOCOL=protocol) as listener:
            assert listener.stop() == 0
            assert "openspc.mqtt: stopped" in listener.log_text()
            publisher = Client(url=url)
            publisher.publish_all(messages)
            publisher.close()
            assert received(dia) == []
            listener.start()
            wait_until(lambda: len(received(dia)) >= 50, timeout=30, what="the 50 messages stored")
            time.sleep(1)  # a message delivered twice would be stored by now
            assert listener.stop() == 0

    rows = received(dia)
    assert sorted(row.values[0] for row in rows) == sorted(json.loads(p)["value"] for _, p in messages)
    assert len({row.idempotency_key for row in rows}) == 50
    log = listener.log_text()
    assert f"MQTT {protocol}, client id {listener.client_id}, new session" in log
    assert f"MQTT {protocol}, client id {listener.client_id}, resumed session" in log


def certificates(directory: Path) -> tuple[Tls, Tls]:
    """A CA, the broker's certificate (for 127.0.0.1 and localhost) and a client's, made by
    `openssl`: (the broker's, the client's)."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=OpenSPC test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    for name, extensions in [
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ]:
        (directory / f"{name}.ext").write_text(extensions)
        openssl("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=openspc-{name}")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-out", f"{name}.crt", "-extfile", f"{name}.ext")  # fmt: skip
    ca = directory / "ca.crt"
    return (
        Tls(ca, directory / "server.crt", directory / "server.key"),
        Tls(ca, directory / "client.crt", directory / "client.key"),
    )


@pytest.mark.timeout(120)
def test_tls_with_a_client_certificate_and_a_password(plant, tmp_path):
    if not PrivateMosquitto.available() or not shutil.which("mosquitto_passwd"):
        pytest.skip(NO_MOSQUITTO + ": TLS and passwords need a broker configured by the test")
    server, client = certificates(tmp_path)
    user, password = "spc-listen", "s3cret:p@ss/word"  # needs quoting in a URL
    passwords = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), user, password], check=True)
    topic = new_topic()
    dia = fed_by(plant, source=DataSource.TAG, tag=topic)
    tls_env = {"MQTT_CA_FILE": str(client.ca), "MQTT_CERT_FILE": str(client.cert),
               "MQTT_KEY_FILE": str(client.key)}  # fmt: skip

    with PrivateMosquitto(log_dir=tmp_path, tls=server, password_file=passwords) as mosquitto:
        address = mosquitto.url.removeprefix("mqtts://")
        url = f"mqtts://{user}:{quote(password, safe='')}@{address}"
        publisher = Client(url=url, tls=client)
        with ListenerProcess(log_dir=tmp_path, url=url, **tls_env) as listener:
            publisher.publish_all([(topic, json.dumps({"value": 74.001, "id": "over-tls"}))])
            wait_until(lambda: received(dia), timeout=15, what="the message stored")
            assert listener.stop() == 0
        assert f"broker connected: mqtts://127.0.0.1:{address.split(':')[1]}" in listener.log_text()

        wrong = f"mqtts://{user}:not-the-password@{address}"
        refused = ListenerProcess(log_dir=tmp_path, url=wrong, **tls_env)
        try:
            refused.start(connected=False)
            wait_until(
                lambda: "broker refused the connection" in refused.log_text(),
                timeout=15, what="the refusal logged",
            )  # fmt: skip
            publisher.publish_all([(topic, json.dumps({"value": 74.002, "id": "not-for-them"}))])
            time.sleep(3)  # anything stored would be stored by now
            assert refused.alive()
        finally:
            assert refused.stop() == 0, refused.tail()
            publisher.close()

    assert [row.values for row in received(dia)] == [[74.001]]
    assert "broker connected" not in refused.log_text()
    assert not DeadLetter.objects.exists()


def received_counts(log: str) -> list[int]:
    """The `received N` of each `last minute: ...` line the listener logged."""
    return [int(n) for n in re.findall(r"last minute: .*\breceived (\d+)", log)]


@pytest.mark.timeout(180)
def test_two_listeners_in_a_shared_subscription_split_the_traffic(plant, tmp_path):
    topic = new_topic()
    dia = fed_by(plant, source=DataSource.TAG, tag=topic)
    messages = numbered(topic, 1000, "shared")
    group = f"openspc-{uuid.uuid4().hex[:6]}"
    with (
        broker(tmp_path, mosquitto="a shared subscription ($share)") as url,
        ListenerProcess(log_dir=tmp_path, url=url, MQTT_SHARED_GROUP=group) as first,
        ListenerProcess(log_dir=tmp_path, url=url, MQTT_SHARED_GROUP=group) as second,
    ):
        for listener in (first, second):
            assert f"subscribed: $share/{group}/{topic}" in listener.log_text()
        time.sleep(0.5)  # the SUBSCRIBE follows "broker connected" on the wire
        publisher = Client(url=url)
        publisher.publish_all(messages, rate=500)
        publisher.close()
        wait_until(lambda: stored(dia).count() >= 1000, timeout=60,
                   what="1,000 observations")  # fmt: skip
        time.sleep(1)  # a message delivered twice would be stored by now
        assert first.stop() == 0
        assert second.stop() == 0

    rows = stored(dia)
    assert rows.count() == 1000
    assert not rows.values("idempotency_key").annotate(n=Count("pk")).filter(n__gt=1).exists()
    assert sorted(row.values[0] for row in rows) == sorted(json.loads(p)["value"] for _, p in messages)
    first_n, second_n = sum(received_counts(first.log_text())), sum(received_counts(second.log_text()))
    assert (first_n + second_n, min(first_n, second_n) > 0) == (1000, True), (first_n, second_n)


@pytest.mark.timeout(120)
def test_a_changed_topic_is_subscribed_without_a_restart(plant, tmp_path):
    old, new = new_topic(), new_topic()
    dia = fed_by(plant, source=DataSource.TAG, tag=old)
    publisher = Client()
    try:
        with ListenerProcess(log_dir=tmp_path) as listener:
            config_services.characteristic_update(characteristic=dia, data={"tag": new})
            wait_until(
                lambda: f"subscribed: {new}" in listener.log_text()
                and f"unsubscribed: {old}" in listener.log_text(),
                timeout=10, what="the new topic subscribed and the old one dropped",
            )  # fmt: skip
            publisher.publish_all([(old, json.dumps({"value": 1.0, "id": "old"})),
                                   (new, json.dumps({"value": 74.003, "id": "new"}))])  # fmt: skip
            wait_until(lambda: received(dia), timeout=15, what="the message on the new topic stored")

            config_services.characteristic_update(characteristic=dia, data={"data_source": DataSource.MANUAL})
            wait_until(lambda: f"unsubscribed: {new}" in listener.log_text(), timeout=10,
                       what="the topic dropped")  # fmt: skip
            publisher.publish_all([(new, json.dumps({"value": 2.0, "id": "manual"}))])
            time.sleep(2)  # anything delivered would be stored (or a dead letter) by now
            assert listener.stop() == 0
    finally:
        publisher.close()

    assert [row.values for row in received(dia)] == [[74.003]]
    assert not DeadLetter.objects.exists()  # nothing arrived on a topic no longer subscribed
    assert "characteristics changed: 1 tags added, 1 removed" in listener.log_text()
    assert "characteristics changed: 0 tags added, 1 removed" in listener.log_text()


@pytest.mark.timeout(120)
def test_a_topic_counts_as_subscribed_or_dropped_only_once_the_broker_acknowledges_it(plant, tmp_path):
    """The log says "subscribed"/"unsubscribed" on SUBACK/UNSUBACK, not when the packet leaves:
    until then messages on the topic may still arrive, or not yet (a test that published on the
    word "unsubscribed" got a dead letter under load). The broker is paused so that no
    acknowledgement can come."""
    if not PrivateMosquitto.available():
        pytest.skip(NO_MOSQUITTO)
    old, new = new_topic(), new_topic()
    dia = fed_by(plant, source=DataSource.TAG, tag=old)
    with PrivateMosquitto(log_dir=tmp_path) as private:
        assert private.process is not None
        with ListenerProcess(log_dir=tmp_path, url=private.url) as listener:
            wait_until(lambda: f"subscribed: {old}" in listener.log_text(), timeout=10,
                       what="the topic subscribed")  # fmt: skip
            private.process.send_signal(signal.SIGSTOP)
            try:
                config_services.characteristic_update(characteristic=dia, data={"tag": new})
                wait_until(lambda: "characteristics changed: 1 tags added, 1 removed" in listener.log_text(),
                           timeout=10, what="the change seen")  # fmt: skip
                time.sleep(1)
                seen_paused = listener.log_text()
            finally:
                private.process.send_signal(signal.SIGCONT)
            wait_until(lambda: f"unsubscribed: {old}" in listener.log_text()
                       and f"subscribed: {new}" in listener.log_text(),
                       timeout=10, what="both acknowledged")  # fmt: skip
            assert listener.stop() == 0

    assert (f"subscribed: {new}" in seen_paused, f"unsubscribed: {old}" in seen_paused) == (False, False)


@pytest.mark.timeout(120)
def test_a_topic_changed_while_the_listener_is_stopped_is_dropped_from_its_session(plant, tmp_path):
    old, new = new_topic(), new_topic()
    dia = fed_by(plant, source=DataSource.TAG, tag=old)
    with broker(tmp_path) as url:
        skip_unless_sessions_kept(url)
        with ListenerProcess(log_dir=tmp_path, url=url) as listener:
            assert listener.stop() == 0
            config_services.characteristic_update(characteristic=dia, data={"tag": new})
            listener.start()  # the session still holds the old topic's subscription
            publisher = Client(url=url)
            publisher.publish_all([(old, json.dumps({"value": 1.0, "id": "old-1"}))])
            wait_until(lambda: f"unsubscribed: {old}" in listener.log_text(), timeout=10,
                       what="the old topic dropped")  # fmt: skip
            publisher.publish_all([(old, json.dumps({"value": 2.0, "id": "old-2"})),
                                   (new, json.dumps({"value": 74.004, "id": "new"}))])  # fmt: skip
            wait_until(lambda: received(dia), timeout=15, what="the message on the new topic stored")
            time.sleep(1)  # a message on the old topic would be a dead letter by now
            publisher.close()
            assert listener.stop() == 0

    assert [row.values for row in received(dia)] == [[74.004]]
    (dead,) = DeadLetter.objects.all()  # the one that showed the old subscription, not the next
    assert (dead.topic, json.loads(dead.payload)["id"]) == (old, "old-1")


@pytest.mark.timeout(120)
def test_the_listener_rides_out_a_broker_restart(plant, tmp_path):
    """The broker goes away (and comes back without the session: persistence off): the listener
    stays up, reconnects with backoff, subscribes again, and stores what is published after."""
    if not PrivateMosquitto.available():
        pytest.skip(NO_MOSQUITTO)
    topic = f"test/{uuid.uuid4().hex[:8]}/dia"
    fed_by(plant, source=DataSource.TAG, tag=topic)
    with (
        PrivateMosquitto(log_dir=tmp_path) as mosquitto,
        ListenerProcess(log_dir=tmp_path, url=mosquitto.url) as listener,
    ):
        Client(url=mosquitto.url).publish_all([(topic, json.dumps({"value": 74.0, "id": "before"}))])
        wait_until(lambda: Observation.objects.count() == 1, timeout=15, what="the first value")
        mosquitto.stop()
        wait_until(
            lambda: "broker connection lost" in listener.log_text(), timeout=15, what="the loss noticed"
        )
        time.sleep(2)  # a reconnect attempt or two fail meanwhile
        mosquitto.start(mosquitto.port)
        wait_until(
            lambda: listener.log_text().count("broker connected") == 2, timeout=90, what="the reconnect"
        )
        Client(url=mosquitto.url).publish_all([(topic, json.dumps({"value": 74.1, "id": "after"}))])
        wait_until(lambda: Observation.objects.count() == 2, timeout=15, what="the value after the restart")
        assert listener.alive()
    assert sorted(o.values[0] for o in Observation.objects.all()) == [74.0, 74.1]

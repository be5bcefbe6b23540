"""`python -m openspc.server --processes N`: N daphne processes on one socket bound by a supervisor
(issue #20: one daphne process was the ceiling of one sample per request). They answer, the body limit
holds in each, a process that dies is replaced, and SIGTERM stops them all."""

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from openspc.embedded import free_port, wait_for_port
from openspc.server import Supervisor, _option
from tests.support.mqtt import wait_until
from tests.support.workers import BASE_DIR, database_url_for_workers


class OptionTests:
    @pytest.mark.parametrize(
        ("args", "value", "rest"),
        [
            (["-b", "0.0.0.0", "-p", "80", "app"], "0.0.0.0", ["-p", "80", "app"]),
            (["--bind=::1", "app"], "::1", ["app"]),
            (["app"], None, ["app"]),
        ],
    )
    def test_option(self, args: list[str], value: str | None, rest: list[str]) -> None:
        assert _option(args, ("-b", "--bind")) == (value, rest)

    def test_a_missing_value(self) -> None:
        with pytest.raises(SystemExit, match="-p needs a value"):
            _option(["-p"], ("-p",))

    @pytest.mark.parametrize("other", ["--fd", "-u", "--endpoint=tcp:80"])
    def test_other_endpoints_cannot_go_with_processes(self, other: str) -> None:
        with pytest.raises(SystemExit, match="cannot go with it"):
            Supervisor(2, ["-p", "8000", other, "3", "openspc.asgi:application"])

    def test_the_address(self) -> None:
        supervisor = Supervisor(
            2, ["-b", "0.0.0.0", "--port=8123", "--proxy-headers", "openspc.asgi:application"]
        )
        assert supervisor.address == ("0.0.0.0", 8123)
        assert supervisor.args == ["--proxy-headers", "openspc.asgi:application"]


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _get(port: int, path: str = "/api/schema/", **kwargs: object) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, **kwargs)  # type: ignore[arg-type]
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.timeout(120)
def test_two_processes_answer_one_is_replaced_and_sigterm_stops_all(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url_for_workers(), "ALLOWED_HOSTS": "127.0.0.1"}
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "openspc.server", "--processes", "2", "-b", "127.0.0.1", "-p", str(port),
         "openspc.asgi:application"],
        cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for_port(port, server, "openspc.server", tmp_path / "server.log", timeout=60)
        wait_until(lambda: len(_children(server.pid)) == 2, timeout=30, what="two daphne processes")
        assert [_get(port) for _ in range(10)] == [200] * 10

        # The body limit holds in each process: refused at the headers.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.putrequest("POST", "/api/v1/observations/")
        connection.putheader("Content-Length", str(10**9))
        connection.endheaders()
        assert connection.getresponse().status == 413
        connection.close()

        first = _children(server.pid)
        killed = min(first)
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: len(_children(server.pid) - {killed}) == 2, timeout=30, what="a process replaced")
        assert killed not in _children(server.pid)
        assert [_get(port) for _ in range(10)] == [200] * 10

        children = _children(server.pid)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=40) == 0
        time.sleep(0.5)
        assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]
        text = (tmp_path / "server.log").read_text()
        assert "with 2 daphne processes" in text
        assert f"daphne process {killed} exited with -9; starting another" in text
    finally:
        if server.poll() is None:
            server.kill()
        log.close()

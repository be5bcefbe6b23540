"""Request bodies over MAX_REQUEST_BYTES are refused while they arrive (openspc/server.py).

A real daphne, started the way OpenSPC starts it, on a free loopback port and the test database,
with MAX_REQUEST_BYTES at 1 MiB. The clients are raw sockets, so a test controls exactly what is
sent and sees when the answer comes: a chunked body of 64 MiB, anonymous or with a device token,
is answered 413 long before it is all sent, and daphne keeps no file in the temporary directory
meanwhile; a Content-Length over the limit is answered 413 before any of the body is sent; a
batch under the limit, chunked or not, is stored as before.
"""

import http.client
import json
import os
import select
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from apps.observations.models import Observation
from tests.support.daphne import Daphne

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

LIMIT = 1024 * 1024
DEVICE = "/api/v1/device/observations/"
CHUNK = 64 * 1024
ANSWER_WITHIN = 5.0  # seconds
# openspc.server.LINGER_SECONDS (5), and a margin: that module is not imported here, since
# importing daphne.server installs twisted's reactor in the test process.
CLOSED_WITHIN = 8.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Daphne]:
    with Daphne(log_dir=tmp_path, MAX_REQUEST_BYTES=str(LIMIT)) as web:
        yield web


@dataclass
class Upload:
    status: int | None = None
    answer: bytes = b""
    sent: int = 0
    temp_files: set[str] = field(default_factory=set)  # files of daphne's in the temp directory


def temp_files_of(server: Daphne) -> set[str]:
    """The files in the temporary directory that daphne has open (unlinked ones too), but its log."""
    assert server.process is not None
    temp_dir = os.path.realpath(tempfile.gettempdir())
    found = set()
    for fd in Path(f"/proc/{server.process.pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed since the listing
        if target.startswith(temp_dir + "/") and target != os.path.realpath(server.log):
            found.add(target)
    return found


def status_of(answer: bytes) -> int | None:
    first_line = answer.split(b"\r\n", 1)[0].split()
    return int(first_line[1]) if len(first_line) > 1 else None


def read_answer(sock: socket.socket) -> bytes:
    sock.settimeout(ANSWER_WITHIN)
    answer = b""
    try:
        while b"\r\n\r\n" not in answer or len(answer) < answer.index(b"\r\n\r\n") + 20:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    except TimeoutError:
        pass
    return answer


def head(*, headers: dict[str, str]) -> bytes:
    lines = [f"POST {DEVICE} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunked_upload(server: Daphne, *, total: int, headers: dict[str, str] | None = None) -> Upload:
    """Send `total` bytes as a chunked body until the server answers or closes; what happened."""
    upload = Upload()
    data = b"%x\r\n" % CHUNK + b" " * CHUNK + b"\r\n"
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head(headers={"Transfer-Encoding": "chunked", **(headers or {})}))
        try:
            while upload.sent < total:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server answered (or closed) before the body was all sent
                sock.sendall(data)
                upload.sent += CHUNK
                upload.temp_files |= temp_files_of(server)
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed after its answer; the answer is still to be read
        upload.answer = read_answer(sock)
    upload.status = status_of(upload.answer)
    return upload


def test_an_anonymous_chunked_body_over_the_limit_is_413_before_it_is_sent_and_never_on_disk(
    server: Daphne,
) -> None:
    upload = chunked_upload(server, total=64 * LIMIT)

    assert upload.status == 413, upload.answer[:300]
    assert json.loads(upload.answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "body_too_large"
    assert upload.sent < 16 * LIMIT  # refused at the limit, not after the 64 MiB
    assert upload.temp_files == set()


def test_a_device_chunked_body_over_the_limit_is_413_not_400(server: Daphne, device_token: str) -> None:
    upload = chunked_upload(server, total=64 * LIMIT, headers={"Authorization": f"Device {device_token}"})

    assert upload.status == 413, upload.answer[:300]
    assert upload.sent < 16 * LIMIT
    assert upload.temp_files == set()


@pytest.mark.parametrize("expect_continue", [False, True])
def test_a_content_length_over_the_limit_is_413_before_the_body_is_sent(
    server: Daphne, device_token: str, expect_continue: bool
) -> None:
    headers = {"Content-Length": str(300 * 1024 * 1024), "Authorization": f"Device {device_token}"}
    if expect_continue:
        headers["Expect"] = "100-continue"  # no "100 Continue" for a body that will be refused
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head(headers=headers))
        started = time.monotonic()
        answer = read_answer(sock)

    assert status_of(answer) == 413, answer[:300]
    assert time.monotonic() - started < ANSWER_WITHIN


def test_a_client_that_sends_all_before_it_reads_still_gets_the_413(server: Daphne) -> None:
    """As most HTTP libraries do (http.client here): the rest of the body is read and dropped
    for a while instead of the connection being reset under the client."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("POST", DEVICE, body=b" " * (16 * LIMIT), headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()

    assert response.status == 413
    assert answer["error"]["code"] == "body_too_large"


def test_nothing_more_is_answered_on_a_refused_connection_and_it_is_closed(server: Daphne) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head(headers={"Content-Length": str(300 * 1024 * 1024)}))
        answer = read_answer(sock)
        started = time.monotonic()
        sock.sendall(b"GET /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 3)  # pipelined: dropped
        sock.settimeout(CLOSED_WITHIN + 5)
        more = b""
        while data := sock.recv(65536):
            more += data

    assert status_of(answer) == 413
    assert b"HTTP/1.1" not in more
    assert time.monotonic() - started < CLOSED_WITHIN


@pytest.mark.parametrize("chunked", [False, True])
def test_a_batch_under_the_limit_is_stored(server: Daphne, device: tuple[Any, str], chunked: bool) -> None:
    """A device bound to RING-74 (tests/project/conftest.py) posts 4,000 values, chunked or not."""
    device_token = device[1]
    entries = [
        {"product": "RING-74", "test": "DIA", "lot": "L-1", "values": [74.0 + i / 1000]} for i in range(4000)
    ]
    body = json.dumps(entries).encode()
    assert 200 * 1024 < len(body) < LIMIT  # above twisted's 100 KB in-memory threshold, under ours
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = {"Authorization": f"Device {device_token}", "Content-Type": "application/json"}
    if chunked:
        connection.request("POST", DEVICE, body=iter([body[:150_000], body[150_000:]]), headers=headers,
                           encode_chunked=True)  # fmt: skip
    else:
        connection.request("POST", DEVICE, body=body, headers=headers)
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()

    assert response.status == 202, answer
    assert len(answer["ids"]) == 4000
    assert sorted(Observation.objects.values_list("values", flat=True)) == [e["values"] for e in entries]

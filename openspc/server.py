"""How OpenSPC runs daphne: daphne's own command line, with request bodies bounded while they arrive.

    python -m openspc.server -b 0.0.0.0 -p 8000 openspc.asgi:application
    python -m openspc.server --processes 2 -b 0.0.0.0 -p 8000 openspc.asgi:application

daphne serves from one process, one core. With `--processes N` this process binds the address once
and runs N daphne processes on that socket (daphne's `--fd`): the kernel hands each new connection to
one of them, and WebSockets work across them because events go through the channel layer (Redis).
It restarts a process that dies and stops them all on SIGTERM or Ctrl-C (docs/operations.md).

daphne (through twisted) reads a whole request body, spooled to a temporary file above 100 KB,
before the application sees the request, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE (the setting
MAX_REQUEST_BYTES) would be checked only after an anonymous client had filled the disk. Here a
body is kept in memory and refused with 413 as soon as it is known to be too large: at the
headers when Content-Length says so, or at the chunk that passes the limit when it is chunked.
"""

import json
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from io import BytesIO
from typing import Any

import daphne.server
from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from django.conf import settings

logger = logging.getLogger("openspc.server")  # also when run as __main__

# How long a refused request's connection stays open, its data dropped, before it is closed.
LINGER_SECONDS = 5.0


def body_too_large_response(*, limit: int) -> bytes:
    """The whole 413 answer, in the API's error format (openspc/api.py answers the same)."""
    message = f"The request body is larger than {limit:,} bytes; send smaller batches."
    body = json.dumps({"error": {"code": "body_too_large", "message": message, "fields": {}}}).encode()
    head = (
        "HTTP/1.1 413 Content Too Large\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class BoundedWebRequest(WebRequest):
    """daphne's request, holding its body in memory up to the server's max_request_bytes."""

    received = 0
    refused = False
    linger: Any = None  # the call that closes a refused request's connection

    def gotLength(self, length: int | None) -> None:
        # The limit bounds the buffer, so memory is enough; twisted would use a temporary file.
        self.content = BytesIO()
        if length is not None and length > self.server.max_request_bytes:
            # No "100 Continue" for a body that will be refused (twisted sends it after this).
            self.requestHeaders.removeHeader(b"Expect")
            self.refuse()

    def handleContentChunk(self, data: bytes) -> None:
        if self.refused:
            return  # what was already in the read buffer when the connection was closed
        self.received += len(data)
        if self.received > self.server.max_request_bytes:
            self.refuse()
            return
        self.content.write(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        # A refused body's last chunk may still have been in the read buffer: never run the app.
        if self.refused:
            return
        if self.requestHeaders.hasHeader(b"Transfer-Encoding"):
            # Django (and DRF) read CONTENT_LENGTH bytes and take a body without it for empty; the
            # whole body is here now, so it is handed on with its length, as a proxy would.
            self.requestHeaders.removeHeader(b"Transfer-Encoding")
            self.requestHeaders.setRawHeaders(b"Content-Length", [str(self.received).encode("ascii")])
        super().requestReceived(command, path, version)

    def refuse(self) -> None:
        """Answer 413 at once, drop whatever the client still sends, and close the connection
        LINGER_SECONDS later (sooner if the client does)."""
        self.refused = True
        self.content = BytesIO()
        channel = self.channel
        logger.warning(
            "Refused a request body over %s bytes from %s", self.server.max_request_bytes, channel.getPeer()
        )
        channel.transport.write(body_too_large_response(limit=self.server.max_request_bytes))
        # Most HTTP client libraries send the whole body before they read: closed at once, with
        # their data unread, the connection would be reset and they would never see the 413.
        # So the rest is read and dropped (nothing kept) for a bounded time, and nothing of it is
        # parsed as a further request (as twisted drops data after a non-persistent request).
        channel.dataReceived = lambda data: None
        self.linger = channel.callLater(LINGER_SECONDS, channel.loseConnection)

    def connectionLost(self, reason: Any) -> None:
        if self.linger is not None and self.linger.active():
            self.linger.cancel()
        super().connectionLost(reason)


class BoundedHTTPFactory(HTTPFactory):
    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = BoundedWebRequest
        return protocol


class Server(daphne.server.Server):
    """daphne's server with BoundedHTTPFactory; the limit is Django's DATA_UPLOAD_MAX_MEMORY_SIZE."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The CLI has imported the application (and so configured Django) before it builds this.
        self.max_request_bytes: int = settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    def run(self) -> None:
        # Server.run makes its factory from this module-level name and offers no other hook;
        # the process runs one server, so the name is pointed at the bounded factory for it.
        daphne.server.HTTPFactory = BoundedHTTPFactory
        super().run()


class Command(CommandLineInterface):
    server_class = Server


def _option(args: list[str], names: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """The value of the first of `names` in `args` (`--name value` or `--name=value`), and the rest."""
    value, rest = None, []
    it = iter(args)
    for arg in it:
        name, equals, attached = arg.partition("=")
        if name in names:
            value = attached if equals else next(it, None)
            if value is None:
                raise SystemExit(f"{name} needs a value")
        else:
            rest.append(arg)
    return value, rest


class Supervisor:
    """N daphne processes on one listening socket, bound here; each restarted if it dies."""

    def __init__(self, processes: int, args: list[str]) -> None:
        host, args = _option(args, ("-b", "--bind"))
        port, args = _option(args, ("-p", "--port"))
        for other in ("-u", "--unix-socket", "--fd", "-e", "--endpoint"):
            if any(arg == other or arg.startswith(other + "=") for arg in args):
                raise SystemExit(f"--processes binds -b/-p itself; {other} cannot go with it")
        self.processes = processes
        self.address = (host or "127.0.0.1", int(port or 8000))
        self.args = args
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def run(self) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(self.address)
        listener.listen(1024)
        listener.set_inheritable(True)
        fd = listener.fileno()
        command = [sys.executable, "-m", "openspc.server", "--fd", str(fd), *self.args]
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)
        started: dict[int, float] = {}
        for slot in range(self.processes):
            self.children[slot] = subprocess.Popen(command, pass_fds=(fd,))
            started[slot] = time.monotonic()
        pids = ", ".join(str(child.pid) for child in self.children.values())
        logger.info("serving http://%s:%d with %d daphne processes (%s)", *self.address, self.processes, pids)
        while not self.stopping:
            time.sleep(0.5)
            for slot, child in list(self.children.items()):
                if child.poll() is None or self.stopping:
                    continue
                # Restarted at once, or after a second if it died within a second of starting (a
                # process that cannot start must not spin).
                if time.monotonic() - started[slot] < 1.0:
                    time.sleep(1.0)
                logger.warning(
                    "daphne process %d exited with %s; starting another", child.pid, child.returncode
                )
                self.children[slot] = subprocess.Popen(command, pass_fds=(fd,))
                started[slot] = time.monotonic()
        listener.close()
        deadline = time.monotonic() + 30
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        logger.info("stopped")
        return 0

    def _stop(self, signum: int, frame: Any) -> None:
        if self.stopping:
            return
        self.stopping = True
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    processes, args = _option(args, ("--processes",))
    count = int(processes) if processes and processes.isdigit() else 1 if processes is None else 0
    if count < 1:
        raise SystemExit(f"--processes must be a whole number, 1 or more; got {processes!r}")
    if count == 1:
        Command().run(args)
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(Supervisor(count, args).run())


if __name__ == "__main__":
    main()

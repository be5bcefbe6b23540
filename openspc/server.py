"""How OpenSPC runs daphne: daphne's own command line, with request bodies bounded while they arrive.

    python -m openspc.server -b 0.0.0.0 -p 8000 openspc.asgi:application

daphne (through twisted) reads a whole request body, spooled to a temporary file above 100 KB,
before the application sees the request, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE (the setting
MAX_REQUEST_BYTES) would be checked only after an anonymous client had filled the disk. Here a
body is kept in memory and refused with 413 as soon as it is known to be too large: at the
headers when Content-Length says so, or at the chunk that passes the limit when it is chunked.
"""

import json
import logging
import sys
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


def main(argv: Sequence[str] | None = None) -> None:
    Command().run(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()

"""Real HTTP(S) servers on loopback, in threads, for testing the QA runner's outbound HTTP."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Seen:
    """One request a server received."""

    method: str
    path: str
    host_header: str
    client: str


@dataclass
class LocalServer:
    """A server's address, its routes (path -> handler), and what it saw."""

    host: str
    port: int
    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    sni: list[str | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def paths(self) -> list[str]:
        return [request.path for request in self.seen]


def reply(handler: BaseHTTPRequestHandler, status: int, body: bytes = b"", **headers: str) -> None:
    """Answer with a Content-Length body and the given headers (underscores become dashes)."""
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def text(body: str, status: int = 200) -> Route:
    return lambda handler: reply(handler, status, body.encode(), Content_Type="text/plain")


def _handler_class(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            with server.lock:
                server.seen.append(
                    Seen(self.command, self.path, self.headers.get("Host", ""), self.client_address[0])
                )
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                route = server.routes.get(self.path.split("?")[0])
                if route is None:
                    reply(self, 404, b"no such route")
                else:
                    route(self)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading: what a size cap or deadline does
            finally:
                with server.lock:
                    server.in_flight -= 1

        # Every method a QA run may send is received and recorded (a test of what was sent needs
        # them all: the default handler would answer 501 to the others without recording them).
        do_GET = do_POST = do_HEAD = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def local_server(
    host: str = "127.0.0.1", port: int = 0, *, tls: ssl.SSLContext | None = None
) -> Iterator[LocalServer]:
    """A threaded HTTP/1.0 server (one connection per request) on host:port (0: any free port);
    with tls, HTTPS, recording the SNI name each client sent."""
    state = LocalServer(host=host, port=port)
    httpd = ThreadingHTTPServer((host, port), _handler_class(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    if tls is not None:

        def record_sni(
            sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, context: ssl.SSLContext
        ) -> None:
            state.sni.append(name)

        tls.sni_callback = record_sni
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)

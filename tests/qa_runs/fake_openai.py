"""A fake OpenAI-compatible chat completions server on loopback, in a thread, with programmable
replies: each request takes the next one (a completion, an HTTP error, a slow answer, raw bytes)
and is recorded (headers and JSON body) for the test to inspect."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.qa_runs.http_servers import LocalServer, local_server, reply

Reply = Callable[[BaseHTTPRequestHandler, threading.Event], None]
ROUTE = "/v1/chat/completions"


@dataclass
class Received:
    """One request the fake got: its headers (lower-case names) and its JSON body."""

    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def prompt(self) -> str:
        """Every message's content, joined: what the model was told."""
        return "\n".join(str(message.get("content", "")) for message in self.body.get("messages", []))


@dataclass
class FakeOpenAI:
    server: LocalServer
    replies: deque[Reply] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    # Set when the test ends, so a reply still sleeping (a timeout test) ends at once.
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def base_url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}/v1"

    def program(self, *replies: Reply) -> None:
        self.replies.extend(replies)


def completion(content: str) -> Reply:
    """A 200 chat completion whose message says `content`."""
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "fake",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
        ],
    }
    return raw(json.dumps(body).encode())


def scenarios_reply(*scenarios: dict[str, Any]) -> Reply:
    return completion(json.dumps({"scenarios": list(scenarios)}))


def raw(body: bytes, status: int = 200, **headers: str) -> Reply:
    """Exactly these bytes, with this status and these headers."""

    def answer(handler: BaseHTTPRequestHandler, release: threading.Event) -> None:
        reply(handler, status, body, Content_Type="application/json", **headers)

    return answer


def status(code: int, body: str = '{"error": {"message": "server error"}}') -> Reply:
    return raw(body.encode(), status=code)


def slow(seconds: float, then: Reply | None = None) -> Reply:
    """Answer (with `then`, else an empty completion) only after `seconds`: beyond a timeout."""

    def answer(handler: BaseHTTPRequestHandler, release: threading.Event) -> None:
        release.wait(seconds)
        (then or completion("{}"))(handler, release)

    return answer


@contextmanager
def fake_openai() -> Iterator[FakeOpenAI]:
    with local_server() as server:
        fake = FakeOpenAI(server=server)

        def route(handler: BaseHTTPRequestHandler) -> None:
            length = int(handler.headers.get("Content-Length") or 0)
            data = handler.rfile.read(length)
            with server.lock:
                fake.received.append(
                    Received(
                        headers={name.lower(): value for name, value in handler.headers.items()},
                        body=json.loads(data) if data else {},
                    )
                )
                answer = fake.replies.popleft() if fake.replies else status(599, "no reply programmed")
            answer(handler, fake.release)

        server.routes[ROUTE] = route
        try:
            yield fake
        finally:
            fake.release.set()

"""What the WebSocket tests share: tokens, an in-process connection, a daphne process, HTTP calls."""

import datetime
import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AbstractBaseUser
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from openspc.embedded import free_port, wait_for_port, web_command
from openspc.routing import websocket_urlpatterns
from tests.support.workers import BASE_DIR, database_url_for_workers


def application() -> Any:
    """The WebSocket half of openspc/asgi.py, built here because importing that module sets
    DATABASE_POOL_SIZE in os.environ, which the worker processes a test starts would inherit.
    Built per connection: the validator reads ALLOWED_HOSTS when made (the test run adds testserver)."""
    return AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))


def access_token(user: AbstractBaseUser, *, lifetime: datetime.timedelta | None = None) -> str:
    token = AccessToken.for_user(user)  # type: ignore[arg-type]
    if lifetime is not None:
        token.set_exp(lifetime=lifetime)
    return str(token)


def expired_token(user: AbstractBaseUser) -> str:
    token = AccessToken.for_user(user)  # type: ignore[arg-type]
    token.set_exp(from_time=token.current_time - datetime.timedelta(hours=1), lifetime=datetime.timedelta(0))
    return str(token)


def refresh_token(user: AbstractBaseUser) -> str:
    return str(RefreshToken.for_user(user))  # type: ignore[arg-type]


def communicator(path: str, *, token: str | None = None, cookie: str | None = None) -> WebsocketCommunicator:
    """A connection to the project's WebSocket routes, in process, as a browser on testserver."""
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application(), path + (f"?token={token}" if token else ""), headers=headers)


async def close_code(comm: WebsocketCommunicator, timeout: float = 2) -> int | None:
    """The code the server closed with (after whatever it sent before)."""
    while True:
        output = await comm.receive_output(timeout)
        if output["type"] == "websocket.close":
            return output.get("code")


class Daphne:
    """daphne as OpenSPC runs it (openspc.server), on a free port and the test database; stopped on exit."""

    def __init__(self, *, log_dir: Path, **env: str) -> None:
        self.log = log_dir / "daphne.log"
        self.env = {
            **os.environ, "DATABASE_URL": database_url_for_workers(), "ALLOWED_HOSTS": "127.0.0.1,localhost",
            **env,
        }  # fmt: skip
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "Daphne":
        self.port = free_port()
        command = web_command(host="127.0.0.1", port=self.port)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, env=self.env, cwd=BASE_DIR, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            wait_for_port(self.port, self.process, "daphne", self.log)
        except SystemExit as exc:
            self.__exit__(None, None, None)
            raise AssertionError(f"{exc}\n{self.log.read_text(errors='replace')}") from None
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if error is not None:
            print(f"--- daphne ({self.log}) ---\n{self.log.read_text(errors='replace')[-4000:]}")

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, path: str, token: str | None = None) -> str:
        return f"ws://127.0.0.1:{self.port}{path}" + (f"?token={token}" if token else "")

    def http(self, method: str, path: str, *, token: str, body: Any = None) -> tuple[int, Any]:
        """(status, JSON answer) of a request to the server with a JWT."""
        request = urllib.request.Request(
            f"{self.origin}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

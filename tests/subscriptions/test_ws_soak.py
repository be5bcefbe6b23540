"""Soak: live connections stay open as long as their clients keep pinging.

Twenty `ws/samples/` connections to a real daphne, each subscribed to DIA of RING-74, send
nothing but the protocol's `{"type": "ping"}` (once a minute, well inside WS_IDLE_TIMEOUT_SECONDS)
for SOAK_SECONDS (default 600: two idle timeouts). None may close, each ping gets its pong, and a
value posted at the end through the HTTP API, processed by a real Celery worker, reaches all twenty
as a `sample` message. With redis-py's 5 s socket timeout on the channel layer, connections closed
with 1011, one about every 5 s (4 of 20 within a 20 s run).

    SOAK_SECONDS=20 pytest tests/subscriptions/test_ws_soak.py   # a short run while developing
"""

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.support.daphne import Daphne, access_token
from tests.support.workers import CeleryWorkers

SOAK_SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
CONNECTIONS = 20
PING_EVERY = min(60.0, SOAK_SECONDS / 5)  # seconds; at least four pings per connection
CENTER, SIGMA = 74.0, 0.01
VALUE = 74.004

pytestmark = [
    pytest.mark.slow,
    pytest.mark.soak,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


class Client:
    """One connection: a reader that keeps every message, and a pinger."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.pings = 0
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            self.messages.append(json.loads(raw))

    async def ping_until(self, deadline: float) -> None:
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(PING_EVERY, left))
            if time.monotonic() < deadline and not self.reader.done():
                await self.ws.send(json.dumps({"type": "ping"}))
                self.pings += 1

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    @property
    def closed_with(self) -> int | None:
        """The server's close code, once the connection has closed."""
        return self.ws.close_code if self.reader.done() else None


async def wait_until(condition: Any, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {what}"
        await asyncio.sleep(0.1)


@pytest.mark.timeout(SOAK_SECONDS + 300)
def test_twenty_pinging_connections_stay_open_and_all_get_the_last_sample(
    plant, tester, manager, quality_specialist, tmp_path: Path
):
    dia = plant.dia_judged(center=CENTER, sigma=SIGMA, user=quality_specialist)
    item = plant.items[0]
    post = [{"item": item.pk, "test": plant.dia.pk, "values": [VALUE], "idempotency_key": "soak-1"}]
    manager_token, tester_token = access_token(manager), access_token(tester)

    with Daphne(log_dir=tmp_path) as web, CeleryWorkers(count=1, log_dir=tmp_path):

        async def scenario() -> dict[str, Any]:
            sockets = [
                await connect(web.ws_url("/ws/samples/", manager_token), origin=web.origin)
                for _ in range(CONNECTIONS)
            ]
            clients = [Client(ws) for ws in sockets]
            try:
                for client in clients:
                    await client.ws.send(json.dumps({"type": "subscribe", "characteristic_ids": [dia.pk]}))
                await wait_until(
                    lambda: all(c.of("subscribed") for c in clients), timeout=30, what="the subscriptions"
                )
                deadline = time.monotonic() + SOAK_SECONDS
                await asyncio.gather(*(client.ping_until(deadline) for client in clients))
                await asyncio.sleep(1)  # the last pongs
                found: dict[str, Any] = {
                    "closed": [c.closed_with for c in clients if c.closed_with is not None],
                    "pings": [c.pings for c in clients],
                    "pongs": [len(c.of("pong")) for c in clients],
                }
                status, answer = await asyncio.to_thread(
                    web.http, "POST", "/api/v1/observations/", token=tester_token, body=post
                )
                assert status == 202, answer
                await wait_until(
                    lambda: all(c.of("sample") or c.reader.done() for c in clients),
                    timeout=60,
                    what="the sample on every connection",
                )
                found["samples"] = [[m["payload"] for m in c.of("sample")] for c in clients]
                found["errors"] = [m for c in clients for m in c.of("error")]
                return found
            finally:
                for client in clients:
                    await client.ws.close()
                    client.reader.cancel()

        found = asyncio.run(scenario())

    assert found["closed"] == [], f"{len(found['closed'])} connections closed, codes {found['closed']}"
    assert found["errors"] == []
    assert min(found["pings"]) >= 4
    assert found["pongs"] == found["pings"]
    assert len(found["samples"]) == CONNECTIONS
    for samples in found["samples"]:
        assert [(s["characteristic"], s["sequence"]) for s in samples] == [(dia.pk, 1)]
        assert samples[0]["statistic"] == pytest.approx(VALUE)

"""Live updates end to end: a real daphne, the Redis channel layer, a real Celery worker and the
`websockets` client library.

A manager connected with a JWT subscribes to DIA of RING-74. The tester posts eight DIA values
through the HTTP API (six in control, then a seeded shift of +5 σ); the worker confirms and
judges them, and each arrives as a `sample` message, the shift's violations as `violation`
messages, exactly those the API lists. Another manager acknowledges one; it arrives as
`ack_update` within 1 s of the acknowledge response. Then: an expired token is refused
(4401), a tester cannot subscribe to a characteristic of a product they have no items in,
`ping` gets `pong`, and what a reconnecting client fetches (GET /samples?since=) matches.
"""

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.db import connection
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from openspc.sockets import CLOSE_UNAUTHENTICATED
from tests.factories import ProductFactory, TestFactory, UserFactory, characteristic_for
from tests.support.daphne import Daphne, access_token, expired_token
from tests.support.workers import CeleryWorkers, pipeline_idle

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

CENTER, SIGMA = 74.0, 0.01
IN_CONTROL, SHIFTED = 6, 2
ACK_WITHIN = 1.0  # seconds, from the acknowledge response to the ack_update message


def values_posted() -> list[float]:
    """Six values within ±1.5 σ (seeded), then two shifted by +5 σ (beyond the UCL: rule 1)."""
    rng = np.random.default_rng(5)
    calm = np.clip(rng.standard_normal(IN_CONTROL), -1.5, 1.5)
    return [round(CENTER + SIGMA * float(z), 4) for z in calm] + [CENTER + 5 * SIGMA, CENTER + 5.5 * SIGMA]


class Inbox:
    """Every message of a connection, with when it arrived (a reader task keeps receiving, so an
    arrival time is not delayed by what the test does meanwhile)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            self.messages.append((time.monotonic(), json.loads(raw)))
            self.changed.set()

    def of(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        return [(at, m) for at, m in self.messages if m["type"] == kind]

    async def wait(self, condition: Any, *, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            self.changed.clear()
            left = deadline - time.monotonic()
            assert left > 0, f"waited {timeout:.0f} s for {what}; got {[m for _, m in self.messages]}"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout=left)


def drained(workers: CeleryWorkers) -> None:
    """Wait (in a thread of its own) until the pipeline is idle; close that thread's connection."""
    try:
        workers.wait_for(pipeline_idle, timeout=60, what="the pipeline to drain")
    finally:
        connection.close()


async def first_message(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout=10))


@pytest.mark.timeout(240)
def test_posted_observations_arrive_live_and_an_acknowledgement_within_a_second(
    plant, tester, manager, quality_specialist, tmp_path: Path
):
    dia = plant.dia_judged(center=CENTER, sigma=SIGMA, user=quality_specialist)
    items = plant.items_total(IN_CONTROL + SHIFTED)
    values = values_posted()
    posts = [
        {"item": item.pk, "test": plant.dia.pk, "values": [value], "idempotency_key": f"ws-{item.serial}"}
        for item, value in zip(items, values, strict=True)
    ]
    other = characteristic_for(ProductFactory(code="OTHER-9"), TestFactory(code="OTHER-DIA"))
    second_manager = UserFactory(username="manager-2", roles=["Manager"])
    manager_token, tester_token = access_token(manager), access_token(tester)

    with Daphne(log_dir=tmp_path) as web, CeleryWorkers(count=1, log_dir=tmp_path) as workers:

        async def scenario() -> dict[str, Any]:
            found: dict[str, Any] = {}
            async with connect(web.ws_url("/ws/samples/", manager_token), origin=web.origin) as ws:
                await ws.send(json.dumps({"type": "subscribe", "characteristic_ids": [dia.pk]}))
                found["subscribed"] = await first_message(ws)
                await ws.send(json.dumps({"type": "ping"}))
                found["pong"] = await first_message(ws)
                inbox = Inbox(ws)
                status, answer = await asyncio.to_thread(
                    web.http, "POST", "/api/v1/observations/", token=tester_token, body=posts
                )
                assert status == 202, answer
                await inbox.wait(
                    lambda: len(inbox.of("sample")) == len(values) and inbox.of("violation"),
                    timeout=90, what="the samples and violations",
                )  # fmt: skip
                await asyncio.to_thread(drained, workers)
                await asyncio.sleep(0.5)  # anything sent late would arrive by now
                found["samples"] = [m["payload"] for _, m in inbox.of("sample")]
                found["violations"] = [m["payload"] for _, m in inbox.of("violation")]

                target = next(v for v in found["violations"] if (v["rule"], v["chart"]) == (1, "location"))
                sent = time.monotonic()
                status, answer = await asyncio.to_thread(
                    web.http, "POST", f"/api/v1/violations/{target['id']}/acknowledge/",
                    token=access_token(second_manager),
                    body={"reason": "assignable-cause", "comment": "Insert worn", "corrective_action": "New"},
                )  # fmt: skip
                answered = time.monotonic()
                assert status == 200, answer
                await inbox.wait(lambda: inbox.of("ack_update"), timeout=5, what="ack_update")
                arrived, ack = inbox.of("ack_update")[0]
                found["ack"] = ack["payload"]
                found["ack_after_response"] = max(0.0, arrived - answered)
                found["ack_after_post"] = arrived - sent
                found["acknowledged"] = target
                inbox.task.cancel()

            async with connect(web.ws_url("/ws/samples/", expired_token(manager)), origin=web.origin) as ws:
                found["expired_error"] = await first_message(ws)
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), timeout=5)
                found["expired_close"] = closed.value.rcvd.code if closed.value.rcvd else None

            async with connect(web.ws_url("/ws/samples/", tester_token), origin=web.origin) as ws:
                await ws.send(json.dumps({"type": "subscribe", "characteristic_ids": [other.pk]}))
                found["tester_refused"] = await first_message(ws)
            return found

        found = asyncio.run(scenario())
        _, since = web.http(
            "GET", f"/api/v1/samples/?characteristic={dia.pk}&since={IN_CONTROL}", token=manager_token
        )
        _, listed = web.http(
            "GET", f"/api/v1/violations/?characteristic={dia.pk}&page_size=100", token=manager_token
        )

    assert found["subscribed"] == {"type": "subscribed", "characteristic_ids": [dia.pk]}
    assert found["pong"]["type"] == "pong"
    assert found["pong"]["server_time"]

    samples = found["samples"]
    assert [s["sequence"] for s in samples] == list(range(1, len(values) + 1))
    assert [s["statistic"] for s in samples] == pytest.approx(values, abs=1e-9)
    assert {s["characteristic"] for s in samples} == {dia.pk}
    assert [s["in_control"] for s in samples][IN_CONTROL:] == [False] * SHIFTED
    # What a client reconnecting after sample 6 fetches is what the socket delivered after it.
    assert [s["id"] for s in since["results"]] == [s["id"] for s in samples[IN_CONTROL:]]

    # The violations delivered are exactly those stored; the shift gives rule 1 on the chart.
    assert sorted(v["id"] for v in found["violations"]) == sorted(v["id"] for v in listed["results"])
    assert (1, "location", IN_CONTROL + 1) in {
        (v["rule"], v["chart"], v["sequence"]) for v in found["violations"]
    }

    ack = found["ack"]
    assert (ack["id"], ack["characteristic"]) == (found["acknowledged"]["id"], dia.pk)
    assert (ack["acknowledged_by"], ack["reason"], ack["comment"]) == (
        second_manager.pk, "assignable-cause", "Insert worn"
    )  # fmt: skip
    assert found["ack_after_response"] < ACK_WITHIN, found["ack_after_response"]

    assert found["expired_error"]["code"] == "token_expired"
    assert found["expired_close"] == CLOSE_UNAUTHENTICATED
    refused = found["tester_refused"]
    assert (refused["type"], refused["code"], refused["characteristic_ids"]) == (
        "error",
        "not_readable",
        [other.pk],
    )

"""docs/asyncapi.yaml documents every message the consumers take and send, and every close code,
so the document cannot drift from the consumers (openspc/sockets.py and the apps') unnoticed."""

import re
from pathlib import Path
from typing import Any

import yaml

from apps.qa_runs import consumers as qa_consumers
from apps.qa_runs.choices import EventType
from apps.subscriptions import consumers
from apps.subscriptions.consumers import NotificationsConsumer, SamplesConsumer
from openspc import socket_auth, sockets

ROOT = Path(__file__).resolve().parents[2]
DOC = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())
MESSAGES = DOC["components"]["messages"]
ALWAYS_SENT = {"pong", "error"}


def documented(channel: str, direction: str) -> set[str]:
    """The `type` of each message a channel lists for a direction (publish: client to server)."""
    types = set()
    for ref in DOC["channels"][channel][direction]["message"]["oneOf"]:
        name = ref["$ref"].rsplit("/", 1)[-1]
        schema: dict[str, Any] = MESSAGES[name]["payload"]
        assert schema["properties"]["type"]["const"] == name, f"message {name} has another type"
        types.add(name)
    return types


def test_every_client_message_the_consumers_handle_is_documented_and_nothing_else():
    assert documented("/ws/samples/", "publish") == set(SamplesConsumer.actions)
    assert documented("/ws/notifications/", "publish") == set(NotificationsConsumer.actions)
    assert documented("/ws/qa-runs/{planId}/", "publish") == set(qa_consumers.QaRunConsumer.actions)


def test_every_message_the_server_sends_is_documented():
    samples = set(consumers.SAMPLE_EVENTS.values()) | {"subscribed", "unsubscribed"} | ALWAYS_SENT
    assert documented("/ws/samples/", "subscribe") == samples
    notifications = set(consumers.NOTIFICATION_EVENTS.values()) | ALWAYS_SENT
    assert documented("/ws/notifications/", "subscribe") == notifications
    qa_runs = set(qa_consumers.QA_RUN_EVENTS.values()) | ALWAYS_SENT
    assert documented("/ws/qa-runs/{planId}/", "subscribe") == qa_runs


def test_every_qa_run_event_type_is_documented():
    event = MESSAGES["qa_run_event"]["payload"]["properties"]["payload"]["properties"]["event"]
    assert set(event["enum"]) == set(EventType.values)


def test_every_error_code_and_close_code_is_documented():
    source = "".join(Path(module.__file__).read_text() for module in (sockets, consumers, qa_consumers))
    codes = set(re.findall(r'(?:send_error|refuse)\(\s*(?:CLOSE_\w+,\s*)?"(\w+)"', source))
    codes |= {socket_auth.TOKEN_EXPIRED, socket_auth.TOKEN_INVALID, "not_authenticated"}
    assert len(codes) >= 10, codes  # the pattern still finds them
    enum = set(MESSAGES["error"]["payload"]["properties"]["code"]["enum"])
    assert codes == enum
    description = DOC["info"]["description"]
    for close in (sockets.CLOSE_UNAUTHENTICATED, sockets.CLOSE_FORBIDDEN, sockets.CLOSE_IDLE):
        assert f"| {close} |" in description

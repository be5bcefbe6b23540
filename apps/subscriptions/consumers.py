"""Live updates over WebSockets: `ws/samples/` (charts) and `ws/notifications/` (the inbox).

The protocol (seed 002, flow 5) is described message by message in docs/asyncapi.yaml; a test
keeps that document and the types below in step. In short, on `ws/samples/`:

    client {"type": "subscribe", "characteristic_ids": [1, 2]}
    server {"type": "subscribed", "characteristic_ids": [1, 2]}
    server {"type": "sample" | "violation" | "ack_update" | "limits_update" | "statistics_update",
            "payload": {...the event's data...}}
    client {"type": "ping"}  ->  server {"type": "pong", "server_time": "<ISO 8601>"}

Events come from the channel layer (openspc/events.py), sent after the
transaction that produced them commits. Nothing is kept per connection on the server: a
client that reconnects subscribes again and catches up with GET /api/v1/samples?since=….

Close codes (daphne does not send a close reason, so an `error` message with the same code
precedes each close):

    4401  not authenticated: no credentials, or an invalid or expired token (also when the
          token of an open connection expires); or, on an open connection, the credentials were
          revoked: its browser session signed out or reached SESSION_MAX_HOURS, or the user was
          deactivated or changed password (openspc/revocation.py)
    4403  authenticated, but not allowed a live connection (a device's service user; on
          `ws/notifications/`, a role that may not subscribe, so has no inbox)
    4408  idle: no message from the client for WS_IDLE_TIMEOUT_SECONDS
"""

import asyncio
import datetime
import json
import logging
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.utils import name_that_thing
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from apps.config.roles import Role, has_role
from apps.subscriptions import selectors
from openspc.events import EventType, events_unpack
from openspc.revocation import (
    CREDENTIALS_REVOKED,
    DEACTIVATED,
    PASSWORD_CHANGED,
    SIGNED_OUT,
    session_sockets_group,
    user_sockets_group,
)
from openspc.sessions import session_ends_at

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_IDLE = 4408

MAX_IDS_PER_MESSAGE = 500
MAX_SUBSCRIPTIONS = 2000

# Channel-layer event -> the message type a `ws/samples/` client gets.
SAMPLE_EVENTS: dict[str, str] = {
    EventType.SAMPLE_CREATED: "sample",
    EventType.VIOLATION_CREATED: "violation",
    EventType.VIOLATION_ACKNOWLEDGED: "ack_update",
    EventType.LIMITS_CHANGED: "limits_update",
    EventType.STATISTICS_UPDATED: "statistics_update",
}
NOTIFICATION_EVENTS: dict[str, str] = {EventType.NOTIFICATION_CREATED: "notification"}


def _is_device(user: AbstractBaseUser) -> bool:
    return has_role(user, Role.DEVICE)  # type: ignore[arg-type]


def _credentials_current(user: AbstractBaseUser) -> bool:
    """The user is still active with the password they connected with (a revocation between the
    authentication and joining the groups would otherwise be missed)."""
    users = get_user_model()._default_manager
    return users.filter(pk=user.pk, is_active=True, password=user.password).exists()


REVOKED_MESSAGES = {
    SIGNED_OUT: "You signed out in this browser.",
    PASSWORD_CHANGED: "The password was changed: sign in again.",
    DEACTIVATED: "The user has been deactivated.",
}


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """What both channels share: authentication, ping, the idle timeout, error messages and
    forwarding channel-layer events (single or batched) of the types in `events`."""

    # Client message type -> method name; subclasses add their own.
    actions: dict[str, str] = {"ping": "on_ping"}
    events: dict[str, str] = {}

    user: AbstractBaseUser
    groups_joined: set[str]
    accepted = False

    async def connect(self) -> None:
        self.groups_joined = set()
        self.watchdog: asyncio.Task[None] | None = None
        user = self.scope.get("user")
        if self.scope.get("auth_error") or user is None or not user.is_authenticated:
            code = self.scope.get("auth_error") or "not_authenticated"
            text = {
                "token_expired": "The access token has expired: get a new one and reconnect.",
                "token_invalid": "The access token is invalid.",
            }.get(code, "Authenticate with ?token=<JWT access token> or a session.")
            await self.refuse(CLOSE_UNAUTHENTICATED, code, text)
            return
        if await database_sync_to_async(_is_device)(user):
            await self.refuse(CLOSE_FORBIDDEN, "forbidden", "Device credentials are for ingestion only.")
            return
        self.user = user
        # Joined first, then checked, so that a revocation is either seen now or heard later.
        await self.join(user_sockets_group(user.pk))
        session = self.scope.get("session")
        if self.scope.get("auth_via") == "session" and session is not None and session.session_key:
            await self.join(session_sockets_group(session.session_key))
        if not await database_sync_to_async(_credentials_current)(user):
            await self.refuse(CLOSE_UNAUTHENTICATED, "credentials_revoked", "Sign in again.")
            return
        self.by_session = self.scope.get("auth_via") == "session" and session is not None
        if self.by_session:
            self.expires_at = await database_sync_to_async(session_ends_at)(session=session)
        else:
            self.expires_at = self.scope.get("token_expires_at")
        if not await self.connected():  # groups joined before the client hears it is connected
            return  # refused by the channel (connected() said why)
        self.accepted = True
        await self.accept()
        self.last_seen = time.monotonic()
        self.watchdog = asyncio.create_task(self.watch())

    async def connected(self) -> bool:
        """Called once the user is authenticated and allowed; False when the channel refused the
        connection itself (after `refuse`)."""
        return True

    async def disconnect(self, code: int) -> None:
        if self.watchdog is not None and self.watchdog is not asyncio.current_task():
            self.watchdog.cancel()
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = set()

    async def refuse(self, close_code: int, code: str, message: str) -> None:
        """Accept, say why, close: a refusal during the handshake would be an HTTP 403 with no
        close code."""
        if not self.accepted:
            self.accepted = True
            await self.accept()
        await self.send_error(code, message)
        await self.close(code=close_code)

    async def send_error(self, code: str, message: str, **extra: Any) -> None:
        await self.send_json({"type": "error", "code": code, "message": message, **extra})

    async def join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.add(group)

    async def leave(self, group: str) -> None:
        await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined.discard(group)

    # --- The idle timeout and the token's expiry ----------------------------------------------

    async def watch(self) -> None:
        """Close when the client has been silent too long, or its token or session has run out."""
        idle = float(settings.WS_IDLE_TIMEOUT_SECONDS)
        expires_at: datetime.datetime | None = self.expires_at
        while True:
            now = time.monotonic()
            idle_left = self.last_seen + idle - now
            token_left = (expires_at - timezone.now()).total_seconds() if expires_at else float("inf")
            if token_left <= 0 and self.by_session:
                await self.refuse(
                    CLOSE_UNAUTHENTICATED, "session_expired", "The browser session has ended: sign in again."
                )
                return
            if token_left <= 0:
                await self.refuse(
                    CLOSE_UNAUTHENTICATED,
                    "token_expired",
                    "The access token has expired: reconnect with a new one.",
                )
                return
            if idle_left <= 0:
                await self.refuse(CLOSE_IDLE, "idle_timeout", f"No message for {idle:g} s.")
                return
            await asyncio.sleep(min(idle_left, token_left) + 0.01)

    # --- Messages from the client -------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not getattr(self, "watchdog", None):
            return  # refused; the close is on its way
        self.last_seen = time.monotonic()
        if text_data is None:
            await self.send_error("invalid_message", "Send JSON objects in text frames.")
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.send_error("invalid_json", "The message is not valid JSON.")
            return
        except RecursionError:  # `[[[[…` deeper than the parser goes; it would end the consumer (1011)
            await self.send_error("invalid_json", "The message is nested too deeply.")
            return
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self.send_error("invalid_message", 'Send a JSON object with a "type".')
            return
        method = self.actions.get(content["type"])
        if method is None:
            known = ", ".join(sorted(self.actions))
            await self.send_error(
                "unknown_type", f"Unknown message type {content['type']!r}; known: {known}."
            )
            return
        await getattr(self, method)(content)

    async def on_ping(self, content: dict[str, Any]) -> None:
        await self.send_json({"type": "pong", "server_time": timezone.now().isoformat()})

    # --- Events from the channel layer --------------------------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channel-layer events this channel does not forward are dropped, not fatal (Channels
        would end the consumer on a message type it has no handler for)."""
        kind = message.get("type", "")
        if kind == CREDENTIALS_REVOKED:
            text = REVOKED_MESSAGES.get(message.get("reason", ""), "Sign in again.")
            await self.refuse(CLOSE_UNAUTHENTICATED, "credentials_revoked", text)
            return
        if kind == "events.batch" or kind in self.events:
            for event in events_unpack(message):
                if event.get("type") in self.events:
                    await self.forward(event)
            return
        if kind.startswith("websocket."):
            await super().dispatch(message)
            return
        logger.debug("%s ignores a %r message", name_that_thing(self), kind)

    async def forward(self, event: dict[str, Any]) -> None:
        raise NotImplementedError


class SamplesConsumer(LiveConsumer):
    """`ws/samples/`: subscribe to characteristics, get their samples, violations,
    acknowledgements, limit changes and statistics as they are committed."""

    actions = {**LiveConsumer.actions, "subscribe": "on_subscribe", "unsubscribe": "on_unsubscribe"}
    events = SAMPLE_EVENTS

    async def connected(self) -> bool:
        self.subscribed: set[int] = set()
        return True

    async def disconnect(self, code: int) -> None:
        await super().disconnect(code)
        self.subscribed = set()

    async def _ids(self, content: dict[str, Any]) -> list[int] | None:
        ids = content.get("characteristic_ids")
        if (
            not isinstance(ids, list)
            or not ids
            or not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids)
        ):
            await self.send_error(
                "invalid_message", '"characteristic_ids" must be a non-empty list of characteristic ids.'
            )
            return None
        if len(ids) > MAX_IDS_PER_MESSAGE:
            await self.send_error("invalid_message", f"At most {MAX_IDS_PER_MESSAGE} ids per message.")
            return None
        return list(dict.fromkeys(ids))

    async def on_subscribe(self, content: dict[str, Any]) -> None:
        ids = await self._ids(content)
        if ids is None:
            return
        readable = await database_sync_to_async(selectors.characteristics_readable)(user=self.user, ids=ids)
        new = [i for i in ids if i in readable and i not in self.subscribed]
        if len(self.subscribed) + len(new) > MAX_SUBSCRIPTIONS:
            await self.send_error(
                "too_many_subscriptions",
                f"At most {MAX_SUBSCRIPTIONS} characteristics per connection.",
                characteristic_ids=new,
            )
            return
        for characteristic_id in new:
            await self.join(f"characteristic.{characteristic_id}")
            self.subscribed.add(characteristic_id)
        granted = [i for i in ids if i in readable]
        if granted:
            await self.send_json({"type": "subscribed", "characteristic_ids": granted})
        refused = [i for i in ids if i not in readable]
        if refused:
            # Unknown and unreadable look the same, so the answer tells nothing about other products.
            await self.send_error(
                "not_readable",
                "These characteristics do not exist or you may not read them.",
                characteristic_ids=refused,
            )

    async def on_unsubscribe(self, content: dict[str, Any]) -> None:
        ids = await self._ids(content)
        if ids is None:
            return
        for characteristic_id in ids:
            if characteristic_id in self.subscribed:
                await self.leave(f"characteristic.{characteristic_id}")
                self.subscribed.discard(characteristic_id)
        await self.send_json({"type": "unsubscribed", "characteristic_ids": ids})

    async def forward(self, event: dict[str, Any]) -> None:
        # A message may still be on its way from a group just left.
        if event.get("characteristic") not in self.subscribed:
            return
        payload = {key: value for key, value in event.items() if key != "type"}
        await self.send_json({"type": SAMPLE_EVENTS[event["type"]], "payload": payload})


class NotificationsConsumer(LiveConsumer):
    """`ws/notifications/`: the user's notifications as they are created."""

    events = NOTIFICATION_EVENTS

    async def connected(self) -> bool:
        if not await database_sync_to_async(selectors.inbox_readable)(user=self.user):
            await self.refuse(CLOSE_FORBIDDEN, "forbidden", "Your role has no notifications.")
            return False
        await self.join(f"user.{self.user.pk}")
        return True

    async def forward(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "notification", "payload": event.get("notification", {})})

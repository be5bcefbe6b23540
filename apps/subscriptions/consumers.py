"""Live updates over WebSockets: `ws/samples/` (charts) and `ws/notifications/` (the inbox).

The protocol (seed 002, flow 5) is described message by message in docs/asyncapi.yaml; a test
keeps that document and the types below in step. In short, on `ws/samples/`:

    client {"type": "subscribe", "characteristic_ids": [1, 2]}
    server {"type": "subscribed", "characteristic_ids": [1, 2]}
    server {"type": "sample" | "violation" | "ack_update" | "event_update" | "event_ack" |
            "limits_update" | "statistics_update" | "health_update" | "schedule_update",
            "payload": {...the event's data...}}
    client {"type": "ping"}  ->  server {"type": "pong", "server_time": "<ISO 8601>"}

Events come from the channel layer (openspc/events.py), sent after the
transaction that produced them commits. Nothing is kept per connection on the server: a
client that reconnects subscribes again and catches up with GET /api/v1/samples?since=….

Authentication, ping, the idle timeout, revocation and the close codes (4401, 4403, 4408) are
those of every live channel: the base consumer in openspc/sockets.py.
"""

from typing import Any

from channels.db import database_sync_to_async

from apps.subscriptions import selectors
from openspc.events import EventType
from openspc.sockets import CLOSE_FORBIDDEN, LiveConsumer

MAX_IDS_PER_MESSAGE = 500
MAX_SUBSCRIPTIONS = 2000

# Channel-layer event -> the message type a `ws/samples/` client gets.
SAMPLE_EVENTS: dict[str, str] = {
    EventType.SAMPLE_CREATED: "sample",
    EventType.VIOLATION_CREATED: "violation",
    EventType.VIOLATION_ACKNOWLEDGED: "ack_update",
    EventType.VIOLATION_EVENT_UPDATED: "event_update",
    EventType.VIOLATION_EVENT_ACKNOWLEDGED: "event_ack",
    EventType.LIMITS_CHANGED: "limits_update",
    EventType.STATISTICS_UPDATED: "statistics_update",
    EventType.DATA_HEALTH_CHANGED: "health_update",
    EventType.SAMPLE_OVERDUE: "schedule_update",
    EventType.SAMPLE_TAKEN: "schedule_update",
    EventType.SAMPLE_MISSED: "schedule_update",
    EventType.SAMPLE_CANCELLED: "schedule_update",
}
NOTIFICATION_EVENTS: dict[str, str] = {
    EventType.NOTIFICATION_CREATED: "notification",
    EventType.NOTIFICATIONS_UNREAD: "unread",
}


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
    """`ws/notifications/`: the user's notifications as they are created, and their unread count
    whenever it changes (the badge never asks for it while connected)."""

    events = NOTIFICATION_EVENTS

    async def connected(self) -> bool:
        if not await database_sync_to_async(selectors.inbox_readable)(user=self.user):
            await self.refuse(CLOSE_FORBIDDEN, "forbidden", "Your role has no notifications.")
            return False
        await self.join(f"user.{self.user.pk}")
        return True

    async def forward(self, event: dict[str, Any]) -> None:
        if event["type"] == EventType.NOTIFICATIONS_UNREAD:
            await self.send_json({"type": "unread", "payload": {"unread": event["unread"]}})
            return
        await self.send_json({"type": "notification", "payload": event.get("notification", {})})

"""Events on the channel layer (DESIGN.md "Data flow", step 5), sent only after commit.

Group names: `characteristic.<id>`, `product.<id>`, `lot.<id>`, `user.<id>`. An event's
`type` is its name (`sample.created`, …). Every event carries the ids, a timestamp and
what a chart needs to draw it without another request.

One send puts one message on each group it touches: the event itself when the group gets
one event, else `{"type": "events.batch", "events": [...]}` with the group's events in
order (Channels calls the consumer's `events_batch`; `events_unpack` turns either shape
into the list of events): docs/adr/0010.

Each send also queues one `subscriptions.fanout` task (by name: apps.subscriptions sits above
this app) with the send's notification-worthy events, which the subscription service turns
into notifications. `sample.created` is not among them: every run that makes samples also
sends the lot's `statistics.updated`, which is the "new results" notification.
"""

import asyncio
import logging
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Any

from celery import current_app
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from openspc import queues

logger = logging.getLogger(__name__)


class EventType(StrEnum):
    """Every event name on the channel layer: calculations, observations, subscriptions and QA
    runs send them, the consumers and the subscription service read them (docs/asyncapi.yaml)."""

    SAMPLE_CREATED = "sample.created"
    VIOLATION_CREATED = "violation.created"
    VIOLATION_ACKNOWLEDGED = "violation.acknowledged"
    VIOLATION_EVENT_UPDATED = "violation_event.updated"  # started, grew or ended (apps.calculations)
    VIOLATION_EVENT_ACKNOWLEDGED = "violation_event.acknowledged"
    LIMITS_CHANGED = "limits.changed"
    STATISTICS_UPDATED = "statistics.updated"
    LOT_DISPOSITION = "lot.disposition"
    NOTIFICATION_CREATED = "notification.created"
    NOTIFICATIONS_UNREAD = "notifications.unread"  # a user's unread count, after it changed
    QA_RUN_EVENT = "qa_run.event"
    DATA_HEALTH_ALARM = "data_health.alarm"
    DATA_HEALTH_CHANGED = "data_health.changed"  # apps.observations: a characteristic's data health
    SPEC_VIOLATED = "spec.violated"  # apps.observations: a confirmed result outside its spec limits
    SPEC_WARNING = "spec.warning"  # apps.observations: a confirmed result in its spec warning band
    DATA_REJECTED = "data.rejected"  # apps.observations: a characteristic's values began being rejected
    DATA_STALE = "data.stale"  # apps.observations: no value for longer than the characteristic's cadence
    SOURCE_OFFLINE = "source.offline"  # apps.observations: the Sparkplug B node feeding it is offline
    CREDENTIALS_REVOKED = "credentials.revoked"  # openspc.revocation: the consumer closes with 4401
    SIGNING_LOCKED = "signing.locked"  # apps.signatures: a user's signing locked after wrong passwords
    LOT_RELEASE_REQUESTED = "lot.release_requested"  # apps.records: an operations lead asks approvers
    RESULT_INVALIDATED = "result.invalidated"  # apps.observations: a correction took a result out
    RESULT_VERIFIED = "result.verified"  # apps.observations: a second person verified a result
    SAMPLE_OVERDUE = "sample.overdue"  # apps.observations: a scheduled sample was not taken in time
    SAMPLE_TAKEN = "sample.taken"  # apps.observations: an overdue scheduled sample was taken after all
    SAMPLE_MISSED = "sample.missed"  # apps.observations: a scheduled sample closed as missed, with a reason
    SAMPLE_CANCELLED = "sample.cancelled"  # apps.observations: a scheduled sample no longer asked for


# The events subscriptions hear about (apps.subscriptions.services.EVENT_KINDS gives each its kind).
NOTIFYING = frozenset(
    {
        EventType.VIOLATION_CREATED,
        EventType.VIOLATION_ACKNOWLEDGED,
        EventType.VIOLATION_EVENT_UPDATED,
        EventType.VIOLATION_EVENT_ACKNOWLEDGED,
        EventType.STATISTICS_UPDATED,
        EventType.LIMITS_CHANGED,
        EventType.LOT_DISPOSITION,
        EventType.DATA_REJECTED,
        EventType.DATA_STALE,
        EventType.SOURCE_OFFLINE,
        EventType.SPEC_VIOLATED,
        EventType.SPEC_WARNING,
        EventType.SAMPLE_OVERDUE,
        # Told to people by role, not by subscription (apps.subscriptions: DIRECT_EVENTS).
        EventType.LOT_RELEASE_REQUESTED,
        EventType.SIGNING_LOCKED,
    }
)

Event = tuple[tuple[str, ...], dict[str, Any]]  # (groups, message)


def event(name: EventType, groups: Iterable[str], **data: Any) -> Event:
    # str(): the plain value goes on the wire, whatever serializer the layer or broker uses.
    return tuple(groups), {"type": str(name), "timestamp": timezone.now().isoformat(), **data}


BATCH_TYPE = "events.batch"


def events_unpack(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of a channel-layer message, in order: the batch's, or the message itself."""
    if message.get("type") == BATCH_TYPE:
        return list(message["events"])
    return [message]


def group_messages(events: Sequence[Event]) -> dict[str, dict[str, Any]]:
    """One message per group: its only event, or a batch of its events in order."""
    by_group: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for groups, message in events:
        for group in groups:
            by_group[group].append(message)
    return {
        group: messages[0] if len(messages) == 1 else {"type": BATCH_TYPE, "events": messages}
        for group, messages in by_group.items()
    }


async def _send(events: Sequence[Event]) -> None:
    """Different groups are served concurrently (three groups cost one round trip of waiting)."""
    layer = get_channel_layer()
    if layer is None:
        return
    messages = group_messages(events)
    await asyncio.gather(*(layer.group_send(group, message) for group, message in messages.items()))


SEND_TIMEOUT = 5.0  # seconds a send may take before it is given up (and logged)


class _SenderLoop:
    """An event loop in a daemon thread of this process, kept for the process's life.

    async_to_sync would make a loop, and the layer a Redis connection, for every send
    (about 2 ms each); on this loop the layer keeps its connections. Made on first use
    and again after a fork (a Celery prefork child does not inherit the thread).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            alive = self._thread is not None and self._thread.is_alive() and self._pid == os.getpid()
            if self._loop is None or not alive:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="events", daemon=True)
                self._thread.start()
                self._pid = os.getpid()
            return self._loop


_sender = _SenderLoop()


# Which of the NOTIFYING types anyone hears now (apps.subscriptions registers it; above this module).
# Most calculations concern nobody: without this, every sample queued a fan-out task that found no
# subscription, a worker's CPU per sample (issue #20).
_heard: Callable[[], frozenset[str]] | None = None


def fanout_heard_register(heard: Callable[[], frozenset[str]]) -> None:
    global _heard
    _heard = heard


def _fanout_queue(events: Sequence[Event]) -> None:
    """One task per send, if anyone hears one of the events. A broker that is down loses these
    notifications (logged), not data."""
    notified = [message for _, message in events if message["type"] in NOTIFYING]
    if notified and _heard is not None:  # asked only when something could notify
        heard = _heard()
        notified = [message for message in notified if message["type"] in heard]
    if not notified:
        return
    try:
        # kwargsrepr: Celery would otherwise render every event for its logs (saferepr), which cost
        # more than sending them.
        current_app.send_task(
            queues.SUBSCRIPTIONS_FANOUT,
            kwargs={"events": notified},
            kwargsrepr=f"{{'events': <{len(notified)} events>}}",
        )
    except Exception:
        logger.warning("could not queue the fan-out of %d events", len(notified), exc_info=True)


def events_send(events: Sequence[Event]) -> None:
    """Send now. A channel layer that is down loses live updates, never data: clients catch up
    through GET /api/v1/samples?since=…, so the error is logged, not raised."""
    if not events:
        return
    _fanout_queue(events)
    future = asyncio.run_coroutine_threadsafe(_send(events), _sender.get())
    try:
        future.result(timeout=SEND_TIMEOUT)
    except Exception:
        future.cancel()
        logger.warning("could not send %d events to the channel layer", len(events), exc_info=True)


def events_send_on_commit(events: Sequence[Event]) -> None:
    if events:
        batch = list(events)
        transaction.on_commit(lambda: events_send(batch))


# Data health (apps/mqtt_bridge for now): one group everyone concerned with data integrity joins.
# `data_health.alarm` carries {"alarm": {id, kind, source, subject, message, value_before,
# value_after, raised_at, listener}}.
DATA_HEALTH_GROUP = "data_health"

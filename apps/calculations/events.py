"""Events on the channel layer (DESIGN.md "Data flow", step 5), sent only after commit.

Group names: `characteristic.<id>`, `product.<id>`, `lot.<id>`, `user.<id>`. The
message `type` is the event name (`sample.created`, …), which Channels turns into the
consumer method name (`sample_created`). Every event carries the ids, a timestamp and
what a chart needs to draw it without another request.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

Event = tuple[tuple[str, ...], dict[str, Any]]  # (groups, message)


def event(name: str, groups: Iterable[str], **data: Any) -> Event:
    return tuple(groups), {"type": name, "timestamp": timezone.now().isoformat(), **data}


async def _send(events: Sequence[Event]) -> None:
    """Each group gets its events in order; different groups are served concurrently (a
    sample's three groups cost one round trip of waiting, not three)."""
    layer = get_channel_layer()
    if layer is None:
        return
    by_group: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for groups, message in events:
        for group in groups:
            by_group[group].append(message)

    async def in_order(group: str, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            await layer.group_send(group, message)

    await asyncio.gather(*(in_order(group, messages) for group, messages in by_group.items()))


def events_send(events: Sequence[Event]) -> None:
    """Send now. A channel layer that is down loses live updates, never data: clients catch up
    through GET /api/v1/samples?since=…, so the error is logged, not raised."""
    if not events:
        return
    try:
        async_to_sync(_send)(events)
    except Exception:
        logger.warning("could not send %d events to the channel layer", len(events), exc_info=True)


def events_send_on_commit(events: Sequence[Event]) -> None:
    if events:
        batch = list(events)
        transaction.on_commit(lambda: events_send(batch))

"""A run's events on the channel layer: `qa_run.event` messages to the group `qa_run.<plan_id>`
(DESIGN.md "Data flow"), which apps/qa_runs/consumers.py forwards to the browsers watching the run.

Events are read back from the database before they are sent, so only committed events go out (the
same guarantee `transaction.on_commit` gives elsewhere), in sequence order, each once per pusher.
A channel layer that is down loses the live push only: clients catch up with
GET /api/v1/qa/runs/<plan_id>/events/?after=<sequence>.
"""

import uuid
from typing import Any

from apps.qa_runs.models import QaEvent, QaPackageRun
from openspc.events import Event, event, events_send

EVENT_NAME = "qa_run.event"


def run_group(plan_id: uuid.UUID | str) -> str:
    return f"qa_run.{plan_id}"


def event_message(run: QaPackageRun, qa_event: QaEvent) -> Event:
    """The channel-layer message of one event: what the run page needs to draw it."""
    data: dict[str, Any] = {
        "plan_id": str(run.plan_id),
        "sequence": qa_event.sequence,
        "event": qa_event.type,
        "payload": qa_event.payload,
        "created_at": qa_event.created_at.isoformat(),
    }
    return event(EVENT_NAME, [run_group(run.plan_id)], **data)


def run_events_push(*, run: QaPackageRun, after: int) -> int:
    """Send the run's committed events numbered after `after`; the last sequence sent (or `after`)."""
    events = list(QaEvent.objects.filter(run_id=run.pk, sequence__gt=after).order_by("sequence"))
    if not events:
        return after
    events_send([event_message(run, qa_event) for qa_event in events])
    return events[-1].sequence

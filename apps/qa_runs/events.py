"""A QA run's events on the channel layer (openspc.events): their group and payload.

`qa_run.event` goes to the group `qa_run.<plan_id>`; apps/qa_runs/consumers.py forwards it to
the browsers watching the run (docs/asyncapi.yaml).
"""

import uuid
from typing import Any

from apps.qa_runs.models import QaEvent, QaPackageRun
from openspc.events import Event, EventType, event


def run_group(plan_id: uuid.UUID | str) -> str:
    return f"qa_run.{plan_id}"


def run_event_data(run: QaPackageRun, qa_event: QaEvent) -> dict[str, Any]:
    """What the run page needs to draw one event."""
    return {
        "plan_id": str(run.plan_id),
        "sequence": qa_event.sequence,
        "event": qa_event.type,
        "payload": qa_event.payload,
        "created_at": qa_event.created_at.isoformat(),
    }


def run_event(run: QaPackageRun, qa_event: QaEvent) -> Event:
    return event(EventType.QA_RUN_EVENT, [run_group(run.plan_id)], **run_event_data(run, qa_event))

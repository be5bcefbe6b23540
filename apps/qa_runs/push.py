"""A run's events on the channel layer: `qa_run.event` messages to the group `qa_run.<plan_id>`
(DESIGN.md "Data flow"), which apps/qa_runs/consumers.py forwards to the browsers watching the run.

Events are read back from the database before they are sent, so only committed events go out (the
same guarantee `transaction.on_commit` gives elsewhere), in sequence order, each once per pusher.
A channel layer that is down loses the live push only: clients catch up with
GET /api/v1/qa/runs/<plan_id>/events/?after=<sequence>.
"""

from apps.qa_runs.events import run_event
from apps.qa_runs.models import QaEvent, QaPackageRun
from openspc.events import events_send


def run_events_push(*, run: QaPackageRun, after: int) -> int:
    """Send the run's committed events numbered after `after`; the last sequence sent (or `after`)."""
    events = list(QaEvent.objects.filter(run_id=run.pk, sequence__gt=after).order_by("sequence"))
    if not events:
        return after
    events_send([run_event(run, qa_event) for qa_event in events])
    return events[-1].sequence

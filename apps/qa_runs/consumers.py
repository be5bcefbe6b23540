"""`ws/qa-runs/<plan_id>/`: one QA run's events, pushed as they are committed (apps/qa_runs/push.py
sends `qa_run.event` to the group `qa_run.<plan_id>`). The messages are in docs/asyncapi.yaml:

    server {"type": "qa_run_event", "payload": {"plan_id", "sequence", "event", "payload", "created_at"}}
    client {"type": "ping"}  ->  server {"type": "pong", "server_time": "<ISO 8601>"}

Authentication, ping, the idle timeout and the close codes are those of the other live channels
(openspc.sockets.LiveConsumer). A run that does not exist, or a user who may not read
runs, is refused with 4403 `not_readable` (the two look the same). After a reconnect, a client
catches up with GET /api/v1/qa/runs/<plan_id>/events/?after=<last sequence>.
"""

from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth.models import User

from apps.qa_runs.events import run_group
from apps.qa_runs.models import QaPackageRun
from openspc.events import EventType
from openspc.sockets import CLOSE_FORBIDDEN, LiveConsumer

QA_RUN_EVENTS: dict[str, str] = {EventType.QA_RUN_EVENT: "qa_run_event"}


def _may_watch(user: User, plan_id: str) -> bool:
    return (
        user.has_perm("qa_runs.view_qapackagerun") and QaPackageRun.objects.filter(plan_id=plan_id).exists()
    )


class QaRunConsumer(LiveConsumer):
    events = QA_RUN_EVENTS

    async def connected(self) -> bool:
        self.plan_id = str(self.scope["url_route"]["kwargs"]["plan_id"])
        allowed = await database_sync_to_async(_may_watch)(self.user, self.plan_id)
        if not allowed:
            await self.refuse(
                CLOSE_FORBIDDEN, "not_readable", "This QA run does not exist or you may not read it."
            )
            return False
        await self.join(run_group(self.plan_id))
        return True

    async def forward(self, event: dict[str, Any]) -> None:
        payload = {key: value for key, value in event.items() if key != "type"}
        await self.send_json({"type": QA_RUN_EVENTS[event["type"]], "payload": payload})

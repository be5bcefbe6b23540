"""`ws/qa-runs/<plan_id>/`: a run's events pushed live, in process (channels' communicator) on the
real Redis channel layer; refused for a run that does not exist and for roles that may not read runs."""

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from apps.qa_runs.choices import EventType, RunStatus
from apps.qa_runs.push import run_events_push
from apps.qa_runs.services import event_publish, qa_run_request, qa_run_transition
from openspc.sockets import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED
from tests.support.daphne import access_token, close_code, communicator

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

UNKNOWN_PLAN = "00000000-0000-4000-8000-000000000000"


def path(plan_id: Any) -> str:
    return f"/ws/qa-runs/{plan_id}/"


class QaRunSocketTests:
    def test_the_runs_events_arrive_in_order_with_their_payloads(self, quality_specialist, package):
        run = qa_run_request(package=package, requested_by=quality_specialist)

        def push() -> None:
            moved = qa_run_transition(run=run, to=RunStatus.SPEC_FETCHED, operations_total=2)
            event_publish(run=moved, type=EventType.SCENARIO_CREATED, payload={"operation": "listThings"})
            assert run_events_push(run=moved, after=0) == 3

        async def scenario() -> list[dict[str, Any]]:
            comm = communicator(path(run.plan_id), token=access_token(quality_specialist))
            connected, _ = await comm.connect()
            assert connected
            await comm.send_json_to({"type": "ping"})
            assert (await comm.receive_json_from())["type"] == "pong"  # in the group by now
            await database_sync_to_async(push)()
            received = [await comm.receive_json_from(timeout=3) for _ in range(3)]
            assert await comm.receive_nothing(timeout=0.3)
            await comm.disconnect()
            return received

        received = async_to_sync(scenario)()
        assert [m["type"] for m in received] == ["qa_run_event"] * 3
        assert [(m["payload"]["sequence"], m["payload"]["event"]) for m in received] == [
            (1, EventType.REQUESTED),
            (2, EventType.SPEC_FETCHED),
            (3, EventType.SCENARIO_CREATED),
        ]
        assert received[2]["payload"]["payload"] == {"operation": "listThings"}
        assert {m["payload"]["plan_id"] for m in received} == {str(run.plan_id)}

    @pytest.mark.parametrize("who", ["tester", "operations_lead", "manager"])
    def test_roles_that_may_not_read_runs_are_refused(self, request, who, quality_specialist, package):
        run = qa_run_request(package=package, requested_by=quality_specialist)
        user = request.getfixturevalue(who)
        assert async_to_sync(_refusal)(path(run.plan_id), access_token(user)) == (
            CLOSE_FORBIDDEN,
            "not_readable",
        )

    def test_a_run_that_does_not_exist_is_refused_the_same_way(self, quality_specialist):
        assert async_to_sync(_refusal)(path(UNKNOWN_PLAN), access_token(quality_specialist)) == (
            CLOSE_FORBIDDEN,
            "not_readable",
        )

    def test_a_password_change_closes_the_runs_socket_with_4401(self, quality_specialist, package):
        run = qa_run_request(package=package, requested_by=quality_specialist)

        def change_password() -> None:
            quality_specialist.set_password("a-new-long-password")
            quality_specialist.save()

        async def scenario() -> tuple[int | None, dict[str, Any]]:
            comm = communicator(path(run.plan_id), token=access_token(quality_specialist))
            connected, _ = await comm.connect()
            assert connected
            await comm.send_json_to({"type": "ping"})
            assert (await comm.receive_json_from())["type"] == "pong"
            await database_sync_to_async(change_password)()
            error = await comm.receive_json_from(timeout=3)
            return await close_code(comm), error

        code, error = async_to_sync(scenario)()
        assert code == CLOSE_UNAUTHENTICATED
        assert error == {
            "type": "error",
            "code": "credentials_revoked",
            "message": "The password was changed: sign in again.",
        }


async def _refusal(where: str, token: str) -> tuple[int | None, str]:
    comm = communicator(where, token=token)
    connected, _ = await comm.connect()
    assert connected  # accepted first, so that the close code reaches the client
    error = await comm.receive_json_from()
    code = await close_code(comm)
    return code, error["code"]

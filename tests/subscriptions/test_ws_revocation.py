"""Open live connections close with 4401 `credentials_revoked` when what signed them in stops being
valid: the browser session signs out, the user is deactivated or changes password. In process
(channels' communicator) on the real Redis channel layer; the changes go through the real views
and saves, so the signals and the services behind them are exercised too."""

import time
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client

from openspc.sessions import SIGNED_IN_AT
from openspc.sockets import CLOSE_UNAUTHENTICATED
from tests.support.daphne import access_token, close_code, communicator

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SAMPLES, NOTIFICATIONS = "/ws/samples/", "/ws/notifications/"


async def opened(path: str, **credentials: str) -> Any:
    comm = communicator(path, **credentials)
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "ping"})
    assert (await comm.receive_json_from())["type"] == "pong"  # in its groups by now
    return comm


# Long enough for a machine busy with CI and a parallel suite (3 s was not, now and then): the
# socket must still close, and one that never does fails all the same.
async def closed_with(comm: Any, timeout: float = 10) -> tuple[dict[str, Any], int | None]:
    error = await comm.receive_json_from(timeout=timeout)
    return error, await close_code(comm)


def signed_in_browser(user: Any) -> tuple[Client, str]:
    browser = Client()
    assert (
        browser.post("/login/", {"username": user.username, "password": "pw-for-tests-only"}).status_code
        == 302
    )
    return browser, f"sessionid={browser.cookies['sessionid'].value}"


def test_signing_out_closes_that_sessions_sockets_and_no_others(manager):
    browser, cookie = signed_in_browser(manager)
    _, other_cookie = signed_in_browser(manager)

    async def scenario() -> tuple[Any, ...]:
        mine = await opened(SAMPLES, cookie=cookie)
        mine_too = await opened(NOTIFICATIONS, cookie=cookie)
        other_browser = await opened(SAMPLES, cookie=other_cookie)
        with_token = await opened(NOTIFICATIONS, token=access_token(manager))
        answer = await database_sync_to_async(browser.post)("/logout/")
        results = (answer.status_code, await closed_with(mine), await closed_with(mine_too))
        quiet = await other_browser.receive_nothing(timeout=0.5) and await with_token.receive_nothing(
            timeout=0.1
        )
        for comm in (other_browser, with_token):
            await comm.disconnect()
        # The signed-out cookie no longer connects.
        again = communicator(SAMPLES, cookie=cookie)
        await again.connect()
        refused = await closed_with(again)
        return (*results, quiet, refused)

    status, (error, code), (_, code_too), quiet, (refusal, refused_code) = async_to_sync(scenario)()
    assert status == 302
    assert error == {
        "type": "error",
        "code": "credentials_revoked",
        "message": "You signed out in this browser.",
    }
    assert (code, code_too) == (CLOSE_UNAUTHENTICATED, CLOSE_UNAUTHENTICATED)
    assert quiet
    assert (refusal["code"], refused_code) == ("not_authenticated", CLOSE_UNAUTHENTICATED)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("deactivate", "The user has been deactivated."),
        ("password", "The password was changed: sign in again."),
    ],
)
def test_deactivation_and_a_password_change_close_every_socket_of_the_user(manager, tester, change, message):
    _, cookie = signed_in_browser(manager)

    def apply() -> None:
        user = get_user_model().objects.get(pk=manager.pk)
        if change == "deactivate":
            user.is_active = False
        else:
            user.set_password("a-new-long-password")
        user.save()

    async def scenario() -> tuple[Any, ...]:
        by_token = await opened(SAMPLES, token=access_token(manager))
        by_session = await opened(NOTIFICATIONS, cookie=cookie)
        someone_else = await opened(SAMPLES, token=access_token(tester))
        await database_sync_to_async(apply)()
        results = (await closed_with(by_token), await closed_with(by_session))
        quiet = await someone_else.receive_nothing(timeout=0.5)
        await someone_else.disconnect()
        # The old token does not connect again.
        again = communicator(SAMPLES, token=access_token(manager) if change == "deactivate" else old_token)
        await again.connect()
        return (*results, quiet, await closed_with(again))

    old_token = access_token(manager)
    (error, code), (error_too, code_too), quiet, (refusal, refused_code) = async_to_sync(scenario)()
    assert error == {"type": "error", "code": "credentials_revoked", "message": message}
    assert error_too == error
    assert (code, code_too) == (CLOSE_UNAUTHENTICATED, CLOSE_UNAUTHENTICATED)
    assert quiet
    assert (refusal["code"], refused_code) == ("token_invalid", CLOSE_UNAUTHENTICATED)


def test_a_session_socket_closes_when_the_session_reaches_its_maximum_age(manager, settings):
    browser, cookie = signed_in_browser(manager)
    session = browser.session
    # Signed in SESSION_MAX_HOURS ago, less `left` seconds: enough to connect and answer a ping on a
    # busy CI machine (with one second left, the session once ended before the pong).
    left = 5
    session[SIGNED_IN_AT] = int(time.time()) - settings.SESSION_MAX_HOURS * 3600 + left
    session.save()

    async def scenario() -> tuple[dict[str, Any], int | None]:
        comm = await opened(SAMPLES, cookie=cookie)  # still within its life: accepted, answers pings
        return await closed_with(comm, timeout=left + 3)

    error, code = async_to_sync(scenario)()
    assert error == {
        "type": "error",
        "code": "session_expired",
        "message": "The browser session has ended: sign in again.",
    }
    assert code == CLOSE_UNAUTHENTICATED

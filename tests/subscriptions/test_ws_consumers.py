"""The WebSocket consumers in process (channels' WebsocketCommunicator) on the real Redis layer."""

import asyncio
import datetime
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import Client
from django.utils import timezone

from apps.config import services as config_services
from apps.config.models import Characteristic
from openspc.sockets import CLOSE_FORBIDDEN, CLOSE_IDLE, CLOSE_UNAUTHENTICATED
from tests.factories import ProductFactory, TestFactory, UserFactory, characteristic_for
from tests.support.daphne import (
    access_token,
    close_code,
    communicator,
    expired_token,
    refresh_token,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SAMPLES, NOTIFICATIONS = "/ws/samples/", "/ws/notifications/"


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return async_to_sync(scenario)()


def dia(plant: Any) -> Characteristic:
    return Characteristic.objects.get(product=plant.product, test=plant.dia)


def other_characteristic() -> Characteristic:
    """A characteristic of a product nobody has items in."""
    return characteristic_for(ProductFactory(code="OTHER-1"), TestFactory(code="OTHER-T"))


async def subscribed(path: str, token: str, ids: list[int]) -> Any:
    comm = communicator(path, token=token)
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "subscribe", "characteristic_ids": ids})
    return comm


async def silent(comm: Any, seconds: float = 0.3) -> bool:
    return await comm.receive_nothing(timeout=seconds)


class SubscribeTests:
    def test_a_manager_subscribes_and_gets_the_characteristics_events_as_the_seed_names_them(
        self, plant, manager
    ):
        chart, other = dia(plant), other_characteristic()

        async def scenario():
            comm = await subscribed(SAMPLES, access_token(manager), [chart.pk])
            answer = await comm.receive_json_from()
            layer = get_channel_layer()
            events = [
                {
                    "type": "sample.created",
                    "timestamp": "t1",
                    "characteristic": chart.pk,
                    "id": 11,
                    "sequence": 1,
                },
                {
                    "type": "violation.created",
                    "timestamp": "t2",
                    "characteristic": chart.pk,
                    "id": 5,
                    "rule": 1,
                },
                {"type": "lot.disposition", "timestamp": "t3", "lot": 1},  # not this channel's: dropped
                {"type": "statistics.updated", "timestamp": "t4", "characteristic": chart.pk, "scope": "lot"},
            ]
            await layer.group_send(f"characteristic.{chart.pk}", {"type": "events.batch", "events": events})
            await layer.group_send(
                f"characteristic.{chart.pk}",
                {"type": "violation.acknowledged", "timestamp": "t5", "characteristic": chart.pk, "id": 5},
            )
            await layer.group_send(
                f"characteristic.{chart.pk}",
                {"type": "limits.changed", "timestamp": "t6", "characteristic": chart.pk, "version": 2},
            )
            # Not subscribed: nothing arrives from another characteristic's group.
            await layer.group_send(
                f"characteristic.{other.pk}",
                {"type": "sample.created", "timestamp": "t7", "characteristic": other.pk, "id": 12},
            )
            got = [await comm.receive_json_from(timeout=2) for _ in range(5)]
            quiet = await silent(comm)
            await comm.disconnect()
            return answer, got, quiet

        answer, got, quiet = run(scenario)
        assert answer == {"type": "subscribed", "characteristic_ids": [chart.pk]}
        payloads = [
            {"timestamp": "t1", "characteristic": chart.pk, "id": 11, "sequence": 1},
            {"timestamp": "t2", "characteristic": chart.pk, "id": 5, "rule": 1},
            {"timestamp": "t4", "characteristic": chart.pk, "scope": "lot"},
            {"timestamp": "t5", "characteristic": chart.pk, "id": 5},
            {"timestamp": "t6", "characteristic": chart.pk, "version": 2},
        ]
        kinds = ["sample", "violation", "statistics_update", "ack_update", "limits_update"]
        assert got == [
            {"type": kind, "payload": payload} for kind, payload in zip(kinds, payloads, strict=True)
        ]
        assert quiet

    def test_unknown_ids_are_refused_with_an_error_and_the_readable_ones_still_subscribed(
        self, plant, manager
    ):
        chart = dia(plant)

        async def scenario():
            comm = await subscribed(SAMPLES, access_token(manager), [chart.pk, 999_999, chart.pk])
            answers = [await comm.receive_json_from(), await comm.receive_json_from()]
            await comm.disconnect()
            return answers

        subscribed_answer, error = run(scenario)
        assert subscribed_answer == {"type": "subscribed", "characteristic_ids": [chart.pk]}
        assert error["type"] == "error"
        assert (error["code"], error["characteristic_ids"]) == ("not_readable", [999_999])

    def test_a_tester_cannot_subscribe_to_a_characteristic_of_a_product_they_have_no_items_in(
        self, plant, tester
    ):
        assert plant.items[0].tester == tester  # the tester has items, of RING-74
        other = other_characteristic()

        async def scenario():
            comm = await subscribed(SAMPLES, access_token(tester), [other.pk])
            error = await comm.receive_json_from()
            await get_channel_layer().group_send(
                f"characteristic.{other.pk}",
                {"type": "sample.created", "timestamp": "t", "characteristic": other.pk, "id": 1},
            )
            quiet = await silent(comm)
            await comm.disconnect()
            return error, quiet

        error, quiet = run(scenario)
        assert error["type"] == "error"
        assert (error["code"], error["characteristic_ids"]) == ("not_readable", [other.pk])
        assert quiet, "a refused characteristic's events reached the tester"

    @pytest.mark.parametrize("who", ["tester", "no role"])
    def test_a_role_the_api_refuses_the_chart_data_cannot_watch_it(self, api, plant, tester, who):
        """The API refuses testers and users with no role the chart data and samples of every
        characteristic, even of a product the tester has items in; the socket applies the same rule
        (Characteristic.visible_to)."""
        chart = dia(plant)  # RING-74, where the tester has items
        user = tester if who == "tester" else UserFactory(username="no-role", roles=[])
        assert api(user).get(f"/api/v1/characteristics/{chart.pk}/chart-data/").status_code == 403

        async def scenario():
            comm = await subscribed(SAMPLES, access_token(user), [chart.pk])
            answer = await comm.receive_json_from()
            await get_channel_layer().group_send(
                f"characteristic.{chart.pk}",
                {"type": "sample.created", "timestamp": "t", "characteristic": chart.pk, "id": 1},
            )
            quiet = await silent(comm)
            await comm.disconnect()
            return answer, quiet

        answer, quiet = run(scenario)
        refusal = (answer["type"], answer["code"], answer["characteristic_ids"])
        assert refusal == ("error", "not_readable", [chart.pk])
        assert quiet, "a refused characteristic's events reached the user"

    @pytest.mark.parametrize("who", ["tester", "no role"])
    def test_a_role_with_no_inbox_is_refused_the_notifications_channel(self, tester, who):
        user = tester if who == "tester" else UserFactory(username="no-role", roles=[])

        async def scenario():
            comm = communicator(NOTIFICATIONS, token=access_token(user))
            connected, _ = await comm.connect()
            assert connected
            error = await comm.receive_json_from()
            return error, await close_code(comm)

        error, code = run(scenario)
        assert (error["type"], error["code"], code) == ("error", "forbidden", CLOSE_FORBIDDEN)

    def test_after_unsubscribe_nothing_more_arrives(self, plant, manager):
        chart = dia(plant)

        async def scenario():
            comm = await subscribed(SAMPLES, access_token(manager), [chart.pk])
            await comm.receive_json_from()
            await comm.send_json_to({"type": "unsubscribe", "characteristic_ids": [chart.pk]})
            answer = await comm.receive_json_from()
            await get_channel_layer().group_send(
                f"characteristic.{chart.pk}",
                {"type": "sample.created", "timestamp": "t", "characteristic": chart.pk, "id": 1},
            )
            quiet = await silent(comm)
            await comm.disconnect()
            return answer, quiet

        answer, quiet = run(scenario)
        assert answer == {"type": "unsubscribed", "characteristic_ids": [chart.pk]}
        assert quiet

    def test_a_browser_session_cookie_authenticates_without_a_token(self, plant, manager):
        chart = dia(plant)
        browser = Client()
        browser.force_login(manager)
        cookie = f"sessionid={browser.cookies['sessionid'].value}"

        async def scenario():
            comm = communicator(SAMPLES, cookie=cookie)
            await comm.connect()
            await comm.send_json_to({"type": "subscribe", "characteristic_ids": [chart.pk]})
            answer = await comm.receive_json_from()
            await comm.disconnect()
            return answer

        assert run(scenario) == {"type": "subscribed", "characteristic_ids": [chart.pk]}


class AuthenticationTests:
    @pytest.mark.parametrize(
        ("make_token", "code"),
        [
            (expired_token, "token_expired"),
            (lambda user: access_token(user)[:-4] + "AAAA", "token_invalid"),  # signature broken
            (refresh_token, "token_invalid"),  # a refresh token is not an access token
            (lambda user: None, "not_authenticated"),
        ],
    )
    @pytest.mark.parametrize("path", [SAMPLES, NOTIFICATIONS])
    def test_bad_or_missing_credentials_close_with_4401_after_saying_why(
        self, manager, path, make_token, code
    ):
        token = make_token(manager)  # outside the loop: a refresh token is recorded in the database

        async def scenario():
            comm = communicator(path, token=token)
            connected, _ = await comm.connect()
            error = await comm.receive_json_from()
            return connected, error, await close_code(comm)

        connected, error, closed_with = run(scenario)
        assert connected  # accepted, so that the close code reaches the client
        assert (error["type"], error["code"]) == ("error", code)
        assert closed_with == CLOSE_UNAUTHENTICATED

    def test_a_bad_token_does_not_fall_back_to_the_session(self, manager):
        browser = Client()
        browser.force_login(manager)
        cookie = f"sessionid={browser.cookies['sessionid'].value}"

        async def scenario():
            comm = communicator(SAMPLES, token=expired_token(manager), cookie=cookie)
            await comm.connect()
            return (await comm.receive_json_from())["code"], await close_code(comm)

        assert run(scenario) == ("token_expired", CLOSE_UNAUTHENTICATED)

    def test_a_devices_service_user_is_refused_with_4403(self):
        device, _ = config_services.device_create(name="gauge-ws")

        async def scenario():
            comm = communicator(SAMPLES, token=access_token(device.user))
            await comm.connect()
            return (await comm.receive_json_from())["code"], await close_code(comm)

        assert run(scenario) == ("forbidden", CLOSE_FORBIDDEN)

    def test_the_connection_closes_with_4401_when_its_token_expires(self, manager):
        async def scenario():
            comm = communicator(SAMPLES, token=access_token(manager, lifetime=datetime.timedelta(seconds=1)))
            await comm.connect()
            await comm.send_json_to({"type": "ping"})
            pong = await comm.receive_json_from()
            error = await comm.receive_json_from(timeout=3)
            return pong["type"], error["code"], await close_code(comm)

        assert run(scenario) == ("pong", "token_expired", CLOSE_UNAUTHENTICATED)


class ProtocolTests:
    def test_ping_gets_pong_with_the_server_time(self, manager):
        async def scenario():
            comm = communicator(SAMPLES, token=access_token(manager))
            await comm.connect()
            await comm.send_json_to({"type": "ping"})
            answer = await comm.receive_json_from()
            await comm.disconnect()
            return answer

        before = timezone.now()
        answer = run(scenario)
        assert set(answer) == {"type", "server_time"}
        assert answer["type"] == "pong"
        server_time = datetime.datetime.fromisoformat(answer["server_time"])
        assert before <= server_time <= timezone.now()

    @pytest.mark.parametrize(
        ("frame", "code"),
        [
            ({"text_data": "{not json"}, "invalid_json"),
            ({"text_data": "[" * 100_000}, "invalid_json"),  # nested too deeply for the parser
            ({"text_data": '{"type": ' * 100_000}, "invalid_json"),
            ({"text_data": "[1, 2]"}, "invalid_message"),
            ({"text_data": '{"type": "dance"}'}, "unknown_type"),
            ({"text_data": '{"type": "subscribe", "characteristic_ids": "1"}'}, "invalid_message"),
            ({"text_data": '{"type": "subscribe", "characteristic_ids": [true]}'}, "invalid_message"),
            ({"bytes_data": b"\x00\x01"}, "invalid_message"),
        ],
    )
    def test_a_bad_message_gets_an_error_and_the_connection_stays_open(self, manager, frame, code):
        async def scenario():
            comm = communicator(SAMPLES, token=access_token(manager))
            await comm.connect()
            await comm.send_to(**frame)
            error = await comm.receive_json_from()
            await comm.send_json_to({"type": "ping"})
            after = await comm.receive_json_from()
            await comm.disconnect()
            return error, after["type"]

        error, after = run(scenario)
        assert (error["type"], error["code"]) == ("error", code)
        assert error["message"]
        assert after == "pong"

    def test_an_idle_connection_is_closed_with_4408_and_a_message_keeps_it_open(self, manager, settings):
        settings.WS_IDLE_TIMEOUT_SECONDS = 1

        async def scenario():
            loop = asyncio.get_running_loop()
            comm = communicator(SAMPLES, token=access_token(manager))
            await comm.connect()
            opened = loop.time()
            for _ in range(3):  # 1.8 s in all, never 1 s silent
                await asyncio.sleep(0.6)
                await comm.send_json_to({"type": "ping"})
                assert (await comm.receive_json_from())["type"] == "pong"
            error = await comm.receive_json_from(timeout=3)
            code = await close_code(comm)
            return loop.time() - opened, error["code"], code

        lasted, error, code = run(scenario)
        assert (error, code) == ("idle_timeout", CLOSE_IDLE)
        assert 2.7 <= lasted < 4.0  # the last ping at ~1.8 s, closed ~1 s later


class NotificationTests:
    def test_the_users_notifications_arrive_and_nobody_elses(self, manager):
        other = UserFactory(username="someone-else")
        notification = {
            "id": 7, "event": "violation.created", "title": "Rule 1 on DIA", "message": "", "link": "/x",
            "data": {"violation": 5}, "created_at": "2026-01-01T00:00:00+00:00", "read": False,
        }  # fmt: skip

        async def scenario():
            comm = communicator(NOTIFICATIONS, token=access_token(manager))
            await comm.connect()
            layer = get_channel_layer()
            await layer.group_send(
                f"user.{other.pk}",
                {"type": "notification.created", "timestamp": "t", "notification": {**notification, "id": 8}},
            )
            await layer.group_send(
                f"user.{manager.pk}",
                {"type": "notification.created", "timestamp": "t", "notification": notification},
            )
            got = await comm.receive_json_from(timeout=2)
            quiet = await silent(comm)
            await comm.send_json_to({"type": "subscribe", "characteristic_ids": [1]})
            refused = await comm.receive_json_from()
            await comm.disconnect()
            return got, quiet, refused

        got, quiet, refused = run(scenario)
        assert got == {"type": "notification", "payload": notification}
        assert quiet
        assert refused["code"] == "unknown_type"  # subscribing is the samples channel's

"""The fan-out: calculation events → the subscribers' notifications (inbox and live), once each;
the e-mail digest; and the whole path through a real Celery worker."""

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core import mail
from django.utils import timezone

from apps.calculations.models import LotStatistics, Violation, ViolationEvent
from apps.config.models import TestPlan
from apps.subscriptions import services, tasks
from apps.subscriptions.models import Notification, Subscription
from openspc import events as calculation_events
from openspc.roles import Role
from tests.calculations.api_helpers import dia_of, historical, subgroups_store, submit, window_forget
from tests.factories import (
    ItemFactory,
    LotFactory,
    ProductFactory,
    SubscriptionFactory,
    TestFactory,
    UserFactory,
    characteristic_for,
)
from tests.support.workers import CeleryWorkers

INBOX = "/api/v1/notifications/"


class Shop:
    """Products A-100 and B-200 with test DIA (n = 1, limits 20 ± 0.03), lots LA-1 and LB-1."""

    def __init__(self) -> None:
        self.ops = UserFactory(username="ops-lead", roles=[Role.OPERATIONS_LEAD])
        self.a, self.b = ProductFactory(code="A-100"), ProductFactory(code="B-200")
        self.dia = TestFactory(code="DIA", name="Diameter", decimals=3)
        self.char_a, self.char_b = characteristic_for(self.a, self.dia), characteristic_for(self.b, self.dia)
        for characteristic in (self.char_a, self.char_b):
            window_forget(characteristic)
            historical(characteristic, center=20.0, sigma=0.01)
        self.lot_a = LotFactory(product=self.a, number="LA-1")
        self.lot_a2 = LotFactory(product=self.a, number="LA-2")
        self.lot_b = LotFactory(product=self.b, number="LB-1")

    def store(self, characteristic: Any, values: list[float], lot: Any) -> None:
        subgroups_store(characteristic, [[v] for v in values], lot=lot, user=self.ops)


@pytest.fixture
def shop(db: None) -> Shop:
    return Shop()


@pytest.fixture
def fanout_inline(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Run the fan-out task where events_send queues it (no worker); the payloads sent."""
    sent: list[dict[str, Any]] = []

    def send_task(name: str, kwargs: dict[str, Any] | None = None, **options: Any) -> None:
        if name == "subscriptions.fanout":  # calculations.apply is not needed: the tests calculate
            sent.append(kwargs or {})
            tasks.subscriptions_fanout_task(**(kwargs or {}))

    monkeypatch.setattr(calculation_events.current_app, "send_task", send_task)
    return sent


def subscribe(user: Any, **fields: Any) -> Subscription:
    return services.subscription_create(user=user, **fields)


def violation_event(characteristic: Any, lot: Any, pk: int, **data: Any) -> dict[str, Any]:
    return {
        "type": "violation.created", "timestamp": timezone.now().isoformat(), "id": pk,
        "characteristic": characteristic.pk, "sample": pk, "sequence": pk, "lot": lot.pk, "rule": 1,
        "chart": "location", "points": [pk], "severity": "critical", "limits_version": 1, **data,
    }  # fmt: skip


def lot_statistics_event(characteristic: Any, lot: Any, n: int, when: Any = None) -> dict[str, Any]:
    return {
        "type": "statistics.updated", "timestamp": (when or timezone.now()).isoformat(), "scope": "lot",
        "lot": lot.pk, "test": characteristic.test_id, "characteristic": characteristic.pk, "n": n,
        "mean": 20.0012, "sd": 0.0101, "min": 19.98, "max": 20.02, "out_of_spec": 0, "cpk": 1.41,
        "disposition": "release",
    }  # fmt: skip


@pytest.mark.django_db
class EventsSendTests:
    @pytest.fixture
    def sent(self, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any, str]]:
        sent: list[tuple[str, Any, str]] = []
        monkeypatch.setattr(
            calculation_events.current_app,
            "send_task",
            lambda name, kwargs, kwargsrepr: sent.append((name, kwargs, kwargsrepr)),
        )
        return sent

    EVENTS = (
        calculation_events.event("sample.created", ["lot.1"], id=1),
        calculation_events.event("violation.created", ["lot.1"], id=2, characteristic=3),
        calculation_events.event("statistics.updated", ["lot.1"], scope="lot", lot=1),
    )

    def test_one_fanout_task_per_send_with_only_the_events_someone_hears(self, sent):
        SubscriptionFactory(events=["violations", "results"])
        sample, violation, stats = self.EVENTS
        calculation_events.events_send([sample, violation, stats])
        calculation_events.events_send([sample])

        # The log line counts the events instead of rendering them.
        notified = {"events": [violation[1], stats[1]]}
        assert sent == [("subscriptions.fanout", notified, "{'events': <2 events>}")]
        assert settings.CELERY_TASK_ROUTES["subscriptions.fanout"] == {"queue": "celery"}

    def test_no_fanout_task_for_events_nobody_hears(self, sent):
        """Most calculations concern nobody: no task for them (one per sample cost a worker as much
        CPU as a fifth of the sample itself; issue #20). Told by role, a release request always goes."""
        calculation_events.events_send(list(self.EVENTS))
        assert sent == []
        # A subscription to violations only, then switched off: the process hears of both at once.
        subscription = SubscriptionFactory(events=["violations"])
        calculation_events.events_send(list(self.EVENTS))
        assert [kwargs["events"] for _, kwargs, _ in sent] == [[self.EVENTS[1][1]]]
        subscription.active = False
        subscription.save(update_fields=["active"])
        sent.clear()
        calculation_events.events_send(list(self.EVENTS))
        assert sent == []
        release = calculation_events.event("lot.release_requested", ["lot.1"], lot=1)
        calculation_events.events_send([release])
        assert [kwargs["events"] for _, kwargs, _ in sent] == [[release[1]]]


@pytest.mark.django_db
class FanoutTests:
    def test_a_product_subscription_hears_its_product_only(
        self, shop, manager, fanout_inline, django_capture_on_commit_callbacks
    ):
        subscribe(manager, scope="product", product=shop.a.pk)
        with django_capture_on_commit_callbacks(execute=True):
            shop.store(shop.char_a, [20.0, 20.5], shop.lot_a)  # 20.5: beyond UCL 20.03 (I and MR charts)
            shop.store(shop.char_b, [20.0, 20.5], shop.lot_b)

        violations_a = Violation.objects.filter(characteristic=shop.char_a)
        assert violations_a.count() == 2
        assert Violation.objects.filter(characteristic=shop.char_b).count() == 2
        # One notification per event (issue #21): here each violation starts one (I and MR charts).
        events_a = ViolationEvent.objects.filter(characteristic=shop.char_a).order_by("id")
        assert [e.pk for e in events_a] == sorted({v.event_id for v in violations_a})
        notes = Notification.objects.filter(user=manager).order_by("id")
        assert [n.dedup_key for n in notes] == [f"violation_event:{e.pk}" for e in events_a]
        first = notes[0]
        assert first.title == "Rule 1 event, high priority, on DIA Diameter of A-100, lot LA-1"
        assert first.message.startswith("A point beyond a control limit on the ")
        assert first.message.endswith(": 1 point (sample 2), going on.")
        assert first.link == f"/api/v1/violation-events/{first.data['id']}/"
        assert (first.data["characteristic"], first.data["lot"]) == (shop.char_a.pk, shop.lot_a.pk)
        # Results were not asked for: the statistics of both runs made nothing.
        assert not Notification.objects.filter(event="statistics.updated").exists()

    def test_one_notification_per_event_updated_in_place_as_it_grows(
        self, plant, manager, fanout_inline, django_capture_on_commit_callbacks
    ):
        dia = dia_of(plant)
        historical(dia, center=74.0, sigma=0.01)
        subscribe(manager, scope="characteristic", characteristic=dia.pk)
        above = [74.005, 74.006, 74.015]  # only rule 2 signals (tests/calculations/test_violation_events.py)
        with django_capture_on_commit_callbacks(execute=True):
            subgroups_store(dia, [[above[i % 3]] for i in range(10)], lot=plant.lot, user=plant.tester)
        (note,) = Notification.objects.filter(user=manager)
        assert note.message.endswith(": 10 points (samples 1–10), going on.")
        services.notification_mark_read(notification=note)

        with django_capture_on_commit_callbacks(execute=True):  # 5 more points of the run: 5 violations
            subgroups_store(dia, [[above[i % 3]] for i in range(5)], lot=plant.lot, user=plant.tester)

        (grown,) = Notification.objects.filter(user=manager)  # the same one, updated, still read
        assert grown.pk == note.pk
        assert grown.message.endswith(": 15 points (samples 1–15), going on.")
        assert grown.read_at is not None
        assert Violation.objects.filter(characteristic=dia).count() == 7

    def test_in_one_batch_of_both_products_a_product_subscription_picks_its_own(self, shop, manager):
        subscribe(manager, scope="product", product=shop.a.pk, events=["violations", "results"])
        services.notifications_fanout(
            events=[
                violation_event(shop.char_b, shop.lot_b, 1),
                violation_event(shop.char_a, shop.lot_a, 2),
                lot_statistics_event(shop.char_b, shop.lot_b, 5),
            ]
        )
        assert list(Notification.objects.values_list("dedup_key", flat=True)) == ["violation.created:2"]

    def test_events_nobody_is_subscribed_to_cost_one_query(self, shop, manager, django_assert_num_queries):
        subscribe(manager, scope="product", product=shop.b.pk)  # another product's
        events = [
            violation_event(shop.char_a, shop.lot_a, 1),
            lot_statistics_event(shop.char_a, shop.lot_a, 5),
        ]
        with django_assert_num_queries(1):  # the subscriptions concerned; no characteristic, no lot loaded
            assert services.notifications_fanout(events=events) == []
        assert not Notification.objects.exists()

    def test_a_test_subscription_hears_the_test_in_every_product(self, shop, manager):
        subscribe(manager, scope="test", test=shop.dia.pk)
        services.notifications_fanout(
            events=[violation_event(shop.char_a, shop.lot_a, 1), violation_event(shop.char_b, shop.lot_b, 2)]
        )
        assert sorted(Notification.objects.values_list("data__lot", flat=True)) == [
            shop.lot_a.pk,
            shop.lot_b.pk,
        ]

    def test_a_lot_subscription_gets_that_lots_statistics_updates_coalesced(
        self, shop, manager, fanout_inline, django_capture_on_commit_callbacks
    ):
        subscribe(manager, scope="lot", lot=shop.lot_a.pk, events=["results"])
        with django_capture_on_commit_callbacks(execute=True):
            shop.store(shop.char_a, [20.001, 19.999], shop.lot_a)
            shop.store(shop.char_a, [20.002], shop.lot_a2)  # another lot of the same product
            shop.store(shop.char_b, [20.0], shop.lot_b)

        note = Notification.objects.get(user=manager)
        assert (note.event, note.title) == (
            "statistics.updated",
            "New results on DIA Diameter of A-100, lot LA-1",
        )
        assert note.data["n"] == 2
        assert note.message.startswith("n = 2, mean 20.000 mm, SD ")
        assert note.link == f"/api/v1/lot-statistics/?lot={shop.lot_a.pk}&characteristic={shop.char_a.pk}"

        with django_capture_on_commit_callbacks(execute=True):
            shop.store(shop.char_a, [20.004], shop.lot_a)
        note = Notification.objects.get(user=manager)  # the unread one was updated, not repeated
        assert note.data["n"] == 3 == LotStatistics.objects.get(lot=shop.lot_a).n
        assert note.message.startswith("n = 3, ")

        services.notification_mark_read(notification=note)
        with django_capture_on_commit_callbacks(execute=True):
            shop.store(shop.char_a, [20.003], shop.lot_a)
        notes = Notification.objects.filter(user=manager)
        assert [(n.data["n"], n.read_at is None) for n in notes] == [(4, True), (3, False)]

    def test_one_notification_per_user_and_event_however_many_subscriptions_match(self, shop, manager):
        manager.email = "manager@plant.example"
        manager.save()
        subscribe(manager, scope="product", product=shop.a.pk)
        subscribe(manager, scope="lot", lot=shop.lot_a.pk)
        email = subscribe(manager, scope="characteristic", characteristic=shop.char_a.pk, email=True)
        services.notifications_fanout(events=[violation_event(shop.char_a, shop.lot_a, 7)])
        note = Notification.objects.get()
        assert note.subscription == email  # the one that e-mails wins, so the digest carries it

    def test_a_redelivered_fanout_adds_nothing(self, shop, manager):
        subscribe(manager, scope="product", product=shop.a.pk, events=["violations", "results", "limits"])
        earlier = timezone.now() - timedelta(seconds=5)
        batch = [
            violation_event(shop.char_a, shop.lot_a, 1),
            violation_event(shop.char_a, shop.lot_a, 2),
            lot_statistics_event(shop.char_a, shop.lot_a, 10),
            {"type": "limits.changed", "timestamp": timezone.now().isoformat(),
             "characteristic": shop.char_a.pk, "version": 2, "center": 20.0, "ucl": 20.03, "lcl": 19.97,
             "method": "historical", "frozen": False},
        ]  # fmt: skip
        first = services.notifications_fanout(events=batch)
        rows = list(Notification.objects.order_by("id").values_list("id", "title", "data"))

        assert len(first) == 4
        assert services.notifications_fanout(events=batch) == []
        assert tasks.subscriptions_fanout_task(events=batch) == 0
        # An older statistics update arriving late changes nothing either.
        assert (
            services.notifications_fanout(events=[lot_statistics_event(shop.char_a, shop.lot_a, 9, earlier)])
            == []
        )
        assert list(Notification.objects.order_by("id").values_list("id", "title", "data")) == rows
        titles = [row[1] for row in rows]
        assert "Control limits changed on DIA Diameter of A-100" in titles

    def test_an_acknowledgement_is_a_notification_of_its_own(self, shop, manager):
        subscribe(manager, scope="lot", lot=shop.lot_a.pk)
        created = violation_event(shop.char_a, shop.lot_a, 4)
        acknowledged = {
            **created, "type": "violation.acknowledged", "acknowledged_by_name": "Quinn Quality",
            "reason": "assignable_cause", "comment": "Worn tool", "corrective_action": "Tool changed",
        }  # fmt: skip
        services.notifications_fanout(events=[created, acknowledged])
        services.notifications_fanout(events=[acknowledged])
        note = Notification.objects.get(event="violation.acknowledged")
        assert note.title == "Rule 1 violation acknowledged on DIA Diameter of A-100, lot LA-1"
        assert note.message == (
            "Quinn Quality acknowledged it (reason: assignable_cause). Comment: Worn tool "
            "Corrective action: Tool changed"
        )
        assert Notification.objects.count() == 2

    def test_inactive_subscriptions_and_users_who_lost_their_role_hear_nothing(self, shop, manager):
        other = UserFactory(username="left-the-team", roles=[Role.MANAGER])
        subscribe(manager, scope="product", product=shop.a.pk, active=False)
        subscribe(other, scope="product", product=shop.a.pk)
        other.groups.clear()
        services.notifications_fanout(events=[violation_event(shop.char_a, shop.lot_a, 1)])
        assert not Notification.objects.exists()


@pytest.mark.django_db
class InboxTests:
    def test_own_notifications_newest_first_unread_filter_read_and_read_all(self, api, shop, manager):
        other = UserFactory(username="other-manager", roles=[Role.MANAGER])
        subscribe(manager, scope="product", product=shop.a.pk)
        subscribe(other, scope="product", product=shop.a.pk)
        services.notifications_fanout(
            events=[violation_event(shop.char_a, shop.lot_a, pk) for pk in (1, 2, 3)]
        )
        client = api(manager)

        listed = client.get(INBOX).json()["results"]
        assert [row["data"]["id"] for row in listed] == [3, 2, 1]
        assert all(row["read"] is False for row in listed)
        assert client.get(f"{INBOX}unread-count/").json() == {"unread": 3}

        read = client.post(f"{INBOX}{listed[0]['id']}/read/")
        assert read.status_code == 200, read.content
        assert read.json()["read"] is True
        assert [row["data"]["id"] for row in client.get(f"{INBOX}?unread=true").json()["results"]] == [2, 1]
        assert [row["data"]["id"] for row in client.get(f"{INBOX}?unread=false").json()["results"]] == [3]

        theirs = Notification.objects.filter(user=other).first()
        assert client.get(f"{INBOX}{theirs.pk}/").status_code == 404
        assert client.post(f"{INBOX}{theirs.pk}/read/").status_code == 404
        assert client.post(f"{INBOX}read-all/").json() == {"marked": 2}
        assert client.get(f"{INBOX}unread-count/").json() == {"unread": 0}
        assert Notification.objects.filter(user=other, read_at__isnull=True).count() == 3

    def test_the_inbox_list_has_a_fixed_number_of_queries(
        self, api, shop, manager, django_assert_max_num_queries
    ):
        subscribe(manager, scope="product", product=shop.a.pk)
        services.notifications_fanout(
            events=[violation_event(shop.char_a, shop.lot_a, pk) for pk in range(1, 30)]
        )
        client = api(manager)
        # The user, their roles, their permissions (user and group: only roles that subscribe have
        # an inbox), the count, the page.
        with django_assert_max_num_queries(6):
            assert client.get(INBOX).json()["count"] == 29


@pytest.mark.django_db
class EmailDigestTests:
    def test_a_storm_of_50_violations_is_one_email_per_interval(self, shop, manager):
        manager.email = "manager@plant.example"
        manager.save()
        quiet = UserFactory(username="quiet-manager", roles=[Role.MANAGER], email="quiet@plant.example")
        subscribe(manager, scope="product", product=shop.a.pk, email=True)
        subscribe(quiet, scope="product", product=shop.a.pk)  # in-app only
        services.notifications_fanout(
            events=[violation_event(shop.char_a, shop.lot_a, pk) for pk in range(1, 51)]
        )

        assert tasks.subscriptions_email_digest_task() == 1
        assert len(mail.outbox) == 1
        message = mail.outbox[0]
        assert message.to == ["manager@plant.example"]
        assert message.subject == "OpenSPC: 50 new notifications"
        assert message.body.count("- Rule 1 violation on DIA Diameter of A-100, lot LA-1") == 50
        assert not Notification.objects.filter(user=manager, emailed_at__isnull=True).exists()
        assert not Notification.objects.filter(user=quiet, emailed_at__isnull=False).exists()

        assert services.notifications_email_digest() == 0  # the next interval: nothing new
        services.notifications_fanout(events=[violation_event(shop.char_a, shop.lot_a, 51)])
        assert services.notifications_email_digest() == 1
        assert len(mail.outbox) == 2
        assert mail.outbox[1].subject == "OpenSPC: 1 new notification"

    def test_the_digest_runs_every_configured_interval(self):
        entry = settings.CELERY_BEAT_SCHEDULE["subscriptions-email-digest"]
        assert entry == {"task": "subscriptions.email_digest", "schedule": 300.0}
        assert settings.NOTIFICATION_EMAIL_INTERVAL_SECONDS == 300


async def _drain(layer: Any, channel: str, seconds: float = 1.0) -> list[dict[str, Any]]:
    received = []
    while True:
        try:
            received.append(await asyncio.wait_for(layer.receive(channel), timeout=seconds))
        except TimeoutError:
            return received


@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class LiveTests:
    def test_a_manager_of_product_a_gets_as_violations_only_in_the_inbox_and_live(
        self, api, manager, fanout_inline
    ):
        shop = Shop()
        lot_watcher = UserFactory(username="lot-watcher", roles=[Role.MANAGER])
        subscribe(manager, scope="product", product=shop.a.pk)
        subscribe(lot_watcher, scope="lot", lot=shop.lot_a.pk, events=["results"])

        async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            layer = get_channel_layer()
            mine, watcher = await layer.new_channel(), await layer.new_channel()
            await layer.group_add(f"user.{manager.pk}", mine)
            await layer.group_add(f"user.{lot_watcher.pk}", watcher)
            await sync_to_async(shop.store)(shop.char_a, [20.0, 20.5], shop.lot_a)
            await sync_to_async(shop.store)(shop.char_b, [20.0, 20.5], shop.lot_b)
            await sync_to_async(shop.store)(shop.char_a, [20.01], shop.lot_a)
            return await _drain(layer, mine), await _drain(layer, watcher)

        live, watched = async_to_sync(scenario)()

        inbox = api(manager).get(INBOX).json()["results"]
        # One notification per event: sample 3 ended the I chart's and grew the MR chart's (its
        # points are the moving ranges' samples).
        expected = set(ViolationEvent.objects.filter(characteristic=shop.char_a).values_list("id", flat=True))
        assert len(expected) == 2
        assert {row["data"]["id"] for row in inbox} == expected
        assert all("A-100" in row["title"] and "B-200" not in row["title"] for row in inbox)
        assert sorted(row["message"].rsplit(": ", 1)[1] for row in inbox) == [
            "1 point (sample 2), ended.",
            "3 points (samples 1–3), going on.",
        ]
        received = [event for message in live for event in calculation_events.events_unpack(message)]
        assert {event["type"] for event in received} == {"notification.created", "notifications.unread"}
        pushed = [event for event in received if event["type"] == "notification.created"]
        # The badge's count comes pushed after every change, the last one the inbox's (issue #21).
        counts = [event["unread"] for event in received if event["type"] == "notifications.unread"]
        assert counts[-1] == len(inbox) == 2
        assert {event["notification"]["id"] for event in pushed} == {row["id"] for row in inbox}
        assert {event["notification"]["data"]["id"] for event in pushed} == expected
        assert pushed[0]["notification"] == {
            **pushed[0]["notification"], "event": "violation_event.updated", "read": False,
        }  # fmt: skip

        # The lot subscription: LA-1's statistics, live and stored, one notification updated in place.
        watched_events = [
            e
            for message in watched
            for e in calculation_events.events_unpack(message)
            if e["type"] == "notification.created"
        ]
        assert [e["notification"]["event"] for e in watched_events] == [
            "statistics.updated",
            "statistics.updated",
        ]
        assert [e["notification"]["data"]["n"] for e in watched_events] == [2, 3]
        assert len({e["notification"]["id"] for e in watched_events}) == 1
        stored = Notification.objects.get(user=lot_watcher)
        assert (stored.pk, stored.data["lot"], stored.data["n"]) == (
            watched_events[-1]["notification"]["id"],
            shop.lot_a.pk,
            3,
        )


@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.slow
class WorkerTests:
    def test_a_sample_posted_through_the_api_becomes_a_stored_notification_through_a_worker(
        self, api, manager, tmp_path
    ):
        shop = Shop()
        subscribe(manager, scope="product", product=shop.a.pk, events=["violations", "results"])
        # Data entry is a tester's, for an item assigned to them.
        tester = UserFactory(username="shop-tester", roles=[Role.TESTER])
        plan = TestPlan.objects.get(assignments__product=shop.a)
        item = ItemFactory(lot=shop.lot_a, plans=[plan], tester=tester).pk
        with CeleryWorkers(count=1, log_dir=tmp_path, queues=("celery",)) as workers:
            client = api(tester)
            assert submit(client, shop.char_a, [20.0], lot=shop.lot_a, item=item).status_code == 201
            response = submit(client, shop.char_a, [20.5], lot=shop.lot_a, item=item)
            assert response.status_code == 201, response.content
            # One notification per violation event (issue #21): here each violation starts one.
            events = {v["event"] for v in response.json()["violations"]}
            assert len(events) == 2

            def arrived() -> bool:
                stored = Notification.objects.filter(user=manager, event="violation_event.updated")
                return set(stored.values_list("data__id", flat=True)) == events

            workers.wait_for(arrived, timeout=60, what="the violation events' notifications")
            workers.wait_for(
                lambda: Notification.objects.filter(user=manager, data__scope="lot", data__n=2).exists(),
                what="the results notification to show both samples",
            )
            assert "subscriptions.fanout" in workers.all_logs()
        # One results notification for the lot (updated by the second run), one for the product.
        results = Notification.objects.filter(user=manager, event="statistics.updated")
        assert sorted(results.values_list("data__scope", flat=True)) == ["lot", "product"]


class DispositionTests:
    def test_rejecting_a_lot_notifies_its_disposition_subscribers_and_nobody_elses(
        self, api, shop, manager, quality_specialist, fanout_inline, django_capture_on_commit_callbacks
    ):
        subscribe(manager, scope="lot", lot=shop.lot_a.pk, events=["disposition"])
        subscribe(manager, scope="lot", lot=shop.lot_b.pk, events=["disposition"])
        signature = {"password": "pw-for-tests-only", "meaning": "rejected", "username": "qs"}
        with django_capture_on_commit_callbacks(execute=True):
            response = api(shop.ops).post(f"/api/v1/lots/{shop.lot_a.pk}/status/", {"status": "in_testing"})
            assert response.status_code == 200, response.content
            response = api(quality_specialist).post(
                f"/api/v1/lots/{shop.lot_a.pk}/disposition/",
                {"decision": "reject", "signature": signature},
                format="json",
            )
            assert response.status_code == 201, response.content
        (sent,) = fanout_inline  # only the final disposition is one, not the move to in_testing
        assert [(e["type"], e["lot"], e["status"], e["by"]) for e in sent["events"]] == [
            ("lot.disposition", shop.lot_a.pk, "rejected", quality_specialist.pk)
        ]
        (note,) = Notification.objects.filter(user=manager)
        assert note.event == "lot.disposition"
        assert note.title == "Lot LA-1 of A-100 rejected"
        assert "by qs" in note.message


class DirectEventTests:
    """Events told to people by role, with no subscription (services.DIRECT_EVENTS)."""

    def test_a_locked_signing_tells_every_quality_specialist_once(self, quality_specialist, manager):
        locked = {
            "type": "signing.locked", "timestamp": "2026-12-07T10:00:00+00:00", "user": manager.pk,
            "username": "manager", "full_name": "manager", "failures": 5,
            "until": "2026-12-07T10:15:00+00:00",
        }  # fmt: skip
        (note,) = services.notifications_fanout(events=[locked])
        assert (note.user, note.event, note.subscription) == (quality_specialist, "signing.locked", None)
        assert note.title == "Signing locked for manager"
        assert "5 wrong signatures" in note.message
        assert services.notifications_fanout(events=[locked]) == []  # redelivered: nothing new
        assert not Notification.objects.filter(user=manager).exists()

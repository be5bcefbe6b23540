"""The inbox and subscriptions pages through Django's test client: who may open them, the
navigation link with its unread count, what the shells carry for static/js/notifications.js and
subscriptions.js, and the API answers those scripts read."""

import re
from typing import Any

import pytest
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.config import services as config_services
from apps.config.models import Characteristic
from apps.subscriptions import services as subscriptions
from apps.subscriptions.models import Notification
from apps.web.views import page_url_pattern
from tests.factories import NotificationFactory

pytestmark = pytest.mark.django_db

PAGES = ("web-notifications", "web-subscriptions")


def signed_in(user: AbstractBaseUser) -> Client:
    client = Client()
    client.force_login(user)
    return client


def html_of(user: AbstractBaseUser, name: str) -> str:
    response = signed_in(user).get(reverse(name))
    assert response.status_code == 200
    return response.content.decode()


def nav_item(html: str, label: str) -> str | None:
    """The <li> of the navigation link called `label`, or None."""
    nav = re.search(r'<nav class="site-nav".*?</nav>', html, re.S)
    assert nav is not None
    for item in re.findall(r"<li>.*?</li>", nav.group(0), re.S):
        if re.search(rf">{label}</a>", item):
            return item
    return None


def notify(user: AbstractBaseUser, title: str, *, read: bool = False, **data: Any) -> Notification:
    return NotificationFactory(user=user, title=title, data=data, read_at=timezone.now() if read else None)


# --- Who may open the pages --------------------------------------------------------------------


class AccessTests:
    @pytest.mark.parametrize("role", ["manager", "operations_lead", "quality_specialist"])
    @pytest.mark.parametrize("name", PAGES)
    def test_the_roles_that_subscribe_open_both_pages(self, request, role, name):
        assert signed_in(request.getfixturevalue(role)).get(reverse(name)).status_code == 200

    @pytest.mark.parametrize("name", PAGES)
    def test_a_tester_has_no_subscriptions_and_gets_403(self, tester, name):
        assert signed_in(tester).get(reverse(name)).status_code == 403

    @pytest.mark.parametrize("name", PAGES)
    def test_a_device_user_gets_403(self, name):
        device, _ = config_services.device_create(name="gauge-11")
        assert signed_in(device.user).get(reverse(name)).status_code == 403

    @pytest.mark.parametrize("name", PAGES)
    def test_the_anonymous_are_sent_to_sign_in(self, name):
        url = reverse(name)
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('web-login')}?next={url}"


# --- The navigation link and its unread count --------------------------------------------------


class BadgeTests:
    def test_the_link_shows_the_unread_count_only(self, manager, quality_specialist):
        notify(manager, "Rule 1 on DIA")
        notify(manager, "Rule 2 on DIA")
        notify(manager, "Rule 5 on DIA", read=True)
        notify(quality_specialist, "Someone else's")  # never counted for the manager
        item = nav_item(html_of(manager, "web-overview"), "Notifications")
        assert item is not None
        assert 'href="/notifications/"' in item
        assert 'data-unread-count="2"' in item
        assert '<span data-unread-text>2</span><span class="visually-hidden"> unread</span>' in item
        assert " hidden" not in item.split("<script")[0]
        assert "js/notify.js" in item  # the script that keeps it live

    def test_no_unread_hides_the_badge_but_keeps_it_for_live_updates(self, manager):
        notify(manager, "Read already", read=True)
        item = nav_item(html_of(manager, "web-overview"), "Notifications")
        assert item is not None
        assert re.search(r'data-unread-count="0" hidden>', item)

    def test_more_than_99_reads_99_plus(self, manager):
        Notification.objects.bulk_create(
            [Notification(user=manager, event="violation.created", title=f"n{i}") for i in range(120)]
        )
        item = nav_item(html_of(manager, "web-overview"), "Notifications")
        assert item is not None
        assert 'data-unread-count="120"' in item
        assert "<span data-unread-text>99+</span>" in item

    def test_a_tester_has_no_link_and_no_live_connection_for_it(self, tester):
        html = html_of(tester, "web-overview")
        assert nav_item(html, "Notifications") is None
        assert "js/notify.js" not in html

    @pytest.mark.parametrize("name", PAGES)
    def test_the_link_is_current_on_both_pages(self, manager, name):
        item = nav_item(html_of(manager, name), "Notifications")
        assert item is not None
        assert 'aria-current="page"' in item

    def test_the_link_is_not_current_elsewhere(self, manager):
        item = nav_item(html_of(manager, "web-overview"), "Notifications")
        assert item is not None
        assert "aria-current" not in item


# --- The inbox shell ---------------------------------------------------------------------------


class InboxPageTests:
    def test_the_shell_starts_loading_with_its_controls(self, manager):
        html = html_of(manager, "web-notifications")
        assert "<h1>Notifications</h1>" in html
        assert '<p class="loading" data-inbox-status role="status">Loading your notifications…</p>' in html
        assert re.search(r'<ul class="notifications" data-notifications [^>]*hidden></ul>', html)
        assert 'class="button" data-read-all disabled>Mark all read</button>' in html
        assert 'data-filter="all" aria-pressed="true">All</button>' in html
        assert 'data-filter="unread" aria-pressed="false">Unread</button>' in html
        assert 'src="/static/js/notifications.js"' in html
        assert 'href="/static/css/notifications.css"' in html
        # The empty state points to where the inbox gets filled.
        empty = 'data-empty-all>No notifications yet. <a href="/notifications/subscriptions/">Subscribe</a>'
        assert empty in html

    def test_the_tabs_mark_the_page_shown(self, manager):
        html = html_of(manager, "web-notifications")
        assert '<a href="/notifications/" aria-current="page">Inbox</a>' in html
        assert '<a href="/notifications/subscriptions/">Subscriptions</a>' in html

    def test_lot_notifications_link_to_the_lot_page(self, manager):
        """The script fills in a lot's id (static/js/notifications.logic.js pageLinks)."""
        html = html_of(manager, "web-notifications")
        assert 'data-lot-url="/lots/{id}/"' in html

    def test_page_url_patterns(self):
        assert page_url_pattern("web-chart") == "/charts/{id}/"
        assert page_url_pattern("web-lot") == "/lots/{id}/"
        assert page_url_pattern("web-no-such-page") == ""


# --- The subscriptions shell -------------------------------------------------------------------


def options(html: str) -> dict[str, tuple[str, str]]:
    """{scope: (label, kinds)} of the scope select."""
    found = re.findall(r'<option value="(\w+)" data-kinds="([\w,]*)">(.*?)</option>', html)
    return {value: (label, kinds) for value, kinds, label in found}


class SubscriptionsPageTests:
    def test_each_scope_offers_the_events_it_can_hear(self, manager):
        html = html_of(manager, "web-subscriptions")
        assert options(html) == {
            "product": ("Product", "results,violations,limits,disposition,data_health,spec,schedule"),
            "test": ("Test (across products)", "results,violations,limits,data_health,spec,schedule"),
            "lot": ("Lot", "results,violations,disposition,spec,schedule"),
            "characteristic": ("Characteristic", "results,violations,limits,data_health,spec,schedule"),
        }

    def test_violations_are_the_default_event(self, manager):
        html = html_of(manager, "web-subscriptions")
        checked = re.findall(r'<input type="checkbox" name="events" value="(\w+)" checked>', html)
        assert checked == ["violations"]
        labels = re.findall(r'value="(\w+)"(?: checked)?> <span data-kind-label>(.*?)</span>', html)
        assert [value for value, _ in labels] == [
            "results",
            "violations",
            "limits",
            "disposition",
            "data_health",
            "spec",
            "schedule",
        ]

    def test_e_mail_is_offered_only_with_an_address(self, manager):
        manager.email = ""
        manager.save()
        html = html_of(manager, "web-subscriptions")
        assert '<input type="checkbox" name="email" disabled aria-describedby="subscribe-email-help">' in html
        assert "Your account has no e-mail address; ask an administrator to add one." in html

        manager.email = "manager@example.com"
        manager.save()
        html = html_of(manager, "web-subscriptions")
        assert '<input type="checkbox" name="email">' in html
        assert "has no e-mail address" not in html

    def test_the_shell_loads_its_script_and_starts_loading(self, manager):
        html = html_of(manager, "web-subscriptions")
        assert 'src="/static/js/subscriptions.js"' in html
        assert "Loading your subscriptions…" in html
        assert re.search(r'<select id="subscribe-target" name="target" data-target disabled', html)


# --- What the scripts read from the API --------------------------------------------------------


class ApiContractTests:
    """The fields static/js/notifications.logic.js and subscriptions.logic.js map, as the API gives them
    to a signed-in browser (session and CSRF, as api.js sends them)."""

    def test_a_violation_notification_names_its_characteristic_and_lot(self, plant, manager):
        dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
        subscriptions.subscription_create(user=manager, scope="product", product=plant.product.pk)
        subscriptions.notifications_fanout(
            events=[
                {
                    "type": "violation.created", "timestamp": timezone.now().isoformat(), "id": 41,
                    "characteristic": dia.pk, "sample": 1, "sequence": 13, "lot": plant.lot.pk, "rule": 1,
                    "chart": "location", "points": [13], "severity": "critical", "limits_version": 1,
                }
            ]
        )  # fmt: skip
        client = signed_in(manager)
        page = client.get("/api/v1/notifications/?page_size=50").json()
        assert page["count"] == 1
        (notification,) = page["results"]
        assert notification["event"] == "violation.created"
        assert notification["read"] is False
        assert notification["data"]["characteristic"] == dia.pk  # -> /charts/<id>/
        assert notification["data"]["lot"] == plant.lot.pk
        assert notification["title"].startswith("Rule 1 violation on DIA")
        assert client.get("/api/v1/notifications/unread-count/").json() == {"unread": 1}

        csrf = Client(enforce_csrf_checks=True)
        csrf.force_login(manager)
        csrf.get(reverse("web-notifications"))  # sets the CSRF cookie, as the page does
        token = csrf.cookies["csrftoken"].value
        answer = csrf.post(  # api.js's apiPost: a JSON body ({}) and the CSRF header
            f"/api/v1/notifications/{notification['id']}/read/",
            {},
            content_type="application/json",
            HTTP_X_CSRFTOKEN=token,
        )
        assert answer.status_code == 200
        assert answer.json()["read"] is True
        assert Notification.objects.get(pk=notification["id"]).read_at is not None

    def test_the_target_lists_carry_the_fields_of_the_option_labels(self, plant, manager):
        client = signed_in(manager)
        product = client.get("/api/v1/products/?active=true&page_size=500").json()["results"][0]
        assert {"id", "code", "name"} <= set(product)
        test = client.get("/api/v1/tests/?active=true&page_size=500").json()["results"][0]
        assert {"id", "code", "name", "unit"} <= set(test)
        lot = client.get("/api/v1/lots/?page_size=500").json()["results"][0]
        assert {"id", "number", "product_code", "status", "created_at"} <= set(lot)
        characteristic = client.get("/api/v1/characteristics/?active=true&page_size=500").json()["results"][0]
        assert {"id", "product_code", "test_code", "test_name"} <= set(characteristic)

    def test_subscribing_and_deleting_as_the_page_does(self, plant, manager):
        client = Client(enforce_csrf_checks=True)
        client.force_login(manager)
        client.get(reverse("web-subscriptions"))
        token = client.cookies["csrftoken"].value
        body = {"scope": "product", "product": plant.product.pk, "events": ["violations"], "email": False}
        created = client.post(
            "/api/v1/subscriptions/", body, content_type="application/json", HTTP_X_CSRFTOKEN=token
        )
        assert created.status_code == 201, created.content
        assert created.json()["target"].startswith("RING-74 — ")
        again = client.post(
            "/api/v1/subscriptions/", body, content_type="application/json", HTTP_X_CSRFTOKEN=token
        )
        assert again.status_code == 409  # the page says so in its own words
        gone = client.delete(f"/api/v1/subscriptions/{created.json()['id']}/", HTTP_X_CSRFTOKEN=token)
        assert gone.status_code == 204
        assert not manager.subscriptions.exists()

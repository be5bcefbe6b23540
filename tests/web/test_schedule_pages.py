"""Sampling schedules on the pages (issue #21): the tester's worklist lists the samples due and
overdue and closes a missed one with a reason; the overview and the wall screen turn a card to
"Sample overdue since …" until it is taken."""

import datetime

import pytest
from django.test import Client
from django.utils import timezone

from apps.config import services as config_services
from apps.config.choices import ScheduleKind
from apps.config.models import Characteristic, SamplingSchedule
from apps.observations import services
from apps.observations.models import ScheduledSample
from apps.web.overview import CardState, overview_groups

pytestmark = pytest.mark.django_db


@pytest.fixture
def overdue(plant) -> ScheduledSample:
    dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
    made = config_services.schedule_create(characteristic=dia, kind=ScheduleKind.SHIFT, grace_minutes=5)
    SamplingSchedule.objects.filter(pk=made.pk).update(created_at=timezone.now() - datetime.timedelta(days=1))
    now = timezone.now()
    services.schedules_check(now=now)
    due = ScheduledSample.objects.get(characteristic=dia)
    services.schedules_check(now=max(now, due.overdue_at) + datetime.timedelta(seconds=1))
    due.refresh_from_db()
    assert due.state == "overdue"
    return due


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_overview_and_wall_screen_say_since_when_a_sample_is_overdue(overdue, manager):
    (card,) = [
        card for group in overview_groups(user=manager) for card in group.cards
        if card.characteristic.pk == overdue.characteristic_id
    ]  # fmt: skip
    since = f"{timezone.localtime(overdue.overdue_at):%H:%M}"
    assert (card.state, card.state_label) == (CardState.OVERDUE, f"Sample overdue since {since}")
    for page in ("/", "/kiosk/?site=&area=&line="):
        body = signed_in(manager).get(page).content.decode()
        assert f'data-overdue="Sample overdue since {since}"' in body, page
        assert 'data-state="overdue"' in body, page
    chart = signed_in(manager).get(f"/charts/{overdue.characteristic_id}/").content.decode()
    assert (
        f'<span class="state state--overdue" data-chart-overdue>⏰ Sample overdue since {since}</span>'
        in chart
    )


def test_the_tester_closes_a_missed_sample_from_the_worklist_with_a_reason(overdue, plant, manager):
    browser = signed_in(plant.tester)
    page = browser.get("/work/").content.decode()
    assert f'data-scheduled-sample="{overdue.pk}" data-state="overdue"' in page
    assert "Overdue since" in page

    url = f"/work/samples/{overdue.pk}/close/"
    refused = browser.post(url, {"reason_code": "other", "note": ""}, follow=True)
    assert "The sample was not closed: Say in the note why" in refused.content.decode()
    overdue.refresh_from_db()
    assert overdue.state == "overdue"

    closed = browser.post(url, {"reason_code": "instrument_unavailable"}, follow=True)
    body = closed.content.decode()
    assert "closed as missed (Instrument unavailable)" in body
    assert f'data-scheduled-sample="{overdue.pk}"' not in body
    overdue.refresh_from_db()
    assert (overdue.state, overdue.reason_code, overdue.closed_by) == (
        "missed", "instrument_unavailable", plant.tester,
    )  # fmt: skip
    (card,) = [
        card for group in overview_groups(user=manager) for card in group.cards
        if card.characteristic.pk == overdue.characteristic_id
    ]  # fmt: skip
    assert card.state == CardState.NO_DATA

"""The tester worklist page (/work/) through Django's test client: who may open it, the link in
the navigation, and the state it opens in (loading the work, or nothing to do). What the page
then does with the API is the browser test's (tests/e2e/test_browser_worklist.py)."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from apps.config import services as config_services
from apps.observations import services
from apps.observations.choices import LotStatus
from apps.observations.models import Lot
from openspc.roles import Role
from tests.factories import UserFactory
from tests.support.pages import nav_labels, signed_in

pytestmark = pytest.mark.django_db

WORK = "/work/"


def opens_with(html: str) -> str:
    """'loading' or 'empty': which of the two the page shows before its script has run."""
    loading = re.search(r"<p class=\"loading\" data-worklist-loading role=\"status\"( hidden)?>", html)
    empty = re.search(r"<p class=\"empty\" data-worklist-empty( hidden)?>", html)
    assert loading, "the page lost its loading state"
    assert empty, "the page lost its empty state"
    assert bool(loading.group(1)) != bool(empty.group(1)), "exactly one of loading and empty shows"
    return "empty" if loading.group(1) else "loading"


class WorklistPageTests:
    def test_the_url(self):
        assert reverse("web-worklist") == WORK

    def test_a_tester_with_work_gets_the_page_loading_it(self, plant):
        response = signed_in(plant.tester).get(WORK)
        assert response.status_code == 200
        html = response.content.decode()
        assert opens_with(html) == "loading"
        assert f'data-user-id="{plant.tester.pk}"' in html  # the device keeps unsent values per user
        assert 'src="/static/js/worklist.js"' in html
        assert "<title>My work · OpenSPC</title>" in html
        assert '<a href="/work/" aria-current="page">My work</a>' in html

    def test_a_tester_with_nothing_assigned_reads_so_at_once(self, plant):
        other_tester = UserFactory(username="other-tester", roles=[Role.TESTER])
        html = signed_in(other_tester).get(WORK).content.decode()
        assert opens_with(html) == "empty"
        assert "Nothing to test right now." in html

    def test_work_that_is_done_or_in_a_closed_lot_is_no_work(self, plant):
        ids = plant.record(
            *({"item": item, "test": test, "values": [74.0] * (3 if test == plant.wall else 1)}
              for item in plant.items[:2] for test in (plant.dia, plant.wall)),
        )  # fmt: skip
        services.observations_process(ids=ids)
        assert opens_with(signed_in(plant.tester).get(WORK).content.decode()) == "loading"  # item 3 is due
        Lot.objects.filter(pk=plant.lot.pk).update(status=LotStatus.RELEASED)
        assert opens_with(signed_in(plant.tester).get(WORK).content.decode()) == "empty"

    @pytest.mark.parametrize("role", ["operations_lead", "manager", "quality_specialist"])
    def test_other_roles_may_open_it_and_find_nothing_assigned(self, request, role, plant):
        user = request.getfixturevalue(role)
        response = signed_in(user).get(WORK)
        assert response.status_code == 200
        html = response.content.decode()
        assert opens_with(html) == "empty"
        assert "My work" not in nav_labels(html)  # only testers are handed items

    def test_the_anonymous_are_sent_to_sign_in(self):
        response = Client().get(WORK)
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('web-login')}?next={WORK}"

    def test_a_device_user_gets_403(self):
        device, _ = config_services.device_create(name="gauge-11")
        assert signed_in(device.user).get(WORK).status_code == 403

    def test_the_page_takes_a_fixed_number_of_queries(self, plant, django_assert_max_num_queries):
        plant.items_total(23)
        client = signed_in(plant.tester)
        # 9 (one for the lots with results to verify), and the session saved again (its idle
        # timeout restarts with every request)
        with django_assert_max_num_queries(10):
            assert client.get(WORK).status_code == 200

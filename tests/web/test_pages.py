"""The browser pages through Django's test client: sign in and out, who may see what, the
navigation per role, and the plant overview's groups, states and numbers."""

import re
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from apps.calculations.models import ProductStatistics, Violation
from apps.config import services as config_services
from apps.config.choices import DataSource
from apps.config.models import Characteristic, Test
from apps.observations.models import Lot, Sample
from apps.web.overview import CardState, overview_groups
from openspc.roles import Role
from tests.factories import (
    ControlLimitsFactory,
    EdgeNodeFactory,
    LotFactory,
    ProductFactory,
    SampleFactory,
    TestFactory,
    UserFactory,
    ViolationFactory,
    characteristic_for,
)
from tests.support.pages import nav_labels, signed_in

PASSWORD = "pw-for-tests-only"  # tests/factories.py UserFactory

pytestmark = pytest.mark.django_db


CARD = re.compile(
    r'<li class="card" data-characteristic-id="(?P<id>\d+)" data-state="(?P<state>\w+)".*?'
    r'<a href="(?P<href>[^"]+)">.*?data-field="state-icon">(?P<icon>.*?)</span> '
    r'<span data-field="state-label">(?P<label>.*?)</span>.*?'
    r'data-field="last-value">(?P<last>.*?)</dd>.*?data-field="cpk">(?P<cpk>.*?)</dd>',
    re.S,
)


def rendered_groups(html: str) -> dict[str, list[dict[str, str]]]:
    """{group heading: [card fields, …]} as the page shows them."""
    groups = {}
    for section in html.split('<section class="group"')[1:]:
        heading = re.search(r'class="group-path">(.*?)</h2>', section)
        assert heading is not None
        groups[heading.group(1)] = [match.groupdict() for match in CARD.finditer(section)]
    return groups


# --- Signing in and out ------------------------------------------------------------------------


class SignInTests:
    def test_the_login_page_renders_a_form(self):
        response = Client().get(reverse("web-login"))
        assert response.status_code == 200
        html = response.content.decode()
        assert '<label for="id_username">User name</label>' in html
        assert 'type="password" name="password"' in html
        assert nav_labels(html) == []  # nothing to navigate to before signing in

    def test_a_wrong_password_is_refused_in_plain_words(self, operations_lead):
        client = Client()
        response = client.post(reverse("web-login"), {"username": "ops", "password": "wrong"})
        assert response.status_code == 200
        assert "That user name and password do not match an account." in response.content.decode()
        assert "_auth_user_id" not in client.session

    def test_signing_in_leads_to_the_overview(self, operations_lead):
        client = Client()
        response = client.post(reverse("web-login"), {"username": "ops", "password": PASSWORD})
        assert response.status_code == 302
        assert response["Location"] == reverse("web-overview") == "/"
        assert client.session["_auth_user_id"] == str(operations_lead.pk)

    def test_signing_in_returns_to_the_page_asked_for(self, plant, operations_lead):
        chart = reverse("web-chart", args=[plant_characteristic(plant).pk])
        response = Client().post(
            reverse("web-login"), {"username": "ops", "password": PASSWORD, "next": chart}
        )
        assert response["Location"] == chart

    def test_signing_out_takes_a_post(self, operations_lead):
        client = signed_in(operations_lead)
        assert client.get(reverse("web-logout")).status_code == 405
        assert client.get(reverse("web-overview")).status_code == 200  # still signed in

        response = client.post(reverse("web-logout"))
        assert response.status_code == 302
        assert response["Location"] == reverse("web-login")
        assert "_auth_user_id" not in client.session
        assert client.get(reverse("web-overview")).status_code == 302

    def test_every_page_sends_the_anonymous_to_sign_in(self, plant):
        client = Client()
        for url in (reverse("web-overview"), reverse("web-chart", args=[plant_characteristic(plant).pk])):
            response = client.get(url)
            assert response.status_code == 302
            assert response["Location"] == f"{reverse('web-login')}?next={url}"

    def test_a_device_user_gets_403(self, plant):
        device, _ = config_services.device_create(name="gauge-9")
        client = signed_in(device.user)
        assert client.get(reverse("web-overview")).status_code == 403
        assert client.get(reverse("web-chart", args=[plant_characteristic(plant).pk])).status_code == 403

    def test_the_api_docs_stay_where_they_were(self, operations_lead):
        assert signed_in(operations_lead).get("/api/docs/").status_code == 200


# --- Navigation by role ------------------------------------------------------------------------


class NavigationTests:
    @pytest.mark.parametrize(
        ("role", "labels"),
        [
            (
                "quality_specialist",
                [
                    "Overview",
                    "Lots",
                    "Violations",
                    "Notifications",
                    "Audit log",
                    "QA runs",
                    "API docs",
                    "Admin",
                ],
            ),
            ("operations_lead", ["Overview", "Lots", "Violations", "Notifications", "API docs"]),
            ("manager", ["Overview", "Lots", "Violations", "Notifications", "API docs"]),
            ("tester", ["Overview", "My work", "API docs"]),
        ],
    )
    def test_each_role_sees_the_pages_it_may_use(self, request, role, labels):
        user = request.getfixturevalue(role)
        html = signed_in(user).get(reverse("web-overview")).content.decode()
        assert nav_labels(html) == labels

    def test_the_current_page_is_marked(self, quality_specialist):
        html = signed_in(quality_specialist).get(reverse("web-overview")).content.decode()
        assert '<a href="/" aria-current="page">Overview</a>' in html
        assert '<a href="/admin/">Admin</a>' in html
        assert '<a href="/api/docs/">API docs</a>' in html


# --- The plant overview ------------------------------------------------------------------------


def plant_characteristic(plant: Any, test: Test | None = None) -> Characteristic:
    return Characteristic.objects.get(product=plant.product, test=test or plant.dia)


def add_sample(characteristic: Characteristic, lot: Lot, mean: float) -> Sample:
    return SampleFactory(characteristic=characteristic, lot=lot, values=[mean], in_control=True)


def add_violation(sample: Sample, *, rule: int = 1, requires_acknowledgement: bool = True) -> Violation:
    return ViolationFactory(sample=sample, rule=rule, requires_acknowledgement=requires_acknowledgement)


class Floor:
    """Line 1: RING-74 (the tester's product): DIA in control (74.1234 mm, Cpk 1.456, limits), WALL
    out of spec (2.5 > USL 2.0). Line 2: PUMP-1 (nobody's items): FLOW with an unacknowledged
    violation, PRESS fed by a Sparkplug metric whose only edge node is offline (limits), TEMP with
    only an acknowledged and an informational violation but no control limits (no limits yet)."""

    def __init__(self, plant: Any) -> None:
        self.dia = config_services.characteristic_update(
            characteristic=plant_characteristic(plant),
            data={"site": "Plant A", "line": "Line 1", "lsl": 70.0, "usl": 78.0},
            reason="specification",
        )
        self.wall = config_services.characteristic_update(
            characteristic=plant_characteristic(plant, plant.wall),
            data={"site": "Plant A", "line": "Line 1", "usl": 2.0},
            reason="specification",
        )
        ControlLimitsFactory(characteristic=self.dia, center=74.0, sigma=0.1)
        add_sample(self.dia, plant.lot, 74.0)
        add_sample(self.dia, plant.lot, 74.1234)
        ProductStatistics.objects.create(characteristic=self.dia, cpk=1.456)
        add_sample(self.wall, plant.lot, 2.5)

        self.pump = ProductFactory(code="PUMP-1", name="Pump")
        lot = LotFactory(product=self.pump)
        line2 = {"site": "Plant A", "line": "Line 2"}
        self.flow = characteristic_for(
            self.pump, TestFactory(code="FLOW", name="Flow", unit="l/min"), **line2
        )
        add_violation(add_sample(self.flow, lot, 12.0))
        self.press = characteristic_for(
            self.pump, TestFactory(code="PRESS", name="Pressure", unit="bar"),
            data_source=DataSource.SPARKPLUG, tag="Press/Force", **line2,
        )  # fmt: skip
        add_sample(self.press, lot, 3.0)
        ControlLimitsFactory(characteristic=self.press, center=3.0, sigma=0.1)
        EdgeNodeFactory(node="press-node", online=False, metrics=["Press/Force", "Other"])
        EdgeNodeFactory(node="other-node", metrics=["Other"])
        self.temp = characteristic_for(
            self.pump, TestFactory(code="TEMP", name="Temperature", unit="°C"), **line2
        )
        sample = add_sample(self.temp, lot, 21.0)
        acknowledged = add_violation(sample)
        Violation.objects.filter(pk=acknowledged.pk).update(acknowledged_at=sample.created_at)
        add_violation(sample, rule=2, requires_acknowledgement=False)


@pytest.fixture
def floor(plant: Any) -> Floor:
    return Floor(plant)


class OverviewTests:
    def test_each_characteristic_shows_its_state_in_words_icon_and_colour(self, floor, quality_specialist):
        html = signed_in(quality_specialist).get(reverse("web-overview")).content.decode()
        groups = rendered_groups(html)
        assert list(groups) == ["Plant A / Line 1", "Plant A / Line 2"]
        shown = {
            card["id"]: (card["state"], card["icon"], card["label"])
            for cards in groups.values()
            for card in cards
        }
        assert shown == {
            str(floor.dia.pk): ("in_control", "✓", "In control"),
            str(floor.wall.pk): ("out_of_spec", "✕", "Out of spec"),
            str(floor.flow.pk): ("unacknowledged", "⚠", "Unacknowledged violation"),
            str(floor.press.pk): ("offline", "⊘", "Data source offline"),
            # Samples without control limits: nothing says it is in control yet (issue #21).
            str(floor.temp.pk): ("no_limits", "?", "No limits yet"),
        }
        assert 'class="state state--unacknowledged"' in html

    def test_grouped_by_line_in_plant_order(self, floor, quality_specialist):
        groups = rendered_groups(signed_in(quality_specialist).get(reverse("web-overview")).content.decode())
        assert [card["id"] for card in groups["Plant A / Line 1"]] == [str(floor.dia.pk), str(floor.wall.pk)]
        assert [card["id"] for card in groups["Plant A / Line 2"]] == [
            str(floor.flow.pk), str(floor.press.pk), str(floor.temp.pk),
        ]  # fmt: skip

    @pytest.mark.parametrize("roles", [[Role.TESTER], []], ids=["tester", "no role"])
    def test_a_role_that_may_not_read_characteristics_sees_none_and_is_told_so(self, floor, plant, roles):
        """The API refuses them the chart data; the overview applies the same rule (visible_to)."""
        user = plant.tester if roles else UserFactory(username="no-role", roles=roles)
        html = signed_in(user).get(reverse("web-overview")).content.decode()
        assert rendered_groups(html) == {}
        assert "data-no-access" in html
        assert "RING-74" not in html
        assert not Characteristic.objects.visible_to(user).exists()

    def test_a_site_that_lets_testers_read_charts_shows_them_only_their_products(self, floor, plant):
        plant.tester.user_permissions.add(Permission.objects.get(codename="view_characteristic"))
        tester = User.objects.get(pk=plant.tester.pk)  # permissions are cached per user object
        groups = rendered_groups(signed_in(tester).get(reverse("web-overview")).content.decode())
        assert {card["id"] for cards in groups.values() for card in cards} == {
            str(floor.dia.pk),
            str(floor.wall.pk),
        }

    def test_last_value_with_decimals_and_unit_and_cpk(self, floor, quality_specialist):
        client = signed_in(quality_specialist)
        cards = {c["id"]: c for cs in rendered_groups(client.get("/").content.decode()).values() for c in cs}
        assert cards[str(floor.dia.pk)]["last"] == "74.123 mm"  # the test's 3 decimals, the last sample
        assert cards[str(floor.dia.pk)]["cpk"] == "1.46"
        assert cards[str(floor.flow.pk)]["last"] == "12.000 l/min"
        assert cards[str(floor.flow.pk)]["cpk"] == "—"  # no statistics yet

        config_services.characteristic_update(characteristic=floor.dia, data={"decimals": 1})
        Test.objects.filter(pk=floor.flow.test_id).update(unit="")
        cards = {c["id"]: c for cs in rendered_groups(client.get("/").content.decode()).values() for c in cs}
        assert cards[str(floor.dia.pk)]["last"] == "74.1 mm"  # the characteristic's own decimals
        assert cards[str(floor.flow.pk)]["last"] == "12.000"

    def test_each_card_links_to_its_chart(self, floor, quality_specialist):
        groups = rendered_groups(signed_in(quality_specialist).get("/").content.decode())
        assert {card["href"] for cards in groups.values() for card in cards} == {
            reverse("web-chart", args=[c.pk])
            for c in (floor.dia, floor.wall, floor.flow, floor.press, floor.temp)
        }

    def test_a_characteristic_without_samples_says_so(self, plant, quality_specialist):
        html = signed_in(quality_specialist).get("/").content.decode()
        card = next(
            c
            for cs in rendered_groups(html).values()
            for c in cs
            if c["id"] == str(plant_characteristic(plant).pk)
        )
        assert (card["state"], card["label"], card["last"]) == ("no_data", "No data yet", "—")

    def test_an_empty_plant_says_who_configures_it(self, operations_lead):
        html = signed_in(operations_lead).get("/").content.decode()
        assert "No characteristics yet — a quality specialist configures them in the admin" in html
        assert "overview.js" not in html  # nothing to keep live

    def test_the_page_loads_the_live_script_and_the_time_zone(self, floor, quality_specialist, settings):
        html = signed_in(quality_specialist).get("/").content.decode()
        assert '<script type="module" src="/static/js/overview.js"></script>' in html
        assert f'data-time-zone="{settings.TIME_ZONE}"' in html

    def test_a_characteristic_whose_alarms_are_shelved_says_until_when(self, floor, quality_specialist):
        from apps.calculations.services import alarms_shelve

        shelf = alarms_shelve(
            characteristic=floor.flow, user=quality_specialist, minutes=90, reason="gauge swap"
        )
        html = signed_in(quality_specialist).get(reverse("web-overview")).content.decode()
        assert html.count('<span class="card-shelf" data-field="shelved">Alarms shelved until <time') == 1
        cards = {
            c.characteristic.pk: c for group in overview_groups(user=quality_specialist) for c in group.cards
        }
        assert cards[floor.flow.pk].shelved_until == shelf.until
        assert cards[floor.dia.pk].shelved_until is None
        # The chart page and the wall screen say so too.
        chart = signed_in(quality_specialist).get(f"/charts/{floor.flow.pk}/").content.decode()
        assert '<span class="card-shelf" data-chart-shelf>Alarms shelved until <time' in chart
        other = signed_in(quality_specialist).get(f"/charts/{floor.dia.pk}/").content.decode()
        assert "data-chart-shelf" not in other
        line = {"site": floor.flow.site, "area": floor.flow.area, "line": floor.flow.line}
        kiosk = signed_in(quality_specialist).get("/kiosk/", line).content.decode()
        assert kiosk.count('<p class="card-shelf" data-field="shelved">Alarms shelved until <time') == 1

    def test_a_metric_an_online_node_also_announces_is_not_offline(self, floor, quality_specialist):
        EdgeNodeFactory(node="spare", metrics=["Press/Force"])
        states = {
            card.characteristic.pk: card.state
            for group in overview_groups(user=quality_specialist)
            for card in group.cards
        }
        assert states[floor.press.pk] == CardState.IN_CONTROL

    def test_the_overview_reads_in_a_fixed_number_of_queries(
        self, plant, quality_specialist, django_assert_max_num_queries
    ):
        product = ProductFactory()
        lot = LotFactory(product=product)
        for n in range(20):
            c = characteristic_for(product, TestFactory(), line=f"Line {n % 4}")
            add_violation(add_sample(c, lot, float(n)))
            ProductStatistics.objects.create(characteristic=c, cpk=1.0 + n / 10)
        EdgeNodeFactory(online=False, metrics=["x"])
        user = UserFactory(username="fresh-qs", roles=[Role.QUALITY_SPECIALIST])  # roles not cached yet
        # The user's roles, their permissions (user and group), edge nodes, characteristics.
        with django_assert_max_num_queries(5):
            groups = overview_groups(user=user)
            cards = [card for group in groups for card in group.cards]
            assert [card.state for card in cards].count(CardState.UNACKNOWLEDGED) == 20
            assert len(cards) == 22  # and RING-74's DIA and WALL
            assert {card.last_value_text for card in cards} >= {"0.000 mm", "19.000 mm"}


# --- The chart page (its shell) ----------------------------------------------------------------


class ChartPageTests:
    def test_the_shell_carries_what_the_script_needs(self, floor, quality_specialist, settings):
        html = signed_in(quality_specialist).get(reverse("web-chart", args=[floor.dia.pk])).content.decode()
        assert f'data-characteristic-id="{floor.dia.pk}"' in html
        assert 'data-unit="mm"' in html
        assert 'data-decimals="3"' in html
        assert 'data-lsl="70.0"' in html
        assert 'data-usl="78.0"' in html
        assert 'data-target=""' in html
        assert f'data-time-zone="{settings.TIME_ZONE}"' in html

    def test_a_tester_or_a_user_with_no_role_gets_403_as_from_the_chart_data(self, api, floor, plant):
        for user in (plant.tester, UserFactory(username="no-role", roles=[])):
            assert signed_in(user).get(reverse("web-chart", args=[floor.dia.pk])).status_code == 403
            assert api(user).get(f"/api/v1/characteristics/{floor.dia.pk}/chart-data/").status_code == 403

    def test_a_chart_the_user_may_not_read_is_a_404(self, floor, plant):
        plant.tester.user_permissions.add(Permission.objects.get(codename="view_characteristic"))
        client = signed_in(User.objects.get(pk=plant.tester.pk))
        assert client.get(reverse("web-chart", args=[floor.dia.pk])).status_code == 200
        assert client.get(reverse("web-chart", args=[floor.flow.pk])).status_code == 404

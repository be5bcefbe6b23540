"""/api/v1/subscriptions/: a user's own subscriptions, to what their role may read, with clear 400s."""

import pytest
from django.contrib.auth.models import Group, Permission

from apps.subscriptions.models import Subscription
from openspc.roles import Role
from tests.config.helpers import error_of
from tests.factories import (
    LotFactory,
    ProductFactory,
    SubscriptionFactory,
    TestFactory,
    UserFactory,
    characteristic_for,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/subscriptions/"


@pytest.fixture
def shop(db):
    """Products A and B sharing test DIA, a lot of A."""
    a, b = ProductFactory(code="A-100"), ProductFactory(code="B-200")
    dia = TestFactory(code="DIA", name="Diameter")
    return {
        "a": a,
        "b": b,
        "dia": dia,
        "char_a": characteristic_for(a, dia),
        "lot_a": LotFactory(product=a, number="LA-1"),
    }


class CreateTests:
    def test_a_manager_subscribes_to_a_product_as_themselves_whatever_the_body_says(self, api, manager, shop):
        other = UserFactory(username="someone-else", roles=[Role.MANAGER])
        body = {
            "scope": "product",
            "product": shop["a"].pk,
            "events": ["violations", "results"],
            "user": other.pk,
        }
        response = api(manager).post(URL, body)

        assert response.status_code == 201, response.content
        subscription = Subscription.objects.get()
        assert subscription.user == manager
        assert (subscription.scope, subscription.product, subscription.events) == (
            "product", shop["a"], ["results", "violations"],
        )  # fmt: skip
        assert response.json() == {
            **response.json(),
            "id": subscription.pk, "scope": "product", "product": shop["a"].pk, "test": None, "lot": None,
            "characteristic": None, "events": ["results", "violations"], "email": False, "active": True,
            "target": f"A-100 — {shop['a'].name}",
        }  # fmt: skip

    def test_every_scope_takes_its_own_target(self, api, manager, shop):
        client = api(manager)
        for scope, target in [
            ("test", shop["dia"]),
            ("lot", shop["lot_a"]),
            ("characteristic", shop["char_a"]),
        ]:
            response = client.post(URL, {"scope": scope, scope: target.pk})
            assert response.status_code == 201, response.content
        assert sorted(Subscription.objects.values_list("scope", flat=True)) == [
            "characteristic",
            "lot",
            "test",
        ]
        assert Subscription.objects.get(scope="lot").events == ["violations"]  # the default
        listed = client.get(URL).json()["results"]
        assert {row["target"] for row in listed} == {
            "DIA — Diameter",
            "Lot LA-1 of A-100",
            "DIA Diameter of A-100",
        }

    def test_operations_leads_and_quality_specialists_subscribe_too(
        self, api, operations_lead, quality_specialist, shop
    ):
        for user in (operations_lead, quality_specialist):
            response = api(user).post(URL, {"scope": "lot", "lot": shop["lot_a"].pk})
            assert response.status_code == 201, response.content
        assert Subscription.objects.filter(lot=shop["lot_a"]).count() == 2

    def test_subscribing_twice_to_the_same_target_is_a_conflict(self, api, manager, shop):
        client = api(manager)
        first = client.post(URL, {"scope": "product", "product": shop["a"].pk}).json()
        error = error_of(client.post(URL, {"scope": "product", "product": shop["a"].pk}), 409)
        assert f"subscription {first['id']}" in error["message"]
        assert Subscription.objects.count() == 1


class BadRequestTests:
    @pytest.mark.parametrize(
        ("body", "field", "says"),
        [
            ({"scope": "product"}, "product", "needs a product"),
            ({"scope": "product", "product": 999_999}, "product", "Product 999999 does not exist"),
            ({"scope": "lot", "lot": "LOT"}, "lot", "integer"),
            ({"scope": "plant", "product": 1}, "scope", "valid choice"),
            ({"scope": "product", "events": ["violations"]}, "product", "needs a product"),
        ],
    )
    def test_a_missing_unknown_or_malformed_target_is_a_400_naming_the_field(
        self, api, manager, shop, body, field, says
    ):
        error = error_of(api(manager).post(URL, body), 400, field)
        assert says in error["message"], error
        assert not Subscription.objects.exists()

    def test_a_target_of_another_scope_is_refused(self, api, manager, shop):
        body = {"scope": "product", "product": shop["a"].pk, "lot": shop["lot_a"].pk}
        error = error_of(api(manager).post(URL, body), 400, "lot")
        assert error["fields"]["lot"] == ["A product subscription names only its product; leave lot out."]

    @pytest.mark.parametrize(
        ("scope", "events", "says"),
        [
            ("lot", ["limits"], "A lot subscription hears no limits events"),
            ("test", ["disposition"], "A test subscription hears no disposition events"),
            ("characteristic", [], "non-empty list"),
            ("product", ["alarms"], "valid choice"),
        ],
    )
    def test_kinds_the_scope_cannot_hear_are_refused(self, api, manager, shop, scope, events, says):
        target = {
            "lot": shop["lot_a"],
            "test": shop["dia"],
            "characteristic": shop["char_a"],
            "product": shop["a"],
        }
        response = api(manager).post(URL, {"scope": scope, scope: target[scope].pk, "events": events})
        error = error_of(response, 400, "events")
        assert says in str(error["fields"]["events"]), error

    def test_email_needs_an_address(self, api, manager, shop):
        manager.email = ""
        manager.save()
        error = error_of(
            api(manager).post(URL, {"scope": "product", "product": shop["a"].pk, "email": True}), 400
        )
        assert "no e-mail address" in error["fields"]["email"][0]


class ReadAccessTests:
    def test_a_manager_whose_role_may_not_read_lots_cannot_subscribe_to_one(self, api, manager, shop):
        Group.objects.get(name=Role.MANAGER).permissions.remove(
            Permission.objects.get(content_type__app_label="observations", codename="view_lot")
        )
        response = api(manager).post(URL, {"scope": "lot", "lot": shop["lot_a"].pk})
        error = error_of(response, 400, "lot")
        # The same words as for a lot that does not exist: nothing is given away.
        assert error["fields"]["lot"] == [f"Lot {shop['lot_a'].pk} does not exist or you may not read it."]
        assert api(manager).post(URL, {"scope": "product", "product": shop["a"].pk}).status_code == 201

    def test_what_visible_to_hides_cannot_be_subscribed_to(self, api, shop):
        """A tester given the subscription rights still reads no characteristics (visible_to)."""
        user = UserFactory(username="tester-plus", roles=[Role.TESTER])
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="subscriptions"))
        user.user_permissions.add(Permission.objects.get(codename="view_characteristic"))
        response = api(user).post(URL, {"scope": "characteristic", "characteristic": shop["char_a"].pk})
        error_of(response, 400, "characteristic")
        assert not Subscription.objects.exists()

    def test_testers_devices_and_strangers_cannot_subscribe(self, api, tester, device_api, shop):
        body = {"scope": "product", "product": shop["a"].pk}
        error_of(api(tester).post(URL, body), 403)
        error_of(api(tester).get(URL), 403)
        error_of(device_api.post(URL, body), 403)
        error_of(api(None).post(URL, body), 401)
        assert not Subscription.objects.exists()


class OwnOnlyTests:
    def test_nobody_sees_or_changes_another_users_subscriptions(self, api, manager, shop):
        other = UserFactory(username="other-manager", roles=[Role.MANAGER])
        theirs = SubscriptionFactory(user=other, product=shop["a"])
        mine = api(manager).post(URL, {"scope": "product", "product": shop["b"].pk}).json()
        client = api(manager)

        assert [row["id"] for row in client.get(URL).json()["results"]] == [mine["id"]]
        error_of(client.get(f"{URL}{theirs.pk}/"), 404)
        error_of(client.patch(f"{URL}{theirs.pk}/", {"events": ["results"]}), 404)
        error_of(client.delete(f"{URL}{theirs.pk}/"), 404)
        theirs.refresh_from_db()
        assert theirs.events == ["violations"]

    def test_the_owner_changes_events_email_and_active_but_not_the_target(self, api, manager, shop):
        manager.email = "manager@plant.example"
        manager.save()
        client = api(manager)
        created = client.post(URL, {"scope": "product", "product": shop["a"].pk}).json()
        url = f"{URL}{created['id']}/"

        changed = client.patch(url, {"events": ["limits", "violations"], "email": True, "active": False})
        assert changed.status_code == 200, changed.content
        assert (changed.json()["events"], changed.json()["email"], changed.json()["active"]) == (
            ["violations", "limits"], True, False,
        )  # fmt: skip
        error = error_of(client.patch(url, {"product": shop["b"].pk}), 400, "product")
        assert "cannot change" in error["message"]
        error_of(client.patch(url, {"scope": "lot"}), 400, "scope")
        assert client.patch(url, {"product": shop["a"].pk, "events": ["results"]}).status_code == 200
        subscription = Subscription.objects.get()
        assert (subscription.product, subscription.events) == (shop["a"], ["results"])

        assert client.delete(url).status_code == 204
        assert not Subscription.objects.exists()

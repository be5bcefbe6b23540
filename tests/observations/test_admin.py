"""Lots and observations in the admin."""

import pytest
from django.test import Client

from apps.observations import services
from apps.observations.choices import LotStatus
from apps.observations.models import Lot, Observation
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

LOTS = "/admin/observations/lot/"
OBSERVATIONS = "/admin/observations/observation/"


@pytest.fixture
def admin_client_su(db) -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def admin_client_qs(quality_specialist) -> Client:
    client = Client()
    client.force_login(quality_specialist)
    return client


def _lot_form(**data):
    management = {
        f"items-{k}": v for k, v in {"TOTAL_FORMS": 0, "INITIAL_FORMS": 0, "MAX_NUM_FORMS": 0}.items()
    }
    return {**management, **data}


class LotAdminTests:
    def test_changelist_shows_item_and_observation_counts(self, admin_client_su, plant):
        plant.record(
            {"item": plant.items[0], "test": plant.dia, "values": [74.0]},
            {"item": plant.items[1], "test": plant.dia, "values": [74.0]},
        )
        response = admin_client_su.get(LOTS)
        assert response.status_code == 200
        lot = response.context["cl"].result_list[0]
        assert (lot.number, lot.item_count, lot.observation_count) == ("L-1", 3, 2)

    def test_change_page_shows_the_items_read_only(self, admin_client_su, plant):
        response = admin_client_su.get(f"{LOTS}{plant.lot.pk}/change/")
        assert response.status_code == 200
        content = response.content.decode()
        assert all(serial in content for serial in ["0001", "0002", "0003"])

    def test_adding_a_lot_goes_through_the_service(self, admin_client_su):
        product = ProductFactory()
        response = admin_client_su.post(f"{LOTS}add/", _lot_form(product=product.pk, number=" L-77 "))
        assert response.status_code == 302, response.content.decode()[-2000:]
        lot = Lot.objects.get()
        assert (lot.number, lot.status, lot.created_by.username) == ("L-77", LotStatus.OPEN, "root")

    def test_an_inactive_product_is_an_error_on_the_form(self, admin_client_su):
        product = ProductFactory(active=False, code="OLD-1")
        response = admin_client_su.post(f"{LOTS}add/", _lot_form(product=product.pk, number="L-1"))
        assert response.status_code == 200
        assert "OLD-1 is inactive" in response.content.decode()
        assert not Lot.objects.exists()

    def test_status_moves_only_along_the_transitions(self, admin_client_su, plant):
        url = f"{LOTS}{plant.lot.pk}/change/"
        for status in ("released", "rejected", "quarantined"):  # signed dispositions, never the admin's
            response = admin_client_su.post(url, _lot_form(status=status))
            assert response.status_code == 200
            assert "signed dispositions" in response.content.decode()
            assert Lot.objects.get().status == LotStatus.OPEN
        services.lot_status_set(lot=plant.lot, status=LotStatus.IN_TESTING)
        response = admin_client_su.post(url, _lot_form(status="open"))
        assert "can move to quarantined, rejected, released, not to open" in response.content.decode()
        Lot.objects.filter(pk=plant.lot.pk).update(status=LotStatus.OPEN)
        assert admin_client_su.post(url, _lot_form(status="in_testing")).status_code == 302
        assert Lot.objects.get().status == LotStatus.IN_TESTING

    def test_quality_specialist_reads_lots_but_cannot_change_them(self, admin_client_qs, plant):
        assert admin_client_qs.get(LOTS).status_code == 200
        assert admin_client_qs.get(f"{LOTS}add/").status_code == 403
        admin_client_qs.post(f"{LOTS}{plant.lot.pk}/change/", _lot_form(status="rejected"))
        assert Lot.objects.get().status == LotStatus.OPEN


class ObservationAdminTests:
    def test_list_with_status_and_reasons_and_filters(self, admin_client_qs, plant):
        ids = plant.record(
            {"item": plant.items[0], "test": plant.dia, "values": [74.0]},
            {"item": plant.items[1], "test": plant.dia, "values": [99.0]},
        )
        services.observations_process(ids=ids)
        response = admin_client_qs.get(OBSERVATIONS)
        assert response.status_code == 200
        assert "outside the plausible range" in response.content.decode()
        rejected = admin_client_qs.get(OBSERVATIONS, {"status__exact": "rejected"})
        assert [o.pk for o in rejected.context["cl"].result_list] == [ids[1]]
        by_test = admin_client_qs.get(OBSERVATIONS, {"test__id__exact": plant.wall.pk})
        assert list(by_test.context["cl"].result_list) == []
        by_source = admin_client_qs.get(OBSERVATIONS, {"source__exact": "manual"})
        assert len(by_source.context["cl"].result_list) == 2

    def test_observations_are_read_only(self, admin_client_su, plant):
        [pk] = plant.record({"item": plant.items[0], "test": plant.dia, "values": [74.0]})
        assert admin_client_su.get(f"{OBSERVATIONS}add/").status_code == 403
        assert admin_client_su.get(f"{OBSERVATIONS}{pk}/change/").status_code == 200  # view only
        assert admin_client_su.post(f"{OBSERVATIONS}{pk}/delete/", {"post": "yes"}).status_code == 403
        assert Observation.objects.filter(pk=pk).exists()

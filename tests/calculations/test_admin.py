"""Samples, violations and statistics in the admin: listed, never edited by hand."""

import numpy as np
import pytest
from django.test import Client

from apps.calculations import services
from apps.config.models import Characteristic
from apps.observations import services as obs_services
from tests.factories import UserFactory
from tests.support.signing import limits_signer

pytestmark = pytest.mark.django_db

PAGES = [
    "/admin/observations/sample/",
    "/admin/calculations/violation/",
    "/admin/calculations/lotstatistics/",
    "/admin/calculations/productstatistics/",
]


@pytest.fixture
def root(db) -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def calculated(plant) -> Characteristic:
    dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
    services.limits_set_historical(
        signer=limits_signer(), characteristic=dia, center=74.0, sigma=0.01, reason="historical"
    )
    values = [*(74.0 + 0.005 * np.sin(np.arange(8))), 74.5]  # the last one is a rule 1 signal
    ids = plant.record(
        *[{"item": plant.items[i % 3], "test": plant.dia, "values": [v]} for i, v in enumerate(values)]
    )
    obs_services.observations_process(ids=ids)
    services.characteristic_calculate(characteristic_id=dia.pk)
    return dia


@pytest.mark.parametrize("page", PAGES)
def test_lists_show_what_the_worker_wrote_and_offer_no_add(root, calculated, page):
    response = root.get(page)
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1
    assert root.get(page + "add/").status_code == 403


def test_a_violation_cannot_be_deleted_by_hand(root, calculated):
    # 74.5 is beyond the I chart's limits, and its moving range beyond the MR chart's.
    assert sorted(calculated.violations.values_list("rule", "chart")) == [(1, "dispersion"), (1, "location")]
    violation = calculated.violations.get(chart="location")
    response = root.post(f"/admin/calculations/violation/{violation.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert calculated.violations.filter(pk=violation.pk).exists()

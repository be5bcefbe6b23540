"""The observation tests' plant serves the page tests too; `dia` is its DIA characteristic, and
`chart_html` the chart page as a user sees it."""

from typing import Any

import pytest
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from django.urls import reverse

from apps.config.models import Characteristic
from tests.observations.conftest import plant

__all__ = ["chart_html", "dia", "plant"]


def chart_html(user: AbstractBaseUser, characteristic: Characteristic) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(reverse("web-chart", args=[characteristic.pk]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def dia(plant: Any) -> Characteristic:
    return Characteristic.objects.get(product=plant.product, test=plant.dia)

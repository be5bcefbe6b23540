"""The browser pages through Django's test client: a signed-in client, the navigation's labels,
the chart page's HTML."""

import re

from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from django.urls import reverse

from apps.config.models import Characteristic


def signed_in(user: AbstractBaseUser) -> Client:
    client = Client()
    client.force_login(user)
    return client


def nav_labels(html: str) -> list[str]:
    nav = re.search(r'<nav class="site-nav".*?</nav>', html, re.S)
    return re.findall(r"<a [^>]*>(.*?)</a>", nav.group(0)) if nav else []


def chart_html(user: AbstractBaseUser, characteristic: Characteristic) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(reverse("web-chart", args=[characteristic.pk]))
    assert response.status_code == 200
    return response.content.decode()

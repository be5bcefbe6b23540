"""A characteristic may not be fed by a topic the bridge publishes to (spc/violations/...,
spc/stats/...): the listener would read its own output back as measurements. Refused by the
service, the API and the admin alike."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from apps.config import services
from apps.config.models import Characteristic
from apps.mqtt_bridge.publisher import violation_topic
from tests.factories import ProductFactory, TestFactory, characteristic_for

pytestmark = pytest.mark.django_db

OWN = ["spc/violations/Plant 1/Machining/Line 1/Cell 1/RING-74-DIA", "spc/stats/a/b/c/d/P-T", "spc/stats"]


@pytest.fixture
def dia() -> Characteristic:
    return characteristic_for(ProductFactory(code="RING-74"), TestFactory(code="DIA"), lsl=1.0, usl=2.0)


@pytest.mark.parametrize("tag", OWN)
def test_the_service_refuses_the_bridges_own_topics(dia, tag):
    with pytest.raises(ValidationError) as caught:
        services.characteristic_update(characteristic=dia, data={"data_source": "tag", "tag": tag})
    assert (
        "OpenSPC publishes to spc/violations/..., spc/stats/..., spc/health/..., spc/spec/..., "
        "spc/schedule/... itself" in caught.value.message_dict["tag"][0]
    )
    assert Characteristic.objects.get(pk=dia.pk).tag is None


def test_topics_that_only_look_alike_are_fine(dia):
    for tag in ["spc/violationsX/line1", "plant/spc/violations/x", "spc/other/x"]:
        services.characteristic_update(characteristic=dia, data={"data_source": "tag", "tag": tag})
        assert Characteristic.objects.get(pk=dia.pk).tag == tag


def test_the_publishers_topics_are_the_ones_refused(world):
    topic = violation_topic(world.violation())
    with pytest.raises(ValidationError):
        services.characteristic_update(characteristic=world.dia, data={"data_source": "tag", "tag": topic})


def test_the_api_refuses_them(api, quality_specialist, dia):
    response = api(quality_specialist).patch(
        f"/api/v1/characteristics/{dia.pk}/", {"data_source": "tag", "tag": OWN[0]}, format="json"
    )
    assert response.status_code == 400
    assert "read its own alarms and statistics back" in json.dumps(response.json())
    assert Characteristic.objects.get(pk=dia.pk).data_source == "manual"


def test_the_admin_refuses_them(quality_specialist, dia):
    client = Client()
    client.force_login(quality_specialist)
    data: dict[str, object] = {}
    for name in services.CHARACTERISTIC_FIELDS:
        value = getattr(dia, name)
        if name in {"rules", "chart_params", "acknowledge_rules"}:
            data[name] = json.dumps(value)
        elif name == "active":
            if value:
                data[name] = "on"
        else:
            data[name] = "" if value is None else value
    data.update({"data_source": "tag", "tag": OWN[1]})
    data.update({"limits-TOTAL_FORMS": "0", "limits-INITIAL_FORMS": "0", "limits-MAX_NUM_FORMS": "0"})
    response = client.post(f"/admin/config/characteristic/{dia.pk}/change/", data)
    assert response.status_code == 200
    errors = " ".join(response.context["adminform"].form.errors.get("tag", []))
    assert (
        "OpenSPC publishes to spc/violations/..., spc/stats/..., spc/health/..., spc/spec/..., "
        "spc/schedule/... itself" in errors
    )
    assert Characteristic.objects.get(pk=dia.pk).tag is None

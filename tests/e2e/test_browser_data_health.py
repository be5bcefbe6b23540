"""The must-show of data health (issue #21): every value of a characteristic starts being rejected;
within the configured interval the open overview's card turns to the rejection state with the top
reason, live, and a manager subscribed to the characteristic's data health gets `data.rejected`.

A real daphne serves the pages and the WebSocket; a real Celery worker runs beat (the data health
check every 2 s here, DATA_HEALTH_INTERVAL_SECONDS) besides the pipeline; Chromium shows the
overview."""

from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from apps.config.models import Characteristic
from apps.observations.models import CharacteristicHealth, Observation
from apps.subscriptions.models import Notification
from apps.subscriptions.services import subscription_create
from tests.e2e.scene import CALM, CENTER, SIGMA
from tests.support.browser import record_websocket_messages, signed_in, wait_until_live, wait_until_subscribed
from tests.support.daphne import Daphne, access_token
from tests.support.workers import CeleryWorkers, pipeline_idle

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

INTERVAL_S = 2
IMPLAUSIBLE = 80.0  # DIA is plausible in 70–78


@pytest.mark.timeout(180)
def test_rejected_values_turn_the_overview_card_and_tell_the_subscribed_manager(
    plant, tester, manager, quality_specialist, server: Daphne, context: BrowserContext, tmp_path: Path,
    screenshot, page_errors,
):  # fmt: skip
    dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
    subscription_create(user=manager, scope="characteristic", characteristic=dia.pk, events=["data_health"])
    items = plant.items_total(len(CALM) + 6)
    with CeleryWorkers(
        count=1, log_dir=tmp_path, beat=True, env={"DATA_HEALTH_INTERVAL_SECONDS": str(INTERVAL_S)}
    ) as worker:
        plant.dia_judged(center=CENTER, sigma=SIGMA, user=quality_specialist)
        calm = zip(items[: len(CALM)], CALM, strict=True)
        plant.record(*({"item": i, "test": plant.dia, "values": [CENTER + z * SIGMA]} for i, z in calm))
        worker.wait_for(pipeline_idle, timeout=60, what="the calm samples")

        record_websocket_messages(context)
        page = signed_in(context, manager)
        wait_until_live(page)
        wait_until_subscribed(page, dia.pk)
        card = page.locator(f"[data-characteristic-id='{dia.pk}']")
        expect(card).to_have_attribute("data-state", "in_control")
        page.evaluate("window.notReloaded = true")

        # The check has run once (where its window starts), as it has on any running system.
        worker.wait_for(
            lambda: CharacteristicHealth.objects.filter(pk=dia.pk).exists(), what="a data health check"
        )

        # From now on every value of DIA is rejected.
        body = [
            {"item": item.pk, "test": plant.dia.pk, "values": [IMPLAUSIBLE]} for item in items[len(CALM) :]
        ]
        status, answer = server.http("POST", "/api/v1/observations/", token=access_token(tester), body=body)
        assert status == 202, answer
        worker.wait_for(
            lambda: Observation.objects.filter(status="rejected").count() == 6,
            what="the values to be rejected",
        )

        # Within a few intervals the card says so, with the reason, without a reload.
        expect(card).to_have_attribute("data-state", "rejecting", timeout=10 * INTERVAL_S * 1000)
        label = card.locator("[data-field='state-label']")
        expect(label).to_contain_text("% rejected: ")
        expect(label).to_contain_text("outside the plausible range of DIA")
        assert page.evaluate("window.notReloaded === true"), "the overview reloaded"
        screenshot(page, "overview-rejecting")

        worker.wait_for(
            lambda: Notification.objects.filter(user=manager, event="data.rejected").exists(),
            timeout=30,
            what="the manager's data.rejected notification",
        )
    (note,) = Notification.objects.filter(user=manager, event="data.rejected")
    assert note.data["characteristic"] == dia.pk
    assert note.data["state"] == "rejecting"
    assert "outside the plausible range" in note.message
    assert page_errors == []

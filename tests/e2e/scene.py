"""The scene most browser tests start from: DIA of the `plant` fixture judged against historical
limits (centre 74.0, σ 0.01), twelve calm values already charted by the real worker, and one item
left for the value a test posts through the API while the page is open (`post_live`)."""

from dataclasses import dataclass
from typing import Any

from apps.observations.models import Sample
from tests.support.daphne import Daphne, access_token
from tests.support.workers import CeleryWorkers, pipeline_idle

CENTER, SIGMA = 74.0, 0.01
# In σ from the centre: twelve values that set off no Nelson rule.
CALM = [0.3, -0.8, 1.1, -0.2, 0.6, -1.2, 0.1, 0.9, -0.5, 0.4, -0.9, 0.7]
LIVE = 4.0  # σ: a value posted while the page is open lands beyond the UCL (rule 1, to acknowledge)
LIVE_WITHIN_MS = 20_000  # post -> worker -> channel layer -> WebSocket -> drawn; ~1 s when warm


@dataclass
class CalmChart:
    dia: Any  # the Characteristic
    spare: Any  # the Item whose DIA value is still due


def calm_chart(plant: Any, worker: CeleryWorkers, *, user: Any) -> CalmChart:
    """DIA judged, the CALM values recorded and turned into samples by the worker."""
    dia = plant.dia_judged(center=CENTER, sigma=SIGMA, user=user)
    items = plant.items_total(len(CALM) + 1)
    plant.record(
        *(
            {"item": item, "test": plant.dia, "values": [CENTER + z * SIGMA]}
            for item, z in zip(items[: len(CALM)], CALM, strict=True)
        )
    )
    worker.wait_for(pipeline_idle, timeout=60, what="the first samples")
    assert Sample.objects.filter(characteristic=dia).count() == len(CALM)
    return CalmChart(dia=dia, spare=items[-1])


def post_live(server: Daphne, tester: Any, plant: Any, scene: CalmChart, *, key: str) -> None:
    """The tester posts the LIVE value of the spare item through the API (202)."""
    status, answer = server.http(
        "POST", "/api/v1/observations/", token=access_token(tester),
        body=[{"item": scene.spare.pk, "test": plant.dia.pk, "values": [CENTER + LIVE * SIGMA],
               "idempotency_key": key}],
    )  # fmt: skip
    assert status == 202, answer

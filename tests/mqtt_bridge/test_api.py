"""GET /api/v1/mqtt/dead-letters/ and /api/v1/mqtt/edge-nodes/: read-only, by role."""

import base64
import datetime

import pytest
from django.utils import timezone

from apps.config import services as config_services
from apps.config.choices import DataSource
from apps.config.models import Characteristic
from apps.mqtt_bridge.models import DeadLetter, DeadLetterReason, EdgeNode

pytestmark = pytest.mark.django_db

DEAD = "/api/v1/mqtt/dead-letters/"
NODES = "/api/v1/mqtt/edge-nodes/"


def dead_letter(topic: str, payload: bytes, reason: str, minutes_ago: int = 0) -> DeadLetter:
    at = timezone.now() - datetime.timedelta(minutes=minutes_ago)
    return DeadLetter.objects.create(
        topic=topic, payload=payload, reason=reason, message=f"{reason} on {topic}", count=2,
        first_received_at=at, last_received_at=at, listener="plant-a", fingerprint=f"{topic}-{reason}",
    )  # fmt: skip


class DeadLetterApiTests:
    def test_quality_specialist_reads_them_newest_first_with_the_raw_bytes(self, api, quality_specialist):
        older = dead_letter("line1/dia", b"garbage", DeadLetterReason.NOT_JSON, minutes_ago=5)
        newer = dead_letter("spBv1.0/G/NDATA/n1", b"\xff\xfe\x00x", DeadLetterReason.NOT_SPARKPLUG)
        response = api(quality_specialist).get(DEAD)
        assert response.status_code == 200
        rows = response.json()["results"]
        assert [row["id"] for row in rows] == [newer.pk, older.pk]
        assert rows[0]["payload_text"] == "\\xff\\xfe\x00x"
        assert base64.b64decode(rows[0]["payload_base64"]) == b"\xff\xfe\x00x"
        assert (rows[1]["topic"], rows[1]["reason"], rows[1]["count"]) == ("line1/dia", "not_json", 2)

    def test_filters(self, api, quality_specialist):
        dead_letter("line1/dia", b"x", DeadLetterReason.NOT_JSON)
        dead_letter("line2/od", b"{}", DeadLetterReason.BAD_SHAPE)
        client = api(quality_specialist)
        assert [r["topic"] for r in client.get(DEAD, {"reason": "bad_shape"}).json()["results"]] == [
            "line2/od"
        ]
        assert [r["topic"] for r in client.get(DEAD, {"topic": "line1/"}).json()["results"]] == ["line1/dia"]

    def test_nobody_writes_and_other_roles_do_not_read(self, api, quality_specialist, manager, tester):
        row = dead_letter("line1/dia", b"x", DeadLetterReason.NOT_JSON)
        assert api(quality_specialist).delete(f"{DEAD}{row.pk}/").status_code == 405
        assert api(quality_specialist).post(DEAD, {}).status_code == 405
        assert api(manager).get(DEAD).status_code == 403
        assert api(tester).get(DEAD).status_code == 403
        assert api(None).get(DEAD).status_code == 401
        assert DeadLetter.objects.filter(pk=row.pk).exists()


class EdgeNodeApiTests:
    def test_nodes_with_online_state_and_the_characteristics_they_feed(self, api, plant, manager):
        dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
        config_services.characteristic_update(
            characteristic=dia, data={"data_source": DataSource.SPARKPLUG, "tag": "Cell1/Dia"}
        )
        EdgeNode.objects.create(group="G", node="Line1", device="", online=True, metrics=["bdSeq"])
        EdgeNode.objects.create(
            group="G", node="Line1", device="Gauge", online=False, metrics=["Cell1/Dia", "Temp"],
            died_at=timezone.now(),
        )  # fmt: skip
        response = api(manager).get(NODES)
        assert response.status_code == 200
        rows = response.json()["results"]
        assert [(r["device"], r["online"], r["characteristics"]) for r in rows] == [
            ("", True, []), ("Gauge", False, [dia.pk]),
        ]  # fmt: skip
        offline = api(manager).get(NODES, {"online": "false"}).json()["results"]
        assert [r["device"] for r in offline] == ["Gauge"]

    def test_testers_do_not_read_them(self, api, tester):
        assert api(tester).get(NODES).status_code == 403

    def test_each_node_says_the_data_health_of_what_it_feeds(self, api, plant, manager):
        """Data health per data source (issue #21): a Sparkplug B device sums its characteristics'."""
        from apps.observations.models import CharacteristicHealth

        dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
        config_services.characteristic_update(
            characteristic=dia, data={"data_source": DataSource.SPARKPLUG, "tag": "Cell1/Dia"}
        )
        EdgeNode.objects.create(group="G", node="Line1", device="Gauge", online=True, metrics=["Cell1/Dia"])
        EdgeNode.objects.create(group="G", node="Line2", device="", online=True, metrics=["Other"])
        now = timezone.now()
        CharacteristicHealth.objects.create(
            characteristic=dia, state="rejecting", since=now, checked_at=now, confirmed=6, rejected=4,
            dead_letters=3,
        )  # fmt: skip
        rows = {r["node"]: r["health"] for r in api(manager).get(NODES).json()["results"]}
        assert rows["Line1"] == {
            "confirmed": 6, "rejected": 4, "rejected_percent": 40, "dead_letters": 3,
            "unhealthy": {str(dia.pk): "rejecting"},
        }  # fmt: skip
        assert rows["Line2"] == {
            "confirmed": 0, "rejected": 0, "rejected_percent": 0, "dead_letters": 0, "unhealthy": {}
        }  # fmt: skip

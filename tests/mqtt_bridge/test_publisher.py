"""Violations back to the plant (apps/mqtt_bridge/publisher.py) with a fake `publish`: the topic, the
message, and the cursor that publishes each violation at least once and history never."""

import datetime
import json
import threading
from typing import Any

import pytest
from django.db import connection, transaction

from apps.calculations.models import Violation
from apps.config.models import Characteristic
from apps.mqtt_bridge.models import PublishCursor
from apps.mqtt_bridge.publisher import CURSOR, violation_message, violation_topic, violations_publish
from tests.factories import ProductFactory, characteristic_for
from tests.support.plant import Violations


class Recorder:
    """A fake broker: acknowledges until told to refuse a topic's n-th message."""

    def __init__(self, refuse: set[int] | None = None) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.refuse = refuse or set()

    def __call__(self, topic: str, payload: bytes) -> bool:
        document = json.loads(payload)
        self.sent.append((topic, document))
        return document["id"] not in self.refuse

    def ids(self) -> list[int]:
        return [document["id"] for _, document in self.sent]


def cursor() -> int:
    return PublishCursor.objects.get(name=CURSOR).position


class TopicTests:
    @pytest.mark.parametrize(
        ("levels", "expected"),
        [
            (("Plant 1", "Machining", "Line 1", "Cell 1"), "Plant 1/Machining/Line 1/Cell 1"),
            (("Plant/1", "A+B", "L#3", "a//b"), "Plant_1/A_B/L_3/a_b"),
            (("", "  ", "+", "#"), "_/_/_/_"),
            ((" Plant ", "x y", "sp/+#", "ok"), "Plant/x y/sp_/ok"),
        ],
    )
    def test_levels_are_sanitised(self, world: Violations, levels: tuple[str, ...], expected: str) -> None:
        Characteristic.objects.filter(pk=world.dia.pk).update(
            **dict(zip(("site", "area", "line", "cell"), levels, strict=True))
        )
        v = world.violation()
        v.refresh_from_db()
        assert violation_topic(v) == f"spc/violations/{expected}/RING-74-DIA"

    def test_the_characteristic_level_is_sanitised_too(self, world: Violations) -> None:
        product = ProductFactory(code="A/B+C")
        characteristic = characteristic_for(product, world.plant.dia)
        v = world.violation(characteristic)
        assert violation_topic(v) == "spc/violations/_/_/_/_/A_B_C-DIA"
        assert len(violation_topic(v).split("/")) == 7


class MessageTests:
    def test_what_scada_needs(self, world: Violations) -> None:
        v = world.violation(rule=2)
        Violation.objects.filter(pk=v.pk).update(
            created_at=datetime.datetime(2026, 3, 1, 8, tzinfo=datetime.UTC)
        )
        v.refresh_from_db()
        document = json.loads(violation_message(v))
        sample = v.sample
        expected = {
            "id": v.pk, "rule": 2, "sample": sample.pk, "characteristic": world.dia.pk, "product": "RING-74",
            "test": "DIA", "values": sample.values, "lot_number": "L-1", "lot": world.plant.lot.pk,
            "created_at": "2026-03-01T08:00:00+00:00", "severity": "critical", "chart": "location",
            "sequence": sample.sequence, "points": [sample.sequence], "limits_version": 1,
            "mean": sample.mean,
        }  # fmt: skip
        assert {key: document[key] for key in expected} == expected
        assert {"tag", "sample_created_at", "published_at"} <= set(document)


class PublishTests:
    def test_history_is_not_published(self, world: Violations) -> None:
        old = [world.violation(), world.violation()]
        sent = Recorder()
        assert violations_publish(publish=sent) == 0
        assert sent.sent == []
        assert cursor() == old[-1].pk

    def test_a_first_start_without_violations(self, world: Violations) -> None:
        assert violations_publish(publish=Recorder()) == 0
        assert cursor() == 0
        new = world.violation()
        sent = Recorder()
        assert violations_publish(publish=sent) == 1
        assert sent.ids() == [new.pk]

    def test_later_ones_in_id_order_and_a_refusal_keeps_the_cursor(self, world: Violations) -> None:
        world.violation()
        violations_publish(publish=Recorder())
        start = cursor()
        new = [world.violation(rule=rule) for rule in (1, 2, 5, 6)]
        ids = [v.pk for v in new]

        refusing = Recorder(refuse={ids[2]})
        assert violations_publish(publish=refusing) == 2
        assert refusing.ids() == ids[:3]  # stopped at the refusal
        assert cursor() == ids[1]

        again = Recorder()
        assert violations_publish(publish=again) == 2
        assert again.ids() == ids[2:]  # the refused one again, then the rest
        assert cursor() == ids[3]
        assert violations_publish(publish=Recorder()) == 0
        assert start < ids[0]

    def test_the_first_refused_publishes_nothing_and_moves_nothing(self, world: Violations) -> None:
        violations_publish(publish=Recorder())
        v = world.violation()
        assert violations_publish(publish=lambda topic, payload: False) == 0
        assert cursor() == 0
        sent = Recorder()
        assert violations_publish(publish=sent) == 1
        assert sent.ids() == [v.pk]

    def test_limit(self, world: Violations) -> None:
        violations_publish(publish=Recorder())
        ids = [world.violation().pk for _ in range(3)]
        sent = Recorder()
        assert violations_publish(publish=sent, limit=2) == 2
        assert sent.ids() == ids[:2]
        assert violations_publish(publish=sent, limit=2) == 1
        assert sent.ids() == ids

    def test_the_message_goes_to_the_violations_topic(self, world: Violations) -> None:
        violations_publish(publish=Recorder())
        v = world.violation()
        sent = Recorder()
        violations_publish(publish=sent)
        ((topic, document),) = sent.sent
        assert topic == violation_topic(v)
        assert document["id"] == v.pk


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locking needs PostgreSQL")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class ConcurrentPublishTests:
    def test_a_second_listener_gets_nothing_while_the_first_holds_the_cursor(self, world: Violations) -> None:
        violations_publish(publish=Recorder())  # the cursor row exists, committed
        new = [world.violation(), world.violation()]
        inside: list[int] = []

        def other_listener() -> None:
            try:
                inside.append(violations_publish(publish=Recorder()))
            finally:
                connection.close()

        def publish_while_another_tries(topic: str, payload: bytes) -> bool:
            if not inside:  # the first violation: the cursor is locked by this transaction now
                thread = threading.Thread(target=other_listener)
                thread.start()
                thread.join(timeout=20)
                assert not thread.is_alive(), "the second listener waited for the lock instead of skipping"
            return True

        assert violations_publish(publish=publish_while_another_tries) == 2
        assert inside == [0]
        assert cursor() == new[-1].pk

    def test_a_held_cursor_row_is_skipped(self, world: Violations) -> None:
        violations_publish(publish=Recorder())
        world.violation()
        result: list[int] = []
        with transaction.atomic():
            PublishCursor.objects.select_for_update().get(name=CURSOR)

            def other_listener() -> None:
                try:
                    result.append(violations_publish(publish=Recorder()))
                finally:
                    connection.close()

            thread = threading.Thread(target=other_listener)
            thread.start()
            thread.join(timeout=20)
            assert not thread.is_alive()
        assert result == [0]
        assert violations_publish(publish=Recorder()) == 1  # released: published now


class StatisticsTests:
    """spc/stats/...: each characteristic's statistics, retained; the cursor stays SETTLE behind."""

    def test_changes_are_published_retained_at_once_and_at_least_once(self, world: Violations) -> None:
        from apps.calculations.models import ProductStatistics
        from apps.mqtt_bridge.publisher import SETTLE, statistics_publish

        stats = ProductStatistics.objects.create(characteristic=world.dia, n=5, mean=74.001, sd=0.01, cpk=1.4)
        sent: list[tuple[str, bytes, bool]] = []

        def publish(topic: str, payload: bytes, retain: bool = False) -> bool:
            sent.append((topic, payload, retain))
            return True

        t = stats.updated_at
        assert statistics_publish(publish=publish, now=t) == 1, "published at once"
        assert statistics_publish(publish=publish, now=t + SETTLE / 2) == 1, "again while it may be late"
        assert statistics_publish(publish=publish, now=t + SETTLE * 2) == 1, "the cursor passes it now"
        assert statistics_publish(publish=publish, now=t + SETTLE * 3) == 0, "and not again"
        topic, payload, retain = sent[0]
        c = world.dia
        assert (
            topic == f"spc/stats/{c.site or '_'}/{c.area or '_'}/{c.line or '_'}/{c.cell or '_'}/RING-74-DIA"
        )
        assert retain is True
        body = json.loads(payload)
        assert (body["characteristic"], body["n"], body["mean"], body["cpk"]) == (c.pk, 5, 74.001, 1.4)

        later = t + SETTLE * 4
        ProductStatistics.objects.filter(pk=stats.pk).update(n=6, updated_at=later)
        assert statistics_publish(publish=publish, now=later) == 1
        assert json.loads(sent[-1][1])["n"] == 6

    def test_a_row_updated_every_moment_is_still_published(self, world: Violations) -> None:
        """A busy characteristic's row is always younger than SETTLE; it must not wait forever."""
        from apps.calculations.models import ProductStatistics
        from apps.mqtt_bridge.publisher import statistics_publish

        stats = ProductStatistics.objects.create(characteristic=world.dia, n=1)
        sent: list[bytes] = []
        for step in range(5):
            moment = stats.updated_at + datetime.timedelta(milliseconds=300 * step)
            ProductStatistics.objects.filter(pk=stats.pk).update(n=step + 1, updated_at=moment)
            statistics_publish(
                publish=lambda topic, payload, retain=False: sent.append(payload) or True, now=moment
            )
        assert [json.loads(p)["n"] for p in sent][-1] == 5

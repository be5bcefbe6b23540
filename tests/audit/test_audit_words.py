"""The audit trail reads in words (issue 18): people by name, actions and record types by label,
foreign keys as what they name, in a fixed number of queries a page; one record's history by
filter; and the whole trail (or a filtered part) as a streamed CSV."""

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.choices import AuditAction
from apps.audit.models import AuditEntry
from apps.audit.services import Actor, audit_record
from apps.config import services as config_services
from apps.observations import services
from apps.observations.models import Lot
from tests.factories import LotFactory, ProductFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/audit/"
CSV_URL = "/api/v1/audit/entries.csv"


@pytest.fixture
def lead(operations_lead):
    operations_lead.first_name, operations_lead.last_name = "Lena", "Lead"
    operations_lead.save()
    return operations_lead


def open_lot(product, number, user) -> Lot:
    return services.lot_create(product=product, number=number, user=user, actor=Actor(user, "api"))


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


class WordsTests:
    def test_an_entry_names_the_person_the_action_the_record_and_what_its_ids_refer_to(
        self, api, quality_specialist, lead
    ):
        product = ProductFactory(code="RING-74", name="Ring")
        lot = open_lot(product, "L-7", lead)
        (entry,) = results(api(quality_specialist).get(URL, {"object_type": "observations.lot"}))
        assert entry["user_name"] == "Lena Lead"
        assert (entry["action"], entry["action_label"]) == ("create", "Created")
        assert (entry["object_type"], entry["object_type_label"]) == ("observations.lot", "Lot")
        assert entry["object_repr"] == str(lot)
        assert entry["after"]["product"] == product.pk  # the raw value stays
        assert {c["field"]: (c["label"], c["after"]) for c in entry["changes"]} == {
            "product": ("Product", "RING-74 — Ring"),
            "number": ("Number", "L-7"),
            "status": ("Status", "open"),
        }
        assert all(c["before"] == "" for c in entry["changes"])  # a creation has no before
        assert (entry["seq"], len(entry["hash"])) == (AuditEntry.objects.get(pk=entry["id"]).seq, 64)

    def test_a_change_shows_before_and_after_and_the_system_as_who(self, api, quality_specialist, lead):
        lot = open_lot(ProductFactory(), "L-1", lead)
        services.lot_status_set(lot=lot, status="in_testing")
        entry = results(api(quality_specialist).get(URL, {"action": AuditAction.STATUS}))[0]
        assert entry["user_name"] == "The system"
        assert entry["action_label"] == "Status changed"
        assert entry["changes"] == [
            {"field": "status", "label": "Status", "before": "open", "after": "in_testing"}
        ]

    def test_many_to_many_ids_read_as_names_and_a_gone_thing_says_so(self, api, quality_specialist):
        ring, shaft = ProductFactory(code="RING", name="Ring"), ProductFactory(code="SHAFT", name="Shaft")
        config_services.device_create(name="gauge-1", products=[ring, shaft])
        entry = results(api(quality_specialist).get(URL, {"object_type": "config.device"}))[0]
        products = next(c for c in entry["changes"] if c["field"] == "products")
        assert products["after"] == "RING — Ring, SHAFT — Shaft"
        audit_record(
            user=None, action="update", instance=LotFactory(product=ring), before={"product": 999999}
        )
        entry = results(api(quality_specialist).get(URL, {"object_type": "observations.lot"}))[0]
        assert entry["changes"][0]["before"] == "#999999 (gone)"

    def test_the_query_count_does_not_grow_with_the_entries_or_what_they_refer_to(
        self, api, quality_specialist, lead
    ):
        client = api(quality_specialist)

        def count() -> int:
            with CaptureQueriesContext(connection) as queries:
                assert client.get(URL, {"object_type": "observations.lot"}).status_code == 200
            return len(queries)

        open_lot(ProductFactory(), "L-1", lead)
        count()  # the first request reads the user's roles, which the process then keeps
        few = count()
        for n in range(2, 12):
            open_lot(ProductFactory(), f"L-{n}", lead)
        assert count() == few


class RecordHistoryTests:
    def test_content_type_and_object_id_give_one_records_history(self, api, quality_specialist, lead):
        product = ProductFactory()
        lot, other = open_lot(product, "L-1", lead), open_lot(product, "L-2", lead)
        services.items_create(lot=lot, count=2, actor=Actor(lead, "api"))
        services.lot_status_set(lot=other, status="in_testing")
        query = {"content_type": "observations.lot", "object_id": lot.pk}
        history = results(api(quality_specialist).get(URL, query))
        assert [e["action"] for e in history] == ["items_added", "create"]  # newest first
        assert {e["object_id"] for e in history} == {str(lot.pk)}


def read_csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-trail-')
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


class CsvTests:
    def test_the_export_is_every_entry_in_words_oldest_first(self, api, quality_specialist, lead):
        product = ProductFactory(code="RING-74", name="Ring")
        lot = open_lot(product, "L-1", lead)
        services.lot_status_set(
            lot=lot, status="in_testing", actor=Actor(lead, "api"), reason="First item in"
        )
        rows = read_csv(api(quality_specialist).get(CSV_URL, {"object_type": "observations.lot"}))
        assert list(rows[0]) == [
            "seq", "at", "user", "action", "record type", "record", "changes", "reason", "source", "hash",
        ]  # fmt: skip
        entries = list(AuditEntry.objects.filter(content_type__model="lot").order_by("seq"))
        assert [row["seq"] for row in rows] == [str(e.seq) for e in entries]
        created, moved = rows
        assert (created["user"], created["action"], created["record type"]) == ("Lena Lead", "Created", "Lot")
        assert created["changes"] == "Product: RING-74 — Ring; Number: L-1; Status: open"  # the model's order
        assert moved["changes"] == "Status: open → in_testing"
        assert (moved["reason"], moved["source"], moved["hash"]) == ("First item in", "api", entries[1].hash)
        assert moved["at"].endswith(("+00:00", "Z")) or moved["at"][-6] in "+-"  # ISO with its offset

    def test_the_filters_apply(self, api, quality_specialist, lead):
        lot = open_lot(ProductFactory(), "L-1", lead)
        open_lot(ProductFactory(), "L-2", lead)
        query = {"content_type": "observations.lot", "object_id": lot.pk}
        rows = read_csv(api(quality_specialist).get(CSV_URL, query))
        assert [row["record"] for row in rows] == [str(lot)]

    def test_a_formula_is_kept_as_text(self, api, quality_specialist, lead):
        lot = open_lot(ProductFactory(), "L-1", lead)
        services.lot_status_set(lot=lot, status="in_testing", reason='=HYPERLINK("x")')
        rows = read_csv(api(quality_specialist).get(CSV_URL, {"action": AuditAction.STATUS}))
        assert rows[0]["reason"] == '\'=HYPERLINK("x")'

    def test_who_may_read_the_trail_may_export_it_and_nobody_else(
        self, api, quality_specialist, manager, tester, operations_lead
    ):
        assert api(quality_specialist).get(CSV_URL).status_code == 200
        for user in (manager, tester, operations_lead):
            response = api(user).get(CSV_URL)
            assert response.status_code == 403
            assert "error" in response.json()
        assert api(None).get(CSV_URL).status_code == 401


def test_a_plan_with_its_tests_reads_in_words(api, quality_specialist):
    """A plan's snapshot lists its tests as objects ({test, replicates}) under the name of the
    plan's many-to-many `tests`: shown as they are, not looked up as ids."""
    plan = config_services.test_plan_create(code="P", name="Plan")
    test = config_services.test_create(code="DIA", name="Diameter")
    config_services.test_plan_set_tests(plan=plan, entries=[config_services.PlanEntryInput(test=test)])
    entries = results(api(quality_specialist).get(URL, {"object_type": "config.testplan"}))
    tests = next(c for c in entries[0]["changes"] if c["field"] == "tests")
    after = f'[{{"test": {test.pk}, "replicates": 1, "requires_verification": false}}]'
    assert (tests["before"], tests["after"]) == ("none", after)

"""The audit trail records lots opened and moved on, items added, their plans chosen and their
testers, and results entered: one entry per request, with who and through what (issue 18)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.choices import AuditAction
from apps.audit.models import AuditEntry
from apps.audit.services import Actor
from apps.observations import services
from apps.observations.models import Lot

pytestmark = pytest.mark.django_db


def entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("seq"))


class LotAuditTests:
    def test_opening_a_lot_through_the_api_is_audited(self, api, operations_lead, plant):
        response = api(operations_lead).post("/api/v1/lots/", {"product": plant.product.pk, "number": "L-9"})
        assert response.status_code == 201, response.content
        lot = Lot.objects.get(number="L-9")
        (entry,) = AuditEntry.objects.filter(action=AuditAction.CREATE, object_id=str(lot.pk))
        assert (entry.object_id, entry.user, entry.source) == (str(lot.pk), operations_lead, "api")
        assert entry.after == {"product": plant.product.pk, "number": "L-9", "status": "open"}

    def test_every_status_change_is_audited_with_before_and_after(self, api, operations_lead, plant):
        response = api(operations_lead).post(f"/api/v1/lots/{plant.lot.pk}/status/", {"status": "in_testing"})
        assert response.status_code == 200, response.content
        # A disposition (apps/records) moves the status through the same service.
        services.lot_status_set(lot=plant.lot, status="quarantined", actor=Actor(operations_lead, "api"))
        changes = [(e.before, e.after, e.source, e.user) for e in entries(AuditAction.STATUS)]
        assert changes == [
            ({"status": "open"}, {"status": "in_testing"}, "api", operations_lead),
            ({"status": "in_testing"}, {"status": "quarantined"}, "api", operations_lead),
        ]

    def test_a_refused_status_change_leaves_no_entry(self, api, operations_lead, plant):
        response = api(operations_lead).post(f"/api/v1/lots/{plant.lot.pk}/status/", {"status": "open"})
        assert response.status_code == 400
        assert entries(AuditAction.STATUS) == []


class ItemsAuditTests:
    def test_items_added_are_one_entry_listing_the_serials(self, api, operations_lead, plant):
        response = api(operations_lead).post(f"/api/v1/lots/{plant.lot.pk}/items/", {"count": 2})
        assert response.status_code == 201, response.content
        (entry,) = entries(AuditAction.ITEMS_ADDED)
        assert entry.object_id == str(plant.lot.pk)
        assert entry.after == {"items": ["0004", "0005"], "count": 2}
        assert (entry.user, entry.source) == (operations_lead, "api")

    def test_choosing_plans_is_one_entry_listing_items_and_plans(self, api, operations_lead, plant):
        body = {"items": [item.pk for item in plant.items[:2]], "plans": [plant.ring.pk]}
        response = api(operations_lead).post("/api/v1/items/select-plans/", body, format="json")
        assert response.status_code == 200, response.content
        (entry,) = entries(AuditAction.PLANS_CHOSEN)
        assert entry.after == {"items": ["0001", "0002"], "plans": [f"RING v{plant.ring.version}"]}

    def test_handing_items_to_a_tester_is_one_entry(self, api, operations_lead, plant, other_tester):
        other_tester.first_name, other_tester.last_name = "Olga", "Other"
        other_tester.save()
        body = {"items": [item.pk for item in plant.items], "tester": other_tester.pk}
        response = api(operations_lead).post("/api/v1/items/assign/", body, format="json")
        assert response.status_code == 200, response.content
        (entry,) = entries(AuditAction.ASSIGNED)
        assert entry.after == {
            "items": ["0001", "0002", "0003"], "tester": "Olga Other", "tester_id": other_tester.pk,
        }  # fmt: skip

    def test_opening_a_lot_with_items_records_each_step_through_the_same_actor(self, plant, operations_lead):
        actor = Actor(operations_lead, "web")
        lot = services.lot_open(
            product=plant.product,
            number="L-W",
            plans=[plant.ring],
            user=operations_lead,
            count=2,
            actor=actor,
        )
        trail = AuditEntry.objects.filter(content_type__model="lot", object_id=str(lot.pk)).order_by("seq")
        assert [(e.action, e.source, e.user) for e in trail] == [
            (AuditAction.CREATE, "web", operations_lead),
            (AuditAction.ITEMS_ADDED, "web", operations_lead),
            (AuditAction.PLANS_CHOSEN, "web", operations_lead),
        ]


class ResultsAuditTests:
    def test_a_batch_of_results_is_one_entry_with_count_lots_tests_and_ids(self, plant, queued):
        ids = plant.record(
            {"item": plant.items[0], "test": plant.dia, "values": [74.0]},
            {"item": plant.items[1], "test": plant.dia, "values": [74.1]},
            {"item": plant.items[0], "test": plant.wall, "values": [1.0, 1.1, 1.2]},
        )
        (entry,) = entries(AuditAction.RESULTS)
        assert entry.object_id == str(plant.lot.pk)
        assert (entry.user, entry.source) == (plant.tester, "manual")
        assert entry.after == {
            "count": 3,
            "lots": ["L-1"],
            "tests": ["DIA", "WALL"],
            "observations": sorted(ids),
        }

    def test_a_retry_stores_nothing_and_audits_nothing_more(self, plant, queued):
        body = {"item": plant.items[0], "test": plant.dia, "values": [74.0], "idempotency_key": "k-1"}
        first = plant.record(body)
        assert plant.record(body) == first
        assert len(entries(AuditAction.RESULTS)) == 1

    @pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement append is PostgreSQL's")
    def test_the_entry_costs_the_head_lock_and_one_statement(self, plant, queued):
        plant.record({"item": plant.items[0], "test": plant.dia, "values": [74.0]})  # warm caches
        with CaptureQueriesContext(connection) as queries:
            plant.record({"item": plant.items[1], "test": plant.dia, "values": [74.2]})
        audit = [q["sql"] for q in queries.captured_queries if "audit_" in q["sql"]]
        assert len(audit) == 2, audit
        assert "FOR UPDATE" in audit[0]
        assert audit[1].lstrip().startswith("WITH entry AS (INSERT INTO")

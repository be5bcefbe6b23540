"""The audit trail is a hash chain (issue 18): each entry names the hash of the one before, and
`manage.py audit_verify` names the first entry that does not fit."""

import datetime
import threading
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from apps.audit.chain import GENESIS_HASH, entry_chained_content, entry_hash
from apps.audit.models import AuditChainHead, AuditEntry
from apps.audit.services import audit_record
from apps.config import services
from apps.config.models import Product

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")


def verify() -> tuple[bool, str]:
    out = StringIO()
    try:
        call_command("audit_verify", stdout=out)
    except CommandError as error:
        return False, f"{out.getvalue()}{error}"
    return True, out.getvalue()


def trail(count: int) -> list[AuditEntry]:
    for n in range(count):
        services.product_create(code=f"P-{n}", name=f"Product {n}")
    return list(AuditEntry.objects.order_by("seq"))


def raw(sql: str, params: list) -> None:
    """Run SQL past the append-only trigger, as someone with the database's owner rights could."""
    with transaction.atomic(), connection.cursor() as cursor:
        # The test's own transaction holds the inserts' deferred foreign key checks; run them now,
        # or PostgreSQL refuses to alter the table.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER audit_entry_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE audit_auditentry ENABLE TRIGGER audit_entry_append_only")


@pytest.mark.django_db
class ChainTests:
    def test_each_entry_follows_the_one_before(self):
        entries = trail(3)
        assert [e.seq for e in entries] == [1, 2, 3]
        assert entries[0].prev_hash == GENESIS_HASH
        assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
        for entry in entries:
            assert len(entry.hash) == 64
            assert entry.hash == entry_hash(entry.prev_hash, entry_chained_content(entry))
        head = AuditChainHead.objects.get()
        assert (head.seq, head.hash) == (3, entries[-1].hash)

    def test_the_hash_covers_the_reason_and_the_time(self):
        (entry,) = trail(1)
        content = entry_chained_content(entry)
        assert content["at"] == entry.at.astimezone(datetime.UTC).isoformat()
        assert entry_hash(entry.prev_hash, {**content, "reason": "other"}) != entry.hash
        assert entry_hash(entry.prev_hash, {**content, "at": "2020-01-01T00:00:00+00:00"}) != entry.hash

    def test_a_number_the_database_spells_otherwise_keeps_its_hash(self):
        product = Product.objects.create(code="N", name="N")
        entry = audit_record(
            user=None,
            action="update",
            instance=product,
            before={"x": 1e20, "y": [1.5e300, 1e-7]},
            after={"x": 2.0, "y": 0.1 + 0.2},
        )
        stored = AuditEntry.objects.get(pk=entry.pk)
        assert stored.hash == entry_hash(stored.prev_hash, entry_chained_content(stored))

    def test_an_intact_chain_reports_every_entry_checked(self):
        trail(4)
        intact, message = verify()
        assert intact, message
        assert message.strip() == "4 entries checked, chain intact."

    def test_an_empty_trail_is_intact(self):
        assert verify() == (True, "0 entries checked, chain intact.\n")


@pytest.mark.django_db
@postgresql_only
class TamperTests:
    def test_a_row_changed_behind_the_trigger_is_named(self):
        entries = trail(4)
        raw("UPDATE audit_auditentry SET reason = 'nothing happened' WHERE id = %s", [entries[2].pk])
        intact, message = verify()
        assert not intact
        assert "2 entries checked" in message
        assert f"Entry 3 (id {entries[2].pk}," in message
        assert "content does not match its hash" in message

    def test_a_row_whose_hash_was_recomputed_breaks_the_next_link(self):
        entries = trail(3)
        forged = entries[1]
        forged.reason = "forged"
        new_hash = entry_hash(forged.prev_hash, entry_chained_content(forged))
        raw("UPDATE audit_auditentry SET reason = 'forged', hash = %s WHERE id = %s", [new_hash, forged.pk])
        intact, message = verify()
        assert not intact
        assert f"Entry 3 (id {entries[2].pk}," in message
        assert "as the hash before it" in message

    def test_a_deleted_row_is_named_as_a_gap(self):
        entries = trail(5)
        raw("DELETE FROM audit_auditentry WHERE id = %s", [entries[1].pk])
        intact, message = verify()
        assert not intact
        assert "1 entries checked" in message
        assert f"Entry 3 (id {entries[2].pk}," in message
        assert "position 2 are missing" in message

    def test_deleting_the_last_entries_is_seen_by_the_head(self):
        entries = trail(3)
        raw("DELETE FROM audit_auditentry WHERE seq > 1", [])
        intact, message = verify()
        assert not intact
        assert f"Entry 1 (id {entries[0].pk}," in message
        assert "head is at position 3" in message


@pytest.mark.django_db
def test_a_lost_head_is_made_again_from_the_last_entry():
    entries = trail(2)
    AuditChainHead.objects.all().delete()
    services.product_create(code="AFTER", name="After")
    last = AuditEntry.objects.order_by("-seq").first()
    assert (last.seq, last.prev_hash) == (3, entries[-1].hash)
    assert verify()[0]


@postgresql_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_writers_make_one_chain_without_a_repeated_position():
    products = [Product.objects.create(code=f"C-{n}", name="C") for n in range(2)]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def write(product: Product) -> None:
        try:
            start.wait()
            for n in range(15):
                with transaction.atomic():
                    audit_record(user=None, action="update", instance=product, after={"n": n})
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(product,)) for product in products]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(AuditEntry.objects.values_list("seq", flat=True)) == list(range(1, 31))
    assert {e.object_id for e in AuditEntry.objects.all()} == {str(p.pk) for p in products}
    intact, message = verify()
    assert intact, message
    assert "30 entries checked" in message

"""Audit entries are only ever appended: the model, its queryset and (on PostgreSQL) the database
refuse to change or delete them."""

import pytest
from django.db import DatabaseError, connection, transaction

from apps.audit.models import AuditEntry
from apps.config import services
from apps.config.models import Product

pytestmark = pytest.mark.django_db


def product(*, code: str, name: str = "A product") -> Product:
    """A product made through the service, as the API and admin make them (so it is audited)."""
    return services.product_create(code=code, name=name)


@pytest.fixture
def entry() -> AuditEntry:
    product(code="A-1")
    return AuditEntry.objects.get()


class AppendOnlyTests:
    def test_saving_an_existing_entry_again_is_refused(self, entry):
        entry.reason = "rewritten"
        with pytest.raises(TypeError, match="never changed"):
            entry.save()
        assert AuditEntry.objects.get(pk=entry.pk).reason == ""

    def test_deleting_is_refused(self, entry):
        with pytest.raises(TypeError, match="never deleted"):
            entry.delete()
        with pytest.raises(TypeError, match="never deleted"):
            AuditEntry.objects.all().delete()
        assert AuditEntry.objects.filter(pk=entry.pk).exists()

    def test_a_queryset_update_is_refused(self, entry):
        with pytest.raises(TypeError, match="never changed"):
            AuditEntry.objects.filter(pk=entry.pk).update(reason="rewritten")
        assert AuditEntry.objects.get(pk=entry.pk).reason == ""


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
class DatabaseTriggerTests:
    @pytest.mark.parametrize(
        "sql",
        [
            "UPDATE audit_auditentry SET reason = 'x' WHERE id = %s",
            "DELETE FROM audit_auditentry WHERE id = %s",
        ],
    )
    def test_raw_sql_cannot_change_or_delete_an_entry(self, entry, sql):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [entry.pk])
        row = AuditEntry.objects.filter(pk=entry.pk).values("reason").get()
        assert row == {"reason": ""}

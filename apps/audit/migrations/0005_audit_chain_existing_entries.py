"""Chain the entries written before the hash chain, in the order they were written (id), and set
the chain's head after the last. The append-only trigger (0003) refuses the UPDATE, so on
PostgreSQL it is disabled for this transaction's updates and enabled again before it commits."""

from django.db import migrations

from apps.audit.chain import GENESIS_HASH, entry_content, entry_hash

TRIGGER = "audit_entry_append_only"


def chain(apps, schema_editor):
    AuditEntry = apps.get_model("audit", "AuditEntry")
    AuditChainHead = apps.get_model("audit", "AuditChainHead")
    ContentType = apps.get_model("contenttypes", "ContentType")
    postgresql = schema_editor.connection.vendor == "postgresql"
    types = {ct.pk: f"{ct.app_label}.{ct.model}" for ct in ContentType.objects.all()}
    prev, seq = GENESIS_HASH, 0
    if postgresql:
        schema_editor.execute(f"ALTER TABLE audit_auditentry DISABLE TRIGGER {TRIGGER}", params=None)
    for entry in AuditEntry.objects.order_by("id").iterator(chunk_size=2000):
        seq += 1
        content = entry_content(
            seq=seq, at=entry.at, user_id=entry.user_id, action=entry.action,
            content_type=types[entry.content_type_id], object_id=entry.object_id,
            object_repr=entry.object_repr, before=entry.before, after=entry.after, reason=entry.reason,
            source=entry.source,
        )  # fmt: skip
        digest = entry_hash(prev, content)
        # A plain queryset update: the historical model has none of AuditEntry's refusals.
        AuditEntry.objects.filter(pk=entry.pk).update(seq=seq, prev_hash=prev, hash=digest)
        prev = digest
    if postgresql:
        schema_editor.execute(f"ALTER TABLE audit_auditentry ENABLE TRIGGER {TRIGGER}", params=None)
    AuditChainHead.objects.update_or_create(pk=1, defaults={"seq": seq, "hash": prev})


def unchain(apps, schema_editor):
    apps.get_model("audit", "AuditChainHead").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_audit_hash_chain")]

    operations = [migrations.RunPython(chain, unchain)]

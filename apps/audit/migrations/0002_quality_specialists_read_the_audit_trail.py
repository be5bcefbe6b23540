"""Quality Specialists read the audit trail; nobody is given add, change or delete on it."""

from django.db import migrations

from openspc.roles import Role, grant_permissions


def grant(apps, schema_editor):
    grant_permissions(apps, "audit", {Role.QUALITY_SPECIALIST: {"auditentry": ["view"]}})


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("config", "0002_role_groups"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

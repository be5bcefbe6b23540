"""Give the roles their rights on violations and statistics (read; the workers write them)."""

from django.db import migrations

from openspc.roles import Role, grant_permissions

READ = {"violation": ["view"], "lotstatistics": ["view"], "productstatistics": ["view"]}


def grant(apps, schema_editor):
    grant_permissions(
        apps,
        "calculations",
        {Role.QUALITY_SPECIALIST: READ, Role.OPERATIONS_LEAD: READ, Role.MANAGER: READ},
    )


class Migration(migrations.Migration):
    dependencies = [
        ("calculations", "0001_chart_state_violations_statistics"),
        ("config", "0002_role_groups"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

"""Quality Specialists read dead letters and edge nodes; Operations Leads and Managers the edge nodes
(is the line's gauge online?). Nobody is given add, change or delete: the listener writes them."""

from django.db import migrations

from openspc.roles import Role, grant_permissions


def grant(apps, schema_editor):
    grant_permissions(
        apps,
        "mqtt_bridge",
        {
            Role.QUALITY_SPECIALIST: {"deadletter": ["view"], "edgenode": ["view"]},
            Role.OPERATIONS_LEAD: {"edgenode": ["view"]},
            Role.MANAGER: {"edgenode": ["view"]},
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("mqtt_bridge", "0001_initial"),
        ("config", "0002_role_groups"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

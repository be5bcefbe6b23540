"""Give the roles their rights on lots, items and observations."""

from django.db import migrations

from openspc.roles import Role, grant_permissions


def grant(apps, schema_editor):
    grant_permissions(
        apps,
        "observations",
        {
            Role.OPERATIONS_LEAD: {"lot": ["add", "change", "view"], "item": ["add", "change", "view"]},
            Role.TESTER: {"item": ["view"], "observation": ["add", "view"]},
            Role.QUALITY_SPECIALIST: {"lot": ["view"], "item": ["view"], "observation": ["view"]},
            Role.MANAGER: {"lot": ["view"], "item": ["view"], "observation": ["view"]},
            Role.DEVICE: {"observation": ["add"]},
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("observations", "0001_lots_items_observations"),
        ("config", "0002_role_groups"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

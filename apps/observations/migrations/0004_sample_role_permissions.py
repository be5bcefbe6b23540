"""Give the roles their rights on samples: reading charts, and submitting a subgroup (POST /samples)."""

from django.db import migrations

from openspc.roles import Role, grant_permissions


def grant(apps, schema_editor):
    grant_permissions(
        apps,
        "observations",
        {
            Role.QUALITY_SPECIALIST: {"sample": ["add", "view"]},
            Role.OPERATIONS_LEAD: {"sample": ["add", "view"]},
            Role.TESTER: {"sample": ["add"]},
            Role.MANAGER: {"sample": ["view"]},
        },
    )


class Migration(migrations.Migration):
    dependencies = [("observations", "0003_samples_positions_checksums")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

"""Quality specialists configure sampling schedules; operations leads and managers read them (testers
see the samples due on their worklist, not the configuration)."""

from django.db import migrations

from openspc.roles import Role, grant_permissions


def grant(apps, schema_editor):
    grant_permissions(
        apps,
        "config",
        {
            Role.QUALITY_SPECIALIST: {"samplingschedule": ["view", "add", "change", "delete"]},
            Role.OPERATIONS_LEAD: {"samplingschedule": ["view"]},
            Role.MANAGER: {"samplingschedule": ["view"]},
        },
    )


class Migration(migrations.Migration):
    dependencies = [("config", "0009_sampling_schedules")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

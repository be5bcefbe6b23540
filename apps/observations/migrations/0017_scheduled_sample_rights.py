"""Who reads scheduled samples (every role that reads results) and who closes a missed one with a
reason (testers, operations leads, quality specialists)."""

from django.db import migrations

from openspc.roles import Role, grant_permissions


def grant(apps, schema_editor):
    grant_permissions(
        apps,
        "observations",
        {
            Role.QUALITY_SPECIALIST: {"scheduledsample": ["view", "change"]},
            Role.OPERATIONS_LEAD: {"scheduledsample": ["view", "change"]},
            Role.TESTER: {"scheduledsample": ["view", "change"]},
            Role.MANAGER: {"scheduledsample": ["view"]},
        },
    )


class Migration(migrations.Migration):
    dependencies = [("observations", "0016_sampling_schedules")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

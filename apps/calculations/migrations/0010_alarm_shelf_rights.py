"""Who shelves a characteristic's alarms (quality specialists) and who reads the shelves (those who
read violation events)."""

from django.db import migrations

from openspc.roles import Role, grant_permissions


def grant(apps, schema_editor):
    grant_permissions(
        apps,
        "calculations",
        {
            Role.QUALITY_SPECIALIST: {"alarmshelf": ["view", "add", "change"]},
            Role.MANAGER: {"alarmshelf": ["view"]},
            Role.OPERATIONS_LEAD: {"alarmshelf": ["view"]},
        },
    )


class Migration(migrations.Migration):
    dependencies = [("calculations", "0009_alarm_shelf")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

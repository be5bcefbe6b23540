"""Who reads violation events (those who read violations) and who acknowledges them (those who
acknowledge violations)."""

from django.db import migrations

from openspc.roles import Role, grant_permissions


def grant(apps, schema_editor):
    grant_permissions(
        apps,
        "calculations",
        {
            Role.QUALITY_SPECIALIST: {"violationevent": ["view", "change"]},
            Role.MANAGER: {"violationevent": ["view", "change"]},
            Role.OPERATIONS_LEAD: {"violationevent": ["view"]},
        },
    )


class Migration(migrations.Migration):
    dependencies = [("calculations", "0007_violation_events")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

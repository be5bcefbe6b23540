"""Give the roles their rights on lot records: Quality Specialists approve lot dispositions (release,
reject) and work out-of-spec investigations; operations leads and managers read them."""

from django.db import migrations

from openspc.roles import Role, grant_permissions


def grant(apps, schema_editor):
    grant_permissions(
        apps,
        "records",
        {
            Role.QUALITY_SPECIALIST: {
                "lotdisposition": ["view", "approve"],
                "lotreleaserequest": ["view"],
                "oosinvestigation": ["view", "change"],
            },
            Role.OPERATIONS_LEAD: {
                "lotdisposition": ["view"],
                "lotreleaserequest": ["view", "add"],
                "oosinvestigation": ["view"],
            },
            Role.MANAGER: {"lotdisposition": ["view"], "oosinvestigation": ["view"]},
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("records", "0001_lot_records"),
        ("observations", "0002_role_permissions"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

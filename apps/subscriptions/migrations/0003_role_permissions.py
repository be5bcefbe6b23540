"""Give the reading roles their rights on their own subscriptions.

Quality specialists, operations leads and managers read results, so they may subscribe to
them. Testers read no charts or violations (Characteristic.visible_to is empty for them) and
devices only post: neither gets these. Notifications need no model permission: everyone
reads their own inbox only, and only subscriptions put anything in it.
"""

from django.db import migrations

from openspc.roles import Role, grant_permissions

OWN = {"subscription": ["add", "change", "delete", "view"]}


def grant(apps, schema_editor):
    grant_permissions(
        apps,
        "subscriptions",
        {Role.QUALITY_SPECIALIST: OWN, Role.OPERATIONS_LEAD: OWN, Role.MANAGER: OWN},
    )


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0002_notification_dedup_coalesce_keys"),
        ("config", "0002_role_groups"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

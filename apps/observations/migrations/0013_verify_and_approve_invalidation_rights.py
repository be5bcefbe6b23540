"""Who verifies results and approves invalidations (issue #18): quality specialists approve
invalidations; quality specialists and testers verify, never their own results (the service and a
database check refuse that per result)."""

from django.db import migrations

from openspc.roles import Role, grant_permissions


def forward(apps, schema_editor):
    # grant_permissions names a codename <action>_<model>: "approve" on "invalidation" is the
    # codename approve_invalidation (declared on Observation; codenames are per app).
    grant_permissions(
        apps,
        "observations",
        {
            Role.QUALITY_SPECIALIST: {"observation": ["verify"], "invalidation": ["approve"]},
            Role.TESTER: {"observation": ["verify"]},
        },
    )


def backward(apps, schema_editor):
    permissions = apps.get_model("auth", "Permission").objects.filter(
        content_type__app_label="observations", codename__in=["verify_observation", "approve_invalidation"]
    )
    for group in apps.get_model("auth", "Group").objects.filter(
        name__in=[Role.QUALITY_SPECIALIST, Role.TESTER]
    ):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [("observations", "0012_corrections_recalculation_and_rights")]

    operations = [migrations.RunPython(forward, backward)]

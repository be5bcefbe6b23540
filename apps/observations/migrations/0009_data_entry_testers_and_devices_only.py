"""Data entry is for testers and devices only (README "Roles"): operations leads and quality
specialists lose the right to submit samples (POST /samples); devices may read the status of the
observations they posted themselves (the status URL of their 202)."""

from django.db import migrations

from openspc.roles import Role, grant_permissions

SUBMITTING_NO_MORE = (Role.QUALITY_SPECIALIST, Role.OPERATIONS_LEAD)


def _add_sample(apps):
    return apps.get_model("auth", "Permission").objects.get(
        content_type__app_label="observations", codename="add_sample"
    )


def forward(apps, schema_editor):
    grant_permissions(apps, "observations", {Role.DEVICE: {"observation": ["view"]}})
    permission = _add_sample(apps)
    for group in apps.get_model("auth", "Group").objects.filter(name__in=SUBMITTING_NO_MORE):
        group.permissions.remove(permission)


def backward(apps, schema_editor):
    group_model = apps.get_model("auth", "Group")
    permission = _add_sample(apps)
    for group in group_model.objects.filter(name__in=SUBMITTING_NO_MORE):
        group.permissions.add(permission)
    view = apps.get_model("auth", "Permission").objects.get(
        content_type__app_label="observations", codename="view_observation"
    )
    group_model.objects.get(name=Role.DEVICE).permissions.remove(view)


class Migration(migrations.Migration):
    dependencies = [("observations", "0008_bind_devices_to_what_they_posted")]

    operations = [migrations.RunPython(forward, backward)]

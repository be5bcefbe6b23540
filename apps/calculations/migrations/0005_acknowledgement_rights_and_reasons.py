"""Who may acknowledge violations and keep the reason codes; a starting list of reason codes."""

from django.db import migrations

from openspc.roles import Role, grant_permissions

REASONS = [
    ("assignable-cause", "Assignable cause found and removed"),
    ("measurement-error", "Measurement or gauge error"),
    ("process-adjusted", "Process adjusted"),
    ("material-change", "Material or batch change"),
    ("no-action", "Reviewed, no action needed"),
]


def grant(apps, schema_editor):
    read = {"acknowledgementreason": ["view"]}
    grant_permissions(
        apps,
        "calculations",
        {
            Role.QUALITY_SPECIALIST: {
                "violation": ["change"],
                "acknowledgementreason": ["view", "add", "change"],
            },
            Role.MANAGER: {"violation": ["change"], **read},
            Role.OPERATIONS_LEAD: read,
        },
    )
    reason = apps.get_model("calculations", "AcknowledgementReason")
    for position, (code, label) in enumerate(REASONS):
        reason.objects.get_or_create(code=code, defaults={"label": label, "position": position})


class Migration(migrations.Migration):
    dependencies = [("calculations", "0004_acknowledgementreason_violation_acknowledged_at_and_more")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

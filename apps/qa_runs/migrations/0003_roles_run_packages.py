"""Quality Specialists own QA packages (create, change, delete) and their runs (start: add, cancel:
change). Events, scenarios and step results are written by the pipeline only: view, nothing more.
Other roles get nothing: a package names integration targets and how to reach them."""

from django.db import migrations

from openspc.roles import Role, grant_permissions

ALL = ["add", "change", "delete", "view"]
RESULTS = {"qaevent": ["view"], "scenario": ["view"], "stepresult": ["view"]}


def grant(apps, schema_editor):
    grant_permissions(
        apps,
        "qa_runs",
        {
            Role.QUALITY_SPECIALIST: {"qapackage": ALL, "qapackagerun": ["add", "change", "view"], **RESULTS},
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("qa_runs", "0002_package_generator_run_cancel_requested"),
        ("config", "0002_role_groups"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

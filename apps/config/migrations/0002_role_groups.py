"""Create the five role groups and give them their rights on the configuration models."""

from django.db import migrations

from openspc.roles import Role, grant_permissions

ALL = ["add", "change", "delete", "view"]
CONFIG_MODELS = [
    "product",
    "test",
    "testplan",
    "testplanentry",
    "planassignment",
    "characteristic",
    "controllimits",
]


def grant(apps, schema_editor):
    grant_permissions(
        apps,
        "config",
        {
            Role.QUALITY_SPECIALIST: {
                **dict.fromkeys(CONFIG_MODELS, ALL),
                "characteristic": ["change", "view"],
                "controllimits": ["add", "view"],
                "device": ALL,
            },
            Role.OPERATIONS_LEAD: {model: ["view"] for model in CONFIG_MODELS},
            Role.MANAGER: {model: ["view"] for model in CONFIG_MODELS},
            Role.TESTER: {"test": ["view"]},
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("config", "0001_initial_configuration"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

"""The hash chain's columns (filled by 0005, required by 0006) and its head."""

import django.utils.timezone
from django.db import migrations, models

import apps.audit.models


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_append_only_trigger")]

    operations = [
        migrations.CreateModel(
            name="AuditChainHead",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("seq", models.PositiveBigIntegerField(default=0)),
                ("hash", models.CharField(default=apps.audit.models.GENESIS_HASH, max_length=64)),
            ],
        ),
        migrations.AlterModelOptions(
            name="auditentry",
            options={"ordering": ["-seq"], "verbose_name_plural": "audit entries"},
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="at",
            field=models.DateTimeField(db_index=True, default=django.utils.timezone.now),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="seq",
            field=models.PositiveBigIntegerField(
                null=True, unique=True, help_text="Position in the hash chain, from 1."
            ),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="prev_hash",
            field=models.CharField(
                default="", max_length=64, help_text="The hash of the entry before (hex SHA-256)."
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditentry",
            name="hash",
            field=models.CharField(
                default="", max_length=64, help_text="SHA-256 of prev_hash and this entry's content."
            ),
            preserve_default=False,
        ),
    ]

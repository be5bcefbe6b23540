"""Every entry has its place in the chain (0005 gave the older ones theirs)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_audit_chain_existing_entries")]

    operations = [
        migrations.AlterField(
            model_name="auditentry",
            name="seq",
            field=models.PositiveBigIntegerField(
                unique=True, help_text="Position in the hash chain, from 1."
            ),
        ),
    ]

"""Plan assignments take effect at a moment, not on a whole day.

A day D as effective_from becomes the start of D in the plant's time zone (settings.TIME_ZONE); an
inclusive last day D as effective_to becomes the exclusive end at the start of D + 1, so every
measurement the day-based period covered is covered still, and nothing more. New columns are filled
in Python, not by a cast in SQL: a cast would take the database session's zone (UTC), not the plant's.
"""

import datetime
import zoneinfo

from django.conf import settings
from django.db import migrations, models


def _start_of(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=zoneinfo.ZoneInfo(settings.TIME_ZONE))


def days_to_moments(apps, schema_editor):
    PlanAssignment = apps.get_model("config", "PlanAssignment")
    for assignment in PlanAssignment.objects.all():
        assignment.effective_from_at = _start_of(assignment.effective_from)
        if assignment.effective_to is not None:
            assignment.effective_to_at = _start_of(assignment.effective_to + datetime.timedelta(days=1))
        assignment.save(update_fields=["effective_from_at", "effective_to_at"])


def moments_to_days(apps, schema_editor):
    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    PlanAssignment = apps.get_model("config", "PlanAssignment")
    for assignment in PlanAssignment.objects.all():
        assignment.effective_from = assignment.effective_from_at.astimezone(zone).date()
        if assignment.effective_to_at is not None:
            # The last day still (partly) covered: an end exactly at midnight leaves the day before.
            last = assignment.effective_to_at - datetime.timedelta(microseconds=1)
            assignment.effective_to = max(last.astimezone(zone).date(), assignment.effective_from)
        assignment.save(update_fields=["effective_from", "effective_to"])


class Migration(migrations.Migration):
    dependencies = [
        ("config", "0006_verification_settings"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="planassignment", name="planassignment_ends_after_start"),
        migrations.RemoveConstraint(model_name="planassignment", name="planassignment_unique_start"),
        migrations.AddField(
            model_name="planassignment", name="effective_from_at", field=models.DateTimeField(null=True)
        ),
        migrations.AddField(
            model_name="planassignment", name="effective_to_at", field=models.DateTimeField(null=True)
        ),
        migrations.AlterField(
            model_name="planassignment", name="effective_from", field=models.DateField(null=True)
        ),
        migrations.RunPython(days_to_moments, moments_to_days),
        migrations.RemoveField(model_name="planassignment", name="effective_from"),
        migrations.RemoveField(model_name="planassignment", name="effective_to"),
        migrations.RenameField(
            model_name="planassignment", old_name="effective_from_at", new_name="effective_from"
        ),
        migrations.RenameField(
            model_name="planassignment", old_name="effective_to_at", new_name="effective_to"
        ),
        migrations.AlterField(
            model_name="planassignment",
            name="effective_from",
            field=models.DateTimeField(help_text="When it takes effect (inclusive)."),
        ),
        migrations.AlterField(
            model_name="planassignment",
            name="effective_to",
            field=models.DateTimeField(
                blank=True,
                help_text="When it stops applying (exclusive: an observation made at this moment is no "
                "longer under it); empty: open-ended.",
                null=True,
            ),
        ),
        migrations.AddConstraint(
            model_name="planassignment",
            constraint=models.UniqueConstraint(
                fields=("product", "plan", "effective_from"), name="planassignment_unique_start"
            ),
        ),
        migrations.AddConstraint(
            model_name="planassignment",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("effective_to__isnull", True),
                    ("effective_to__gt", models.F("effective_from")),
                    _connector="OR",
                ),
                name="planassignment_ends_after_start",
            ),
        ),
    ]

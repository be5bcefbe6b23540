"""Enumerations of the calculation domain."""

from django.db import models


class ChartPart(models.TextChoices):
    LOCATION = "location", "Location chart (I, X̄, p, np, c, u, EWMA, CUSUM)"
    DISPERSION = "dispersion", "Dispersion chart (MR, R, S)"


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical: a point beyond the control limits"
    WARNING = "warning", "Warning: a non-random pattern"


class Disposition(models.TextChoices):
    """What the lot statistics suggest; the operations lead decides."""

    PENDING = "pending", "No confirmed values yet"
    RELEASE = "release", "Every value within specification and Cpk ≥ 1.33 (or no two-sided spec)"
    REVIEW = "review", "Within specification but Cpk below 1.33"
    REJECT = "reject", "A value outside specification"


# Cpk a lot must reach to be suggested for release.
CPK_RELEASE = 1.33

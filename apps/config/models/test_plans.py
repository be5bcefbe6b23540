import datetime

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from apps.config.cached import ConfigQuerySet
from apps.config.choices import MAX_SUBGROUP_SIZE, PlanStatus


class TestPlanQuerySet(ConfigQuerySet["TestPlan"]):
    def in_effect(
        self, *, at: datetime.datetime | None = None, product_id: int | None = None
    ) -> "TestPlanQuerySet":
        """Released plans assigned, in effect at `at` (default now), to the product (or to any active
        product): what a picker offers, never a draft or a retired plan."""
        assignments = PlanAssignment.objects.effective_at(at or timezone.now())
        if product_id is None:
            assignments = assignments.filter(product__active=True)
        else:
            assignments = assignments.filter(product_id=product_id)
        return self.filter(status=PlanStatus.RELEASED, pk__in=assignments.values("plan_id"))


class TestPlan(models.Model):
    """An ordered list of tests with replicate counts, versioned by code.

    A released plan is immutable: changing it means a new version (a new row
    with the same code), so every observation can be traced to what was asked.
    """

    code = models.CharField(max_length=64)
    version = models.PositiveIntegerField(default=1)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=PlanStatus.choices, default=PlanStatus.DRAFT)
    tests = models.ManyToManyField("config.Test", through="config.TestPlanEntry", related_name="plans")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = TestPlanQuerySet.as_manager()

    class Meta:
        ordering = ["code", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["code", "version"], name="testplan_code_version_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="testplan_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.code} v{self.version} — {self.name} ({self.get_status_display()})"

    @property
    def is_editable(self) -> bool:
        return self.status == PlanStatus.DRAFT


class TestPlanEntryQuerySet(ConfigQuerySet["TestPlanEntry"]):
    pass


class TestPlanEntry(models.Model):
    """One test in a plan: its position in the plan and how many replicates to take."""

    plan = models.ForeignKey(TestPlan, on_delete=models.CASCADE, related_name="entries")
    test = models.ForeignKey("config.Test", on_delete=models.PROTECT, related_name="plan_entries")
    position = models.PositiveSmallIntegerField()
    replicates = models.PositiveSmallIntegerField(
        default=1, help_text="Values a tester records for this test on each item (1–25)."
    )
    requires_verification = models.BooleanField(
        default=False, help_text="Results of this test under this plan need a second person's verification."
    )

    objects = TestPlanEntryQuerySet.as_manager()

    class Meta:
        ordering = ["plan", "position"]
        verbose_name_plural = "test plan entries"
        constraints = [
            models.UniqueConstraint(fields=["plan", "test"], name="testplanentry_test_once_per_plan"),
            models.UniqueConstraint(fields=["plan", "position"], name="testplanentry_position_unique"),
            models.CheckConstraint(
                condition=Q(replicates__gte=1) & Q(replicates__lte=MAX_SUBGROUP_SIZE),
                name="testplanentry_replicates_1_25",
            ),
        ]

    def __str__(self) -> str:
        # Shown above each row of the plan's inline: the plan itself is the page's subject.
        return f"#{self.position} {self.test.code} ×{self.replicates}"


class PlanAssignmentQuerySet(ConfigQuerySet["PlanAssignment"]):
    def effective_at(self, moment: datetime.datetime) -> "PlanAssignmentQuerySet":
        """In effect at this moment: started at or before it, not yet ended (the end is exclusive)."""
        return self.filter(
            Q(effective_from__lte=moment), Q(effective_to__isnull=True) | Q(effective_to__gt=moment)
        )

    def effective_now(self) -> "PlanAssignmentQuerySet":
        return self.effective_at(timezone.now())


class PlanAssignment(models.Model):
    """A test plan assigned to a product from one moment, optionally until another.

    The period is half-open, [effective_from, effective_to): an observation measured at
    effective_to belongs to whatever takes effect then, so one assignment can end at the very
    moment the next begins and no measurement falls between them or under both.
    """

    product = models.ForeignKey("config.Product", on_delete=models.PROTECT, related_name="plan_assignments")
    plan = models.ForeignKey(TestPlan, on_delete=models.PROTECT, related_name="assignments")
    effective_from = models.DateTimeField(help_text="When it takes effect (inclusive).")
    effective_to = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When it stops applying (exclusive: an observation made at this moment is no longer "
        "under it); empty: open-ended.",
    )
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PlanAssignmentQuerySet.as_manager()

    class Meta:
        ordering = ["product", "plan", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "plan", "effective_from"], name="planassignment_unique_start"
            ),
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True) | Q(effective_to__gt=F("effective_from")),
                name="planassignment_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        until = f" until {moment_label(self.effective_to)}" if self.effective_to else ""
        return (
            f"{self.plan.code} v{self.plan.version} → {self.product.code} "
            f"from {moment_label(self.effective_from)}{until}"
        )


def moment_label(moment: datetime.datetime) -> str:
    """A period boundary as people read it: local time, to the minute (seconds when they matter)."""
    local = timezone.localtime(moment)
    return local.strftime("%Y-%m-%d %H:%M:%S" if local.second else "%Y-%m-%d %H:%M")

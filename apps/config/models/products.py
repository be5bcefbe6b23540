from django.contrib.auth.models import AnonymousUser, User
from django.db import models
from django.db.models import F, Q

from apps.config.cached import ConfigQuerySet
from apps.config.choices import TestKind


class ProductQuerySet(ConfigQuerySet["Product"]):
    pass


class Product(models.Model):
    """Something the plant makes and tests, identified by its code (a part or material number)."""

    code = models.CharField(max_length=64, unique=True, help_text="Part or material number, unique.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    active = models.BooleanField(
        default=True, help_text="Inactive products keep their history but take no new lots."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"


class TestQuerySet(ConfigQuerySet["Test"]):
    def visible_to(self, user: User | AnonymousUser) -> "TestQuerySet":
        """A tester reads only the tests of the plans selected for items assigned to them
        (through the reverse relations of apps.observations' Item: plans → items → tester); a user
        whose role may not read tests reads none."""
        from openspc.roles import is_tester_only, may_view

        if not may_view(user, self.model):
            return self.none()
        if not is_tester_only(user):
            return self
        return self.filter(plans__items__tester=user.pk).distinct()


class Test(models.Model):
    """A measurement or inspection, with its unit and the range a real value can plausibly take.

    The plausible range catches typing errors and broken sensors; it is not the
    specification (spec limits belong to a Characteristic: one test, one product).
    """

    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    unit = models.CharField(max_length=32, blank=True, help_text="e.g. mm, °C, %, count")
    kind = models.CharField(max_length=16, choices=TestKind.choices, default=TestKind.VARIABLE)
    decimals = models.PositiveSmallIntegerField(
        default=2, help_text="Decimal places shown to testers and on charts (0–10)."
    )
    instructions = models.TextField(blank=True, help_text="Shown to testers with the entry form.")
    plausible_min = models.FloatField(
        null=True, blank=True, help_text="Lowest value that can be real (not the LSL)."
    )
    plausible_max = models.FloatField(
        null=True, blank=True, help_text="Highest value that can be real (not the USL)."
    )
    active = models.BooleanField(default=True)
    requires_verification = models.BooleanField(
        default=False, help_text="Its results stay 'to be verified' until a second person verifies them."
    )
    invalidation_needs_approval = models.BooleanField(
        default=True,
        help_text="A tester's request to invalidate a result waits for a quality specialist's approval.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TestQuerySet.as_manager()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(decimals__lte=10), name="test_decimals_at_most_10"),
            models.CheckConstraint(
                condition=Q(plausible_min__isnull=True)
                | Q(plausible_max__isnull=True)
                | Q(plausible_min__lt=F("plausible_max")),
                name="test_plausible_min_below_max",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}" + (f" [{self.unit}]" if self.unit else "")

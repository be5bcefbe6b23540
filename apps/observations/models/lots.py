from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import models
from django.db.models import Exists, OuterRef, Q

from apps.config.choices import PlanStatus
from apps.observations.choices import LotStatus, ObservationStatus


class Lot(models.Model):
    """A production lot of one product: the unit an operations lead opens, tests and dispositions.

    Its number is unique per product (two products may share lot numbers). Status
    moves open → in testing → released or rejected; see choices.LOT_TRANSITIONS.
    """

    product = models.ForeignKey("config.Product", on_delete=models.PROTECT, related_name="lots")
    number = models.CharField(max_length=64, help_text="Lot number, unique per product.")
    status = models.CharField(max_length=16, choices=LotStatus.choices, default=LotStatus.OPEN)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "number"], name="lot_number_unique_per_product"),
            models.CheckConstraint(condition=Q(status__in=LotStatus.values), name="lot_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.get_status_display()})"


class ItemQuerySet(models.QuerySet["Item"]):
    def visible_to(self, user: User | AnonymousUser) -> "ItemQuerySet":
        """A tester reads only the items assigned to them; other roles with the view right read all,
        users without it nothing."""
        from openspc.roles import is_tester_only, may_view

        if not may_view(user, self.model):
            return self.none()
        return self.filter(tester=user.pk) if is_tester_only(user) else self

    def with_tests_due(self) -> "ItemQuerySet":
        """Items one of whose plans, in effect now for the item's product, has a test with no
        confirmed observation for the item yet. A retired plan, or one whose assignment has ended
        (or not begun), asks for nothing: its observations would only be rejected."""
        from apps.config.models import PlanAssignment, TestPlanEntry
        from apps.observations.models import Observation

        confirmed = Observation.objects.filter(
            item=OuterRef(OuterRef("pk")), test=OuterRef("test"), status=ObservationStatus.CONFIRMED
        )
        in_effect = PlanAssignment.objects.effective_now().filter(
            plan=OuterRef("plan"), product=OuterRef(OuterRef("lot__product"))
        )
        due = (
            TestPlanEntry.objects.filter(plan__items=OuterRef("pk"), plan__status=PlanStatus.RELEASED)
            .filter(Exists(in_effect))
            .filter(~Exists(confirmed))
        )
        return self.filter(Exists(due))


class Item(models.Model):
    """One unit (a part, a sample) of a lot that testers measure, identified by a serial within its lot.

    The operations lead selects which test plans apply to it and assigns it to a
    tester; the tests of those plans are what the tester is asked for.
    """

    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="items")
    serial = models.CharField(max_length=64, help_text="Unique within the lot.")
    plans = models.ManyToManyField("config.TestPlan", related_name="items", blank=True)
    tester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_items",
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ItemQuerySet.as_manager()

    class Meta:
        ordering = ["lot", "serial"]
        constraints = [
            models.UniqueConstraint(fields=["lot", "serial"], name="item_serial_unique_in_lot"),
            models.CheckConstraint(
                condition=Q(tester__isnull=True, assigned_at__isnull=True)
                | Q(tester__isnull=False, assigned_at__isnull=False),
                name="item_assigned_at_with_tester",
            ),
        ]
        indexes = [models.Index(fields=["tester", "lot"], name="item_tester_lot")]

    def __str__(self) -> str:
        return f"{self.lot.number} / {self.serial}"

"""Demo work on top of demo_setup's configuration, for `make run`: historical control limits for
the charts the plant simulator feeds, set through the SPC engine (so the R and MR charts get
theirs too), and a lab lot whose items wait on the demo tester's worklist. Safe to run again.

It lives here, not in demo_setup, because limits come from the engine (apps.calculations) and
lots from apps.observations, both above the configuration app.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.calculations.services import limits_set_historical
from apps.config.models import Characteristic, ControlLimits, PlanAssignment, Product
from apps.observations.models import Lot
from apps.observations.services.items import items_assign, lot_open

# (product, test, process mean, process sigma of individual values): the simulator's streams
# are centred on these, so its special causes show as violations at once.
LIMITS = (("RING-74", "RING-DIA", 74.0, 0.010), ("SHAFT-20", "SHAFT-OD", 20.0, 0.004))
# The lab lot's number names its product (lot numbers are unique per product only), and it has
# items: the plant simulator feeds production lots of its own, never a lot with items.
LAB_PRODUCT, LAB_LOT, LAB_ITEMS = "RING-74", "LAB-RING-74-1", 4


class Command(BaseCommand):
    help = "Historical limits for the simulated charts and a lab lot for the demo tester (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model().objects.in_bulk(["quality", "operations", "tester"], field_name="username")
        if len(users) < 3:
            raise CommandError("Run `manage.py demo_setup` first: it creates the demo users.")
        with transaction.atomic():
            for product, test, center, sigma in LIMITS:
                characteristic = Characteristic.objects.get(product__code=product, test__code=test)
                if ControlLimits.objects.filter(characteristic=characteristic).exists():
                    continue
                limits_set_historical(
                    characteristic=characteristic, center=center, sigma=sigma,
                    reason="Process capability study, demo data", user=users["quality"], source="system",
                    signed_by_system=True,  # a seed: nobody is at the keyboard to sign
                )  # fmt: skip
                self.stdout.write(f"control limits v1 for {product} / {test}")
            lab_product = Product.objects.get(code=LAB_PRODUCT)
            if Lot.objects.filter(product=lab_product, number=LAB_LOT).exists():
                return
            lab_lot_open(
                product=lab_product, number=LAB_LOT, count=LAB_ITEMS, lead=users["operations"],
                tester=users["tester"],
            )  # fmt: skip
            self.stdout.write(f"lab lot {LAB_LOT} of {LAB_PRODUCT}: {LAB_ITEMS} items for the demo tester")


def lab_lot_open(*, product: Product, number: str, count: int, lead: User, tester: User) -> Lot:
    """A lab lot of `product` opened by `lead` on the plans in effect now for it, its items handed
    to `tester` (demo_records opens its lots the same way)."""
    plans = [
        assignment.plan
        for assignment in PlanAssignment.objects.effective_now()
        .filter(product=product)
        .select_related("plan")
    ]
    lot = lot_open(product=product, number=number, plans=plans, user=lead, count=count)
    items_assign(items=list(lot.items.all()), tester=tester)
    return lot

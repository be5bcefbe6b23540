"""factory_boy factories shared by the test packages."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from apps.config import services
from apps.config.choices import TestKind
from apps.config.models import Characteristic, Product, Test, TestPlan
from apps.observations.choices import ObservationSource
from apps.observations.models import Item, Lot, Observation
from openspc.roles import Role


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-only")

    @factory.post_generation
    def roles(self, create: bool, extracted: list[Role] | None, **kwargs: object) -> None:
        for role in extracted or []:
            self.groups.add(Group.objects.get(name=role))


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    code = factory.Sequence(lambda n: f"P-{n:04d}")
    name = factory.Sequence(lambda n: f"Product {n}")


class TestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Test

    code = factory.Sequence(lambda n: f"T-{n:04d}")
    name = factory.Sequence(lambda n: f"Test {n}")
    unit = "mm"
    kind = TestKind.VARIABLE
    decimals = 3


class TestPlanFactory(factory.django.DjangoModelFactory):
    """A draft plan; pass tests=[test, ...] or tests=[(test, replicates), ...] for its entries."""

    class Meta:
        model = TestPlan
        skip_postgeneration_save = True

    code = factory.Sequence(lambda n: f"PLAN-{n:04d}")
    name = factory.Sequence(lambda n: f"Plan {n}")

    @factory.post_generation
    def tests(self, create: bool, extracted: list[object] | None, **kwargs: object) -> None:
        entries = []
        for item in extracted or []:
            test, replicates = item if isinstance(item, tuple) else (item, 1)
            entries.append(services.PlanEntryInput(test=test, replicates=replicates))
        if entries:
            services.test_plan_set_tests(plan=self, entries=entries)


def released_plan(*tests: object, code: str | None = None) -> TestPlan:
    plan = TestPlanFactory(tests=list(tests), **({"code": code} if code else {}))
    return services.test_plan_release(plan=plan, user=UserFactory(username="plan-releaser"))


def characteristic_for(product: Product, test: Test, **settings: object) -> Characteristic:
    """Assign a released one-test plan to the product and return the characteristic it creates."""
    services.plan_assign(product=product, plan=released_plan(test))
    characteristic = Characteristic.objects.get(product=product, test=test)
    if settings:
        characteristic = services.characteristic_update(characteristic=characteristic, data=dict(settings))
    return characteristic


# --- Observations -------------------------------------------------------------------


class LotFactory(factory.django.DjangoModelFactory):
    """An open lot of a new product (pass product= to choose it)."""

    class Meta:
        model = Lot

    product = factory.SubFactory(ProductFactory)
    number = factory.Sequence(lambda n: f"L-{n:05d}")
    created_by = factory.SubFactory(UserFactory, username="lot-opener")


class ItemFactory(factory.django.DjangoModelFactory):
    """An item of a lot; pass plans=[plan, ...] to select plans, tester= to assign it."""

    class Meta:
        model = Item
        skip_postgeneration_save = True

    lot = factory.SubFactory(LotFactory)
    serial = factory.Sequence(lambda n: f"S-{n:05d}")
    assigned_at = factory.LazyAttribute(lambda item: timezone.now() if item.tester else None)
    tester = None

    @factory.post_generation
    def plans(self, create: bool, extracted: list[TestPlan] | None, **kwargs: object) -> None:
        if extracted:
            self.plans.set(extracted)


class ObservationFactory(factory.django.DjangoModelFactory):
    """A `received` observation of an item (its lot and tester come from the item)."""

    class Meta:
        model = Observation

    item = factory.SubFactory(ItemFactory)
    lot = factory.LazyAttribute(lambda o: o.item.lot)
    test = factory.SubFactory(TestFactory)
    values = factory.LazyFunction(lambda: [1.0])
    observed_at = factory.LazyFunction(timezone.now)
    source = ObservationSource.MANUAL
    user = factory.LazyAttribute(lambda o: o.item.tester or UserFactory(username="poster"))
    idempotency_key = factory.Sequence(lambda n: f"factory:{n}")

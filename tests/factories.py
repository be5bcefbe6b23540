"""factory_boy factories shared by the test packages."""

import statistics
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Max
from django.utils import timezone

from apps.calculations.choices import Severity
from apps.calculations.models import Violation
from apps.config import services
from apps.config.choices import LimitMethod, TestKind
from apps.config.models import Characteristic, ControlLimits, Product, Test, TestPlan
from apps.mqtt_bridge.models import EdgeNode
from apps.observations.choices import ObservationSource
from apps.observations.models import Item, Lot, Observation, Sample
from apps.qa_runs.models import QaPackage
from apps.qa_runs.services import qa_package_create
from apps.subscriptions.models import Notification, Subscription, SubscriptionScope
from openspc.roles import Role
from tests.support.signing import release_signer


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
    releaser = UserFactory(username="plan-releaser")
    return services.test_plan_release(
        signer=release_signer(releaser), plan=plan, user=releaser, reason="Released for the test"
    )


def characteristic_for(product: Product, test: Test, **settings: object) -> Characteristic:
    """Assign a released one-test plan to the product and return the characteristic it creates."""
    services.plan_assign(product=product, plan=released_plan(test))
    characteristic = Characteristic.objects.get(product=product, test=test)
    if settings:
        characteristic = services.characteristic_update(
            characteristic=characteristic, data=dict(settings), reason="Set up for the test"
        )
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


# --- Samples, control limits, violations -------------------------------------------------------


def _new_characteristic() -> Characteristic:
    return characteristic_for(ProductFactory(), TestFactory())


def _next(model: type[Sample] | type[ControlLimits], field: str, characteristic: Characteristic) -> int:
    """The characteristic's next sequence or version: 1, 2, 3, … as the workers number them."""
    latest = model.objects.filter(characteristic=characteristic).aggregate(latest=Max(field))["latest"]
    return (latest or 0) + 1


class SampleFactory(factory.django.DjangoModelFactory):
    """A formed subgroup, not yet judged unless in_control= is given: the next sequence of its
    characteristic (a new one unless characteristic= is given), in a lot of that product. n, mean,
    range and SD follow from `values`."""

    class Meta:
        model = Sample

    characteristic = factory.LazyFunction(_new_characteristic)
    sequence = factory.LazyAttribute(lambda s: _next(Sample, "sequence", s.characteristic))
    lot = factory.LazyAttribute(lambda s: LotFactory(product=s.characteristic.product))
    values = factory.LazyFunction(lambda: [1.0])
    observation_ids = factory.LazyFunction(list)
    n = factory.LazyAttribute(lambda s: len(s.values))
    mean = factory.LazyAttribute(lambda s: statistics.fmean(s.values))
    range = factory.LazyAttribute(lambda s: max(s.values) - min(s.values) if len(s.values) > 1 else None)
    sd = factory.LazyAttribute(lambda s: statistics.stdev(s.values) if len(s.values) > 1 else None)


class ViolationFactory(factory.django.DjangoModelFactory):
    """A rule 1 violation of a sample (a new one unless sample= is given), judged by limits version 1."""

    class Meta:
        model = Violation

    sample = factory.SubFactory(SampleFactory, in_control=False)
    characteristic = factory.LazyAttribute(lambda v: v.sample.characteristic)
    rule = 1
    points = factory.LazyAttribute(lambda v: [v.sample.sequence])
    severity = Severity.CRITICAL
    limits_version = 1


class ControlLimitsFactory(factory.django.DjangoModelFactory):
    """The characteristic's next limits version, entered by hand: center ± 3 sigma. (The services,
    e.g. limits_set_historical, are what tests of the limits themselves use.)"""

    class Meta:
        model = ControlLimits

    characteristic = factory.LazyFunction(_new_characteristic)
    version = factory.LazyAttribute(lambda c: _next(ControlLimits, "version", c.characteristic))
    center = 10.0
    sigma = 1.0
    ucl = factory.LazyAttribute(lambda c: c.center + 3 * c.sigma)
    lcl = factory.LazyAttribute(lambda c: c.center - 3 * c.sigma)
    method = LimitMethod.MANUAL
    reason = "set by a test"


# --- Subscriptions and notifications -------------------------------------------------------------


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """A subscription to a product (a new one unless product= is given), every kind of event."""

    class Meta:
        model = Subscription

    user = factory.SubFactory(UserFactory)
    scope = SubscriptionScope.PRODUCT
    product = factory.SubFactory(ProductFactory)


class NotificationFactory(factory.django.DjangoModelFactory):
    """An unread notification of a violation in a user's inbox."""

    class Meta:
        model = Notification

    user = factory.SubFactory(UserFactory)
    event = "violation.created"
    title = factory.Sequence(lambda n: f"Violation {n}")
    data = factory.LazyFunction(dict)


# --- QA packages and edge nodes ------------------------------------------------------------------


class QaPackageFactory(factory.django.DjangoModelFactory):
    """A package without credentials, made by qa_package_create (so it is validated as the API's)."""

    class Meta:
        model = QaPackage

    name = factory.Sequence(lambda n: f"package-{n}")
    target_base_url = "https://things.example.com/api"
    spec_text = "{}"

    @classmethod
    def _create(cls, model_class: type[QaPackage], *args: Any, **kwargs: Any) -> QaPackage:
        return qa_package_create(**kwargs)


class EdgeNodeFactory(factory.django.DjangoModelFactory):
    """An online Sparkplug B edge node of group G that announced no metric."""

    class Meta:
        model = EdgeNode

    group = "G"
    node = factory.Sequence(lambda n: f"node-{n}")
    online = True
    metrics = factory.LazyFunction(list)

"""Builders shared by the calculation API tests: characteristics of a chosen subgroup size, and
subgroups stored through the same services POST /api/v1/samples uses."""

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from rest_framework.response import Response
from rest_framework.test import APIClient

from apps.calculations import services
from apps.calculations.services.calculate import window_key
from apps.config import services as config_services
from apps.config.choices import TestKind
from apps.config.models import Characteristic, ControlLimits
from apps.observations import services as obs_services
from apps.observations.choices import ObservationSource
from apps.observations.models import Item, Lot, Sample
from tests.factories import TestFactory, characteristic_for, released_plan
from tests.support.signing import limits_signer

SAMPLES = "/api/v1/samples/"


def characteristic_url(characteristic: Characteristic, action: str) -> str:
    return f"/api/v1/characteristics/{characteristic.pk}/{action}/"


def dia_of(plant: Any) -> Characteristic:
    """The plant's DIA characteristic (n = 1, I-MR; DIA is plausible in 70–78)."""
    characteristic = Characteristic.objects.select_related("product", "test").get(
        product=plant.product, test=plant.dia
    )
    window_forget(characteristic)
    return characteristic


def sized(
    plant: Any, n: int, code: str | None = None, kind: str = TestKind.VARIABLE, **settings: object
) -> Characteristic:
    """A new characteristic of RING-74 with subgroup size `n` (of a variables test with no plausible
    range, unless another kind is given)."""
    test = TestFactory(code=code or f"LEN{n}", kind=kind)
    characteristic = characteristic_for(plant.product, test, subgroup_size=n, **settings)
    window_forget(characteristic)
    return Characteristic.objects.select_related("product", "test").get(pk=characteristic.pk)


def window_forget(characteristic: Characteristic) -> None:
    """Drop a rolling window another test run may have left in Redis under the same id (ids restart
    with every fresh test database; Redis keeps its keys)."""
    cache.delete(window_key(characteristic.pk))


def subgroups_store(
    characteristic: Characteristic,
    subgroups: Sequence[Sequence[float]],
    *,
    lot: Lot,
    user: AbstractBaseUser,
) -> list[Sample]:
    """Store whole subgroups as POST /samples does (one observation each, lot level), process and
    judge them; the new samples in sequence order."""
    first = Sample.objects.filter(characteristic=characteristic).count()
    # Different subgroups may hold equal values: each gets its own key, as a client would give.
    entries = [
        obs_services.ObservationEntry(
            lot=lot,
            test=characteristic.test,
            values=list(values),
            idempotency_key=f"store:{characteristic.pk}:{first + index}",
        )
        for index, values in enumerate(subgroups)
    ]
    recorded = obs_services.observations_record(
        entries=entries, source=ObservationSource.MANUAL, user=user, queue=False
    )
    obs_services.observations_process(ids=recorded.ids)
    services.characteristic_calculate(characteristic_id=characteristic.pk)
    return list(Sample.objects.filter(characteristic=characteristic, sequence__gt=first).order_by("sequence"))


def assigned_item(plant: Any, *characteristics: Characteristic) -> Item:
    """Item 0001 of lot L-1, assigned to the plant's tester, also on a plan asking each of these
    characteristics' tests with one value per subgroup member: data entry is the tester's, for an
    item assigned to them, and an item's observation has as many values as its plan asks."""
    item: Item = plant.items[0]
    for characteristic in characteristics:
        plan = released_plan((characteristic.test, characteristic.subgroup_size))
        config_services.plan_assign(product=plant.product, plan=plan)
        item.plans.add(plan)
    return item


def historical(characteristic: Characteristic, *, center: float, sigma: float) -> ControlLimits:
    return services.limits_set_historical(
        signer=limits_signer(),
        characteristic=characteristic,
        center=center,
        sigma=sigma,
        reason="historical study",
    ).new


def submit(
    client: APIClient,
    characteristic: Characteristic | int,
    measurements: list[Any],
    *,
    lot: Lot | int,
    **context: Any,
) -> Response:
    body = {
        "characteristic_id": characteristic if isinstance(characteristic, int) else characteristic.pk,
        "measurements": measurements,
        "context": {"lot": lot if isinstance(lot, int) else lot.pk, **context},
    }
    return client.post(SAMPLES, body, format="json")

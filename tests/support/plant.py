"""The plant world most tests share: product RING-74 in testing (`Plant`), its device, another
tester, violation rows on it (`Violations`). The fixtures are registered once, for every test package,
by tests/conftest.py."""

import datetime
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import AbstractBaseUser
from rest_framework.test import APIClient

from apps.calculations.models import Violation
from apps.config import services as config_services
from apps.config.choices import TestKind
from apps.config.models import Characteristic
from apps.observations import services
from apps.observations.models import Observation
from openspc.roles import Role
from tests.factories import (
    ItemFactory,
    LotFactory,
    ProductFactory,
    SampleFactory,
    TestFactory,
    UserFactory,
    ViolationFactory,
    released_plan,
)
from tests.support.signing import limits_signer

JAN_1 = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)


class Plant:
    """Product RING-74 with plan RING (DIA ×1, WALL ×3), assigned from 2025-01-01, open-ended.

    Lot L-1 is open with items 0001–0003 on plan RING, assigned to `tester`. Test SURF
    exists but is in no plan of RING-74.
    """

    def __init__(self, tester: AbstractBaseUser) -> None:
        self.tester = tester
        self.product = ProductFactory(code="RING-74")
        self.dia = TestFactory(code="DIA", plausible_min=70.0, plausible_max=78.0)
        self.wall = TestFactory(code="WALL")
        self.surf = TestFactory(code="SURF", kind=TestKind.DEFECTS)
        self.ring = released_plan(self.dia, (self.wall, 3), code="RING")
        config_services.plan_assign(product=self.product, plan=self.ring, effective_from=JAN_1)
        self.lot = LotFactory(product=self.product, number="L-1")
        self.items = [
            ItemFactory(lot=self.lot, serial=f"000{n}", plans=[self.ring], tester=tester) for n in (1, 2, 3)
        ]

    def dia_judged(self, *, center: float, sigma: float, user: AbstractBaseUser) -> Any:
        """DIA's characteristic with historical limits and no cached window: where the tests with
        real workers that expect violations start."""
        from apps.calculations import services as calculations
        from apps.config.models import Characteristic
        from tests.calculations.api_helpers import window_forget

        dia = Characteristic.objects.get(product=self.product, test=self.dia)
        window_forget(dia)
        calculations.limits_set_historical(
            signer=limits_signer(),
            characteristic=dia,
            center=center,
            sigma=sigma,
            reason="historical",
            user=user,
        )
        return dia

    def items_total(self, count: int) -> list[Any]:
        """The lot's items, with more on plan RING assigned to the tester until there are `count`."""
        more = [
            ItemFactory(lot=self.lot, serial=f"00{n:02d}", plans=[self.ring], tester=self.tester)
            for n in range(len(self.items) + 1, count + 1)
        ]
        return self.items + more

    def record(self, *entries: dict[str, Any], user: AbstractBaseUser | None = None) -> list[int]:
        """Store observations as the tester would post them ({item, test, values, …}); their ids."""
        rows = [
            {
                "item": e["item"].pk,
                "test": e["test"].pk,
                **{k: v for k, v in e.items() if k not in {"item", "test"}},
            }
            for e in entries
        ]
        poster = user or self.tester
        resolved = services.tester_entries_resolve(rows=rows, user=poster, batch=True)
        return services.observations_record(entries=resolved, source="manual", user=poster).ids


@pytest.fixture
def plant(tester: AbstractBaseUser) -> Plant:
    return Plant(tester)


@pytest.fixture
def other_tester(db: None) -> AbstractBaseUser:
    """A tester with nothing assigned."""
    return UserFactory(username="other-tester", roles=[Role.TESTER])


@pytest.fixture
def device(plant: Plant) -> tuple[Any, str]:
    """A device bound to the plant's product (every test of RING-74)."""
    return config_services.device_create(name="gauge-7", products=[plant.product])


@pytest.fixture
def device_client(device: tuple[Any, str]) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {device[1]}")
    return client


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The id lists sent to observations.process (nothing reaches the broker)."""
    sent: list[list[int]] = []
    from apps.observations import tasks

    def apply_async(*, kwargs: dict[str, Any], kwargsrepr: str) -> None:
        assert kwargsrepr.startswith(f"{{'ids': <{len(kwargs['ids'])} ids")  # the log line, not each id
        sent.append(list(kwargs["ids"]))

    monkeypatch.setattr(tasks.observations_process_task, "apply_async", apply_async)
    return sent


def rows() -> list[dict[str, Any]]:
    """Every stored observation, to compare before and after a refused request."""
    return list(Observation.objects.order_by("pk").values())


ApiFactory = Callable[[AbstractBaseUser | None], APIClient]


class Violations:
    """Violation rows on the plant's DIA characteristic, each on a sample of its own."""

    def __init__(self, plant: Plant) -> None:
        self.plant = plant
        self.dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
        self.samples = 0

    def violation(self, characteristic: Characteristic | None = None, *, rule: int = 1) -> Violation:
        c = characteristic or self.dia
        self.samples += 1
        sample = SampleFactory(
            characteristic=c,
            sequence=self.samples,
            lot=self.plant.lot,
            values=[74.0 + self.samples / 100, 74.1],
            in_control=False,
        )
        return ViolationFactory(sample=sample, rule=rule)

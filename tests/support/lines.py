"""Products with one characteristic fed by a device, lot by lot: `Line` records (and processes)
observations; `Stream` feeds values through to the calculation."""

import uuid
from collections.abc import Sequence
from typing import Any

from apps.calculations import services
from apps.calculations.models import ChartState, LotStatistics, ProductStatistics, Violation
from apps.config import services as config_services
from apps.config.choices import TestKind
from apps.config.models import Characteristic, Test
from apps.observations import services as obs_services
from apps.observations.models import Sample, SubgroupFeed
from tests.factories import LotFactory, ProductFactory, TestFactory, characteristic_for


class Line:
    """A product with one characteristic of subgroup size `size` and lots A, B, C."""

    def __init__(self, size: int, kind: str = TestKind.VARIABLE) -> None:
        self.product = ProductFactory()
        self.test = TestFactory(kind=kind, plausible_min=0.0, plausible_max=1000.0)
        self.characteristic = characteristic_for(self.product, self.test, subgroup_size=size)
        self.lots = {name: LotFactory(product=self.product, number=name) for name in "ABC"}
        device, _ = config_services.device_create(name=f"gauge-{self.product.code}")
        self.user = device.user

    def record(self, *posts: tuple[str, Sequence[Any]], test: Test | None = None) -> list[int]:
        """Store observations (lot name, values) as `received`; their ids, in order."""
        entries = [
            # Without a key or a time, equal readings would be taken for one reading sent twice.
            obs_services.ObservationEntry(
                lot=self.lots[lot],
                test=test or self.test,
                values=list(values),
                idempotency_key=uuid.uuid4().hex,
            )
            for lot, values in posts
        ]
        return obs_services.observations_record(
            entries=entries, source="device", user=self.user, queue=False
        ).ids

    def post(self, *posts: tuple[str, Sequence[Any]], test: Test | None = None) -> list[int]:
        """Record and process in one batch."""
        ids = self.record(*posts, test=test)
        obs_services.observations_process(ids=ids)
        return ids

    def samples(self, characteristic: Characteristic | None = None) -> list[Sample]:
        chosen = characteristic or self.characteristic
        return list(Sample.objects.filter(characteristic=chosen).order_by("sequence"))

    def shape(self) -> list[tuple[str, list[float], list[int]]]:
        """(lot, values, observation ids) of every sample, in sequence order."""
        names = {lot.pk: name for name, lot in self.lots.items()}
        return [(names[s.lot_id], s.values, s.observation_ids) for s in self.samples()]

    def pending(self) -> dict[str, Any]:
        """The feed's buffers without their start time ("since": test_subgroup_timeout.py)."""
        pending = SubgroupFeed.objects.get(pk=self.characteristic.pk).pending
        return {lot: {k: v for k, v in entry.items() if k != "since"} for lot, entry in pending.items()}


class Stream:
    """A product with one characteristic fed by a device, lot by lot, value by value."""

    def __init__(self, *, size: int = 1, kind: str = TestKind.VARIABLE, lots: str = "AB", **settings: Any):
        self.product = ProductFactory()
        self.test = TestFactory(kind=kind)
        self.characteristic = characteristic_for(self.product, self.test, subgroup_size=size, **settings)
        self.lots = {name: LotFactory(product=self.product, number=name) for name in lots}
        device, _ = config_services.device_create(name=f"gauge-{self.product.code}")
        self.user = device.user
        # A window an earlier test run left in Redis under this id must not be read.
        services.window_invalidate(characteristic_id=self.characteristic.pk)

    def feed(self, lot: str, values: Sequence[float], *, per_observation: int = 1) -> list[int]:
        """Post `values` to a lot, `per_observation` values per observation, and process them."""
        entries = [
            obs_services.ObservationEntry(
                lot=self.lots[lot],
                test=self.test,
                values=list(values[i : i + per_observation]),
                # Without a key or a time, equal readings would be taken for one reading sent twice.
                idempotency_key=uuid.uuid4().hex,
            )
            for i in range(0, len(values), per_observation)
        ]
        ids = obs_services.observations_record(
            entries=entries, source="device", user=self.user, queue=False
        ).ids
        obs_services.observations_process(ids=ids)
        return ids

    def calculate(self) -> services.CalculationResult:
        return services.characteristic_calculate(characteristic_id=self.characteristic.pk)

    def lot(self, name: str) -> LotStatistics:
        return LotStatistics.objects.get(lot=self.lots[name], test=self.test)

    def product_stats(self) -> ProductStatistics:
        return ProductStatistics.objects.get(characteristic=self.characteristic)

    def samples(self) -> list[Sample]:
        return list(Sample.objects.filter(characteristic=self.characteristic).order_by("sequence"))

    def snapshot(self) -> dict[str, Any]:
        """Every row the calculation writes for the characteristic, without ids and timestamps
        (those differ between two characteristics fed the same data)."""
        names = {lot.pk: name for name, lot in self.lots.items()}
        lot_fields = [
            "n",
            "mean",
            "sd",
            "minimum",
            "maximum",
            "out_of_spec",
            "cpk",
            "disposition",
            "observations",
        ]
        product_fields = [
            "n", "mean", "sd", "minimum", "maximum", "out_of_spec", "within_sum", "within_count",
            "last_value", "sigma_within", "sigma_source", "cp", "cpk", "pp", "ppk", "limits_version",
        ]  # fmt: skip
        state = ChartState.objects.get(pk=self.characteristic.pk)
        return {
            "samples": [(s.sequence, s.in_control, s.limits_version) for s in self.samples()],
            "violations": sorted(
                (v.sample.sequence, v.rule, v.chart, v.points, v.severity, v.limits_version)
                for v in Violation.objects.filter(characteristic=self.characteristic).select_related("sample")
            ),
            "lots": {
                names[row["lot_id"]]: {name: row[name] for name in lot_fields}
                for row in LotStatistics.objects.filter(test=self.test).values()
            },
            "product": {name: getattr(self.product_stats(), name) for name in product_fields},
            "cursor": (state.last_sequence, state.last_position),
        }

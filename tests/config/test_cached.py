"""The configuration each process keeps between requests (apps.config.cached, issue #20): read once
per generation, dropped by every kind of write, at the write and again at its commit; read each
time when Redis cannot say which generation is current."""

from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache

from apps.config import cached
from apps.config.models import Characteristic, ControlLimits, Device, Product, TestPlanEntry
from apps.config.selectors import characteristic_kept, limits_current_kept, product_config
from openspc.kept import generation_key
from tests.factories import ControlLimitsFactory, ProductFactory, TestFactory, UserFactory, characteristic_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def characteristic() -> Characteristic:
    return characteristic_for(ProductFactory(code="RING"), TestFactory(code="DIA"))


def test_a_characteristic_is_read_once_per_generation(characteristic, django_assert_num_queries):
    with django_assert_num_queries(1):
        first = characteristic_kept(characteristic.pk)
    with django_assert_num_queries(0):
        again = characteristic_kept(characteristic.pk)
    assert again is first
    assert (again.product.code, again.test.code) == ("RING", "DIA")
    # One that does not exist is kept as missing, and answered as None.
    assert characteristic_kept(characteristic.pk + 1000) is None
    with django_assert_num_queries(0):
        assert characteristic_kept(characteristic.pk + 1000) is None


def _save(c: Characteristic) -> None:
    c.usl = 80.0
    c.save(update_fields=["usl"])


def _update(c: Characteristic) -> None:
    Characteristic.objects.filter(pk=c.pk).update(usl=80.0)


def _bulk_update(c: Characteristic) -> None:
    c.usl = 80.0
    Characteristic.objects.bulk_update([c], ["usl"])


WRITES: dict[str, Callable[[Characteristic], None]] = {
    "save": _save,
    "QuerySet.update": _update,
    "bulk_update": _bulk_update,
}


@pytest.mark.parametrize("write", list(WRITES), ids=list(WRITES))
def test_every_kind_of_write_drops_what_is_kept(characteristic, write):
    assert characteristic_kept(characteristic.pk).usl is None
    WRITES[write](Characteristic.objects.get(pk=characteristic.pk))
    assert characteristic_kept(characteristic.pk).usl == 80.0


def test_limits_created_and_deleted_are_seen(characteristic):
    assert limits_current_kept([characteristic.pk]) == {}
    first = ControlLimitsFactory(characteristic=characteristic, center=74.0)
    second = ControlLimitsFactory(characteristic=characteristic, center=75.0)
    assert limits_current_kept([characteristic.pk])[characteristic.pk].pk == second.pk
    ControlLimits.objects.filter(pk=second.pk).delete()
    assert limits_current_kept([characteristic.pk])[characteristic.pk].pk == first.pk


def test_a_plan_entry_bulk_created_changes_the_product_configuration(characteristic):
    product_id = characteristic.product_id
    plan_id = product_config(product_id=product_id).plan_tests[0].plan_id
    extra = TestFactory(code="WALL")
    TestPlanEntry.objects.bulk_create([TestPlanEntry(plan_id=plan_id, test=extra, position=2)])
    assert extra.pk in product_config(product_id=product_id).tests
    Product.objects.filter(pk=product_id).update(active=False)
    assert product_config(product_id=product_id).active is False


def test_a_read_between_a_write_and_its_commit_is_dropped_at_the_commit(
    characteristic, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as commits:
        Characteristic.objects.filter(pk=characteristic.pk).update(usl=80.0)
        # Another process reads now, under the new generation, the rows as they were before the
        # write (not committed yet): kept, stale.
        stale = Characteristic.objects.get(pk=characteristic.pk)
        stale.usl = None
        cached.cached_one("characteristic", characteristic.pk, lambda ids: {characteristic.pk: stale})
        assert characteristic_kept(characteristic.pk) is stale
    for commit in commits:  # the write commits
        commit()
    assert characteristic_kept(characteristic.pk).usl == 80.0


def test_a_device_written_keeps_the_configuration(characteristic):
    characteristic_kept(characteristic.pk)
    before = cache.get(generation_key(cached.GENERATION))
    Device.objects.create(name="gauge", user=UserFactory(), token_hash="0" * 64, token_prefix="dev_0")
    assert cache.get(generation_key(cached.GENERATION)) == before


def test_without_redis_the_configuration_is_read_each_time(
    characteristic, monkeypatch, django_assert_num_queries
):
    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(cache, "get", unreachable)
    for _ in range(2):
        with django_assert_num_queries(1):
            assert characteristic_kept(characteristic.pk).test.code == "DIA"

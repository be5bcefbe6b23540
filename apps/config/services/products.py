"""Writes of products and tests."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.audit.services import SYSTEM, Actor
from apps.config.models import Product, Test
from apps.config.services.audited import audited, audited_delete, audited_update

PRODUCT_FIELDS = ("code", "name", "description", "active")
TEST_FIELDS = (
    "code",
    "name",
    "unit",
    "kind",
    "decimals",
    "instructions",
    "plausible_min",
    "plausible_max",
    "active",
    "requires_verification",
    "invalidation_needs_approval",
)


@transaction.atomic
def product_create(
    *, code: str, name: str, description: str = "", active: bool = True, actor: Actor = SYSTEM
) -> Product:
    product = Product.objects.create(code=code, name=name, description=description, active=active)
    audited(product, PRODUCT_FIELDS, None, actor)
    return product


@transaction.atomic
def product_update(*, product: Product, data: dict[str, Any], actor: Actor = SYSTEM) -> Product:
    return audited_update(instance=product, fields=PRODUCT_FIELDS, data=data, actor=actor)


@transaction.atomic
def product_delete(*, product: Product, actor: Actor = SYSTEM) -> None:
    """Only a product nothing refers to can go (ProtectedError otherwise: deactivate it instead)."""
    audited_delete(instance=product, fields=PRODUCT_FIELDS, actor=actor)


def test_validate(*, data: dict[str, Any], test: Test | None = None) -> None:
    low = data.get("plausible_min", test.plausible_min if test else None)
    high = data.get("plausible_max", test.plausible_max if test else None)
    if low is not None and high is not None and low >= high:
        raise ValidationError({"plausible_max": f"Must be above the plausible minimum ({low})."})
    if data.get("decimals", 0) > 10:
        raise ValidationError({"decimals": "At most 10 decimal places."})
    if test is not None and "kind" in data and data["kind"] != test.kind and test.characteristics.exists():
        raise ValidationError(
            {"kind": "The test is already charted on products; create a new test for another kind."}
        )


@transaction.atomic
def test_create(*, actor: Actor = SYSTEM, **data: Any) -> Test:
    test_validate(data=data)
    test = Test.objects.create(**{name: data[name] for name in TEST_FIELDS if name in data})
    audited(test, TEST_FIELDS, None, actor)
    return test


@transaction.atomic
def test_update(*, test: Test, data: dict[str, Any], actor: Actor = SYSTEM) -> Test:
    test_validate(data=data, test=test)
    return audited_update(instance=test, fields=TEST_FIELDS, data=data, actor=actor)


@transaction.atomic
def test_delete(*, test: Test, actor: Actor = SYSTEM) -> None:
    """Only a test in no plan and no chart can go (ProtectedError otherwise: deactivate it instead)."""
    audited_delete(instance=test, fields=TEST_FIELDS, actor=actor)

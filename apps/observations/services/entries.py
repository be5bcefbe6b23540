"""The edge: posted entries (a tester's, a device's) resolved to lots, items and tests, with the
checks of who may post what."""

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError

from apps.config.models import Characteristic, Device, Product, Test
from apps.observations.choices import LOT_WORKING
from apps.observations.models import Item, Lot
from apps.observations.services.record import ObservationEntry, first_ten


def _where(index: int, name: str, batch: bool) -> str:
    """The error key of a field: `values`, or `[3].values` in a batch (the entry's index)."""
    return f"[{index}].{name}" if batch else name


def _lot_open_check(lot: Lot, key: str) -> None:
    if lot.status not in LOT_WORKING:
        raise ValidationError({key: f"Lot {lot.number} is {lot.status}; it takes no more observations."})


def item_entry_check(*, item: Item | None, user: User) -> None:
    """A tester enters data only for an item assigned to them (lot-level data comes from devices):
    PermissionDenied naming the item otherwise. Every tester endpoint checks each entry here."""
    if item is None:
        raise PermissionDenied("Testers enter data for an item assigned to them: name the item.")
    if item.tester_id != user.pk:
        raise PermissionDenied(
            f"Item {item.serial} of lot {item.lot.number} (id {item.pk}) is not assigned to you."
        )


def tester_entries_resolve(
    *, rows: Sequence[dict[str, Any]], user: User, batch: bool
) -> list[ObservationEntry]:
    """A tester's entries ({item, test, values, observed_at?, idempotency_key?}) with their objects.

    An unknown item or test is a ValidationError; an item not assigned to `user`
    is PermissionDenied naming the item; so is a closed lot (ValidationError).
    """
    items = Item.objects.select_related("lot").in_bulk({row["item"] for row in rows})
    tests = Test.objects.in_bulk({row["test"] for row in rows})
    entries = []
    for index, row in enumerate(rows):
        item, test = items.get(row["item"]), tests.get(row["test"])
        if item is None:
            raise ValidationError({_where(index, "item", batch): f"Item {row['item']} does not exist."})
        if test is None:
            raise ValidationError({_where(index, "test", batch): f"Test {row['test']} does not exist."})
        item_entry_check(item=item, user=user)
        _lot_open_check(item.lot, _where(index, "item", batch))
        entries.append(
            ObservationEntry(
                lot=item.lot,
                item=item,
                test=test,
                values=row["values"],
                observed_at=row.get("observed_at"),
                idempotency_key=row.get("idempotency_key"),
            )
        )
    return entries


# What device entries may name, looked up once per batch: characteristics by id, products and tests by code.
Targets = tuple[dict[int, Characteristic], dict[str, Product], dict[str, Test]]


def _device_targets(rows: Sequence[dict[str, Any]]) -> Targets:
    characteristics = Characteristic.objects.select_related("product", "test").in_bulk(
        {row["characteristic"] for row in rows if row.get("characteristic") is not None}
    )
    products = Product.objects.in_bulk(
        {row["product"] for row in rows if row.get("product")}, field_name="code"
    )
    tests = Test.objects.in_bulk({row["test"] for row in rows if row.get("test")}, field_name="code")
    return characteristics, products, tests


def _device_product_test(
    row: dict[str, Any], index: int, batch: bool, targets: Targets
) -> tuple[Product, Test]:
    characteristics, products, tests = targets
    if row.get("characteristic") is not None:
        characteristic = characteristics.get(row["characteristic"])
        if characteristic is None:
            key = _where(index, "characteristic", batch)
            raise ValidationError({key: f"Characteristic {row['characteristic']} does not exist."})
        return characteristic.product, characteristic.test
    product, test = products.get(row["product"]), tests.get(row["test"])
    if product is None:
        raise ValidationError({_where(index, "product", batch): f"Product {row['product']} does not exist."})
    if test is None:
        raise ValidationError({_where(index, "test", batch): f"Test {row['test']} does not exist."})
    return product, test


def _device_binding_check(device: Device, resolved: Sequence[tuple[Product, Test]], batch: bool) -> None:
    """PermissionDenied naming every entry outside what the device is bound to (its characteristics
    and every test of its products), before anything about lots is looked up or stored."""
    products = set(device.products.values_list("pk", flat=True))
    pairs = set(device.characteristics.values_list("product_id", "test_id"))
    labels = [
        f"{f'[{index}] ' if batch else ''}{product.code} / {test.code}"
        for index, (product, test) in enumerate(resolved)
        if product.pk not in products and (product.pk, test.pk) not in pairs
    ]
    if labels:
        raise PermissionDenied(
            f"Device {device.name} is not bound to {first_ten(labels)}; nothing was stored. A quality "
            "specialist binds a device to characteristics or products at /api/v1/devices/ or in the admin."
        )


def _tester_items_check(entries: Sequence[ObservationEntry], batch: bool) -> None:
    """A tester's item takes the tester's results only: a device posting onto it would put a result
    on the tester's item (counted on their worklist and in the lot's results) that they never took.
    The device posts to the lot instead, or the item is taken back from the tester first."""
    labels = [
        f"{f'[{index}] ' if batch else ''}item {entry.item.serial} of lot {entry.lot.number}"
        for index, entry in enumerate(entries)
        if entry.item is not None and entry.item.tester_id is not None
    ]
    if labels:
        raise PermissionDenied(
            f"Assigned to a tester: {first_ten(labels)}; devices do not post onto a tester's items, "
            "nothing was stored. Post without the item (to the lot), or take the item back from the tester."
        )


def device_entries_resolve(
    *, rows: Sequence[dict[str, Any]], batch: bool, device: Device
) -> list[ObservationEntry]:
    """A device's entries ({characteristic | product + test, lot, item?, values, …}) with their objects.

    Codes are looked up in a few queries for the whole batch. Every entry must be within what
    `device` is bound to and name no item assigned to a tester (PermissionDenied naming each
    refused entry). The lot must exist (devices do not open lots) and be open or in testing;
    an item serial must exist in it.
    """
    targets = _device_targets(rows)
    resolved = [_device_product_test(row, index, batch, targets) for index, row in enumerate(rows)]
    _device_binding_check(device, resolved, batch)
    product_ids = {product.pk for product, _ in resolved}
    lots = {
        (lot.product_id, lot.number): lot
        for lot in Lot.objects.filter(product_id__in=product_ids, number__in={row["lot"] for row in rows})
    }
    serials = {row["item"] for row in rows if row.get("item")}
    items = {
        (item.lot_id, item.serial): item
        for item in Item.objects.filter(lot__in=list(lots.values()), serial__in=serials)
    }
    entries = []
    for index, (row, (product, test)) in enumerate(zip(rows, resolved, strict=True)):
        lot = lots.get((product.pk, row["lot"]))
        if lot is None:
            message = f"Lot {row['lot']} of product {product.code} does not exist."
            raise ValidationError({_where(index, "lot", batch): message})
        _lot_open_check(lot, _where(index, "lot", batch))
        item = None
        if row.get("item"):
            item = items.get((lot.pk, row["item"]))
            if item is None:
                message = f"Item {row['item']} does not exist in lot {lot.number}."
                raise ValidationError({_where(index, "item", batch): message})
        entries.append(
            ObservationEntry(
                lot=lot,
                item=item,
                test=test,
                values=row["values"],
                observed_at=row.get("observed_at"),
                idempotency_key=row.get("idempotency_key"),
            )
        )
    _tester_items_check(entries, batch)
    return entries

"""The edge: posted entries (a tester's, a device's) resolved to lots, items and tests, with the
checks of who may post what."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError

from apps.config.models import Characteristic, Device, Product, Test
from apps.config.selectors import characteristics_kept
from apps.observations.choices import LOT_WORKING
from apps.observations.models import Item, Lot
from apps.observations.services.record import ObservationEntry, first_ten


def _where(index: int, name: str, batch: bool) -> str:
    """The error key of a field: `values`, or `[3].values` in a batch (the entry's index)."""
    return f"[{index}].{name}" if batch else name


class EntryTargetError(Exception):
    """An entry names a lot or an item that does not exist, or a lot that takes no more observations.
    `field` is the entry's field at fault ("lot" or "item"); the message is said the same way on every
    path (REST errors, MQTT dead letters)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def lot_open_check(lot: Lot, field: str = "lot") -> None:
    """EntryTargetError unless the lot is open or in testing."""
    if lot.status not in LOT_WORKING:
        raise EntryTargetError(field, f"Lot {lot.number} is {lot.status}; it takes no more observations.")


@dataclass(frozen=True)
class NamedLots:
    """The lots entries name, by (product id, lot number), and their items by (lot id, serial):
    looked up once for a whole batch, in two queries. A device's REST entries and the MQTT
    listener's readings both find their lot and item here."""

    lots: dict[tuple[int, str], Lot]
    items: dict[tuple[int, str], Item]

    @classmethod
    def load(
        cls, *, product_ids: Collection[int], numbers: Collection[str], serials: Collection[str]
    ) -> "NamedLots":
        lots = Lot.objects.filter(product_id__in=list(product_ids), number__in=list(numbers))
        items = Item.objects.filter(serial__in=list(serials), lot__product_id__in=list(product_ids))
        return cls(
            lots={(lot.product_id, lot.number): lot for lot in lots} if numbers else {},
            items={(item.lot_id, item.serial): item for item in items} if serials else {},
        )

    def find(
        self, *, product: Product, number: str | None, serial: str | None, current: Lot | None = None
    ) -> tuple[Lot, Item | None]:
        """The lot named `number` of `product` (or `current` when no lot is named) and its item
        `serial`, if one is named; EntryTargetError saying which is missing or closed."""
        lot = self.lots.get((product.pk, number)) if number else current
        if lot is None and number:
            raise EntryTargetError("lot", f"Lot {number} of product {product.code} does not exist.")
        if lot is None:
            raise EntryTargetError(
                "lot", f"Product {product.code} has no open lot; open one, or name the lot."
            )
        lot_open_check(lot)
        if not serial:
            return lot, None
        item = self.items.get((lot.pk, serial))
        if item is None:
            raise EntryTargetError("item", f"Item {serial} does not exist in lot {lot.number}.")
        return lot, item


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
        try:
            lot_open_check(item.lot, "item")
        except EntryTargetError as error:
            raise ValidationError({_where(index, error.field, batch): error.message}) from None
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
    characteristics = characteristics_kept(
        list({row["characteristic"] for row in rows if row.get("characteristic") is not None})
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
    named = NamedLots.load(
        product_ids={product.pk for product, _ in resolved},
        numbers={row["lot"] for row in rows},
        serials={row["item"] for row in rows if row.get("item")},
    )
    entries = []
    for index, (row, (product, test)) in enumerate(zip(rows, resolved, strict=True)):
        try:
            lot, item = named.find(product=product, number=row["lot"], serial=row.get("item"))
        except EntryTargetError as error:
            raise ValidationError({_where(index, error.field, batch): error.message}) from None
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

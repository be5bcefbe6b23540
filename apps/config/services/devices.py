"""Writes of devices: registration with a token, binding to what they may post to."""

import secrets
from collections.abc import Collection
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.audit.services import SYSTEM, Actor, audit_change, audit_fields
from apps.config.authentication import token_hash
from apps.config.models import Characteristic, Device, Product
from openspc.roles import Role
from openspc.rows import model_update

DEVICE_FIELDS = ("name", "description", "active")  # never the token's hash
DEVICE_BINDING = ("characteristics", "products")  # what it may post to, audited as sorted ids


def _device_audit_fields(device: Device) -> dict[str, Any]:
    binding = {name: sorted(getattr(device, name).values_list("pk", flat=True)) for name in DEVICE_BINDING}
    return {**audit_fields(device, list(DEVICE_FIELDS)), **binding}


@transaction.atomic
def device_create(
    *,
    name: str,
    description: str = "",
    active: bool = True,
    characteristics: Collection[Characteristic] = (),
    products: Collection[Product] = (),
    actor: Actor = SYSTEM,
) -> tuple[Device, str]:
    """Register a device with its own service user in the Device group, bound to the characteristics
    and products it may post to (none: it may post nothing yet). Returns the token, once."""
    if Device.objects.filter(name=name).exists():
        raise ValidationError({"name": f"A device named '{name}' exists."})
    user_model = get_user_model()
    user = user_model.objects.create_user(username=f"device:{name}"[:150])
    user.set_unusable_password()
    user.save(update_fields=["password"])
    user.groups.add(Group.objects.get(name=Role.DEVICE))
    token = f"osd_{secrets.token_urlsafe(32)}"
    device = Device.objects.create(
        name=name,
        description=description,
        user=user,
        token_hash=token_hash(token),
        token_prefix=token[:12],
        active=active,
    )
    device.characteristics.set(characteristics)
    device.products.set(products)
    audit_change(actor=actor, instance=device, before=None, after=_device_audit_fields(device))
    return device, token


@transaction.atomic
def device_update(*, device: Device, data: dict[str, Any], actor: Actor = SYSTEM) -> Device:
    """Rename, describe, (de)activate or rebind a device; a deactivated device's token stops working
    at once, and a binding taken away refuses the device's next post to it."""
    if "name" in data and Device.objects.filter(name=data["name"]).exclude(pk=device.pk).exists():
        raise ValidationError({"name": f"A device named '{data['name']}' exists."})
    before = _device_audit_fields(device)
    device, _ = model_update(instance=device, fields=DEVICE_FIELDS, data=data)
    for name in DEVICE_BINDING:
        if name in data:
            getattr(device, name).set(data[name])
    audit_change(actor=actor, instance=device, before=before, after=_device_audit_fields(device))
    return device

"""Demo users (one per role), a demo device, and a small plant's configuration. Safe to run again.

Passwords and the device token are random, printed once when they are created,
and kept in var/demo_credentials.txt (readable by the owner only) for the
development setup; nothing is hard-coded.
"""

import os
import re
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.config import services
from apps.config.choices import DataSource, ScheduleKind, TestKind
from apps.config.models import Characteristic, Device, Product
from openspc.roles import Role

DEMO_USERS = [
    ("quality", Role.QUALITY_SPECIALIST, True),
    ("operations", Role.OPERATIONS_LEAD, False),
    ("tester", Role.TESTER, False),
    # A second person in the lab: results are verified by someone other than who entered them.
    ("lab2", Role.TESTER, False),
    ("manager", Role.MANAGER, False),
]
# Printed names: a signature's manifest shows the signer's full name.
DEMO_NAMES = {
    "quality": ("Quinn", "Quality"),
    "operations": ("Olga", "Operations"),
    "tester": ("Tara", "Tester"),
    "lab2": ("Lars", "Laborant"),
    "manager": ("Mia", "Manager"),
}
DEMO_DEVICE = "line1-gauge"
CREDENTIALS = "demo_credentials.txt"

PRODUCTS = [
    ("RING-74", "Piston ring 74 mm", "Compression ring, nominal bore 74 mm."),
    ("SHAFT-20", "Drive shaft 20 mm", "Hardened drive shaft, nominal diameter 20 mm."),
]
TESTS: list[dict[str, Any]] = [
    {
        "code": "RING-DIA",
        "name": "Ring inside diameter",
        "unit": "mm",
        "kind": TestKind.VARIABLE,
        "decimals": 3,
        "plausible_min": 70.0,
        "plausible_max": 78.0,
        "instructions": "Bore gauge at three angles; enter the mean.",
    },
    {
        "code": "RING-WALL",
        "name": "Ring wall thickness",
        "unit": "mm",
        "kind": TestKind.VARIABLE,
        "decimals": 3,
        "plausible_min": 2.0,
        "plausible_max": 6.0,
        "instructions": "Micrometer, three places 120° apart.",
    },
    {
        "code": "SURF-DEF",
        "name": "Surface defects",
        "unit": "count",
        "kind": TestKind.DEFECTS,
        "decimals": 0,
        "instructions": "Count scratches, pits and burrs under the inspection lamp.",
    },
    {
        "code": "SHAFT-OD",
        "name": "Shaft outer diameter",
        "unit": "mm",
        "kind": TestKind.VARIABLE,
        "decimals": 4,
        "plausible_min": 18.0,
        "plausible_max": 22.0,
        "instructions": "Laser micrometer at the bearing seat.",
    },
    {
        "code": "LEAK",
        "name": "Leak test",
        "unit": "",
        "kind": TestKind.DEFECTIVES,
        "decimals": 0,
        "instructions": "Pressure decay test; enter 1 for a leak, 0 for a pass.",
    },
]
# (code, name, product, [(test, replicates, results verified by a second person)]): the ring's lab
# plan asks for four eyes on every result, so `lab2` verifies what `tester` enters.
PLANS = [
    (
        "RING-FINAL",
        "Piston ring final inspection",
        "RING-74",
        [("RING-DIA", 1, True), ("RING-WALL", 3, True), ("SURF-DEF", 1, True)],
    ),
    (
        "SHAFT-FINAL",
        "Drive shaft final inspection",
        "SHAFT-20",
        [("SHAFT-OD", 1, False), ("LEAK", 1, False)],
    ),
]
WHERE = {"site": "Plant 1", "area": "Machining", "line": "Line 1"}
CHARACTERISTICS: dict[tuple[str, str], dict[str, Any]] = {
    ("RING-74", "RING-DIA"): {
        "lsl": 73.95,
        "target": 74.0,
        "usl": 74.05,
        "subgroup_size": 5,
        "cell": "Cell 1",
        "data_source": DataSource.TAG,
        "tag": "plant1/machining/line1/cell1/ring-diameter",
    },
    ("RING-74", "RING-WALL"): {"lsl": 3.9, "target": 4.0, "usl": 4.1, "subgroup_size": 1, "cell": "Cell 2"},
    ("RING-74", "SURF-DEF"): {"usl": 6, "subgroup_size": 1, "cell": "Cell 2"},
    ("SHAFT-20", "SHAFT-OD"): {
        "lsl": 19.98,
        "target": 20.0,
        "usl": 20.02,
        "subgroup_size": 1,
        "cell": "Cell 3",
        # A laser micrometer behind a Sparkplug B edge node (the plant simulator plays it).
        "data_source": DataSource.SPARKPLUG,
        "tag": "Line1/Cell3/ShaftOD",
    },
    ("SHAFT-20", "LEAK"): {"subgroup_size": 1, "cell": "Cell 3"},
}

# Sampling schedules: the lab samples the ring's wall every hour and the shaft's leak test once per
# lot (due and overdue on the worklist and the overview); the two gauges fed by MQTT are expected
# every 5 minutes (silence beyond that, plus the grace time, is "Not receiving data").
SCHEDULES: dict[tuple[str, str], dict[str, Any]] = {
    ("RING-74", "RING-WALL"): {"kind": ScheduleKind.INTERVAL, "every_minutes": 60, "grace_minutes": 15},
    ("SHAFT-20", "LEAK"): {"kind": ScheduleKind.LOT, "grace_minutes": 60},
    ("RING-74", "RING-DIA"): {"kind": ScheduleKind.INTERVAL, "every_minutes": 5, "grace_minutes": 5},
    ("SHAFT-20", "SHAFT-OD"): {"kind": ScheduleKind.INTERVAL, "every_minutes": 5, "grace_minutes": 5},
}


def credentials_path() -> Path:
    return Path(settings.VAR_DIR) / CREDENTIALS


def _sign_in(role: str, username: str, password: str) -> str:
    """A sign-in as the credentials file keeps it (demo_password reads it back)."""
    return f"{role}: username {username}  password {password}"


def demo_password(username: str) -> str | None:
    """The password demo_setup gave the demo user `username`, read back from the credentials file:
    the newest line (a user removed by hand is created again with a new password). None when the
    file does not hold one. For the demo seeds that sign as a demo user (demo_records)."""
    try:
        text = credentials_path().read_text()
    except FileNotFoundError:
        return None
    line = re.compile(rf"^[^:]+: username {re.escape(username)}  password (\S+)$")
    found = [match.group(1) for match in map(line.match, text.splitlines()) if match]
    return found[-1] if found else None


class Command(BaseCommand):
    help = "Create demo users, a demo device and demo configuration (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            created = self._users()
            self._configuration()
            created += self._device()
        path = credentials_path()
        if created:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Created owner-only before anything is written to it.
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(descriptor, "a") as out:
                out.writelines(f"{line}\n" for line in created)
            self.stdout.write("Demo sign-ins (shown once; also kept in var/demo_credentials.txt):")
            for line in created:
                self.stdout.write(f"  {line}")
        else:
            self.stdout.write(f"Demo data present; sign-ins are in {path}.")

    def _users(self) -> list[str]:
        user_model = get_user_model()
        lines = []
        for username, role, staff in DEMO_USERS:
            if user_model.objects.filter(username=username).exists():
                continue
            # Random, and held to the same policy as any password (PASSWORD_MIN_LENGTH and the rest):
            # token_urlsafe(n) gives at least n characters.
            password = secrets.token_urlsafe(max(16, settings.PASSWORD_MIN_LENGTH))
            first, last = DEMO_NAMES[username]
            user = user_model(username=username, is_staff=staff, first_name=first, last_name=last)
            validate_password(password, user)
            user.set_password(password)
            user.save()
            user.groups.add(Group.objects.get(name=role))
            lines.append(_sign_in(role, username, password))
        return lines

    def _device(self) -> list[str]:
        """The demo gauge, bound to the demo products (everything on Line 1). A demo database from
        before devices had a binding gets it here, so its device token keeps working."""
        products = list(Product.objects.filter(code__in=[code for code, _, _ in PRODUCTS]))
        device = Device.objects.filter(name=DEMO_DEVICE).first()
        if device is not None:
            if not device.products.exists() and not device.characteristics.exists():
                services.device_update(device=device, data={"products": products})
            return []
        _, token = services.device_create(
            name=DEMO_DEVICE, description="Demo gauge on Line 1", products=products
        )
        return [f"Device {DEMO_DEVICE}: Authorization: Device {token}"]

    def _configuration(self) -> None:
        if Product.objects.filter(code=PRODUCTS[0][0]).exists():
            return
        for code, name, description in PRODUCTS:
            services.product_create(code=code, name=name, description=description)
        tests = {data["code"]: services.test_create(**data) for data in TESTS}
        quality = get_user_model().objects.get(username="quality")
        for code, name, product_code, entries in PLANS:
            plan = services.test_plan_create(
                code=code, name=name,
                entries=[
                    services.PlanEntryInput(test=tests[t], replicates=r, requires_verification=v)
                    for t, r, v in entries
                ],
            )  # fmt: skip
            # A seed: nobody is at the keyboard to sign, so the release is stored unsigned (see
            # test_plan_release); the audit trail shows it came from the system.
            plan = services.test_plan_release(
                plan=plan, user=quality, reason="Demo configuration", signed_by_system=True
            )
            services.plan_assign(product=Product.objects.get(code=product_code), plan=plan, user=quality)
        for (product_code, test_code), data in CHARACTERISTICS.items():
            characteristic = Characteristic.objects.get(product__code=product_code, test__code=test_code)
            services.characteristic_update(
                characteristic=characteristic, data={**WHERE, **data}, reason="Demo configuration"
            )
        for (product_code, test_code), data in SCHEDULES.items():
            characteristic = Characteristic.objects.get(product__code=product_code, test__code=test_code)
            services.schedule_create(characteristic=characteristic, **data)

"""manage.py demo_setup: one user per role, a device, a small plant's configuration; safe to run again."""

import stat
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.config.choices import DataSource, PlanStatus
from apps.config.management.commands.demo_setup import demo_password
from apps.config.models import (
    Characteristic,
    ControlLimits,
    Device,
    PlanAssignment,
    Product,
    SamplingSchedule,
    Test,
    TestPlan,
    TestPlanEntry,
)
from openspc.roles import Role
from tests.factories import LotFactory

pytestmark = pytest.mark.django_db

MODELS = [Product, Test, TestPlan, TestPlanEntry, PlanAssignment, Characteristic, ControlLimits, Device]


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path


def _run() -> str:
    out = StringIO()
    call_command("demo_setup", stdout=out)
    return out.getvalue()


def _counts() -> dict[str, int]:
    counts = {model.__name__: model.objects.count() for model in MODELS}
    counts["users"] = get_user_model().objects.count()
    return counts


class DemoSetupTests:
    def test_creates_the_demo_and_is_idempotent(self, var_dir):
        first_output = _run()
        first = _counts()
        assert first == {
            "Product": 2,
            "Test": 5,
            "TestPlan": 2,
            "TestPlanEntry": 5,
            "PlanAssignment": 2,
            "Characteristic": 5,
            "ControlLimits": 0,  # demo_work sets them, through the engine
            "Device": 1,
            "users": 6,
        }
        credentials = (var_dir / "demo_credentials.txt").read_text()

        second_output = _run()
        assert _counts() == first
        assert "Demo sign-ins" in first_output
        assert "Demo data present" in second_output
        assert "password" not in second_output
        assert (var_dir / "demo_credentials.txt").read_text() == credentials

    def test_one_user_per_role_in_its_group(self, var_dir):
        _run()
        users = get_user_model().objects
        expected = {
            "quality": (Role.QUALITY_SPECIALIST, True),
            "operations": (Role.OPERATIONS_LEAD, False),
            "tester": (Role.TESTER, False),
            "lab2": (Role.TESTER, False),
            "manager": (Role.MANAGER, False),
            "device:line1-gauge": (Role.DEVICE, False),
        }
        for username, (role, staff) in expected.items():
            user = users.get(username=username)
            assert list(user.groups.values_list("name", flat=True)) == [str(role)], username
            assert user.is_staff is staff, username
            assert not user.is_superuser
        # A signature's manifest prints the signer's full name.
        assert users.get(username="quality").get_full_name() == "Quinn Quality"
        assert users.get(username="lab2").get_full_name() == "Lars Laborant"

    def test_credentials_file_is_private_and_works(self, var_dir):
        output = _run()
        path = var_dir / "demo_credentials.txt"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        lines = path.read_text().splitlines()
        assert len(lines) == 6
        by_role = {line.split(":", 1)[0]: line for line in lines}
        assert set(by_role) == {*(str(role) for role in Role if role != Role.DEVICE), "Device line1-gauge"}
        for line in lines:
            assert line in output  # shown once, on the run that created them

        password = by_role["Quality Specialist"].split("password ", 1)[1].strip()
        tokens = APIClient().post("/api/v1/auth/token/", {"username": "quality", "password": password})
        assert tokens.status_code == 200
        token = by_role["Device line1-gauge"].rsplit(" ", 1)[1]
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Device {token}")
        assert client.get("/api/v1/me/").json()["username"] == "device:line1-gauge"

    def test_a_second_lab_user_signs_in_so_verification_can_be_tried(self, var_dir):
        """Two people in the lab: one enters a result, the other can verify it."""
        output = _run()
        lines = (var_dir / "demo_credentials.txt").read_text().splitlines()
        testers = sorted(
            line.split("username ", 1)[1].split()[0] for line in lines if line.startswith("Tester:")
        )
        assert testers == ["lab2", "tester"]
        (line,) = [line for line in lines if "username lab2 " in line]
        assert line in output
        password = line.split("password ", 1)[1].strip()
        assert len(password) >= settings.PASSWORD_MIN_LENGTH
        tokens = APIClient().post("/api/v1/auth/token/", {"username": "lab2", "password": password})
        assert tokens.status_code == 200, tokens.content

    def test_plans_are_released_and_assigned(self, var_dir):
        _run()
        plans = {plan.code: plan for plan in TestPlan.objects.all()}
        assert set(plans) == {"RING-FINAL", "SHAFT-FINAL"}
        assert all(plan.status == PlanStatus.RELEASED for plan in plans.values())
        assert [(e.test.code, e.replicates) for e in plans["RING-FINAL"].entries.order_by("position")] == [
            ("RING-DIA", 1),
            ("RING-WALL", 3),
            ("SURF-DEF", 1),
        ]
        # Four eyes on the ring's lab results (lab2 verifies what tester enters); none on the shaft's.
        verified = dict(TestPlanEntry.objects.values_list("test__code", "requires_verification"))
        assert verified == {
            "RING-DIA": True, "RING-WALL": True, "SURF-DEF": True, "SHAFT-OD": False, "LEAK": False,
        }  # fmt: skip
        assert set(PlanAssignment.objects.values_list("product__code", "plan__code")) == {
            ("RING-74", "RING-FINAL"),
            ("SHAFT-20", "SHAFT-FINAL"),
        }

    def test_characteristics_have_specifications(self, var_dir):
        _run()
        c = {
            (ch.product.code, ch.test.code): ch
            for ch in Characteristic.objects.select_related("product", "test")
        }
        ring = c["RING-74", "RING-DIA"]
        assert (ring.lsl, ring.target, ring.usl, ring.subgroup_size) == (73.95, 74.0, 74.05, 5)
        assert ring.effective_chart_type == "xbar_r"
        assert (ring.data_source, ring.tag) == (DataSource.TAG, "plant1/machining/line1/cell1/ring-diameter")
        assert (ring.site, ring.area, ring.line, ring.cell) == ("Plant 1", "Machining", "Line 1", "Cell 1")
        assert (c["RING-74", "RING-WALL"].lsl, c["RING-74", "RING-WALL"].usl) == (3.9, 4.1)
        assert c["RING-74", "SURF-DEF"].usl == 6
        assert c["RING-74", "SURF-DEF"].effective_chart_type == "u"
        assert c["SHAFT-20", "LEAK"].effective_chart_type == "p"
        shaft = c["SHAFT-20", "SHAFT-OD"]
        assert (shaft.lsl, shaft.target, shaft.usl) == (19.98, 20.0, 20.02)
        assert (shaft.data_source, shaft.tag) == (DataSource.SPARKPLUG, "Line1/Cell3/ShaftOD")
        assert all(ch.line == "Line 1" for ch in c.values())

    def test_the_lab_and_the_gauges_have_sampling_schedules(self, var_dir):
        _run()
        schedules = {
            (s.characteristic.product.code, s.characteristic.test.code): s.describe()
            for s in SamplingSchedule.objects.select_related(
                "characteristic__product", "characteristic__test"
            )
        }
        assert schedules == {
            ("RING-74", "RING-WALL"): "every 60 min",
            ("SHAFT-20", "LEAK"): "once per lot",
            ("RING-74", "RING-DIA"): "every 5 min",
            ("SHAFT-20", "SHAFT-OD"): "every 5 min",
        }

    def test_missing_users_are_recreated_without_touching_the_rest(self, var_dir):
        _run()
        get_user_model().objects.filter(username="manager").delete()
        before = _counts()
        output = _run()
        assert _counts() == {**before, "users": before["users"] + 1}
        assert "Manager: username manager" in output
        assert get_user_model().objects.get(username="manager").groups.get().name == Role.MANAGER
        lines = (var_dir / "demo_credentials.txt").read_text().splitlines()
        assert len(lines) == 7  # appended, the earlier lines kept

    def test_demo_password_reads_the_newest_sign_in_back(self, var_dir):
        """What demo_records signs with as lab2: the password that works now, or None."""
        assert demo_password("lab2") is None  # no credentials file yet
        _run()
        first = demo_password("lab2")
        assert first is not None
        assert get_user_model().objects.get(username="lab2").check_password(first)
        assert demo_password("lab") is None
        assert demo_password("tester") != first
        get_user_model().objects.filter(username="lab2").delete()
        _run()  # created again, with a new password on a new line
        second = demo_password("lab2")
        assert second != first
        assert get_user_model().objects.get(username="lab2").check_password(second)

    def test_the_demo_device_is_bound_to_the_demo_products_and_posts(self, var_dir):
        output = _run()
        device = Device.objects.get(name="line1-gauge")
        assert sorted(device.products.values_list("code", flat=True)) == ["RING-74", "SHAFT-20"]
        LotFactory(product=Product.objects.get(code="SHAFT-20"), number="D-1")
        token = output.split("Authorization: Device ", 1)[1].split()[0]
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Device {token}")
        body = [{"product": "SHAFT-20", "test": "SHAFT-OD", "lot": "D-1", "values": [20.001]}]
        assert client.post("/api/v1/device/observations/", body, format="json").status_code == 202

    def test_a_demo_device_from_before_the_binding_is_bound_on_the_next_run(self, var_dir):
        _run()
        device = Device.objects.get(name="line1-gauge")
        device.products.clear()
        _run()
        assert device.products.count() == 2

"""Assigning released plans to products: characteristics, periods, ending, and no deleting."""

import datetime

import pytest
from django.utils import timezone

from apps.config import services
from apps.config.choices import ChartType
from apps.config.models import Characteristic, PlanAssignment
from tests.config.helpers import error_of
from tests.factories import ProductFactory, TestFactory, TestPlanFactory, UserFactory, released_plan
from tests.support.signing import release_signer

pytestmark = pytest.mark.django_db

ASSIGNMENTS = "/api/v1/plan-assignments/"


def _day(month: int, day: int) -> datetime.datetime:
    return datetime.datetime(2025, month, day, tzinfo=datetime.UTC)


# Periods are half-open: "January" is [JAN_1, FEB_1).
JAN_1, JAN_31, FEB_1, MAR_31, APR_1 = _day(1, 1), _day(1, 31), _day(2, 1), _day(3, 31), _day(4, 1)


@pytest.fixture
def qs_api(api, quality_specialist):
    return api(quality_specialist)


def _characteristics(product) -> list[tuple[str, str]]:
    return list(
        Characteristic.objects.filter(product=product)
        .order_by("test__code")
        .values_list("test__code", "chart_type")
    )


def _assign(product, plan, start, end=None):
    return services.plan_assign(product=product, plan=plan, effective_from=start, effective_to=end)


class AssignTests:
    def test_assign_creates_one_characteristic_per_test(self, qs_api, quality_specialist):
        product = ProductFactory()
        plan = released_plan(
            TestFactory(code="DIA"),
            TestFactory(code="LEAK", kind="defectives"),
            TestFactory(code="SURF", kind="defects"),
        )
        body = {"product": product.pk, "plan": plan.pk, "effective_from": "2025-01-01"}
        response = qs_api.post(ASSIGNMENTS, body)
        assert response.status_code == 201, response.content
        data = response.json()
        assert (data["product"], data["plan"], data["effective_from"], data["effective_to"]) == (
            product.pk,
            plan.pk,
            "2025-01-01T00:00:00Z",
            None,
        )
        assert data["assigned_by"] == "qs"
        assignment = PlanAssignment.objects.get()
        assert (assignment.assigned_by, assignment.effective_from) == (quality_specialist, JAN_1)
        assert _characteristics(product) == [
            ("DIA", ChartType.AUTO),
            ("LEAK", ChartType.P),
            ("SURF", ChartType.U),
        ]

    def test_effective_from_defaults_to_now(self, qs_api):
        product, plan = ProductFactory(), released_plan(TestFactory())
        before = timezone.now()
        response = qs_api.post(ASSIGNMENTS, {"product": product.pk, "plan": plan.pk})
        assert response.status_code == 201, response.content
        stored = PlanAssignment.objects.get().effective_from
        assert before <= stored <= timezone.now()
        assert response.json()["effective_from"] == stored.isoformat().replace("+00:00", "Z")

    def test_effective_from_to_the_second(self, qs_api):
        product, plan = ProductFactory(), released_plan(TestFactory())
        body = {"product": product.pk, "plan": plan.pk, "effective_from": "2025-01-01T10:15:30+01:00"}
        response = qs_api.post(ASSIGNMENTS, body)
        assert response.status_code == 201, response.content
        assert PlanAssignment.objects.get().effective_from == datetime.datetime(
            2025, 1, 1, 9, 15, 30, tzinfo=datetime.UTC
        )

    def test_a_moment_in_the_past_is_allowed(self, qs_api):
        """A quality specialist may cover measurements already taken (as with days before)."""
        product, plan = ProductFactory(), released_plan(TestFactory())
        earlier = timezone.now() - datetime.timedelta(hours=3)
        body = {"product": product.pk, "plan": plan.pk, "effective_from": earlier.isoformat()}
        assert qs_api.post(ASSIGNMENTS, body, format="json").status_code == 201
        assert PlanAssignment.objects.get().effective_from == earlier

    def test_overlapping_plans_do_not_duplicate_characteristics(self, qs_api):
        product = ProductFactory()
        dia, wall, surf = TestFactory(code="DIA"), TestFactory(code="WALL"), TestFactory(code="SURF")
        first = released_plan(dia, wall)
        _assign(product, first, JAN_1)
        dia_characteristic = Characteristic.objects.get(product=product, test=dia)
        services.characteristic_update(
            characteristic=dia_characteristic, data={"lsl": 1.0, "usl": 2.0}, reason="new drawing"
        )

        second = released_plan(wall, surf, dia)
        response = qs_api.post(
            ASSIGNMENTS, {"product": product.pk, "plan": second.pk, "effective_from": "2025-02-01"}
        )
        assert response.status_code == 201, response.content
        assert [code for code, _ in _characteristics(product)] == ["DIA", "SURF", "WALL"]
        kept = Characteristic.objects.get(product=product, test=dia)
        assert (kept.pk, kept.lsl, kept.usl) == (dia_characteristic.pk, 1.0, 2.0)

    def test_new_version_of_an_assigned_plan_reuses_characteristics(self):
        product = ProductFactory()
        dia = TestFactory(code="DIA")
        v1 = released_plan(dia)
        _assign(product, v1, JAN_1, FEB_1)
        v2 = services.test_plan_new_version(plan=v1)
        services.test_plan_set_tests(plan=v2, entries=[services.PlanEntryInput(test=dia, replicates=3)])
        v2 = services.test_plan_release(signer=release_signer(), plan=v2, user=UserFactory(), reason="v2")
        _assign(product, v2, FEB_1)
        assert Characteristic.objects.filter(product=product).count() == 1
        assert PlanAssignment.objects.filter(product=product).count() == 2

    def test_the_same_plan_on_two_products(self):
        plan = released_plan(TestFactory(code="DIA"))
        first, second = ProductFactory(), ProductFactory()
        _assign(first, plan, JAN_1)
        _assign(second, plan, JAN_1)
        assert _characteristics(first) == _characteristics(second) == [("DIA", ChartType.AUTO)]

    @pytest.mark.parametrize("state", ["draft", "retired"])
    def test_draft_or_retired_plan_is_400_naming_plan(self, qs_api, state):
        product = ProductFactory()
        plan = TestPlanFactory(tests=[TestFactory()])
        if state == "retired":
            services.test_plan_retire(
                plan=services.test_plan_release(
                    signer=release_signer(), plan=plan, user=UserFactory(), reason="in use"
                )
            )
        error = error_of(qs_api.post(ASSIGNMENTS, {"product": product.pk, "plan": plan.pk}), 400, "plan")
        assert "Only released plans" in error["message"]
        assert not PlanAssignment.objects.exists()
        assert not Characteristic.objects.exists()

    def test_inactive_product_is_400_naming_product(self, qs_api):
        product, plan = ProductFactory(active=False), released_plan(TestFactory())
        error_of(qs_api.post(ASSIGNMENTS, {"product": product.pk, "plan": plan.pk}), 400, "product")
        assert not PlanAssignment.objects.exists()
        assert not Characteristic.objects.exists()

    @pytest.mark.parametrize("field", ["product", "plan"])
    def test_unknown_product_or_plan_is_400(self, qs_api, field):
        body = {"product": ProductFactory().pk, "plan": released_plan(TestFactory()).pk, field: 999999}
        error_of(qs_api.post(ASSIGNMENTS, body), 400, field)
        assert not PlanAssignment.objects.exists()

    @pytest.mark.parametrize(
        ("existing", "new"),
        [
            ((JAN_1, None), ("2025-06-01", None)),
            ((JAN_1, FEB_1), ("2025-01-31T23:59:59Z", None)),
            ((FEB_1, None), ("2025-01-01", "2025-02-01T00:00:01Z")),
            ((JAN_1, MAR_31), ("2025-02-01", "2025-02-28")),
            ((JAN_1, None), ("2025-01-01", None)),
        ],
        ids=["open-after-open", "starts-before-the-end", "ends-after-the-start", "inside", "same-start"],
    )
    def test_overlapping_period_for_the_same_product_and_plan_is_400(self, qs_api, existing, new):
        product, plan = ProductFactory(), released_plan(TestFactory())
        _assign(product, plan, *existing)
        body = {"product": product.pk, "plan": plan.pk, "effective_from": new[0], "effective_to": new[1]}
        error = error_of(qs_api.post(ASSIGNMENTS, body), 400, "plan")
        assert "overlaps" in error["message"]
        assert PlanAssignment.objects.count() == 1

    def test_adjacent_periods_are_fine(self, qs_api):
        """The end is exclusive: the next assignment may start at the very moment the last one ends."""
        product, plan = ProductFactory(), released_plan(TestFactory())
        _assign(product, plan, JAN_1, _day(1, 31).replace(hour=14, minute=5))
        body = {"product": product.pk, "plan": plan.pk, "effective_from": "2025-01-31T14:05:00Z"}
        assert qs_api.post(ASSIGNMENTS, body).status_code == 201
        assert PlanAssignment.objects.count() == 2
        assert Characteristic.objects.filter(product=product).count() == 1

    def test_end_before_start_is_400(self, qs_api):
        product, plan = ProductFactory(), released_plan(TestFactory())
        body = {
            "product": product.pk,
            "plan": plan.pk,
            "effective_from": "2025-02-01",
            "effective_to": "2025-01-31",
        }
        error_of(qs_api.post(ASSIGNMENTS, body), 400, "effective_to")
        assert not PlanAssignment.objects.exists()
        assert not Characteristic.objects.exists()


class EndTests:
    def test_patch_effective_to_ends_the_assignment(self, qs_api):
        assignment = _assign(ProductFactory(), released_plan(TestFactory()), JAN_1)
        response = qs_api.patch(f"{ASSIGNMENTS}{assignment.pk}/", {"effective_to": "2025-01-31"})
        assert response.status_code == 200, response.content
        assert response.json()["effective_to"] == "2025-01-31T00:00:00Z"
        assert PlanAssignment.objects.get(pk=assignment.pk).effective_to == JAN_31

    def test_end_an_hour_after_the_start_is_allowed(self, qs_api):
        assignment = _assign(ProductFactory(), released_plan(TestFactory()), JAN_1)
        response = qs_api.patch(f"{ASSIGNMENTS}{assignment.pk}/", {"effective_to": "2025-01-01T01:00:00Z"})
        assert response.status_code == 200, response.content
        assert PlanAssignment.objects.get(pk=assignment.pk).effective_to == JAN_1.replace(hour=1)

    def test_end_at_the_start_is_400(self, qs_api):
        """An empty period [t, t) covers nothing: the end must come after the start."""
        assignment = _assign(ProductFactory(), released_plan(TestFactory()), JAN_1)
        response = qs_api.patch(f"{ASSIGNMENTS}{assignment.pk}/", {"effective_to": "2025-01-01"})
        assert "after effective_from" in error_of(response, 400, "effective_to")["message"]
        assert PlanAssignment.objects.get(pk=assignment.pk).effective_to is None

    def test_end_before_start_is_400(self, qs_api):
        assignment = _assign(ProductFactory(), released_plan(TestFactory()), FEB_1)
        error_of(
            qs_api.patch(f"{ASSIGNMENTS}{assignment.pk}/", {"effective_to": "2025-01-31"}),
            400,
            "effective_to",
        )
        assert PlanAssignment.objects.get(pk=assignment.pk).effective_to is None

    def test_product_plan_and_start_cannot_be_changed(self, qs_api):
        product, plan = ProductFactory(), released_plan(TestFactory())
        assignment = _assign(product, plan, JAN_1)
        other_product, other_plan = ProductFactory(), released_plan(TestFactory())
        body = {"product": other_product.pk, "plan": other_plan.pk, "effective_from": "2024-01-01"}
        assert qs_api.patch(f"{ASSIGNMENTS}{assignment.pk}/", body).status_code == 200
        assignment.refresh_from_db()
        assert (assignment.product, assignment.plan, assignment.effective_from) == (product, plan, JAN_1)

    def test_an_ended_assignment_of_a_retired_plan_can_be_ended(self, qs_api):
        plan = released_plan(TestFactory())
        assignment = _assign(ProductFactory(), plan, JAN_1)
        services.test_plan_retire(plan=plan)
        assert (
            qs_api.patch(f"{ASSIGNMENTS}{assignment.pk}/", {"effective_to": "2025-04-01"}).status_code == 200
        )
        assert PlanAssignment.objects.get(pk=assignment.pk).effective_to == APR_1

    @pytest.mark.parametrize(
        "new_end", ["2025-03-31", "2025-02-01T00:00:01Z", None], ids=["extend", "by-a-second", "reopen"]
    )
    def test_extending_into_a_later_assignment_is_400(self, qs_api, new_end):
        product, plan = ProductFactory(), released_plan(TestFactory())
        first = _assign(product, plan, JAN_1, FEB_1)
        _assign(product, plan, FEB_1)
        response = qs_api.patch(f"{ASSIGNMENTS}{first.pk}/", {"effective_to": new_end}, format="json")
        error_of(response, 400, "effective_to")
        assert PlanAssignment.objects.get(pk=first.pk).effective_to == FEB_1

    @pytest.mark.parametrize("method", ["delete", "put"])
    def test_delete_and_put_are_not_allowed(self, qs_api, method):
        assignment = _assign(ProductFactory(), released_plan(TestFactory()), JAN_1)
        response = getattr(qs_api, method)(f"{ASSIGNMENTS}{assignment.pk}/", {"effective_to": "2025-01-31"})
        error = error_of(response, 405)
        assert error["code"] == "method_not_allowed"
        assert PlanAssignment.objects.get(pk=assignment.pk).effective_to is None


class ListTests:
    def test_filter_by_effective_at(self, qs_api):
        product, plan = ProductFactory(), released_plan(TestFactory())
        january = _assign(product, plan, JAN_1, FEB_1)
        from_february = _assign(product, plan, FEB_1)

        def ids(moment: str) -> list[int]:
            response = qs_api.get(ASSIGNMENTS, {"effective_at": moment})
            assert response.status_code == 200, response.content
            return sorted(row["id"] for row in response.json()["results"])

        assert ids("2024-12-31T23:59:59Z") == []
        assert ids("2025-01-01") == [january.pk]
        assert ids("2025-01-31T23:59:59Z") == [january.pk]
        assert ids("2025-02-01T00:00:00Z") == [from_february.pk]  # exclusive end
        assert ids("2030-01-01") == [from_february.pk]

    def test_invalid_effective_at_is_400(self, qs_api):
        error_of(qs_api.get(ASSIGNMENTS, {"effective_at": "yesterday"}), 400, "effective_at")

    def test_filter_by_product_and_plan(self, qs_api):
        first, second = ProductFactory(), ProductFactory()
        plan_a, plan_b = released_plan(TestFactory()), released_plan(TestFactory())
        a1 = _assign(first, plan_a, JAN_1)
        _assign(first, plan_b, JAN_1)
        a3 = _assign(second, plan_a, JAN_1)
        rows = qs_api.get(ASSIGNMENTS, {"plan": plan_a.pk}).json()["results"]
        assert sorted(row["id"] for row in rows) == sorted([a1.pk, a3.pk])
        rows = qs_api.get(ASSIGNMENTS, {"product": second.pk}).json()["results"]
        assert [row["id"] for row in rows] == [a3.pk]

    def test_list_query_count(self, qs_api, django_assert_max_num_queries):
        for _ in range(6):
            services.plan_assign(
                product=ProductFactory(), plan=released_plan(TestFactory()), user=UserFactory()
            )
        with django_assert_max_num_queries(6):
            response = qs_api.get(ASSIGNMENTS)
        rows = response.json()["results"]
        assert len(rows) == 6
        assert all(row["assigned_by"].startswith("user") for row in rows)


def test_patch_response_keeps_a_null_assigned_by(api, quality_specialist):
    """DRF drops a field's default on partial updates; assigned_by must still be in the body."""
    assignment = services.plan_assign(product=ProductFactory(), plan=released_plan(TestFactory()))
    response = api(quality_specialist).patch(
        f"/api/v1/plan-assignments/{assignment.pk}/", {"effective_to": "2031-01-01"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["assigned_by"] is None
    assert response.json()["effective_to"] == "2031-01-01T00:00:00Z"

"""Plan versions take effect at a moment, so a wrong version is replaced within minutes, not from the
next day; a retired plan comes back as a new version; the worklist asks only for plans in effect."""

import datetime

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.config import services as config_services
from apps.config.choices import PlanStatus
from apps.config.models import PlanAssignment, TestPlan
from apps.observations import services
from apps.observations.choices import ObservationStatus
from apps.observations.models import Observation
from tests.config.helpers import error_of
from tests.factories import TestFactory, UserFactory, released_plan
from tests.support.signing import QS_SIGNATURE, release_signer

pytestmark = pytest.mark.django_db

ASSIGNMENTS = "/api/v1/plan-assignments/"
PLANS = "/api/v1/test-plans/"
ME_ITEMS = "/api/v1/me/items/"


def _post_and_process(client, item, test, values) -> Observation:
    """What the tester's page and the observations.in worker do: post, then confirm."""
    response = client.post(
        "/api/v1/observations/", {"item": item.pk, "test": test.pk, "values": values}, format="json"
    )
    assert response.status_code == 202, response.content
    [pk] = response.json()["ids"]
    services.observations_process(ids=[pk])
    return Observation.objects.get(pk=pk)


class NewVersionEffectiveNowTests:
    def test_a_plan_version_assigned_effective_now_confirms_the_very_next_observation(
        self, api, plant, quality_specialist, operations_lead
    ):
        """RING v1 asks WALL ×3 but the lab takes one value: the first one is rejected. The quality
        specialist releases v2 (WALL ×1), ends v1 now and assigns v2 from now (no effective_from);
        the operations lead moves the item to v2; the tester's next value is confirmed."""
        qs, ops, tester = api(quality_specialist), api(operations_lead), api(plant.tester)
        item = plant.items[0]
        first = _post_and_process(tester, item, plant.wall, [1.2])
        assert first.status == ObservationStatus.REJECTED
        assert [r["code"] for r in first.reasons] == ["replicate_count"]

        v2_id = qs.post(f"{PLANS}{plant.ring.pk}/new-version/").json()["id"]
        tests = [{"test": plant.dia.pk, "replicates": 1}, {"test": plant.wall.pk, "replicates": 1}]
        assert qs.post(f"{PLANS}{v2_id}/tests/", {"tests": tests}, format="json").status_code == 200
        assert (
            qs.post(
                f"{PLANS}{v2_id}/release/", {"reason": "three replicates", "signature": QS_SIGNATURE}
            ).status_code
            == 200
        )
        v1_assignment = PlanAssignment.objects.get(plan=plant.ring)
        now = timezone.now().isoformat()
        ended = qs.patch(f"{ASSIGNMENTS}{v1_assignment.pk}/", {"effective_to": now}, format="json")
        assert ended.status_code == 200, ended.content
        assigned = qs.post(ASSIGNMENTS, {"product": plant.product.pk, "plan": v2_id}, format="json")
        assert assigned.status_code == 201, assigned.content
        selected = ops.post(
            "/api/v1/items/select-plans/", {"items": [item.pk], "plans": [v2_id]}, format="json"
        )
        assert selected.status_code == 200, selected.content

        second = _post_and_process(tester, item, plant.wall, [1.25])  # another value: not a retry
        assert (second.status, second.reasons) == (ObservationStatus.CONFIRMED, [])
        assert second.pk != first.pk
        assert second.observed_at >= PlanAssignment.objects.get(plan_id=v2_id).effective_from

    def test_an_observation_made_before_the_switch_is_judged_by_the_plan_then(self, plant):
        """observed_at, not the moment of processing, chooses the plan: a value measured under v1 and
        processed after v1 ended is still confirmed against v1."""
        measured = timezone.now() - datetime.timedelta(minutes=5)
        [pk] = plant.record(
            {"item": plant.items[0], "test": plant.dia, "values": [74.0], "observed_at": measured}
        )
        assignment = PlanAssignment.objects.get(plan=plant.ring)
        config_services.plan_assignment_end(
            assignment=assignment, effective_to=measured + datetime.timedelta(minutes=1)
        )
        services.observations_process(ids=[pk])
        assert Observation.objects.get(pk=pk).status == ObservationStatus.CONFIRMED

        [late] = plant.record({"item": plant.items[1], "test": plant.dia, "values": [74.0]})
        services.observations_process(ids=[late])
        assert [r["code"] for r in Observation.objects.get(pk=late).reasons] == ["not_effective"]


class ReinstateTests:
    def test_a_retired_plan_comes_back_as_the_next_draft_version(self, api, plant, quality_specialist):
        qs = api(quality_specialist)
        v2 = config_services.test_plan_new_version(plan=plant.ring)
        config_services.test_plan_set_tests(
            plan=v2, entries=[config_services.PlanEntryInput(test=plant.dia, replicates=2)]
        )
        v2 = config_services.test_plan_release(
            signer=release_signer(), plan=v2, user=UserFactory(), reason="three replicates"
        )
        config_services.test_plan_retire(plan=plant.ring)

        response = qs.post(f"{PLANS}{plant.ring.pk}/reinstate/")
        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["code"], body["version"], body["status"]) == ("RING", 3, PlanStatus.DRAFT)
        assert [(e["test"], e["replicates"]) for e in body["entries"]] == [
            (plant.dia.pk, 1),
            (plant.wall.pk, 3),
        ]
        assert TestPlan.objects.get(pk=plant.ring.pk).status == PlanStatus.RETIRED
        # The plan's entry: another model's row may have the same id.
        entry = AuditEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(TestPlan), object_id=str(body["id"])
        ).get()
        assert entry.user == quality_specialist
        assert "Reinstated from retired RING v1" in entry.reason

        # Released and assigned like any version, it is in effect at once.
        assert (
            qs.post(
                f"{PLANS}{body['id']}/release/", {"reason": "back in use", "signature": QS_SIGNATURE}
            ).status_code
            == 200
        )
        PlanAssignment.objects.filter(product=plant.product).update(effective_to=timezone.now())
        assigned = qs.post(ASSIGNMENTS, {"product": plant.product.pk, "plan": body["id"]}, format="json")
        assert assigned.status_code == 201, assigned.content

    @pytest.mark.parametrize("state", ["released", "draft"])
    def test_only_a_retired_plan_is_reinstated(self, api, quality_specialist, state):
        plan = released_plan(TestFactory(), code="LIVE")
        if state == "draft":
            plan = config_services.test_plan_new_version(plan=plan)
        response = api(quality_specialist).post(f"{PLANS}{plan.pk}/reinstate/")
        assert "Only a retired plan" in error_of(response, 400)["message"]
        assert TestPlan.objects.filter(code="LIVE").count() == (1 if state == "released" else 2)

    @pytest.mark.parametrize("role", ["operations_lead", "tester"])
    def test_other_roles_cannot_reinstate(self, api, request, role):
        plan = released_plan(TestFactory(), code="GONE")
        config_services.test_plan_retire(plan=plan)
        response = api(request.getfixturevalue(role)).post(f"{PLANS}{plan.pk}/reinstate/")
        assert response.status_code == 403
        assert TestPlan.objects.filter(code="GONE").count() == 1


class PickerTests:
    def test_the_plan_picker_offers_only_released_plans_in_effect_for_the_product(
        self, api, plant, quality_specialist
    ):
        draft = config_services.test_plan_new_version(plan=plant.ring)
        ended = released_plan(TestFactory(), code="ENDED")
        config_services.plan_assign(
            product=plant.product, plan=ended, effective_from=timezone.now() - datetime.timedelta(days=2),
            effective_to=timezone.now() - datetime.timedelta(seconds=1),
        )  # fmt: skip
        later = released_plan(TestFactory(), code="LATER")
        config_services.plan_assign(
            product=plant.product, plan=later, effective_from=timezone.now() + datetime.timedelta(hours=1)
        )
        retired = released_plan(TestFactory(), code="RETIRED")
        config_services.plan_assign(product=plant.product, plan=retired)
        config_services.test_plan_retire(plan=retired)
        released_plan(TestFactory(), code="UNASSIGNED")

        response = api(quality_specialist).get(PLANS, {"in_effect_for": plant.product.pk})
        assert response.status_code == 200, response.content
        assert [(row["code"], row["version"]) for row in response.json()["results"]] == [("RING", 1)]
        assert draft.pk not in [row["id"] for row in response.json()["results"]]

    def test_the_lot_form_refuses_a_draft(self, plant):
        from apps.web.forms import LotOpenForm

        draft = config_services.test_plan_new_version(plan=plant.ring)
        choices = set(LotOpenForm().fields["plans"].queryset.values_list("pk", flat=True))
        assert choices == {plant.ring.pk}
        assert draft.pk not in choices

    def test_the_admin_autocomplete_offers_no_draft(self, client, plant, quality_specialist):
        draft = config_services.test_plan_new_version(plan=plant.ring)
        client.force_login(quality_specialist)
        response = client.get(
            "/admin/autocomplete/",
            {"app_label": "config", "model_name": "planassignment", "field_name": "plan", "term": "RING"},
        )
        assert response.status_code == 200, response.content
        ids = [int(row["id"]) for row in response.json()["results"]]
        assert ids == [plant.ring.pk]
        assert draft.pk not in ids


class WorklistTests:
    def _due(self, api, plant) -> dict[str, list[str]]:
        response = api(plant.tester).get(ME_ITEMS)
        assert response.status_code == 200, response.content
        return {row["serial"]: [t["code"] for t in row["tests_due"]] for row in response.json()["results"]}

    def test_an_item_on_a_plan_in_effect_lists_its_tests(self, api, plant):
        assert self._due(api, plant) == {
            "0001": ["DIA", "WALL"],
            "0002": ["DIA", "WALL"],
            "0003": ["DIA", "WALL"],
        }

    def test_a_retired_plans_tests_are_not_offered(self, api, plant):
        config_services.test_plan_retire(plan=plant.ring)
        assert self._due(api, plant) == {}

    def test_an_ended_assignments_tests_are_not_offered(self, api, plant):
        assignment = PlanAssignment.objects.get(plan=plant.ring)
        config_services.plan_assignment_end(assignment=assignment, effective_to=timezone.now())
        assert self._due(api, plant) == {}

    def test_only_the_plan_in_effect_is_offered_when_an_item_has_two(self, api, plant):
        rough = TestFactory(code="ROUGH")
        other = released_plan(rough, code="ROUGH")
        config_services.plan_assign(product=plant.product, plan=other)
        services.items_select_plans(items=plant.items[:1], plans=[plant.ring, other])
        config_services.test_plan_retire(plan=plant.ring)
        assert self._due(api, plant) == {"0001": ["ROUGH"]}

    def test_the_web_worklist_has_no_work_once_the_plan_is_retired(self, client, plant):
        from apps.web.selectors import worklist_has_work

        assert worklist_has_work(user=plant.tester)
        config_services.test_plan_retire(plan=plant.ring)
        assert not worklist_has_work(user=plant.tester)

"""POST /api/v1/samples/ (a whole subgroup, judged before the answer) and GET /api/v1/samples/
(catch-up by characteristic and sequence, paged by cursor)."""

import statistics
from urllib.parse import parse_qs, urlparse

import pytest

from apps.calculations.models import Violation
from apps.observations.choices import LotStatus, ObservationStatus
from apps.observations.models import Observation, Sample
from openspc.roles import Role
from tests.calculations.api_helpers import (
    SAMPLES,
    assigned_item,
    dia_of,
    historical,
    sized,
    subgroups_store,
    submit,
)
from tests.config.helpers import error_of
from tests.factories import ItemFactory, LotFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def dia(plant):
    """DIA of RING-74 (n = 1) with limits 74 ± 0.03 (σ = 0.01)."""
    characteristic = dia_of(plant)
    historical(characteristic, center=74.0, sigma=0.01)
    return characteristic


def _counts():
    return Observation.objects.count(), Sample.objects.count(), Violation.objects.count()


class SubmitTests:
    def test_an_in_control_value_is_stored_confirmed_and_answered_judged(self, api, plant, dia):
        response = submit(api(plant.tester), dia, [74.004], lot=plant.lot, item=plant.items[0].pk)
        assert response.status_code == 201, response.content
        body = response.json()
        observation = Observation.objects.get()
        sample = Sample.objects.get()
        assert body["observation"] == observation.pk
        assert body["violations"] == []
        assert body["sample"] == {
            **body["sample"],
            "id": sample.pk, "characteristic": dia.pk, "sequence": 1, "lot": plant.lot.pk, "values": [74.004],
            "observation_ids": [observation.pk], "n": 1, "mean": 74.004, "range": None, "sd": None,
            "statistic": 74.004, "undersized": False, "in_control": True, "limits_version": 1,
        }  # fmt: skip
        assert (observation.status, observation.sample_id, observation.user) == (
            ObservationStatus.CONFIRMED, sample.pk, plant.tester,
        )  # fmt: skip
        assert (observation.item, observation.lot, observation.test) == (plant.items[0], plant.lot, plant.dia)
        assert (sample.in_control, sample.limits_version, sample.values) == (True, 1, [74.004])

    def test_a_subgroup_of_five_answers_its_mean_range_and_sd(self, api, plant):
        five = sized(plant, 5)
        assigned_item(plant, five)
        historical(five, center=10.0, sigma=1.0)
        values = [9.5, 10.25, 10.0, 11.0, 9.75]
        body = submit(api(plant.tester), five, values, lot=plant.lot, item=plant.items[0].pk).json()["sample"]
        assert body["n"] == 5
        assert body["values"] == values
        assert body["mean"] == pytest.approx(statistics.fmean(values), rel=1e-12)
        assert body["range"] == pytest.approx(1.5, rel=1e-12)
        assert body["sd"] == pytest.approx(statistics.stdev(values), rel=1e-12)
        assert (body["in_control"], body["limits_version"]) == (True, 1)
        sample = Sample.objects.get(characteristic=five)
        assert (sample.n, sample.mean, sample.range) == (5, body["mean"], body["range"])

    def test_a_subgroup_far_beyond_the_limits_is_a_rule_1_violation(self, api, plant, dia):
        client = api(plant.tester)
        for value in (74.001, 73.998, 74.003):
            assert (
                submit(client, dia, [value], lot=plant.lot, item=plant.items[0].pk).json()["violations"] == []
            )
        response = submit(client, dia, [74.08], lot=plant.lot, item=plant.items[0].pk)  # 8 σ above the centre
        assert response.status_code == 201, response.content
        body = response.json()
        sample = Sample.objects.get(characteristic=dia, sequence=4)
        assert (body["sample"]["id"], body["sample"]["in_control"]) == (sample.pk, False)
        # The jump is also a moving range beyond the MR chart's UCL (rule 1 on MR: points 3 and 4).
        assert [(v["rule"], v["chart"], v["points"], v["severity"]) for v in body["violations"]] == [
            (1, "dispersion", [3, 4], "critical"),
            (1, "location", [4], "critical"),
        ]
        violation = Violation.objects.get(sample=sample, chart="location")
        assert (violation.rule, violation.points, violation.limits_version) == (1, [4], 1)
        assert body["violations"][1] == {
            **body["violations"][1], "id": violation.pk, "sample": sample.pk, "sequence": 4,
            "lot": plant.lot.pk, "characteristic": dia.pk, "limits_version": 1,
        }  # fmt: skip
        assert sample.in_control is False
        assert sorted(v["id"] for v in body["violations"]) == sorted(
            Violation.objects.filter(sample=sample).values_list("pk", flat=True)
        )

    def test_a_retry_with_the_same_key_answers_the_same_sample_and_writes_nothing(self, api, plant, dia):
        client = api(plant.tester)
        first = submit(
            client, dia, [74.08], lot=plant.lot, item=plant.items[0].pk, idempotency_key="gauge-run-1"
        )
        assert first.status_code == 201, first.content
        before = _counts()
        assert before == (1, 1, len(first.json()["violations"]))
        assert before[2] >= 1
        again = submit(
            client, dia, [74.08], lot=plant.lot, item=plant.items[0].pk, idempotency_key="gauge-run-1"
        )
        assert again.status_code == 201, again.content
        assert again.json() == first.json()
        assert _counts() == before
        other = submit(
            client, dia, [74.08], lot=plant.lot, item=plant.items[0].pk, idempotency_key="gauge-run-2"
        )
        assert other.json()["sample"]["sequence"] == 2  # another key is another subgroup
        assert _counts()[:2] == (2, 2)

    def test_a_key_reused_for_another_characteristic_is_refused(self, api, plant, dia):
        client = api(plant.tester)
        five = sized(plant, 5)
        assigned_item(plant, five)
        item = plant.items[0].pk
        first = submit(client, dia, [74.0], lot=plant.lot, item=item, idempotency_key="k-1").json()
        error = error_of(
            submit(client, five, [1.0] * 5, lot=plant.lot, item=item, idempotency_key="k-1"), 409
        )
        assert error["code"] == "idempotency_key_reused"
        assert (
            f"key 'k-1' was used for observation {first['observation']} with another test" in error["message"]
        )
        other_lot = LotFactory(product=plant.product, number="L-2")
        there = ItemFactory(lot=other_lot, plans=[plant.ring], tester=plant.tester)
        error = error_of(
            submit(client, dia, [74.0], lot=other_lot, item=there.pk, idempotency_key="k-1"), 409
        )
        assert "with another item, lot." in error["message"]
        error = error_of(submit(client, dia, [74.3], lot=plant.lot, item=item, idempotency_key="k-1"), 409)
        assert "with another values." in error["message"]  # used to answer the first subgroup as if stored
        assert _counts() == (1, 1, 0)

    def test_without_limits_a_sample_is_stored_unjudged(self, api, plant):
        fresh = sized(plant, 1)
        assigned_item(plant, fresh)
        body = submit(api(plant.tester), fresh, [1234.5], lot=plant.lot, item=plant.items[0].pk).json()
        assert (body["sample"]["in_control"], body["sample"]["limits_version"], body["violations"]) == (
            None, None, [],
        )  # fmt: skip
        assert Sample.objects.get(characteristic=fresh).in_control is None

    def test_the_same_value_on_two_items_is_two_subgroups_and_on_one_item_a_retry(self, api, plant, dia):
        """Data entry names the item (testers), so without a key the same values on the same item
        and at the same time are a retry, as on POST /observations/; two items are two readings
        even when a gauge of 0.001 mm gives both the same value."""
        client = api(plant.tester)
        first = submit(client, dia, [74.002], lot=plant.lot, item=plant.items[0].pk).json()
        second = submit(client, dia, [74.002], lot=plant.lot, item=plant.items[1].pk).json()
        assert (first["sample"]["sequence"], second["sample"]["sequence"]) == (1, 2)
        assert second["observation"] != first["observation"]
        assert _counts() == (2, 2, 0)
        again = submit(client, dia, [74.002], lot=plant.lot, item=plant.items[1].pk).json()
        assert again == second
        at = {"observed_at": "2025-03-01T08:00:00Z"}
        third = submit(client, dia, [74.002], lot=plant.lot, item=plant.items[1].pk, **at).json()
        assert third["sample"]["sequence"] == 3  # another time: another reading
        assert (
            Observation.objects.get(pk=third["observation"]).observed_at.isoformat()
            == "2025-03-01T08:00:00+00:00"
        )
        assert _counts() == (3, 3, 0)

    @pytest.mark.parametrize("values", [[74.0, 74.01], []])
    def test_a_wrong_number_of_measurements_is_refused_before_anything_is_stored(
        self, api, plant, dia, quality_specialist, values
    ):
        error = error_of(
            submit(api(plant.tester), dia, values, lot=plant.lot, item=plant.items[0].pk), 400, "measurements"
        )
        assert _counts() == (0, 0, 0)
        if values:
            assert "subgroups of 1 value(s); got 2" in error["message"]

    def test_four_values_for_a_subgroup_of_five_are_refused(self, api, plant):
        five = sized(plant, 5)
        item = assigned_item(plant, five).pk
        response = submit(api(plant.tester), five, [1.0, 2.0, 3.0, 4.0], lot=plant.lot, item=item)
        error = error_of(response, 400, "measurements")
        assert "subgroups of 5 value(s); got 4" in error["message"]
        assert _counts() == (0, 0, 0)

    def test_measurements_that_are_not_numbers_are_refused(self, api, plant, dia):
        error_of(
            submit(api(plant.tester), dia, ["74.0"], lot=plant.lot, item=plant.items[0].pk),
            400,
            "measurements",
        )
        error_of(
            submit(api(plant.tester), dia, [True], lot=plant.lot, item=plant.items[0].pk), 400, "measurements"
        )
        assert _counts() == (0, 0, 0)

    def test_a_lot_of_another_product_is_refused(self, api, plant, dia):
        foreign = LotFactory(number="X-9")
        error = error_of(submit(api(plant.tester), dia, [74.0], lot=foreign), 400, "context.lot")
        assert error["message"] == "context.lot: Lot X-9 is not a lot of RING-74."
        assert _counts() == (0, 0, 0)

    @pytest.mark.parametrize("status", [LotStatus.RELEASED, LotStatus.REJECTED])
    def test_a_closed_lot_is_refused(self, api, plant, dia, status):
        plant.lot.status = status
        plant.lot.save()
        error = error_of(
            submit(api(plant.tester), dia, [74.0], lot=plant.lot, item=plant.items[0].pk), 400, "context.lot"
        )
        assert error["message"] == f"context.lot: Lot L-1 is {status}; it takes no more samples."
        assert _counts() == (0, 0, 0)

    def test_an_unknown_lot_or_item_is_refused(self, api, plant, dia):
        client = api(plant.tester)
        error = error_of(submit(client, dia, [74.0], lot=99_999_999), 400, "context.lot")
        assert "Lot 99999999 does not exist" in error["message"]
        elsewhere = ItemFactory(lot=LotFactory(product=plant.product, number="L-2"))
        error = error_of(submit(client, dia, [74.0], lot=plant.lot, item=elsewhere.pk), 400, "context.item")
        assert f"Item {elsewhere.pk} is not in lot L-1" in error["message"]
        assert _counts() == (0, 0, 0)

    def test_an_unknown_characteristic_is_refused(self, api, plant):
        response = submit(api(plant.tester), 99_999_999, [74.0], lot=plant.lot, item=plant.items[0].pk)
        error = error_of(response, 400, "characteristic_id")
        assert error["message"] == "characteristic_id: Characteristic 99999999 does not exist."
        assert _counts() == (0, 0, 0)

    def test_an_inactive_characteristic_is_refused(self, api, plant, dia):
        dia.active = False
        dia.save()
        error = error_of(
            submit(api(plant.tester), dia, [74.0], lot=plant.lot, item=plant.items[0].pk),
            400,
            "characteristic_id",
        )
        assert "inactive" in error["message"]
        assert _counts() == (0, 0, 0)

    def test_a_missing_lot_is_refused(self, api, plant, dia):
        response = api(plant.tester).post(
            SAMPLES, {"characteristic_id": dia.pk, "measurements": [74.0], "context": {}}, format="json"
        )
        error = error_of(response, 400, "context")
        assert error["fields"]["context"] == {"lot": ["This field is required."]}
        assert _counts() == (0, 0, 0)


class SubmitPermissionTests:
    def test_a_tester_must_name_an_item_assigned_to_them(self, api, plant, dia, other_tester):
        error = error_of(submit(api(plant.tester), dia, [74.0], lot=plant.lot), 403)
        assert error["message"] == "Testers enter data for an item assigned to them: name the item."
        error_of(submit(api(other_tester), dia, [74.0], lot=plant.lot, item=plant.items[0].pk), 403)
        unassigned = ItemFactory(lot=plant.lot, serial="0009", plans=[plant.ring])
        error_of(submit(api(plant.tester), dia, [74.0], lot=plant.lot, item=unassigned.pk), 403)
        assert _counts() == (0, 0, 0)

    def test_a_tester_submits_for_their_item(self, api, plant, dia):
        item = plant.items[1]
        response = submit(api(plant.tester), dia, [74.002], lot=plant.lot, item=item.pk)
        assert response.status_code == 201, response.content
        observation = Observation.objects.get()
        assert (observation.item, observation.user, observation.status) == (
            item, plant.tester, ObservationStatus.CONFIRMED,
        )  # fmt: skip
        assert response.json()["sample"]["in_control"] is True

    @pytest.mark.parametrize("role", ["manager", "operations_lead", "quality_specialist"])
    def test_other_roles_do_not_enter_data(self, request, api, plant, dia, role):
        """Data entry is for testers and devices (docs/roles.md); an operations lead or a quality
        specialist may not post a result they did not measure, not even for an assigned item."""
        user = request.getfixturevalue(role)
        for context in ({}, {"item": plant.items[0].pk}):
            error = error_of(submit(api(user), dia, [74.0], lot=plant.lot, **context), 403)
            assert error["code"] == "permission_denied"
            assert error["message"].startswith("Only testers post here")
        assert not user.has_perm("observations.add_sample")
        assert _counts() == (0, 0, 0)

    def test_a_tester_who_also_leads_operations_still_enters_only_for_their_items(self, api, plant, dia):
        """Before, a tester with a broader role could submit at lot level or for anyone's item."""
        lead = UserFactory(username="lead-tester", roles=[Role.TESTER, Role.OPERATIONS_LEAD])
        error_of(submit(api(lead), dia, [74.0], lot=plant.lot), 403)
        error_of(submit(api(lead), dia, [74.0], lot=plant.lot, item=plant.items[0].pk), 403)
        mine = ItemFactory(lot=plant.lot, plans=[plant.ring], tester=lead)
        assert submit(api(lead), dia, [74.0], lot=plant.lot, item=mine.pk).status_code == 201
        assert _counts()[:2] == (1, 1)

    def test_devices_and_anonymous_callers_are_refused(self, api, plant, dia, device_api):
        error_of(submit(device_api, dia, [74.0], lot=plant.lot), 403)
        error_of(submit(api(None), dia, [74.0], lot=plant.lot), 401)
        assert _counts() == (0, 0, 0)

    def test_options_describe_the_body_to_those_who_may_post_it(self, api, plant, quality_specialist):
        response = api(plant.tester).options(SAMPLES)
        assert response.status_code == 200, response.content
        post = response.json()["actions"]["POST"]
        assert {"characteristic_id", "measurements", "context"} <= set(post)
        assert post["context"]["children"]["lot"]["required"] is True
        response = api(quality_specialist).options(SAMPLES)
        assert response.status_code == 200, response.content
        assert "POST" not in response.json().get("actions", {})


class RejectedSubmitTests:
    def test_an_implausible_value_is_stored_rejected_and_answered_400(self, api, plant, dia):
        error = error_of(submit(api(plant.tester), dia, [79.5], lot=plant.lot, item=plant.items[0].pk), 400)
        observation = Observation.objects.get()
        assert error["code"] == "observation_rejected"
        assert error["message"] == (
            f"Observation {observation.pk} was stored and rejected: the value (79.5) is outside the "
            "plausible range of DIA [70 … 78]."
        )
        assert observation.status == ObservationStatus.REJECTED
        assert [reason["code"] for reason in observation.reasons] == ["out_of_range"]
        assert (observation.values, observation.sample_id, observation.characteristic_id) == (
            [79.5],
            None,
            None,
        )
        assert _counts() == (1, 0, 0)

    def test_a_non_finite_value_is_stored_rejected_and_named(self, api, plant, dia):
        # 1e999 is valid JSON; Python reads it as infinity.
        raw = (
            f'{{"characteristic_id": {dia.pk}, "measurements": [1e999], '
            f'"context": {{"lot": {plant.lot.pk}, "item": {plant.items[0].pk}}}}}'
        )
        response = api(plant.tester).post(SAMPLES, raw, content_type="application/json")
        error = error_of(response, 400)
        observation = Observation.objects.get()
        assert error["code"] == "observation_rejected"
        assert "is not a finite number" in error["message"]
        assert str(observation.pk) in error["message"]
        assert observation.status == ObservationStatus.REJECTED
        assert observation.values == ["Infinity"]
        assert [reason["code"] for reason in observation.reasons] == ["not_a_number"]
        assert _counts() == (1, 0, 0)

    def test_a_retried_rejection_is_rejected_again_without_a_second_row(self, api, plant, dia):
        client = api(plant.tester)
        first = error_of(
            submit(client, dia, [60.0], lot=plant.lot, item=plant.items[0].pk, idempotency_key="k"), 400
        )
        second = error_of(
            submit(client, dia, [60.0], lot=plant.lot, item=plant.items[0].pk, idempotency_key="k"), 400
        )
        assert first == second
        assert _counts() == (1, 0, 0)


class CatchUpTests:
    def _pages(self, client, url):
        """Every page from `url` on, following `next`."""
        pages = []
        while url:
            response = client.get(url)
            assert response.status_code == 200, response.content
            pages.append(response.json())
            url = pages[-1]["next"]
        return pages

    def test_samples_come_in_sequence_order_across_cursor_pages(self, api, plant, dia, quality_specialist):
        other = sized(plant, 1, code="OTHER")
        for index in range(11):
            subgroups_store(dia, [[74.0 + index / 1000]], lot=plant.lot, user=quality_specialist)
            subgroups_store(other, [[float(index)]], lot=plant.lot, user=quality_specialist)
        client = api(quality_specialist)
        pages = self._pages(client, f"{SAMPLES}?characteristic={dia.pk}&page_size=4")
        assert [len(page["results"]) for page in pages] == [4, 4, 3]
        sequences = [row["sequence"] for page in pages for row in page["results"]]
        assert sequences == list(range(1, 12))
        assert {row["characteristic"] for page in pages for row in page["results"]} == {dia.pk}
        ids = [row["id"] for page in pages for row in page["results"]]
        assert ids == list(
            Sample.objects.filter(characteristic=dia).order_by("sequence").values_list("pk", flat=True)
        )
        assert pages[0]["previous"] is None
        assert "cursor" in parse_qs(urlparse(pages[1]["previous"]).query)

    def test_since_leaves_out_what_the_client_has(self, api, plant, dia, quality_specialist):
        subgroups_store(dia, [[74.0 + i / 1000] for i in range(8)], lot=plant.lot, user=quality_specialist)
        body = api(quality_specialist).get(SAMPLES, {"characteristic": dia.pk, "since": 5}).json()
        assert [row["sequence"] for row in body["results"]] == [6, 7, 8]
        assert body["results"][0]["mean"] == 74.005
        body = api(quality_specialist).get(SAMPLES, {"characteristic": dia.pk, "since": 8}).json()
        assert body["results"] == []
        assert body["next"] is None

    def test_a_cursor_keeps_working_while_new_samples_arrive(self, api, plant, dia, quality_specialist):
        subgroups_store(dia, [[74.0]] * 5, lot=plant.lot, user=quality_specialist)
        client = api(quality_specialist)
        first = client.get(SAMPLES, {"characteristic": dia.pk, "page_size": 3}).json()
        subgroups_store(dia, [[74.001]] * 2, lot=plant.lot, user=quality_specialist)
        rest = self._pages(client, first["next"])
        later = [r["sequence"] for page in rest for r in page["results"]]
        assert [r["sequence"] for r in first["results"]] + later == [1, 2, 3, 4, 5, 6, 7]

    def test_lot_and_in_control_filters(self, api, plant, dia, quality_specialist):
        other_lot = LotFactory(product=plant.product, number="L-2")
        subgroups_store(dia, [[74.0]], lot=plant.lot, user=quality_specialist)
        subgroups_store(dia, [[74.001]], lot=other_lot, user=quality_specialist)
        subgroups_store(dia, [[74.08]], lot=plant.lot, user=quality_specialist)
        client = api(quality_specialist)
        by_lot = client.get(SAMPLES, {"characteristic": dia.pk, "lot": other_lot.pk}).json()["results"]
        assert [(r["sequence"], r["lot"]) for r in by_lot] == [(2, other_lot.pk)]
        out = client.get(SAMPLES, {"characteristic": dia.pk, "in_control": "false"}).json()["results"]
        assert [r["sequence"] for r in out] == [3]

    def test_the_characteristic_is_required(self, api, plant, dia, quality_specialist):
        error = error_of(api(quality_specialist).get(SAMPLES), 400, "characteristic")
        assert error["message"] == "characteristic: Give the characteristic whose samples to list."
        error_of(api(quality_specialist).get(SAMPLES, {"characteristic": "abc"}), 400, "characteristic")

    def test_one_sample_reads_by_id(self, api, plant, dia, quality_specialist, manager):
        [sample] = subgroups_store(dia, [[74.002]], lot=plant.lot, user=quality_specialist)
        body = api(manager).get(f"{SAMPLES}{sample.pk}/").json()
        assert (body["id"], body["sequence"], body["mean"], body["in_control"]) == (
            sample.pk,
            1,
            74.002,
            True,
        )

    def test_testers_do_not_read_charts(self, api, plant, dia, quality_specialist):
        """A tester posts values for their items; samples are chart data, which testers do not read
        (they hold no view right on samples, and characteristics are hidden from them): 403, not an
        empty list that would look like "no data yet"."""
        [sample] = subgroups_store(dia, [[74.0]], lot=plant.lot, user=quality_specialist)
        error_of(api(plant.tester).get(SAMPLES, {"characteristic": dia.pk}), 403)
        error_of(api(plant.tester).get(f"{SAMPLES}{sample.pk}/"), 403)

    def test_managers_and_operations_leads_read_samples(self, api, plant, dia, quality_specialist, manager,
                                                        operations_lead):  # fmt: skip
        subgroups_store(dia, [[74.0]], lot=plant.lot, user=quality_specialist)
        for user in (manager, operations_lead):
            body = api(user).get(SAMPLES, {"characteristic": dia.pk}).json()
            assert [row["sequence"] for row in body["results"]] == [1]

    def test_the_query_count_does_not_grow_with_the_page(
        self, api, plant, dia, quality_specialist, django_assert_max_num_queries
    ):
        subgroups_store(dia, [[74.0 + i / 1000] for i in range(30)], lot=plant.lot, user=quality_specialist)
        client = api(quality_specialist)
        with django_assert_max_num_queries(6):
            small = client.get(SAMPLES, {"characteristic": dia.pk, "page_size": 2})
        with django_assert_max_num_queries(6):
            large = client.get(SAMPLES, {"characteristic": dia.pk, "page_size": 30})
        assert (len(small.json()["results"]), len(large.json()["results"])) == (2, 30)

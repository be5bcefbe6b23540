"""Reading violations: the list's filters, one violation with its pattern, and the counts (issue 5)."""

import datetime

import pytest

from apps.calculations.choices import Severity
from apps.calculations.models import AcknowledgementReason, Violation
from apps.observations.models import Sample
from tests.calculations.api_helpers import dia_of
from tests.factories import LotFactory, ProductFactory, TestFactory, characteristic_for

URL = "/api/v1/violations/"
UTC = datetime.UTC


class World:
    """DIA of RING-74 (lots L-1, L-2) and LEN of SHAFT-9 (lot S-1), with four violations:

    v1 rule 1 on DIA #3 (L-1), awaiting acknowledgement, 2025-01-01
    v2 rule 2 on DIA #3 (pattern #1–#3), awaiting, a warning, 2025-01-02
    v3 rule 1 on DIA #4 (L-2), informational (its rule needs no acknowledgement), 2025-01-03
    v4 rule 5 on LEN #2 (S-1, pattern #1–#2), a warning, acknowledged, 2025-01-04
    """

    def __init__(self, plant, manager) -> None:
        self.dia = dia_of(plant)
        self.shaft_product = ProductFactory(code="SHAFT-9")
        self.len = characteristic_for(self.shaft_product, TestFactory(code="LEN"))
        self.l1, self.l2 = plant.lot, LotFactory(product=plant.product, number="L-2")
        self.s1 = LotFactory(product=self.shaft_product, number="S-1")
        d = [self._sample(self.dia, n, self.l1 if n < 4 else self.l2, 74.0 + n / 100) for n in (1, 2, 3, 4)]
        s = [self._sample(self.len, n, self.s1, 10.0 + n) for n in (1, 2)]
        self.v1 = self._violation(d[2], 1, [3], "2025-01-01")
        self.v2 = self._violation(d[2], 2, [1, 2, 3], "2025-01-02", severity=Severity.WARNING)
        self.v3 = self._violation(d[3], 1, [4], "2025-01-03", requires_acknowledgement=False)
        self.v4 = self._violation(s[1], 5, [1, 2], "2025-01-04", severity=Severity.WARNING)
        Violation.objects.filter(pk=self.v4.pk).update(
            acknowledged_at=datetime.datetime(2025, 1, 5, tzinfo=UTC), acknowledged_by=manager,
            acknowledgement_reason=AcknowledgementReason.objects.get(code="no-action"),
        )  # fmt: skip
        self.names = {v.pk: name for name, v in vars(self).items() if isinstance(v, Violation)}

    @staticmethod
    def _sample(characteristic, sequence, lot, mean) -> Sample:
        return Sample.objects.create(
            characteristic=characteristic, sequence=sequence, lot=lot, values=[mean], observation_ids=[],
            n=1, mean=mean, in_control=True,
        )  # fmt: skip

    @staticmethod
    def _violation(sample, rule, points, day, **fields) -> Violation:
        fields.setdefault("severity", Severity.CRITICAL)
        violation = Violation.objects.create(
            characteristic=sample.characteristic, sample=sample, rule=rule, points=points, limits_version=1,
            **fields,
        )  # fmt: skip
        at = datetime.datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)
        Violation.objects.filter(pk=violation.pk).update(created_at=at)
        return violation

    def listed(self, response) -> list[str]:
        assert response.status_code == 200, response.content
        return sorted(self.names[row["id"]] for row in response.json()["results"])


@pytest.fixture
def world(plant, manager) -> World:
    return World(plant, manager)


class ViolationListTests:
    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ({}, ["v1", "v2", "v3", "v4"]),
            ({"characteristic": "dia"}, ["v1", "v2", "v3"]),
            ({"product": "shaft_product"}, ["v4"]),
            ({"lot": "l2"}, ["v3"]),
            ({"rule": 1}, ["v1", "v3"]),
            ({"acknowledged": "true"}, ["v4"]),
            ({"acknowledged": "false"}, ["v1", "v2"]),
            ({"requires_acknowledgement": "false"}, ["v3"]),
            ({"requires_acknowledgement": "true"}, ["v1", "v2", "v4"]),
            ({"severity": "warning"}, ["v2", "v4"]),
            ({"created_after": "2025-01-02T00:00:00Z"}, ["v2", "v3", "v4"]),
            ({"created_before": "2025-01-03T00:00:00Z"}, ["v1", "v2"]),
            ({"created_after": "2025-01-02T00:00:00Z", "created_before": "2025-01-03T00:00:00Z"}, ["v2"]),
            ({"characteristic": "dia", "acknowledged": "false", "rule": 2}, ["v2"]),
        ],
    )
    def test_each_filter_narrows_the_list(self, api, manager, world, query, expected):
        params = {k: getattr(world, v).pk if isinstance(v, str) and hasattr(world, v) else v
                  for k, v in query.items()}  # fmt: skip
        assert world.listed(api(manager).get(URL, params)) == expected

    def test_a_rule_outside_1_to_8_is_refused(self, api, manager, world):
        response = api(manager).get(URL, {"rule": 9})
        assert response.status_code == 400
        assert "rule" in response.json()["error"]["fields"]

    def test_newest_first_with_the_acknowledgement(self, api, manager, world):
        rows = api(manager).get(URL).json()["results"]
        assert [world.names[r["id"]] for r in rows] == ["v4", "v3", "v2", "v1"]
        assert rows[0]["acknowledged_by"] == manager.pk
        assert rows[0]["acknowledgement_reason"] == "no-action"
        assert rows[1]["requires_acknowledgement"] is False

    def test_the_list_takes_a_fixed_number_of_queries(
        self, api, manager, world, django_assert_max_num_queries
    ):
        client = api(manager)
        with django_assert_max_num_queries(8):
            assert len(client.get(URL).json()["results"]) == 4

    def test_managers_operations_leads_and_quality_specialists_read_testers_do_not(
        self, api, manager, operations_lead, quality_specialist, tester, world
    ):
        for user in (manager, operations_lead, quality_specialist):
            assert api(user).get(URL).status_code == 200
        for path in (URL, f"{URL}{world.v1.pk}/", f"{URL}stats/"):
            assert api(tester).get(path).status_code == 403


class ViolationDetailTests:
    def test_the_sample_and_the_pattern_samples(self, api, manager, world):
        response = api(manager).get(f"{URL}{world.v2.pk}/")
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["rule"], body["points"], body["sequence"]) == (2, [1, 2, 3], 3)
        assert body["subgroup"]["id"] == world.v2.sample_id
        assert body["subgroup"]["values"] == [74.03]
        assert body["subgroup"]["mean"] == pytest.approx(74.03)
        assert body["subgroup"]["statistic"] == pytest.approx(74.03)
        pattern = body["pattern"]
        assert [p["sequence"] for p in pattern] == [1, 2, 3]
        assert [p["statistic"] for p in pattern] == pytest.approx([74.01, 74.02, 74.03])
        assert {p["lot"] for p in pattern} == {world.l1.pk}
        assert all(p["created_at"] for p in pattern)

    def test_an_unknown_violation_is_404(self, api, manager, world):
        assert api(manager).get(f"{URL}999999/").status_code == 404


class ViolationStatsTests:
    def test_counts_by_rule_and_by_characteristic(self, api, manager, world):
        response = api(manager).get(f"{URL}stats/")
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["total"], body["unacknowledged"]) == (4, 2)
        assert body["by_rule"] == [
            {"rule": 1, "count": 2, "unacknowledged": 1},
            {"rule": 2, "count": 1, "unacknowledged": 1},
            {"rule": 5, "count": 1, "unacknowledged": 0},
        ]
        assert body["by_characteristic"] == [
            {"characteristic": world.dia.pk, "product_code": "RING-74", "test_code": "DIA", "count": 3,
             "unacknowledged": 2},
            {"characteristic": world.len.pk, "product_code": "SHAFT-9", "test_code": "LEN", "count": 1,
             "unacknowledged": 0},
        ]  # fmt: skip

    def test_the_list_filters_apply(self, api, manager, world):
        body = api(manager).get(f"{URL}stats/", {"lot": world.l2.pk}).json()
        assert (body["total"], body["unacknowledged"]) == (1, 0)  # v3 is informational
        assert body["by_rule"] == [{"rule": 1, "count": 1, "unacknowledged": 0}]
        body = api(manager).get(f"{URL}stats/", {"created_before": "2025-01-02T00:00:00Z"}).json()
        assert (body["total"], body["unacknowledged"]) == (1, 1)

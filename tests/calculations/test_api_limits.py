"""Control limits through the API: recalculate-limits (flow 4 of the seed), set-limits,
freeze-limits, and the limits history."""

import datetime

import numpy as np
import pytest
from django.core.cache import cache
from django.utils import timezone

from apps.audit.choices import AuditAction
from apps.audit.models import AuditEntry
from apps.calculations.models import ProductStatistics, Violation
from apps.calculations.services.calculate import window_key
from apps.config.choices import LimitMethod, TestKind
from apps.config.models import ControlLimits
from apps.observations.choices import LotStatus
from apps.observations.models import Sample
from apps.observations.services import lot_status_set
from apps.signatures.models import Signature
from spc import individuals_chart, p_chart, xbar_r_chart, xbar_s_chart
from tests.calculations.api_helpers import (
    assigned_item,
    characteristic_url,
    historical,
    sized,
    subgroups_store,
    submit,
)
from tests.config.helpers import error_of
from tests.factories import LotFactory
from tests.support.signing import QS_SIGNATURE, signature_body

pytestmark = pytest.mark.django_db

# subgroup size -> (engine chart, sigma method) by DESIGN.md: n = 1 I-MR, 2–10 X̄-R, > 10 X̄-S
CHARTS = {1: (individuals_chart, "mrbar_d2"), 5: (xbar_r_chart, "rbar_d2"), 12: (xbar_s_chart, "sbar_c4")}
SHIFTED = (9, 20)  # 0-based subgroups moved 5 σ up: rule 1 under the historical limits


def _recalculate(client, characteristic, **body):
    """POST recalculate-limits, with a reason unless the body gives its own (storing needs one)."""
    body = {"reason": "phase I", "signature": QS_SIGNATURE, **body}
    if body["signature"] is None:
        del body["signature"]
    return client.post(characteristic_url(characteristic, "recalculate-limits"), body, format="json")


def _subgroups(n, count=30, seed=11):
    rng = np.random.default_rng(seed + n)
    data = 50.0 + rng.standard_normal((count, n))
    for index in SHIFTED:
        if index < count:
            data[index] += 5.0
    return [[float(v) for v in row] for row in data]


def _engine(n, samples, exclude=()):
    chart, _ = CHARTS[n]
    data = [s.mean for s in samples] if n == 1 else [s.values for s in samples]
    return chart(data, exclude=exclude)


def _assert_lines(body, row, engine):
    """The answered limits, the stored version and the engine's chart agree."""
    expected = {
        "center": engine.center, "ucl": float(engine.location.ucl[0]), "lcl": float(engine.location.lcl[0]),
        "sigma": engine.sigma, "dispersion_center": float(engine.dispersion.center[0]),
        "dispersion_ucl": float(engine.dispersion.ucl[0]), "dispersion_lcl": float(engine.dispersion.lcl[0]),
    }  # fmt: skip
    for name, value in expected.items():
        assert body[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name
        assert getattr(row, name) == body[name], name


@pytest.fixture
def studied(plant, quality_specialist):
    """characteristic(n): subgroup size n, limits 50 ± 3σ (σ = 1) and 30 subgroups, two shifted."""

    def make(n):
        characteristic = sized(plant, n)
        historical(characteristic, center=50.0, sigma=1.0)
        samples = subgroups_store(characteristic, _subgroups(n), lot=plant.lot, user=quality_specialist)
        assert len(samples) == 30
        return characteristic, samples

    return make


class RecalculateTests:
    @pytest.mark.parametrize("n", [1, 5, 12])
    def test_limits_from_the_latest_samples_equal_the_engine_without_the_flagged_ones(
        self, api, studied, quality_specialist, n
    ):
        characteristic, samples = studied(n)
        baseline = samples[5:]  # the latest 25
        flagged = set(Violation.objects.filter(sample__in=baseline).values_list("sample_id", flat=True))
        positions = [i for i, sample in enumerate(baseline) if sample.pk in flagged]
        shifted = {samples[i].pk for i in SHIFTED}
        assert shifted <= flagged  # the planted shifts were seen, so there is something to leave out
        response = _recalculate(
            api(quality_specialist), characteristic, sample_count=25, exclude_out_of_control=True,
            reason="Phase I after the fixture change",
        )  # fmt: skip
        assert response.status_code == 200, response.content
        body = response.json()
        engine = _engine(n, baseline, exclude=positions)
        new = ControlLimits.objects.get(characteristic=characteristic, version=2)
        _assert_lines(body["new"], new, engine)
        assert body["method"] == CHARTS[n][1] == engine.sigma_method
        assert body["samples_used"] == 25 - len(positions)
        assert body["excluded"] == [
            {"sample": s.pk, "sequence": s.sequence, "why": "violation"} for s in baseline if s.pk in flagged
        ]
        assert new.excluded == body["excluded"]
        assert (body["previous"]["version"], body["previous"]["center"], body["previous"]["sigma"]) == (
            1,
            50.0,
            1.0,
        )
        assert (body["new"]["version"], body["new"]["method"], body["new"]["set_by"]) == (
            2,
            "calculated",
            "qs",
        )
        assert (new.reason, new.method, new.frozen, new.set_by) == (
            "Phase I after the fixture change", LimitMethod.CALCULATED, False, quality_specialist,
        )  # fmt: skip
        assert (new.baseline["first_sequence"], new.baseline["last_sequence"], new.baseline["samples"]) == (
            6, 30, 25 - len(positions),
        )  # fmt: skip
        # Leaving the shifted samples in gives other limits: the exclusion is what made these.
        assert abs(_engine(n, baseline).center - new.center) > 0.1

    @pytest.mark.parametrize("n", [1, 5])
    def test_without_exclusion_every_sample_counts(self, api, studied, quality_specialist, n):
        characteristic, samples = studied(n)
        body = _recalculate(
            api(quality_specialist), characteristic, sample_count=20, exclude_out_of_control=False
        ).json()  # fmt: skip
        engine = _engine(n, samples[10:])
        _assert_lines(
            body["new"], ControlLimits.objects.get(characteristic=characteristic, version=2), engine
        )
        assert (body["excluded"], body["samples_used"]) == ([], 20)
        assert body["new"]["reason"] == "phase I"

    def test_storing_recalculated_limits_needs_a_reason_a_preview_does_not(
        self, api, studied, quality_specialist
    ):
        characteristic, _ = studied(1)
        client = api(quality_specialist)
        url = characteristic_url(characteristic, "recalculate-limits")
        for body in ({"sample_count": 20}, {"sample_count": 20, "reason": "  "}):
            error = error_of(client.post(url, body, format="json"), 400, "reason")
            assert "Say why the limits change" in error["message"]
        assert ControlLimits.objects.filter(characteristic=characteristic).count() == 1
        preview = client.post(url, {"sample_count": 20, "preview": True}, format="json")
        assert preview.status_code == 200, preview.content
        assert ControlLimits.objects.filter(characteristic=characteristic).count() == 1

    def test_start_and_end_choose_the_samples_by_time(self, api, studied, quality_specialist):
        characteristic, samples = studied(1)
        base = timezone.now() - datetime.timedelta(days=30)
        for sample in samples:  # one sample a day
            Sample.objects.filter(pk=sample.pk).update(
                created_at=base + datetime.timedelta(days=sample.sequence)
            )
        start, end = base + datetime.timedelta(days=3), base + datetime.timedelta(days=15)
        body = _recalculate(
            api(quality_specialist), characteristic, sample_count=100, exclude_out_of_control=False,
            start=start.isoformat(), end=end.isoformat(),
        ).json()  # fmt: skip
        chosen = samples[2:14]  # days 3 … 14: the end is exclusive
        _assert_lines(body["new"], ControlLimits.objects.get(characteristic=characteristic, version=2),
                      _engine(1, chosen))  # fmt: skip
        assert (body["new"]["baseline"]["first_sequence"], body["new"]["baseline"]["last_sequence"]) == (
            3,
            14,
        )
        backwards = {"start": end.isoformat(), "end": start.isoformat()}
        error = error_of(_recalculate(api(quality_specialist), characteristic, **backwards), 400, "end")
        assert "after the start" in error["message"]

    def test_undersized_samples_are_not_in_the_baseline(self, api, plant, quality_specialist):
        """A lot closed with 3 of 5 values makes an undersized sample; X̄-R limits for n = 5 must not
        use its range (which estimates less spread)."""
        characteristic = sized(plant, 5)
        full = subgroups_store(characteristic, _subgroups(5, count=8), lot=plant.lot, user=quality_specialist)
        short_lot = LotFactory(product=plant.product, number="L-2")
        subgroups_store(characteristic, [[50.0, 50.1, 49.9]], lot=short_lot, user=quality_specialist)
        lot_status_set(lot=short_lot, status=LotStatus.REJECTED)
        undersized = Sample.objects.get(characteristic=characteristic, lot=short_lot)
        assert (undersized.undersized, undersized.n, undersized.sequence) == (True, 3, 9)
        body = _recalculate(
            api(quality_specialist), characteristic, sample_count=25, exclude_out_of_control=False
        ).json()  # fmt: skip
        assert body["samples_used"] == 8
        assert (body["new"]["baseline"]["first_sequence"], body["new"]["baseline"]["last_sequence"]) == (1, 8)
        _assert_lines(body["new"], ControlLimits.objects.get(characteristic=characteristic), _engine(5, full))

    def test_frozen_limits_are_not_recalculated(self, api, studied, quality_specialist):
        characteristic, _ = studied(1)
        client = api(quality_specialist)
        freeze = client.post(
            characteristic_url(characteristic, "freeze-limits"),
            {"reason": "audit", "signature": QS_SIGNATURE},
            format="json",
        )
        assert freeze.status_code == 200, freeze.content
        error = error_of(_recalculate(client, characteristic, sample_count=20), 409)
        assert error["code"] == "conflict"
        assert error["message"] == "The limits (v2) are frozen; unfreeze them first."
        assert list(characteristic.limits.values_list("version", flat=True).order_by("version")) == [1, 2]

    def test_too_few_samples_are_refused(self, api, plant, quality_specialist):
        characteristic = sized(plant, 1)
        client = api(quality_specialist)
        error = error_of(_recalculate(client, characteristic, sample_count=25), 400, "sample_count")
        assert "0 samples found" in error["message"]
        subgroups_store(characteristic, [[1.0]], lot=plant.lot, user=quality_specialist)
        error = error_of(_recalculate(client, characteristic, sample_count=25), 400, "sample_count")
        assert "1 samples found, 0 of them out of control: at least 2" in error["message"]
        error_of(_recalculate(client, characteristic, sample_count=1), 400, "sample_count")
        assert not ControlLimits.objects.filter(characteristic=characteristic).exists()

    def test_all_samples_out_of_control_leave_nothing_to_estimate_from(self, api, plant, quality_specialist):
        characteristic = sized(plant, 1)
        historical(characteristic, center=0.0, sigma=1.0)
        subgroups_store(characteristic, [[10.0], [10.5], [9.5]], lot=plant.lot, user=quality_specialist)
        error = error_of(
            _recalculate(api(quality_specialist), characteristic, sample_count=3), 400, "sample_count"
        )
        assert "3 samples found, 3 of them out of control" in error["message"]
        assert characteristic.limits.count() == 1

    def test_identical_samples_give_no_sigma(self, api, plant, quality_specialist):
        characteristic = sized(plant, 1)
        subgroups_store(characteristic, [[2.0]] * 5, lot=plant.lot, user=quality_specialist)
        error = error_of(
            _recalculate(api(quality_specialist), characteristic, sample_count=5), 400, "sample_count"
        )
        assert "no variation" in error["message"]
        assert characteristic.limits.count() == 0

    @pytest.mark.parametrize("role", ["tester", "manager", "operations_lead"])
    def test_only_quality_specialists_change_limits(self, api, studied, request, role):
        characteristic, _ = studied(1)
        client = api(request.getfixturevalue(role))
        for action, body in [
            ("recalculate-limits", {"sample_count": 20}),
            ("set-limits", {"center": 50.0, "sigma": 2.0, "reason": "x"}),
            ("freeze-limits", {"reason": "x"}),
        ]:
            error_of(client.post(characteristic_url(characteristic, action), body, format="json"), 403)
        assert characteristic.limits.count() == 1

    def test_new_limits_judge_the_next_sample(
        self, api, plant, quality_specialist, django_capture_on_commit_callbacks
    ):
        """A value that was out under the old limits is in under the recalculated ones: the window
        (kept in Redis after each calculation) is dropped and rebuilt for the new version."""
        characteristic = sized(plant, 1)
        client = api(quality_specialist)
        # Data entry is the tester's, for their item (the same value twice: two keys, two readings).
        tester, entry = (
            api(plant.tester),
            {"lot": plant.lot, "item": assigned_item(plant, characteristic).pk},
        )
        rng = np.random.default_rng(3)
        with django_capture_on_commit_callbacks(execute=True):
            historical(characteristic, center=50.0, sigma=1.0)
            subgroups_store(characteristic, [[float(v)] for v in 56.0 + rng.standard_normal(20)],
                            lot=plant.lot, user=quality_specialist)  # fmt: skip
            old = submit(tester, characteristic, [56.0], **entry, idempotency_key="old").json()["sample"]
        assert (old["sequence"], old["in_control"], old["limits_version"]) == (21, False, 1)
        assert cache.get(window_key(characteristic.pk))["fingerprint"]["version"] == 1
        with django_capture_on_commit_callbacks(execute=True):
            response = _recalculate(client, characteristic, sample_count=21, exclude_out_of_control=False)
        assert response.status_code == 200, response.content
        assert 55.0 < response.json()["new"]["center"] < 57.0
        assert cache.get(window_key(characteristic.pk)) is None
        with django_capture_on_commit_callbacks(execute=True):
            new = submit(tester, characteristic, [56.0], **entry, idempotency_key="new").json()
        assert (new["sample"]["sequence"], new["sample"]["in_control"], new["sample"]["limits_version"]) == (
            22, True, 2,
        )  # fmt: skip
        assert new["violations"] == []
        assert Sample.objects.get(characteristic=characteristic, sequence=21).limits_version == 1
        stored = Sample.objects.get(characteristic=characteristic, sequence=22)
        assert (stored.in_control, stored.limits_version) == (True, 2)
        assert cache.get(window_key(characteristic.pk))["fingerprint"]["version"] == 2

    def test_product_statistics_take_the_new_limits(self, api, studied, quality_specialist):
        characteristic, _ = studied(5)
        body = _recalculate(api(quality_specialist), characteristic, sample_count=25).json()
        stats = ProductStatistics.objects.get(characteristic=characteristic)
        assert (stats.limits_version, stats.sigma_within, stats.sigma_source) == (
            2,
            body["new"]["sigma"],
            "limits",
        )


class PreviewTests:
    """`"preview": true`: the answer a recalculation would give, with nothing stored or sent."""

    def test_a_preview_answers_what_the_recalculation_then_stores(
        self, api, studied, quality_specialist, django_capture_on_commit_callbacks
    ):
        characteristic, samples = studied(5)
        client = api(quality_specialist)
        audited = AuditEntry.objects.count()
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            preview = _recalculate(client, characteristic, sample_count=25, preview=True, reason="phase I")
        assert preview.status_code == 200, preview.content
        assert callbacks == []  # no limits.changed event, no window invalidation
        body = preview.json()
        assert characteristic.limits.count() == 1  # nothing stored
        assert AuditEntry.objects.count() == audited
        assert (body["new"]["id"], body["new"]["created_at"], body["new"]["version"]) == (None, None, 2)
        assert body["previous"]["version"] == 1
        flagged = set(Violation.objects.filter(sample__in=samples[5:]).values_list("sample_id", flat=True))
        positions = [i for i, sample in enumerate(samples[5:]) if sample.pk in flagged]
        engine = _engine(5, samples[5:], exclude=positions)
        assert body["new"]["ucl"] == pytest.approx(float(engine.location.ucl[0]), rel=1e-12)
        assert body["new"]["dispersion_ucl"] == pytest.approx(float(engine.dispersion.ucl[0]), rel=1e-12)

        confirmed = _recalculate(client, characteristic, sample_count=25, reason="phase I").json()
        lines = ("center", "ucl", "lcl", "sigma", "dispersion_center", "dispersion_ucl", "dispersion_lcl")
        for name in lines:
            assert confirmed["new"][name] == body["new"][name], name
        assert (confirmed["samples_used"], confirmed["excluded"]) == (body["samples_used"], body["excluded"])
        stored = ControlLimits.objects.get(characteristic=characteristic, version=2)
        assert confirmed["new"]["id"] == stored.pk

    def test_a_preview_of_frozen_limits_is_refused_too(self, api, studied, quality_specialist):
        characteristic, _ = studied(1)
        client = api(quality_specialist)
        client.post(
            characteristic_url(characteristic, "freeze-limits"),
            {"reason": "audit", "signature": QS_SIGNATURE},
            format="json",
        )
        error = error_of(_recalculate(client, characteristic, sample_count=20, preview=True), 409)
        assert error["message"] == "The limits (v2) are frozen; unfreeze them first."

    def test_only_quality_specialists_preview(self, api, studied, manager):
        characteristic, _ = studied(1)
        error_of(_recalculate(api(manager), characteristic, sample_count=20, preview=True), 403)


class SetLimitsTests:
    def test_variables_limits_from_a_known_centre_and_sigma(self, api, plant, quality_specialist):
        characteristic = sized(plant, 5)
        response = api(quality_specialist).post(
            characteristic_url(characteristic, "set-limits"),
            {"center": 10.0, "sigma": 0.5, "reason": "Supplier capability study", "signature": QS_SIGNATURE},
            format="json",
        )
        assert response.status_code == 200, response.content
        body = response.json()
        row = ControlLimits.objects.get(characteristic=characteristic)
        engine = xbar_r_chart([[10.0] * 5] * 2, center=10.0, sigma=0.5)
        _assert_lines(body["new"], row, engine)
        assert body["new"]["ucl"] == pytest.approx(10.0 + 3 * 0.5 / np.sqrt(5), rel=1e-12)
        assert (body["previous"], body["method"], body["samples_used"], body["excluded"]) == (
            None,
            "given",
            0,
            [],
        )
        assert (row.version, row.method, row.reason, row.set_by) == (
            1, LimitMethod.HISTORICAL, "Supplier capability study", quality_specialist,
        )  # fmt: skip
        assert row.baseline == {"given": {"center": 10.0, "sigma": 0.5}, "chart": "xbar_r"}

    def test_a_p_chart_takes_its_centre_only(self, api, plant, quality_specialist):
        characteristic = sized(plant, 25, code="CRACK", kind=TestKind.DEFECTIVES)
        response = api(quality_specialist).post(
            characteristic_url(characteristic, "set-limits"),
            {"center": 0.04, "reason": "last year", "signature": QS_SIGNATURE},
            format="json",
        )
        assert response.status_code == 200, response.content
        new = response.json()["new"]
        engine = p_chart([1.0, 1.0], 25, center=0.04).chart
        sigma = np.sqrt(0.04 * 0.96 / 25)
        assert new["center"] == pytest.approx(0.04, rel=1e-12)
        assert new["sigma"] == pytest.approx(sigma, rel=1e-12) == float(engine.sigma[0])
        assert new["ucl"] == pytest.approx(0.04 + 3 * sigma, rel=1e-12) == float(engine.ucl[0])
        assert new["lcl"] == 0.0 == float(engine.lcl[0])  # 0.04 − 3σ < 0: clipped
        assert (new["dispersion_center"], new["dispersion_ucl"]) == (None, None)
        assert ControlLimits.objects.get(characteristic=characteristic).ucl == new["ucl"]

    def test_variables_limits_need_a_positive_sigma(self, api, plant, quality_specialist):
        characteristic = sized(plant, 1)
        client = api(quality_specialist)
        url = characteristic_url(characteristic, "set-limits")
        error_of(client.post(url, {"center": 10.0, "reason": "x"}, format="json"), 400, "sigma")
        error_of(client.post(url, {"center": 10.0, "sigma": 0, "reason": "x"}, format="json"), 400, "sigma")
        error_of(client.post(url, {"center": 10.0, "sigma": 1.0}, format="json"), 400, "reason")
        raw = '{"center": 1e999, "sigma": 1.0, "reason": "x"}'
        error_of(client.post(url, raw, content_type="application/json"), 400, "center")
        assert characteristic.limits.count() == 0

    def test_a_new_version_keeps_the_old_one(self, api, plant, quality_specialist):
        characteristic = sized(plant, 1)
        historical(characteristic, center=5.0, sigma=1.0)
        given = {"center": 6.0, "sigma": 2.0, "reason": "new gauge", "signature": QS_SIGNATURE}
        url = characteristic_url(characteristic, "set-limits")
        body = api(quality_specialist).post(url, given, format="json").json()
        assert (body["previous"]["version"], body["new"]["version"]) == (1, 2)
        assert list(characteristic.limits.order_by("version").values_list("center", "sigma")) == [
            (5.0, 1.0), (6.0, 2.0),
        ]  # fmt: skip


class FreezeTests:
    def test_freeze_refuse_a_second_freeze_and_unfreeze(self, api, plant, quality_specialist):
        characteristic = sized(plant, 1)
        historical(characteristic, center=5.0, sigma=1.0)
        client = api(quality_specialist)
        url = characteristic_url(characteristic, "freeze-limits")
        frozen = client.post(url, {"reason": "PPAP submitted", "signature": QS_SIGNATURE}, format="json")
        assert frozen.status_code == 200, frozen.content
        body = frozen.json()
        assert (body["previous"]["version"], body["previous"]["frozen"]) == (1, False)
        assert (body["new"]["version"], body["new"]["frozen"], body["method"]) == (2, True, "unchanged")
        v1, v2 = characteristic.limits.order_by("version")
        for name in (
            "center",
            "ucl",
            "lcl",
            "sigma",
            "dispersion_center",
            "dispersion_ucl",
            "method",
            "baseline",
        ):
            assert getattr(v2, name) == getattr(v1, name), name
        assert (v2.frozen, v2.reason) == (True, "PPAP submitted")

        error = error_of(client.post(url, {"reason": "again"}, format="json"), 400, "frozen")
        assert error["message"] == "frozen: The limits (v2) are already frozen."
        assert characteristic.limits.count() == 2

        thawed = client.post(
            url, {"frozen": False, "reason": "new fixture", "signature": QS_SIGNATURE}, format="json"
        ).json()
        assert (thawed["new"]["version"], thawed["new"]["frozen"]) == (3, False)
        error_of(client.post(url, {"frozen": False, "reason": "again"}, format="json"), 400, "frozen")
        assert list(characteristic.limits.order_by("version").values_list("frozen", flat=True)) == [
            False, True, False,
        ]  # fmt: skip

    def test_nothing_to_freeze_without_limits(self, api, plant, quality_specialist):
        characteristic = sized(plant, 1)
        url = characteristic_url(characteristic, "freeze-limits")
        error = error_of(api(quality_specialist).post(url, {"reason": "x"}, format="json"), 400, "frozen")
        assert "no control limits" in error["message"]
        error_of(api(quality_specialist).post(url, {}, format="json"), 400, "reason")
        assert characteristic.limits.count() == 0


class HistoryTests:
    def test_every_version_newest_first(
        self, api, plant, studied, quality_specialist, manager, operations_lead
    ):
        characteristic, _ = studied(1)
        client = api(quality_specialist)
        _recalculate(client, characteristic, sample_count=20, reason="phase I")
        client.post(
            characteristic_url(characteristic, "freeze-limits"),
            {"reason": "audit", "signature": QS_SIGNATURE},
            format="json",
        )
        for user in (quality_specialist, manager, operations_lead):
            response = api(user).get(characteristic_url(characteristic, "limits"))
            assert response.status_code == 200, response.content
            history = response.json()
            assert [(v["version"], v["method"], v["frozen"], v["reason"]) for v in history] == [
                (3, "calculated", True, "audit"),
                (2, "calculated", False, "phase I"),
                (1, "historical", False, "historical study"),
            ]
            assert (
                history[1]["excluded"]
                == ControlLimits.objects.get(characteristic=characteristic, version=2).excluded
            )
        error_of(api(plant.tester).get(characteristic_url(characteristic, "limits")), 403)

    def test_an_unknown_characteristic_is_404(self, api, quality_specialist):
        url = "/api/v1/characteristics/99999999/"
        error_of(api(quality_specialist).get(url + "limits/"), 404)
        error_of(api(quality_specialist).post(url + "recalculate-limits/", {}, format="json"), 404)


class OptionsTests:
    @pytest.mark.parametrize(
        ("action", "field"),
        [("recalculate-limits", "sample_count"), ("set-limits", "sigma"), ("freeze-limits", "frozen")],
    )
    def test_options_describe_each_action_body(self, api, plant, quality_specialist, action, field):
        characteristic = sized(plant, 1)
        response = api(quality_specialist).options(characteristic_url(characteristic, action))
        assert response.status_code == 200, response.content
        assert field in response.json()["actions"]["POST"]

    def test_options_on_chart_data(self, api, plant, manager):
        response = api(manager).options(characteristic_url(sized(plant, 1), "chart-data"))
        assert response.status_code == 200, response.content
        assert response.json()["name"] == "Chart data"


class LimitsSignatureTests:
    """Every stored version of the control limits is signed (21 CFR Part 11); a preview is not."""

    def test_storing_limits_without_a_signature_is_400_and_nothing_is_stored(
        self, api, studied, quality_specialist
    ):
        characteristic, _ = studied(1)  # v1: historical
        client = api(quality_specialist)
        cases = [
            ("recalculate-limits", {"sample_count": 20, "reason": "phase I"}),
            ("set-limits", {"center": 50.0, "sigma": 2.0, "reason": "new gauge"}),
            ("freeze-limits", {"reason": "PPAP"}),
        ]
        for action, body in cases:
            response = client.post(characteristic_url(characteristic, action), body, format="json")
            error = error_of(response, 400, "signature")
            assert "Control limit change needs your electronic signature" in error["message"], action
        assert characteristic.limits.count() == 1
        preview = _recalculate(client, characteristic, sample_count=20, preview=True, signature=None)
        assert preview.status_code == 200, preview.content
        assert preview.json()["new"]["signatures"] == []
        assert characteristic.limits.count() == 1

    def test_a_wrong_password_is_403_audited_and_nothing_is_stored(self, api, plant, quality_specialist):
        characteristic = sized(plant, 1)
        body = {
            "center": 10.0, "sigma": 1.0, "reason": "study",
            "signature": {**QS_SIGNATURE, "password": "not-mine"},
        }  # fmt: skip
        response = api(quality_specialist).post(
            characteristic_url(characteristic, "set-limits"), body, format="json"
        )
        assert error_of(response, 403)["message"] == "Wrong password: nothing was signed."
        assert characteristic.limits.count() == 0
        assert not Signature.objects.filter(action="control_limits").exists()
        failed = AuditEntry.objects.get(action=AuditAction.SIGN_FAILED)
        assert (failed.user, failed.reason, failed.after) == (
            quality_specialist, "wrong password", {"action": "control_limits"},
        )  # fmt: skip
        assert not AuditEntry.objects.filter(action=AuditAction.LIMITS).exists()

    def test_the_signature_is_bound_to_the_new_version(self, api, plant, quality_specialist):
        characteristic = sized(plant, 5)
        body = {
            "center": 10.0, "sigma": 0.5, "reason": "capability study",
            "signature": signature_body("qs", "reviewed"),
        }  # fmt: skip
        response = api(quality_specialist).post(
            characteristic_url(characteristic, "set-limits"), body, format="json"
        )
        assert response.status_code == 200, response.content
        row = ControlLimits.objects.get(characteristic=characteristic)
        signature = Signature.objects.get(action="control_limits")
        assert (signature.object_id, signature.user, signature.meaning) == (
            str(row.pk), quality_specialist, "reviewed",
        )  # fmt: skip
        assert signature.content == {
            "characteristic": characteristic.pk, "version": 1, "center": row.center, "sigma": row.sigma,
            "lcl": row.lcl, "ucl": row.ucl, "dispersion_center": row.dispersion_center,
            "dispersion_lcl": row.dispersion_lcl, "dispersion_ucl": row.dispersion_ucl,
            "method": "historical", "frozen": False, "reason": "capability study",
        }  # fmt: skip
        (manifest,) = response.json()["new"]["signatures"]
        assert (manifest["id"], manifest["meaning"], manifest["action"], manifest["state"]) == (
            signature.pk, "reviewed", "control_limits", "valid",
        )  # fmt: skip
        frozen = (
            api(quality_specialist)
            .post(
                characteristic_url(characteristic, "freeze-limits"),
                {"reason": "PPAP", "signature": QS_SIGNATURE},
                format="json",
            )
            .json()
        )
        assert frozen["previous"]["signatures"] == [manifest]
        assert [m["meaning"] for m in frozen["new"]["signatures"]] == ["approved"]
        assert Signature.objects.filter(action="control_limits").count() == 2

    def test_limits_changed_behind_the_application_show_changed_after_signing(
        self, api, plant, quality_specialist
    ):
        characteristic = sized(plant, 1)
        body = {"center": 10.0, "sigma": 1.0, "reason": "study", "signature": QS_SIGNATURE}
        url = characteristic_url(characteristic, "set-limits")
        assert api(quality_specialist).post(url, body, format="json").status_code == 200
        history = api(quality_specialist).get(characteristic_url(characteristic, "limits")).json()
        assert history[0]["signatures"][0]["state"] == "valid"
        ControlLimits.objects.filter(characteristic=characteristic).update(ucl=99.0)  # not through the app
        history = api(quality_specialist).get(characteristic_url(characteristic, "limits")).json()
        (manifest,) = history[0]["signatures"]
        assert (manifest["state"], manifest["counts"]) == ("changed_after_signing", False)

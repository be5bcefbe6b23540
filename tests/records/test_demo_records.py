"""manage.py demo_records (make run, after demo_setup and demo_work): the three lab lots of the demo as
their lot reviews see them. LAB-RING-74-1 waits on the demo tester's worklist, LAB-RING-74-2 can
be released (every test entered by tester, verified and signed by lab2), LAB-RING-74-3 is blocked
by an open out-of-spec investigation. Safe to run again."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audit.choices import AuditAction
from apps.audit.models import AuditEntry
from apps.calculations.models import Violation
from apps.calculations.services import characteristics_calculate
from apps.config.management.commands.demo_setup import demo_password
from apps.config.models import Characteristic, Device, Product, Test, TestPlanEntry
from apps.mqtt_bridge.selectors import lots_current
from apps.mqtt_bridge.services import lots_open_where_missing
from apps.observations import selectors as observation_selectors
from apps.observations import services as observation_services
from apps.observations.choices import LotStatus, ObservationSource, ObservationStatus
from apps.observations.models import Item, Lot, Observation
from apps.observations.services.verification import observation_content
from apps.records.choices import Decision, InvestigationStatus
from apps.records.models import OosInvestigation
from apps.records.selectors import lot_review
from apps.records.services import ReleaseBlocked, lot_disposition_decide
from apps.signatures.choices import SignatureMeaning, SignedAction
from apps.signatures.models import Signature
from apps.signatures.services import content_hash, signer_check

pytestmark = pytest.mark.django_db

READY, BLOCKED, WAITING = "LAB-RING-74-2", "LAB-RING-74-3", "LAB-RING-74-1"


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path


@pytest.fixture
def demo(var_dir):
    """demo_setup and demo_work as make run runs them, before demo_records."""
    call_command("demo_setup", stdout=StringIO())
    call_command("demo_work", stdout=StringIO())
    return var_dir


def _run() -> str:
    out = StringIO()
    call_command("demo_records", stdout=out)
    return out.getvalue()


def _lot(number: str) -> Lot:
    return Lot.objects.select_related("product").get(product__code="RING-74", number=number)


def _user(username: str):
    return get_user_model().objects.get(username=username)


def _release(lot: Lot):
    quality = _user("quality")
    signer = signer_check(
        user=quality, action=SignedAction.LOT_DISPOSITION, meaning=SignatureMeaning.RELEASED,
        password=demo_password("quality"),
    )  # fmt: skip
    return lot_disposition_decide(lot=lot, decision=Decision.RELEASE, user=quality, signer=signer)


def _counts() -> dict[str, int]:
    models = (Lot, Item, Observation, Signature, OosInvestigation, Violation, AuditEntry)
    return {model.__name__: model.objects.count() for model in models}


class ReadyLotTests:
    def test_its_review_says_it_can_be_released(self, demo):
        output = _run()
        review = lot_review(lot=_lot(READY))
        assert review.reasons == []
        assert review.releasable
        assert review.status == LotStatus.IN_TESTING
        assert (review.tests_required, review.tests_done) == (9, 9)  # 3 items × RING-FINAL's 3 tests
        assert (review.results_to_verify, review.results_verified) == (9, 9)
        assert (review.out_of_spec, review.investigations_open, review.violations_unacknowledged) == (0, 0, 0)
        assert f"lab lot {READY} of RING-74: every test entered by tester and verified by lab2" in output

    def test_every_result_entered_by_tester_and_verified_by_lab2_with_a_signature(self, demo):
        _run()
        results = Observation.objects.filter(lot=_lot(READY)).select_related("user", "verified_by")
        assert results.count() == 9
        for result in results:
            assert result.status == ObservationStatus.CONFIRMED
            assert result.source == ObservationSource.MANUAL
            assert (result.user.username, result.verified_by.username) == ("tester", "lab2")
            (signed,) = Signature.objects.filter(object_id=str(result.pk), action=SignedAction.VERIFICATION)
            assert (signed.user.username, signed.meaning) == ("lab2", SignatureMeaning.VERIFIED)
            assert signed.content_hash == content_hash(observation_content(result))

    def test_a_quality_specialist_releases_it(self, demo):
        _run()
        disposition = _release(_lot(READY))
        assert disposition.blocking_reasons == []
        assert _lot(READY).status == LotStatus.RELEASED

    def test_the_simulated_stream_puts_its_violations_on_its_production_lot_not_on_it(self, demo):
        """The plant simulator (make run) opens a production lot and streams the ring diameter into
        it, special causes included: the violations land on that lot's samples, and the lot ready to
        release stays so."""
        _run()
        ring = Product.objects.get(code="RING-74")
        dia = Characteristic.objects.get(product=ring, test__code="RING-DIA")
        (production,) = lots_open_where_missing(characteristic_ids=[dia.pk], user=_user("operations")).opened
        assert lots_current(product_ids=[ring.pk])[ring.pk] == production  # where a stream naming no lot goes
        device = Device.objects.get(name="line1-gauge")
        shift = [observation_services.ObservationEntry(lot=production, test=dia.test, values=[74.1] * 5)] * 3
        ids = observation_services.observations_record(
            entries=shift, source=ObservationSource.DEVICE, user=device.user, device=device, queue=False
        ).ids
        observation_services.observations_process(ids=ids)
        characteristics_calculate(characteristic_ids=[dia.pk])
        flagged = Violation.objects.filter(characteristic=dia, requires_acknowledgement=True)
        assert flagged.filter(rule=1).count() == 3
        assert set(flagged.values_list("sample__lot__number", flat=True)) == {production.number}
        assert lot_review(lot=_lot(READY)).reasons == []


class BlockedLotTests:
    def test_its_review_names_the_open_investigation(self, demo):
        output = _run()
        lot = _lot(BLOCKED)
        review = lot_review(lot=lot)
        assert [reason.code for reason in review.reasons] == ["out_of_spec", "investigation_open"]
        (investigation,) = OosInvestigation.objects.filter(lot=lot).select_related("observation__item")
        assert investigation.status == InvestigationStatus.OPEN
        assert investigation.test.code == "RING-DIA"
        assert investigation.observation.values == [74.068]
        assert investigation.observation.user.username == "tester"
        assert investigation.observation.item.serial == "0002"
        assert f"#{investigation.pk} (RING-DIA on item 0002, open)" in review.reasons[1].message
        assert (
            f"blocked by the out-of-spec investigation #{investigation.pk} (RING-DIA on item 0002)" in output
        )
        # Everything else was done and verified: the result and its investigation are what stand.
        assert (review.tests_done, review.results_verified, review.violations_unacknowledged) == (9, 9, 0)

    def test_a_release_is_refused_for_it(self, demo):
        _run()
        with pytest.raises(ReleaseBlocked) as refused:
            _release(_lot(BLOCKED))
        assert [reason.code for reason in refused.value.reasons] == ["out_of_spec", "investigation_open"]
        assert _lot(BLOCKED).status == LotStatus.IN_TESTING


class WaitingLotTests:
    def test_the_first_lab_lot_still_waits_on_the_demo_testers_worklist(self, demo):
        _run()
        review = lot_review(lot=_lot(WAITING))
        assert [reason.code for reason in review.reasons] == ["lot_status", "tests_not_done"]
        assert review.tests_done == 0
        worklist = list(observation_selectors.tester_items(user=_user("tester")))
        assert {item.lot.number for item in worklist} == {WAITING}  # the other two lots are done
        assert len(worklist) == 4
        assert all(
            [due["code"] for due in observation_selectors.item_tests_due(item)]
            == ["RING-DIA", "RING-WALL", "SURF-DEF"]
            for item in worklist
        )


class SeedTests:
    def test_running_it_again_changes_nothing(self, demo):
        _run()
        before = _counts()
        assert _run() == ""
        assert _counts() == before

    def test_the_lab_plan_asks_for_verification_of_every_result(self, demo):
        """Else there would be nothing for lab2 to verify (on the first lot either)."""
        _run()
        item = _lot(WAITING).items.first()
        assert set(item.plans.get().entries.values_list("requires_verification", flat=True)) == {True}

    def test_a_demo_from_before_the_plan_asked_for_verification_gets_its_lots_too(self, demo):
        """A database demo_setup made earlier keeps its released plan: nothing to verify there."""
        TestPlanEntry.objects.update(requires_verification=False)
        _run()
        assert lot_review(lot=_lot(READY)).reasons == []
        assert [r.code for r in lot_review(lot=_lot(BLOCKED)).reasons] == [
            "out_of_spec",
            "investigation_open",
        ]
        assert not Signature.objects.exists()

    def test_without_lab2s_password_it_seeds_nothing_and_signs_nothing(self, demo):
        (demo / "demo_credentials.txt").unlink()
        before = _counts()
        output = _run()
        assert "not seeded: lab2 verifies their results, signed" in output
        assert _counts() == before
        assert not AuditEntry.objects.filter(action=AuditAction.SIGN_FAILED).exists()

    def test_a_password_changed_since_is_not_tried(self, demo):
        lab2 = _user("lab2")
        lab2.set_password("changed-by-hand-0123")
        lab2.save()
        before = _counts()
        assert "not seeded" in _run()
        assert _counts() == before  # no refused signature in the audit trail either

    def test_without_the_demo_it_says_what_to_run(self, var_dir):
        with pytest.raises(CommandError, match="demo_setup"):
            _run()

    def test_the_lots_results_stay_off_the_ring_diameter_chart(self, demo):
        """Three items per lot: the diameters wait for their lot to close (subgroups of 5), so no
        point of these lots sits among the simulator's."""
        _run()
        dia = Test.objects.get(code="RING-DIA")
        for number in (READY, BLOCKED):
            results = Observation.objects.filter(lot=_lot(number), test=dia)
            assert results.count() == 3
            assert not results.filter(sample__isnull=False).exists()

"""The violations list and the audit log through Django's test client: who may open them and who
may acknowledge, the filters in the query string and the API query they become, invalid filters
and empty states. The rows themselves come from the API (tests/e2e/test_browser_violations.py)."""

import html as html_lib
import re
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client, override_settings
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.calculations import services
from apps.calculations.choices import Severity
from apps.calculations.models import AcknowledgementReason, Violation
from apps.config import services as config_services
from apps.config.models import Characteristic
from apps.observations.models import Sample
from tests.factories import ProductFactory, TestFactory, characteristic_for

pytestmark = pytest.mark.django_db

VIOLATIONS = reverse("web-violations")
AUDIT = reverse("web-audit")


def signed_in(user: AbstractBaseUser) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page(user: AbstractBaseUser, url: str, query: dict[str, Any] | None = None) -> str:
    response = signed_in(user).get(url, query or {})
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def api_query(html: str) -> dict[str, list[str]] | None:
    """The API query the page hands its script, parsed; None when the page shows no list."""
    match = re.search(r'data-api-query="([^"]*)"', html)
    return parse_qs(html_lib.unescape(match.group(1))) if match else None


def selected(html: str, name: str) -> str | None:
    """The value a filter shows as chosen (a <select>'s selected option, or an input's value)."""
    select = re.search(rf'<select name="{name}".*?</select>', html, re.S)
    if select:
        option = re.search(r'<option value="([^"]*)" selected>', select.group(0))
        return option.group(1) if option else None
    field = re.search(rf'<input type="\w+" name="{name}" value="([^"]*)"', html)
    return field.group(1) if field else None


class Violations:
    """On DIA of RING-74: #1 rule 1 awaiting acknowledgement (critical), #2 rule 2 a warning that
    needs no acknowledgement, #3 rule 1 acknowledged by the manager. PUMP-1 / FLOW has no violation."""

    def __init__(self, plant: Any, manager: AbstractBaseUser) -> None:
        self.dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
        self.lot = plant.lot
        samples = [self._sample(n) for n in (1, 2, 3)]
        self.awaiting = self._violation(samples[0], rule=1)
        self.informational = self._violation(
            samples[1], rule=2, severity=Severity.WARNING, requires_acknowledgement=False
        )
        self.acknowledged = self._violation(samples[2], rule=1)
        services.violations_acknowledge(
            violations=[self.acknowledged], user=manager,
            reason=AcknowledgementReason.objects.get(code="process-adjusted"), comment="Tool changed",
        )  # fmt: skip
        self.pump = ProductFactory(code="PUMP-1", name="Pump")
        self.flow = characteristic_for(self.pump, TestFactory(code="FLOW", name="Flow", unit="l/min"))

    def _sample(self, sequence: int) -> Sample:
        return Sample.objects.create(
            characteristic=self.dia, sequence=sequence, lot=self.lot, values=[74.0], observation_ids=[],
            n=1, mean=74.0, in_control=False,
        )  # fmt: skip

    @staticmethod
    def _violation(sample: Sample, **fields: Any) -> Violation:
        fields.setdefault("severity", Severity.CRITICAL)
        return Violation.objects.create(
            characteristic=sample.characteristic, sample=sample, points=[sample.sequence], limits_version=1,
            **fields,
        )  # fmt: skip


@pytest.fixture
def violations(plant: Any, manager: AbstractBaseUser) -> Violations:
    return Violations(plant, manager)


# --- Who may open the pages -------------------------------------------------------------------


class AccessTests:
    @pytest.mark.parametrize("url", [VIOLATIONS, AUDIT])
    def test_the_anonymous_are_sent_to_sign_in(self, url):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('web-login')}?next={url}"

    @pytest.mark.parametrize(
        ("role", "violations", "audit"),
        [
            ("quality_specialist", 200, 200),
            ("manager", 200, 403),
            ("operations_lead", 200, 403),
            ("tester", 403, 403),
        ],
    )
    def test_each_role(self, request, role, violations, audit):
        client = signed_in(request.getfixturevalue(role))
        assert client.get(VIOLATIONS).status_code == violations
        assert client.get(AUDIT).status_code == audit

    def test_a_device_user_gets_403(self):
        device, _ = config_services.device_create(name="gauge-9")
        client = signed_in(device.user)
        assert client.get(VIOLATIONS).status_code == 403
        assert client.get(AUDIT).status_code == 403

    @pytest.mark.parametrize(
        ("role", "can"),
        [("manager", True), ("quality_specialist", True), ("operations_lead", False)],
    )
    def test_only_the_roles_that_may_acknowledge_get_the_batch_controls(self, request, role, can):
        html = page(request.getfixturevalue(role), VIOLATIONS)
        assert f'data-can-acknowledge="{str(can).lower()}"' in html
        assert ("data-acknowledge-form" in html) is can
        assert ("data-select-all" in html) is can
        assert "js/violations.js" in html  # every role that may read gets the list

    def test_the_page_names_the_characteristics_and_who_acknowledged(
        self, violations, operations_lead, manager
    ):
        html = page(operations_lead, VIOLATIONS)
        names = re.search(r'id="violation-characteristics" type="application/json">(.*?)</script>', html)
        assert names is not None
        assert f'"{violations.dia.pk}": {{"product": "RING-74", "test": "DIA"' in names.group(1)
        users = re.search(r'id="violation-users" type="application/json">(.*?)</script>', html)
        assert users is not None
        assert f'"{manager.pk}": "manager"' in users.group(1)
        assert f'"{operations_lead.pk}": "ops"' in users.group(1)


# --- Filters in the query string --------------------------------------------------------------


class ViolationFilterTests:
    def test_no_filters_lists_everything_newest_first(self, violations, manager):
        html = page(manager, VIOLATIONS)
        assert api_query(html) == {"page_size": ["50"]}
        assert 'data-filtered="false"' in html
        assert "Clear filters" not in html

    @override_settings(TIME_ZONE="Europe/Berlin")
    def test_the_filters_in_the_url_become_the_api_query(self, violations, manager):
        query = {
            "product": violations.dia.product_id, "characteristic": violations.dia.pk, "rule": "1",
            "severity": "critical", "status": "awaiting", "from": "2026-11-01", "to": "2026-11-24",
            "page": "2",
        }  # fmt: skip
        html = page(manager, VIOLATIONS, query)
        assert api_query(html) == {
            "page_size": ["50"],
            "product": [str(violations.dia.product_id)],
            "characteristic": [str(violations.dia.pk)],
            "rule": ["1"],
            "severity": ["critical"],
            "page": ["2"],
            "acknowledged": ["false"],
            # Whole days in the plant's zone (CET in November): the last day included.
            "created_after": ["2026-11-01T00:00:00+01:00"],
            "created_before": ["2026-11-25T00:00:00+01:00"],
        }
        # The form shows what the URL chose, so a bookmarked view reads as it filters.
        assert selected(html, "characteristic") == str(violations.dia.pk)
        assert selected(html, "status") == "awaiting"
        assert selected(html, "rule") == "1"
        assert selected(html, "from") == "2026-11-01"
        assert 'data-filtered="true"' in html
        assert f'<a class="button button--quiet" href="{VIOLATIONS}">Clear filters</a>' in html

    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            ("awaiting", ["awaiting"]),
            ("acknowledged", ["acknowledged"]),
            ("informational", ["informational"]),
        ],
    )
    def test_the_status_filter_selects_those_rows_from_the_api(
        self, violations, manager, api, status, expected
    ):
        query = api_query(page(manager, VIOLATIONS, {"status": status}))
        assert query is not None
        response = api(manager).get("/api/v1/violations/", {k: v[0] for k, v in query.items()})
        assert response.status_code == 200
        names = {v.pk: name for name, v in vars(violations).items() if isinstance(v, Violation)}
        assert len(names) == 3
        assert [names[row["id"]] for row in response.json()["results"]] == expected

    @pytest.mark.parametrize(
        ("query", "message"),
        [
            (
                {"characteristic": "999999"},
                "Select a valid choice. 999999 is not one of the available choices.",
            ),
            ({"rule": "9"}, "Select a valid choice. 9 is not one of the available choices."),
            (
                {"from": "2026-11-24", "to": "2026-11-01"},
                "The first day of the range is after the last; swap them.",
            ),
            ({"from": "yesterday"}, "Enter a valid date."),
        ],
    )
    def test_an_invalid_filter_is_named_and_nothing_is_loaded(self, violations, manager, query, message):
        html = page(manager, VIOLATIONS, query)
        assert message in html_lib.unescape(html)
        assert api_query(html) is None
        assert "js/violations.js" not in html

    def test_the_characteristics_and_products_are_offered_by_name(self, violations, manager):
        html = page(manager, VIOLATIONS)
        assert f'<option value="{violations.flow.pk}">PUMP-1 / FLOW — Flow</option>' in html
        assert f'<option value="{violations.pump.pk}">PUMP-1 — Pump</option>' in html
        assert '<option value="" selected>Any characteristic</option>' in html

    def test_with_no_characteristics_the_page_still_renders_its_empty_list(self, operations_lead):
        html = page(operations_lead, VIOLATIONS)
        assert api_query(html) == {"page_size": ["50"]}
        assert 'data-filtered="false"' in html
        assert "Loading the violations…" in html


# --- The audit log ----------------------------------------------------------------------------


class AuditPageTests:
    def test_filters_offer_the_people_and_objects_in_the_trail(self, violations, quality_specialist, manager):
        html = page(quality_specialist, AUDIT)
        assert api_query(html) == {}
        assert f'<option value="{manager.pk}">manager</option>' in html
        assert '<option value="calculations.violation">Violation</option>' in html
        assert '<option value="acknowledge">Acknowledged</option>' in html
        assert 'href="/api/v1/audit/entries.csv" download>Download as CSV</a>' in html

    def test_one_records_history_is_a_filter_and_downloads_with_it(self, violations, quality_specialist):
        record = violations.acknowledged.pk
        query = {"object_type": "calculations.violation", "object_id": record, "cursor": "cD0yMDI2"}
        html = page(quality_specialist, AUDIT, query)
        assert api_query(html) == {
            "object_type": ["calculations.violation"], "object_id": [str(record)], "cursor": ["cD0yMDI2"],
        }  # fmt: skip
        csv_link = f"/api/v1/audit/entries.csv?object_type=calculations.violation&amp;object_id={record}"
        assert f'href="{csv_link}"' in html

    @override_settings(TIME_ZONE="Europe/Berlin")
    def test_the_filters_in_the_url_become_the_api_query(self, violations, quality_specialist, manager, api):
        query = {
            "actor": manager.pk, "action": "acknowledge", "object_type": "calculations.violation",
            "from": "2026-07-01", "to": "2026-07-01", "cursor": "cD0yMDI2",
        }  # fmt: skip
        html = page(quality_specialist, AUDIT, query)
        assert api_query(html) == {
            "user": [str(manager.pk)],
            "action": ["acknowledge"],
            "object_type": ["calculations.violation"],
            "cursor": ["cD0yMDI2"],
            "at_after": ["2026-07-01T00:00:00+02:00"],  # summer time
            "at_before": ["2026-07-02T00:00:00+02:00"],
        }
        assert selected(html, "actor") == str(manager.pk)
        assert 'data-filtered="true"' in html

    def test_the_api_query_selects_the_acknowledgements(self, violations, quality_specialist, manager, api):
        query = api_query(
            page(quality_specialist, AUDIT, {"actor": manager.pk, "object_type": "calculations.violation"})
        )
        assert query is not None
        response = api(quality_specialist).get("/api/v1/audit/", {k: v[0] for k, v in query.items()})
        assert response.status_code == 200
        assert [(e["action"], e["object_id"]) for e in response.json()["results"]] == [
            ("acknowledge", str(violations.acknowledged.pk))
        ]

    def test_an_unknown_actor_is_named_and_nothing_is_loaded(self, violations, quality_specialist):
        html = page(quality_specialist, AUDIT, {"actor": "424242"})
        assert "Select a valid choice. 424242 is not one of the available choices." in html
        assert api_query(html) is None
        assert "js/audit.js" not in html

    def test_an_empty_trail_still_renders(self, quality_specialist):
        assert not AuditEntry.objects.exists()
        html = page(quality_specialist, AUDIT)
        assert '<option value="" selected>Anyone</option>' in html
        assert api_query(html) == {}
        assert "Loading the audit log…" in html

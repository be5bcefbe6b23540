"""The operations pages through Django's test client: who may use them, the lots list with its
progress, filters and pages, the lot page, and opening a lot with its items in one transaction."""

import re

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.calculations.models import LotStatistics
from apps.config.models import Characteristic
from apps.observations import services
from apps.observations.choices import LotStatus, ObservationStatus
from apps.observations.models import Item, Lot, Observation
from apps.observations.selectors import LotProgress, lot_progress
from apps.observations.services import lots
from apps.web.selectors import lots_rows
from tests.factories import ItemFactory, LotFactory, ProductFactory, UserFactory
from tests.support.pages import nav_labels, signed_in

pytestmark = pytest.mark.django_db


def settle(ids: list[int], status: str) -> None:
    """Mark stored observations as the worker would: confirmed or rejected, and when."""
    Observation.objects.filter(pk__in=ids).update(status=status, processed_at=timezone.now())


def row_of(html: str, lot: Lot) -> dict[str, str]:
    """The lots table's numbers for one lot, as the page shows them."""
    match = re.search(rf'<tr data-lot-id="{lot.pk}">(.*?)</tr>', html, re.S)
    assert match, f"lot {lot.number} is not listed"
    cells = dict(
        re.findall(
            r'data-field="(\w+)">\s*(?:<progress class="progress".*?</progress>)?\s*(.*?)\s*</td>',
            match.group(1),
            re.S,
        )
    )
    return cells


# --- Who may use the pages ---------------------------------------------------------------------


class AccessTests:
    def test_a_tester_has_no_lots_link_and_is_refused_every_lots_page(self, plant, tester):
        client = signed_in(tester)
        assert "Lots" not in nav_labels(client.get(reverse("web-overview")).content.decode())
        for url in (reverse("web-lots"), reverse("web-lot-create"), reverse("web-lot", args=[plant.lot.pk])):
            assert client.get(url).status_code == 403, url
        assert client.post(reverse("web-lot-create"), {"product": plant.product.pk}).status_code == 403
        assert Lot.objects.count() == 1

    def test_an_operations_lead_has_the_lots_link(self, operations_lead):
        client = signed_in(operations_lead)
        html = client.get(reverse("web-lots")).content.decode()
        assert "Lots" in nav_labels(html)  # the whole navigation per role: test_pages.py
        # The lots stay the current page on the new-lot form.
        html = client.get(reverse("web-lot-create")).content.decode()
        assert '<a href="/lots/" aria-current="page">Lots</a>' in html

    def test_signed_out_goes_to_the_login_page(self, plant):
        response = Client().get(reverse("web-lot", args=[plant.lot.pk]))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("web-login"))

    def test_a_manager_reads_lots_but_cannot_open_assign_or_move_them(self, plant, manager):
        client = signed_in(manager)
        html = client.get(reverse("web-lots")).content.decode()
        assert "Lots" in nav_labels(html)
        assert "Open a lot" not in html
        assert client.get(reverse("web-lot-create")).status_code == 403
        page = client.get(reverse("web-lot", args=[plant.lot.pk])).content.decode()
        assert "data-assign-form" not in page
        assert "data-item-check" not in page
        assert "data-status-actions" not in page

    def test_an_unknown_lot_is_404(self, operations_lead):
        assert signed_in(operations_lead).get(reverse("web-lot", args=[999999])).status_code == 404


# --- The lots list ------------------------------------------------------------------------------


class LotListTests:
    def test_no_lots_yet_invites_the_lead_to_open_one(self, operations_lead, manager):
        html = signed_in(operations_lead).get(reverse("web-lots")).content.decode()
        assert "No lots yet" in html
        assert f'<a href="{reverse("web-lot-create")}">open the first one</a>' in html
        assert "an operations lead opens them" in signed_in(manager).get(reverse("web-lots")).content.decode()

    def test_a_lot_shows_its_items_tests_due_done_and_rejected(self, plant, operations_lead):
        # Plan RING asks DIA and WALL of each of the 3 items: 6 tests; one DIA done, one rejected.
        settle(plant.record({"item": plant.items[0], "test": plant.dia, "values": [74.0]}), "confirmed")
        settle(plant.record({"item": plant.items[1], "test": plant.dia, "values": [9.0]}), "rejected")
        html = signed_in(operations_lead).get(reverse("web-lots")).content.decode()
        row = row_of(html, plant.lot)
        assert row["items"] == "3"
        assert row["items_assigned"] == "3"
        assert row["tests_done"] == "1 of 6"
        assert row["tests_due"] == "5"
        assert row["rejected"] == "1"
        assert 'aria-label="17% of the tests done"' in html

    def test_each_lot_is_counted_alone_as_the_progress_endpoint_counts_it(self, plant, tester):
        other = LotFactory(product=plant.product, number="L-2")
        items = [ItemFactory(lot=other, serial=s, plans=[plant.ring], tester=tester) for s in ("A", "B")]
        ItemFactory(lot=other, serial="C")  # no plan, not assigned
        empty = LotFactory(product=plant.product, number="L-3")
        done = plant.record(
            {"item": items[0], "test": plant.wall, "values": [1.0, 1.1, 1.2]},
            {"item": plant.items[2], "test": plant.dia, "values": [74.0]},
            {"item": plant.items[2], "test": plant.dia, "values": [74.1]},  # the same pair twice
        )
        settle(done, ObservationStatus.CONFIRMED)
        plant.record({"item": items[1], "test": plant.dia, "values": [74.2]})  # received
        lots = [plant.lot, other, empty]
        progress = {row.lot.pk: row.progress for row in lots_rows(lots=lots)}
        assert progress == {
            plant.lot.pk: LotProgress(
                items=3, items_assigned=3, tests_total=6, tests_done=1, tests_due=5,
                received=0, confirmed=2, rejected=0,
            ),
            other.pk: LotProgress(
                items=3, items_assigned=2, tests_total=4, tests_done=1, tests_due=3,
                received=1, confirmed=1, rejected=0,
            ),
            empty.pk: LotProgress(
                items=0, items_assigned=0, tests_total=0, tests_done=0, tests_due=0,
                received=0, confirmed=0, rejected=0,
            ),
        }  # fmt: skip
        assert {lot.pk: lot_progress(lot=lot) for lot in lots} == progress

    def test_filters_by_product_and_status(self, plant, operations_lead):
        other_product = ProductFactory(code="GEAR-9")
        gear = LotFactory(product=other_product, number="G-1")
        testing = LotFactory(product=plant.product, number="L-9", status=LotStatus.IN_TESTING)
        client = signed_in(operations_lead)

        def listed(**query: object) -> set[int]:
            html = client.get(reverse("web-lots"), query).content.decode()
            return {int(pk) for pk in re.findall(r'<tr data-lot-id="(\d+)">', html)}

        assert listed() == {plant.lot.pk, gear.pk, testing.pk}
        assert listed(product=other_product.pk) == {gear.pk}
        assert listed(status="in_testing") == {testing.pk}
        assert listed(product=plant.product.pk, status="open") == {plant.lot.pk}
        html = client.get(reverse("web-lots"), {"status": "released"}).content.decode()
        assert "No lots match these filters." in html

    def test_pages_of_25_with_a_fixed_number_of_queries(self, operations_lead, django_assert_max_num_queries):
        product = ProductFactory(code="P")
        for n in range(26):
            ItemFactory(lot=LotFactory(product=product, number=f"N-{n:02d}"), serial="1")
        client = signed_in(operations_lead)
        client.get(reverse("web-lots"))  # the session and the user's permissions are cached after this
        # 12, the navigation's unread notifications, the role's groups (may the user read an inbox?)
        # and the session saved again (its idle timeout restarts with every request)
        with django_assert_max_num_queries(16):
            html = client.get(reverse("web-lots")).content.decode()
        assert html.count("<tr data-lot-id=") == 25
        assert "Page 1 of 2" in html
        page_2 = client.get(reverse("web-lots"), {"page": 2, "product": product.pk}).content.decode()
        assert page_2.count("<tr data-lot-id=") == 1
        assert ">N-00</a>" in page_2  # the oldest comes last
        assert f"product={product.pk}&amp;page=1" in page_2


# --- The lot page --------------------------------------------------------------------------------


class LotPageTests:
    def test_progress_statistics_items_testers_and_the_allowed_status_changes(
        self, plant, operations_lead, tester
    ):
        dia = Characteristic.objects.get(product=plant.product, test=plant.dia)
        Characteristic.objects.filter(pk=dia.pk).update(decimals=2)
        LotStatistics.objects.create(
            lot=plant.lot, test=plant.dia, characteristic=dia, n=3, mean=74.0123, sd=0.0101, cpk=1.1,
            out_of_spec=0, disposition="review",
        )  # fmt: skip
        UserFactory(username="idle", roles=[], is_active=True)  # not a tester: not offered
        html = signed_in(operations_lead).get(reverse("web-lot", args=[plant.lot.pk])).content.decode()
        assert '<dd data-progress-field="items">3</dd>' in html
        assert '<dd data-progress-field="tests_due">6</dd>' in html
        dia_row = re.search(rf'<tr data-test-id="{plant.dia.pk}".*?</tr>', html, re.S).group(0)
        assert '<td class="num" data-stat="mean">74.01 mm</td>' in dia_row
        assert '<td class="num" data-stat="sd">0.01 mm</td>' in dia_row
        assert '<td class="num" data-stat="cpk">1.10</td>' in dia_row
        assert "Review: Cpk below 1.33" in dia_row
        wall_row = re.search(rf'<tr data-test-id="{plant.wall.pk}".*?</tr>', html, re.S).group(0)
        assert "No values yet" in wall_row
        assert 'data-stat="mean">—</td>' in wall_row
        assert f'<option value="{tester.pk}">' in html
        assert ">idle<" not in html
        assert html.count("data-item-check") == 3
        # Releasing and rejecting are signed dispositions: not status buttons.
        assert re.findall(r'data-status="(\w+)">([^<]+)</button>', html) == [("in_testing", "Start testing")]

    def test_a_released_lot_offers_no_assignment_or_status_change(self, plant, operations_lead):
        Lot.objects.filter(pk=plant.lot.pk).update(status=LotStatus.RELEASED)
        html = signed_in(operations_lead).get(reverse("web-lot", args=[plant.lot.pk])).content.decode()
        assert "Released" in html
        assert "data-assign-form" not in html
        assert "data-status-actions" not in html

    def test_a_lot_without_items(self, plant, operations_lead):
        empty = LotFactory(product=plant.product, number="E-1")
        html = signed_in(operations_lead).get(reverse("web-lot", args=[empty.pk])).content.decode()
        assert "This lot has no items." in html
        assert "No tests yet: the lot's items have no test plans." in html


# --- Opening a lot -------------------------------------------------------------------------------


def open_lot(client: Client, **fields: object) -> tuple[int, str]:
    response = client.post(reverse("web-lot-create"), fields)
    return response.status_code, response.content.decode() if response.status_code == 200 else response[
        "Location"
    ]


class LotOpenTests:
    def test_the_form_offers_the_plans_of_each_product(self, plant, operations_lead):
        html = signed_in(operations_lead).get(reverse("web-lot-create")).content.decode()
        assert f'data-plan-products="{plant.product.pk}"' in html
        assert f'value="{plant.ring.pk}"' in html

    def test_a_lot_with_three_numbered_items_on_a_plan(self, plant, operations_lead):
        client = signed_in(operations_lead)
        status, location = open_lot(
            client,
            product=plant.product.pk,
            number=" L-7 ",
            numbering="count",
            count=3,
            plans=[plant.ring.pk],
        )
        lot = Lot.objects.get(number="L-7")
        assert (status, location) == (302, reverse("web-lot", args=[lot.pk]))
        assert lot.created_by == operations_lead
        assert [(i.serial, [p.pk for p in i.plans.all()]) for i in lot.items.order_by("serial")] == [
            ("0001", [plant.ring.pk]), ("0002", [plant.ring.pk]), ("0003", [plant.ring.pk]),
        ]  # fmt: skip
        assert "Lot L-7 is open with 3 items." in client.get(location).content.decode()

    def test_a_lot_with_listed_serials(self, plant, operations_lead):
        status, _ = open_lot(
            signed_in(operations_lead), product=plant.product.pk, number="L-8", numbering="serials",
            serials="S-1\nS-2, S-3\n\n", count="", plans=[plant.ring.pk],
        )  # fmt: skip
        assert status == 302
        assert sorted(Item.objects.filter(lot__number="L-8").values_list("serial", flat=True)) == [
            "S-1",
            "S-2",
            "S-3",
        ]

    def test_a_duplicate_lot_number_is_refused_in_plain_words(self, plant, operations_lead):
        status, html = open_lot(
            signed_in(operations_lead), product=plant.product.pk, number="L-1", numbering="count", count=2,
            plans=[plant.ring.pk],
        )  # fmt: skip
        assert status == 200
        assert '<p class="field-error" id="number-error">Lot L-1 of RING-74 exists.</p>' in html
        assert "Nothing was saved." in html
        assert Item.objects.count() == 3
        assert Lot.objects.count() == 1

    def test_a_failure_after_the_lot_was_written_leaves_nothing_behind(self, plant, operations_lead):
        # The lot is created first; the serials fail next: the lot must not stay behind.
        status, html = open_lot(
            signed_in(operations_lead), product=plant.product.pk, number="L-5", numbering="serials",
            serials="A\nB\nA", plans=[plant.ring.pk],
        )  # fmt: skip
        assert status == 200
        assert "Listed more than once: A." in html
        assert not Lot.objects.filter(number="L-5").exists()

    def test_a_plan_of_another_product_is_refused_and_nothing_is_written(self, plant, operations_lead):
        gear = ProductFactory(code="GEAR-9")
        status, html = open_lot(
            signed_in(operations_lead), product=gear.pk, number="G-1", numbering="count", count=3,
            plans=[plant.ring.pk],
        )  # fmt: skip
        assert status == 200
        assert re.search(r'id="plans-error">Test plan RING v1 is not in effect for GEAR-9 now\.</p>', html)
        assert not Lot.objects.filter(number="G-1").exists()
        assert Item.objects.count() == 3

    def test_missing_fields_are_named(self, plant, operations_lead):
        status, html = open_lot(signed_in(operations_lead), numbering="count")
        assert status == 200
        assert 'id="product-error">Choose the product.</p>' in html
        assert 'id="number-error">Give the lot number.</p>' in html
        assert 'id="count-error">Give how many items the lot has.</p>' in html
        assert 'id="plans-error">Pick at least one test plan for the items.</p>' in html
        _, html = open_lot(
            signed_in(operations_lead),
            product=plant.product.pk,
            number="X",
            numbering="serials",
            plans=[plant.ring.pk],
        )
        assert 'id="serials-error">List the serials, one per line.</p>' in html
        assert Lot.objects.count() == 1

    def test_the_field_of_the_way_not_chosen_is_ignored(self, plant, operations_lead):
        status, _ = open_lot(
            signed_in(operations_lead), product=plant.product.pk, number="L-6", numbering="serials",
            serials="X-1", count="zero", plans=[plant.ring.pk],
        )  # fmt: skip
        assert status == 302
        assert list(Item.objects.filter(lot__number="L-6").values_list("serial", flat=True)) == ["X-1"]

    def test_two_leads_opening_the_same_number_at_once_get_the_same_words(
        self, plant, operations_lead, monkeypatch
    ):
        # The second lead's check ran before the first lead's lot was committed: the database's
        # unique constraint refuses it, and the answer is the check's own.
        checked: list[str] = []

        def check_before_the_first_commit(*, product, number):
            checked.append(number)
            return number.strip()

        # lot_create (services.lots) looks lot_validate up in its own module: patched there, or the
        # real check would refuse the number first and this would not reach the constraint at all.
        monkeypatch.setattr(lots, "lot_validate", check_before_the_first_commit)
        with pytest.raises(ValidationError) as refused:
            services.lot_open(
                product=plant.product, number="L-1", count=2, plans=[plant.ring], user=operations_lead
            )
        assert checked == ["L-1"]  # the stale check ran and let the number through
        assert refused.value.message_dict == {"number": ["Lot L-1 of RING-74 exists."]}
        assert Lot.objects.count() == 1
        assert Item.objects.count() == 3

"""What the database itself refuses, and the rights each role gets on lots, items and observations."""

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.observations.choices import ObservationStatus
from apps.observations.models import Item, Lot, Observation
from openspc.roles import Role
from tests.factories import ItemFactory, LotFactory, ObservationFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


def _perms(role: Role) -> set[str]:
    permissions = Group.objects.get(name=role).permissions.filter(content_type__app_label="observations")
    return set(permissions.values_list("codename", flat=True))


class RolePermissionsTests:
    def test_operations_lead_manages_lots_and_items(self):
        assert _perms(Role.OPERATIONS_LEAD) == {
            "add_lot", "change_lot", "view_lot", "add_item", "change_item", "view_item", "view_sample",
            "view_scheduledsample", "change_scheduledsample",
        }  # fmt: skip

    def test_tester_views_items_posts_observations_submits_samples_and_verifies_others(self):
        assert _perms(Role.TESTER) == {
            "view_item", "add_observation", "view_observation", "add_sample", "verify_observation",
            "view_scheduledsample", "change_scheduledsample",
        }  # fmt: skip

    def test_quality_specialist_views_all_verifies_approves_invalidations_and_enters_no_data(self):
        assert _perms(Role.QUALITY_SPECIALIST) == {
            "view_lot", "view_item", "view_observation", "view_sample", "verify_observation",
            "approve_invalidation", "view_scheduledsample", "change_scheduledsample",
        }  # fmt: skip

    def test_manager_views_lots_items_observations_and_samples(self):
        assert _perms(Role.MANAGER) == {
            "view_lot", "view_item", "view_observation", "view_sample", "view_scheduledsample",
        }  # fmt: skip

    def test_device_adds_observations_and_reads_their_status(self):
        # Reading is narrowed to its own by Observation.visible_to (the status URL of its 202).
        assert _perms(Role.DEVICE) == {"add_observation", "view_observation"}


def _refused(make) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        make()


class ConstraintTests:
    def test_lot_number_is_unique_per_product_only(self):
        lot = LotFactory(number="L-9")
        _refused(lambda: LotFactory(product=lot.product, number="L-9"))
        assert LotFactory(product=ProductFactory(), number="L-9").pk

    def test_lot_status_must_be_a_known_one(self):
        lot = LotFactory()
        _refused(lambda: Lot.objects.filter(pk=lot.pk).update(status="shipped"))

    def test_serial_is_unique_within_a_lot_only(self):
        item = ItemFactory(serial="0001")
        _refused(lambda: ItemFactory(lot=item.lot, serial="0001"))
        assert ItemFactory(serial="0001").pk

    def test_an_assigned_item_has_an_assignment_time(self):
        item = ItemFactory()
        tester = UserFactory(roles=[Role.TESTER])
        _refused(lambda: Item.objects.filter(pk=item.pk).update(tester=tester, assigned_at=None))
        _refused(lambda: Item.objects.filter(pk=item.pk).update(assigned_at=timezone.now()))

    def test_idempotency_key_is_unique(self):
        observation = ObservationFactory()
        _refused(lambda: ObservationFactory(idempotency_key=observation.idempotency_key))

    def test_processed_at_is_set_exactly_when_processed(self):
        observation = ObservationFactory()
        rows = Observation.objects.filter(pk=observation.pk)
        _refused(lambda: rows.update(status=ObservationStatus.CONFIRMED))
        _refused(lambda: rows.update(processed_at=timezone.now()))
        rows.update(status=ObservationStatus.REJECTED, processed_at=timezone.now())

    def test_status_and_source_must_be_known_ones(self):
        rows = Observation.objects.filter(pk=ObservationFactory().pk)
        _refused(lambda: rows.update(status="lost"))
        _refused(lambda: rows.update(source="fax"))

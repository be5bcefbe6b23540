"""Reads: a user's own subscriptions and notifications, what a user may subscribe to, and the
subscriptions an event concerns."""

from collections.abc import Iterable

from django.contrib.auth.models import AnonymousUser, Permission, User
from django.db.models import Exists, Model, OuterRef, Q, QuerySet

from apps.config.models import Characteristic, Product, Test
from apps.observations.models import Lot
from apps.subscriptions.choices import SubscriptionScope
from apps.subscriptions.models import Notification, Subscription
from openspc.roles import may_view

# The model each scope points at, and the permission that reads it.
SCOPE_MODELS: dict[str, type[Model]] = {
    SubscriptionScope.PRODUCT: Product,
    SubscriptionScope.TEST: Test,
    SubscriptionScope.LOT: Lot,
    SubscriptionScope.CHARACTERISTIC: Characteristic,
}


def inbox_readable(*, user: User | AnonymousUser) -> bool:
    """Whether the user has an inbox: the roles that may subscribe, since only subscriptions fill
    one. The notifications page, GET /api/v1/notifications/ and `ws/notifications/` ask this."""
    return may_view(user, Subscription)


def subscription_queryset(*, user: User | AnonymousUser) -> QuerySet[Subscription]:
    """The user's own subscriptions (nobody sees another's)."""
    return Subscription.objects.filter(user=user.pk).select_related(
        "product", "test", "lot", "lot__product", "characteristic__product", "characteristic__test"
    )


def notification_queryset(*, user: User | AnonymousUser) -> QuerySet[Notification]:
    """The user's own inbox, newest first."""
    return Notification.objects.filter(user=user.pk).order_by("-created_at", "-id")


def notification_unread_count(*, user: User | AnonymousUser) -> int:
    return notification_queryset(user=user).filter(read_at__isnull=True).count()


def subscription_target_readable(*, user: User, scope: str, target_id: int) -> Model | None:
    """The scope's target if it exists and the user's role may read it, else None.

    Reading takes the model's view permission and, where the model has one, its
    `visible_to(user)` queryset (a tester reads only the tests of their items, no characteristics).
    """
    model = SCOPE_MODELS[scope]
    meta = model._meta
    if not user.has_perm(f"{meta.app_label}.view_{meta.model_name}"):
        return None
    manager = model._default_manager
    rows = manager.visible_to(user) if hasattr(manager, "visible_to") else manager.all()
    return rows.filter(pk=target_id).first()


def _may_subscribe() -> Q:
    """Users who still hold a role that subscribes: a user who lost it gets nothing more."""
    permission = Permission.objects.filter(
        content_type__app_label="subscriptions", codename="view_subscription"
    )
    through_group = User.groups.through.objects.filter(
        user_id=OuterRef("user_id"), group__permissions__in=permission
    )
    direct = User.user_permissions.through.objects.filter(
        user_id=OuterRef("user_id"), permission__in=permission
    )
    return Q(user__is_superuser=True) | Q(Exists(through_group)) | Q(Exists(direct))


def subscriptions_concerned(*, characteristics: Iterable[int], lots: Iterable[int]) -> QuerySet[Subscription]:
    """Active subscriptions of active users to these characteristics or lots, or to their products
    or tests: one query, with the products and tests as subqueries (the fan-out runs once per
    calculation, and most runs concern nobody)."""
    of_characteristics = Characteristic.objects.filter(pk__in=set(characteristics))
    lots = set(lots)
    targets = (
        Q(scope=SubscriptionScope.PRODUCT, product__in=of_characteristics.values("product_id"))
        | Q(scope=SubscriptionScope.PRODUCT, product__in=Lot.objects.filter(pk__in=lots).values("product_id"))
        | Q(scope=SubscriptionScope.TEST, test__in=of_characteristics.values("test_id"))
        | Q(scope=SubscriptionScope.LOT, lot__in=lots)
        | Q(scope=SubscriptionScope.CHARACTERISTIC, characteristic__in=of_characteristics.values("pk"))
    )
    return (
        Subscription.objects.filter(targets, active=True, user__is_active=True)
        .filter(_may_subscribe())
        .order_by("user_id", "id")
    )


def characteristics_readable(*, user: User | AnonymousUser, ids: list[int]) -> set[int]:
    """Those of `ids` the user may read: Characteristic.visible_to, the rule of the API's chart data
    and catch-up (GET /api/v1/samples) and of the pages."""
    return set(Characteristic.objects.visible_to(user).filter(pk__in=ids).values_list("pk", flat=True))

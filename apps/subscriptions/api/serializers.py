"""Shapes of the subscription API: a user's subscriptions and notifications."""

from typing import Any

from rest_framework import serializers

from apps.subscriptions.choices import SubscriptionEvent, SubscriptionScope
from apps.subscriptions.models import Notification, Subscription
from openspc.api import ModelSerializer


def _target_label(subscription: Subscription) -> str:
    if subscription.product is not None:
        return f"{subscription.product.code} — {subscription.product.name}"
    if subscription.test is not None:
        return f"{subscription.test.code} — {subscription.test.name}"
    if subscription.lot is not None:
        return f"Lot {subscription.lot.number} of {subscription.lot.product.code}"
    if subscription.characteristic is not None:
        c = subscription.characteristic
        return f"{c.test.code} {c.test.name} of {c.product.code}"
    return ""


class SubscriptionSerializer(ModelSerializer):
    """Scope and target are set once: a product, test, lot or characteristic id matching the scope.
    The subscriber is the authenticated user."""

    scope = serializers.ChoiceField(choices=SubscriptionScope.choices)
    product = serializers.IntegerField(min_value=1, required=False, allow_null=True, source="product_id")
    test = serializers.IntegerField(min_value=1, required=False, allow_null=True, source="test_id")
    lot = serializers.IntegerField(min_value=1, required=False, allow_null=True, source="lot_id")
    characteristic = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, source="characteristic_id"
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=SubscriptionEvent.choices),
        required=False,
        help_text="Kinds of event: results, violations, limits, disposition (default: violations).",
    )
    target = serializers.SerializerMethodField(help_text="What the subscription is to, for people.")

    class Meta:
        model = Subscription
        fields = [
            "id", "scope", "product", "test", "lot", "characteristic", "target", "events", "email", "active",
            "created_at",
        ]  # fmt: skip
        read_only_fields = ["id", "target", "created_at"]

    def get_target(self, obj: Subscription) -> str:
        return _target_label(obj)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        values = super().to_internal_value(data)
        # The service takes the target ids under the scope's names.
        return {key.removesuffix("_id"): value for key, value in values.items()}


class NotificationSerializer(ModelSerializer):
    read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = [
            "id", "event", "title", "message", "link", "data", "read", "read_at", "created_at", "updated_at",
            "subscription",
        ]  # fmt: skip
        read_only_fields = fields

    def get_read(self, obj: Notification) -> bool:
        return obj.read_at is not None


class UnreadCountSerializer(serializers.Serializer):
    unread = serializers.IntegerField()


class MarkedReadSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="Notifications that were unread and are read now.")

"""Filters for the subscription and notification lists (django-filter)."""

import django_filters
from django.db.models import QuerySet

from apps.subscriptions.models import Notification, Subscription


class SubscriptionFilterSet(django_filters.FilterSet):
    class Meta:
        model = Subscription
        fields = ["scope", "product", "test", "lot", "characteristic", "active", "email"]


class NotificationFilterSet(django_filters.FilterSet):
    unread = django_filters.BooleanFilter(
        method="filter_unread", help_text="true: unread only; false: read only."
    )
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Notification
        fields = ["unread", "event", "since"]

    def filter_unread(
        self, queryset: QuerySet[Notification], name: str, value: bool
    ) -> QuerySet[Notification]:
        return queryset.filter(read_at__isnull=value)

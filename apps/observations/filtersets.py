"""Filters for the observation API lists (django-filter)."""

import django_filters
from django.contrib.auth.models import User

from apps.observations.models import Invalidation, Item, Lot, Observation


class NumberInFilter(django_filters.BaseInFilter, django_filters.NumberFilter):
    pass


class LotFilterSet(django_filters.FilterSet):
    number = django_filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Lot
        fields = ["product", "number", "status"]


class ItemFilterSet(django_filters.FilterSet):
    serial = django_filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Item
        fields = ["lot", "tester", "serial"]


class ObservationFilterSet(django_filters.FilterSet):
    ids = NumberInFilter(field_name="id", help_text="Comma-separated ids (the status URL of a batch).")
    received_after = django_filters.IsoDateTimeFilter(field_name="received_at", lookup_expr="gte")

    class Meta:
        model = Observation
        fields = [
            "ids", "status", "source", "lot", "item", "test", "characteristic", "received_after",
            "historical", "late",
        ]  # fmt: skip


class InvalidationFilterSet(django_filters.FilterSet):
    lot = django_filters.NumberFilter(field_name="observation__lot")

    class Meta:
        model = Invalidation
        fields = ["status", "lot"]


class TesterFilterSet(django_filters.FilterSet):
    username = django_filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = User
        fields = ["username"]

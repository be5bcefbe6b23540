"""Filters for the calculation API lists (django-filter)."""

import django_filters

from apps.calculations.models import LotStatistics, ProductStatistics, Violation
from apps.observations.models import Sample


class SampleFilterSet(django_filters.FilterSet):
    since = django_filters.NumberFilter(
        field_name="sequence", lookup_expr="gt", help_text="Only samples after this sequence number."
    )

    class Meta:
        model = Sample
        fields = ["characteristic", "lot", "since", "in_control"]


class ViolationFilterSet(django_filters.FilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    lot = django_filters.NumberFilter(field_name="sample__lot")

    class Meta:
        model = Violation
        fields = ["characteristic", "lot", "rule", "chart", "severity", "since"]


class LotStatisticsFilterSet(django_filters.FilterSet):
    class Meta:
        model = LotStatistics
        fields = ["lot", "test", "characteristic", "disposition"]


class ProductStatisticsFilterSet(django_filters.FilterSet):
    product = django_filters.NumberFilter(field_name="characteristic__product")

    class Meta:
        model = ProductStatistics
        fields = ["characteristic", "product"]

"""Filters for the calculation API lists (django-filter)."""

import django_filters
from django.db.models import QuerySet

from apps.calculations.models import LotStatistics, ProductStatistics, Violation
from apps.calculations.selectors import AWAITING_ACKNOWLEDGEMENT
from apps.observations.models import Sample


class SampleFilterSet(django_filters.FilterSet):
    since = django_filters.NumberFilter(
        field_name="sequence", lookup_expr="gt", help_text="Only samples after this sequence number."
    )

    class Meta:
        model = Sample
        fields = ["characteristic", "lot", "since", "in_control"]


class ViolationFilterSet(django_filters.FilterSet):
    """The list's filters; GET /violations/stats/ counts what the same filters select."""

    product = django_filters.NumberFilter(field_name="characteristic__product")
    lot = django_filters.NumberFilter(field_name="sample__lot")
    rule = django_filters.NumberFilter(min_value=1, max_value=8)
    acknowledged = django_filters.BooleanFilter(
        method="filter_acknowledged",
        help_text="true: acknowledged; false: awaiting acknowledgement (a violation whose rule requires "
        "it and that nobody has acknowledged yet; informational violations are never 'awaiting').",
    )
    requires_acknowledgement = django_filters.BooleanFilter()
    created_after = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Found at or after this time."
    )
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Found before this time."
    )
    since = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="The same as created_after."
    )

    class Meta:
        model = Violation
        fields = [
            "characteristic", "product", "lot", "rule", "chart", "severity", "acknowledged",
            "requires_acknowledgement", "created_after", "created_before", "since",
        ]  # fmt: skip

    def filter_acknowledged(
        self, queryset: QuerySet[Violation], name: str, value: bool
    ) -> QuerySet[Violation]:
        if value:
            return queryset.filter(acknowledged_at__isnull=False)
        return queryset.filter(AWAITING_ACKNOWLEDGEMENT)


class LotStatisticsFilterSet(django_filters.FilterSet):
    class Meta:
        model = LotStatistics
        fields = ["lot", "test", "characteristic", "disposition"]


class ProductStatisticsFilterSet(django_filters.FilterSet):
    product = django_filters.NumberFilter(field_name="characteristic__product")

    class Meta:
        model = ProductStatistics
        fields = ["characteristic", "product"]

"""Filters for the calculation API lists (django-filter)."""

import django_filters
from django.db.models import Q, QuerySet

from apps.calculations.models import LotStatistics, ProductStatistics, Violation, ViolationEvent
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


class ViolationEventFilterSet(django_filters.FilterSet):
    """The event list's filters; acknowledging by filter (POST /violation-events/acknowledge-matching/)
    takes the same ones."""

    product = django_filters.NumberFilter(field_name="characteristic__product")
    lot = django_filters.NumberFilter()
    rule = django_filters.NumberFilter(
        min_value=1, max_value=8, method="filter_rule", help_text="Events this rule is involved in."
    )
    line = django_filters.CharFilter(
        field_name="characteristic__line", help_text="The characteristic's line."
    )
    ongoing = django_filters.BooleanFilter(
        method="filter_ongoing", help_text="true: still going on; false: ended (or withdrawn)."
    )
    acknowledged = django_filters.BooleanFilter(
        method="filter_acknowledged",
        help_text="true: acknowledged; false: awaiting acknowledgement (its rule requires it, nobody has "
        "acknowledged it, and no correction withdrew it).",
    )
    started_after = django_filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = django_filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="lt")

    class Meta:
        model = ViolationEvent
        fields = [
            "characteristic", "product", "lot", "line", "rule", "chart", "priority", "ongoing",
            "acknowledged", "requires_acknowledgement", "started_after", "started_before",
        ]  # fmt: skip

    def filter_rule(
        self, queryset: QuerySet[ViolationEvent], name: str, value: int
    ) -> QuerySet[ViolationEvent]:
        # By the violations it gathers (any database), not by a JSON lookup on `rules`.
        involved = Violation.objects.filter(rule=value, event__isnull=False).values("event")
        return queryset.filter(Q(rule=value) | Q(pk__in=involved))

    def filter_ongoing(
        self, queryset: QuerySet[ViolationEvent], name: str, value: bool
    ) -> QuerySet[ViolationEvent]:
        standing = queryset.filter(ended_at__isnull=True, withdrawn_at__isnull=True)
        return standing if value else queryset.exclude(pk__in=standing.values("pk"))

    def filter_acknowledged(
        self, queryset: QuerySet[ViolationEvent], name: str, value: bool
    ) -> QuerySet[ViolationEvent]:
        if value:
            return queryset.filter(acknowledged_at__isnull=False)
        return queryset.filter(AWAITING_ACKNOWLEDGEMENT)

    def described(self) -> str:
        """The filters given, in words, for the audit trail."""
        data = self.form.cleaned_data if self.is_bound and self.form.is_valid() else {}
        return ", ".join(f"{name}={value}" for name, value in data.items() if value not in (None, ""))


class LotStatisticsFilterSet(django_filters.FilterSet):
    class Meta:
        model = LotStatistics
        fields = ["lot", "test", "characteristic", "disposition"]


class ProductStatisticsFilterSet(django_filters.FilterSet):
    product = django_filters.NumberFilter(field_name="characteristic__product")

    class Meta:
        model = ProductStatistics
        fields = ["characteristic", "product"]

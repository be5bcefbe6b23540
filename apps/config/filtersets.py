"""Filters for the configuration API lists (django-filter)."""

import datetime

import django_filters
from django.db.models import QuerySet

from apps.config.models import Characteristic, Device, PlanAssignment, Product, Test, TestPlan


class ProductFilterSet(django_filters.FilterSet):
    code = django_filters.CharFilter(lookup_expr="iexact")
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Product
        fields = ["code", "name", "active"]


class TestFilterSet(django_filters.FilterSet):
    code = django_filters.CharFilter(lookup_expr="iexact")
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Test
        fields = ["code", "name", "kind", "active"]


class TestPlanFilterSet(django_filters.FilterSet):
    code = django_filters.CharFilter(lookup_expr="iexact")
    test = django_filters.NumberFilter(field_name="entries__test", help_text="Plans that contain this test.")

    class Meta:
        model = TestPlan
        fields = ["code", "version", "status", "test"]


class PlanAssignmentFilterSet(django_filters.FilterSet):
    effective_on = django_filters.DateFilter(method="filter_effective_on", help_text="In effect on this day.")

    class Meta:
        model = PlanAssignment
        fields = ["product", "plan", "effective_on"]

    def filter_effective_on(
        self, queryset: QuerySet[PlanAssignment], name: str, value: datetime.date
    ) -> QuerySet[PlanAssignment]:
        return queryset.effective_on(value)  # type: ignore[attr-defined]


class CharacteristicFilterSet(django_filters.FilterSet):
    class Meta:
        model = Characteristic
        fields = [
            "product",
            "test",
            "chart_type",
            "data_source",
            "tag",
            "site",
            "area",
            "line",
            "cell",
            "active",
        ]


class DeviceFilterSet(django_filters.FilterSet):
    class Meta:
        model = Device
        fields = ["active"]

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
    in_effect_for = django_filters.ModelChoiceFilter(
        queryset=Product.objects.all(),
        method="filter_in_effect_for",
        help_text="Released plans assigned to this product and in effect now: what a picker offers.",
    )

    class Meta:
        model = TestPlan
        fields = ["code", "version", "status", "test", "in_effect_for"]

    def filter_in_effect_for(
        self, queryset: QuerySet[TestPlan], name: str, value: Product
    ) -> QuerySet[TestPlan]:
        return queryset.in_effect(product_id=value.pk)  # type: ignore[attr-defined]


class PlanAssignmentFilterSet(django_filters.FilterSet):
    effective_at = django_filters.IsoDateTimeFilter(
        method="filter_effective_at",
        help_text="In effect at this moment (ISO 8601; a date alone is its start in the plant's time zone).",
    )

    class Meta:
        model = PlanAssignment
        fields = ["product", "plan", "effective_at"]

    def filter_effective_at(
        self, queryset: QuerySet[PlanAssignment], name: str, value: datetime.datetime
    ) -> QuerySet[PlanAssignment]:
        return queryset.effective_at(value)  # type: ignore[attr-defined]


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

"""Filters of the audit trail list."""

import django_filters
from django.db.models import QuerySet

from apps.audit.choices import AuditAction
from apps.audit.models import AuditEntry


class AuditEntryFilterSet(django_filters.FilterSet):
    action = django_filters.MultipleChoiceFilter(choices=AuditAction.choices)
    object_type = django_filters.CharFilter(
        method="filter_object_type",
        help_text="app_label.model, e.g. calculations.violation, config.characteristic, observations.sample.",
    )
    content_type = django_filters.CharFilter(
        method="filter_object_type", help_text="The same as object_type: app_label.model."
    )
    object_id = django_filters.CharFilter(help_text="With object_type: the history of one record.")
    user = django_filters.NumberFilter(field_name="user")
    source = django_filters.CharFilter()
    at_after = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte")
    at_before = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = AuditEntry
        fields = [
            "action",
            "object_type",
            "content_type",
            "object_id",
            "user",
            "source",
            "at_after",
            "at_before",
        ]

    def filter_object_type(
        self, queryset: QuerySet[AuditEntry], name: str, value: str
    ) -> QuerySet[AuditEntry]:
        app_label, _, model = value.lower().partition(".")
        return queryset.filter(content_type__app_label=app_label, content_type__model=model)

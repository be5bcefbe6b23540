"""Violations and statistics in the admin: read-only, the calculation worker writes them."""

from django.contrib import admin

from apps.audit.admin import AuditedAdmin
from apps.calculations.models import AcknowledgementReason, LotStatistics, ProductStatistics, Violation
from openspc.admin import ReadOnlyAdmin


@admin.register(Violation)
class ViolationAdmin(ReadOnlyAdmin):
    list_display = ["id", "characteristic", "sample", "rule", "chart", "severity", "points", "created_at"]
    list_filter = ["rule", "chart", "severity"]
    list_select_related = ["characteristic__product", "characteristic__test", "sample"]
    date_hierarchy = "created_at"


@admin.register(LotStatistics)
class LotStatisticsAdmin(ReadOnlyAdmin):
    list_display = [
        "lot",
        "test",
        "n",
        "mean",
        "sd",
        "minimum",
        "maximum",
        "out_of_spec",
        "cpk",
        "disposition",
    ]
    list_filter = ["disposition", "test"]
    search_fields = ["lot__number", "test__code"]
    list_select_related = ["lot", "test"]


@admin.register(ProductStatistics)
class ProductStatisticsAdmin(ReadOnlyAdmin):
    list_display = ["characteristic", "n", "mean", "sd", "cp", "cpk", "pp", "ppk", "limits_version"]
    list_select_related = ["characteristic__product", "characteristic__test"]


@admin.register(AcknowledgementReason)
class AcknowledgementReasonAdmin(AuditedAdmin):
    """The reason codes offered when acknowledging a violation (changes audited). Retire a code
    (active off) rather than deleting it: old acknowledgements keep pointing at it."""

    list_display = ["code", "label", "active", "position"]
    list_editable = ["active", "position"]
    search_fields = ["code", "label"]

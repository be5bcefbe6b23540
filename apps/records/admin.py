from django.contrib import admin

from apps.records.models import LotDisposition, LotReleaseRequest, OosInvestigation
from openspc.admin import ReadOnlyAdmin


@admin.register(LotDisposition)
class LotDispositionAdmin(ReadOnlyAdmin):
    """Dispositions are taken, signed, through the API or the lot page; never edited here."""

    list_display = ["decided_at", "lot", "decision", "deviation", "decided_by"]
    list_filter = ["decision"]
    list_select_related = ["lot", "decided_by"]


@admin.register(LotReleaseRequest)
class LotReleaseRequestAdmin(ReadOnlyAdmin):
    list_display = ["requested_at", "lot", "requested_by"]
    list_select_related = ["lot", "requested_by"]


@admin.register(OosInvestigation)
class OosInvestigationAdmin(ReadOnlyAdmin):
    list_display = ["opened_at", "lot", "test", "status", "outcome", "owner"]
    list_filter = ["status", "outcome"]
    list_select_related = ["lot", "test", "owner"]

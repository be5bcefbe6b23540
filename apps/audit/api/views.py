"""The audit trail, read-only: Quality Specialists read it; nobody writes it through the API."""

import csv
from collections.abc import Iterator
from itertools import islice

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request

from apps.audit import selectors, words
from apps.audit.api.serializers import AuditEntrySerializer
from apps.audit.filtersets import AuditEntryFilterSet
from apps.audit.models import AuditEntry
from openspc.permissions import IsHuman, RoleModelPermissions

CSV_COLUMNS = [
    "seq", "at", "user", "action", "record type", "record", "changes", "reason", "source", "hash",
]  # fmt: skip
CSV_CHUNK = 500  # entries whose references are looked up together


class ReadOnlyPermissions(RoleModelPermissions):
    """Reads need `audit.view_auditentry`; any other method is not allowed at all (405)."""

    perms_map = {method: RoleModelPermissions.perms_map[method] for method in ("GET", "HEAD", "OPTIONS")}


class NewestFirstPagination(CursorPagination):
    """Newest first, paged by an opaque cursor: stable while entries are appended."""

    ordering: tuple[str, ...] = ("-at", "-id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class ChainOrderPagination(NewestFirstPagination):
    """Newest first by position in the hash chain."""

    ordering = ("-seq",)


class Echo:
    """A file that hands back what is written to it: csv.writer's rows, one by one, to stream."""

    def write(self, value: str) -> str:
        return value


def _cell(value: str) -> str:
    """A text that a spreadsheet would run as a formula is kept as text (leading apostrophe)."""
    if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(value)
        except ValueError:
            return f"'{value}"
    return value


def _csv_rows(entries: QuerySet[AuditEntry]) -> Iterator[str]:
    writer = csv.writer(Echo())
    yield writer.writerow(CSV_COLUMNS)
    stream = entries.iterator(chunk_size=CSV_CHUNK)
    while chunk := list(islice(stream, CSV_CHUNK)):
        references = words.references_load(chunk)
        for entry in chunk:
            changes = words.changes_text(words.entry_changes(entry, references))
            row = [
                str(entry.seq), timezone.localtime(entry.at).isoformat(), words.user_name(entry.user),
                entry.get_action_display(), words.record_type(entry), entry.object_repr, changes,
                entry.reason, entry.source, entry.hash,
            ]  # fmt: skip
            yield writer.writerow([_cell(value) for value in row])


class AuditEntryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Who changed what, when, from what to what, and why: configuration (API and admin), control
    limits, acknowledgements, sample exclusions, lots, items, their plans and testers, and results
    entered. Each entry in words too (`user_name`, `action_label`, `object_type_label`, `changes`);
    `object_type` with `object_id` is the history of one record."""

    queryset = AuditEntry.objects.all()
    serializer_class = AuditEntrySerializer
    permission_classes = [IsHuman, ReadOnlyPermissions]
    filterset_class = AuditEntryFilterSet
    pagination_class = ChainOrderPagination
    ordering_fields: list[str] = []
    search_fields = ["object_repr", "reason"]

    def get_queryset(self) -> QuerySet[AuditEntry]:
        return selectors.audit_entry_queryset()

    @extend_schema(
        operation_id="v1_audit_entries_csv",
        filters=True,
        summary="The entries as CSV, oldest first (the list's filters apply)",
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description=", ".join(CSV_COLUMNS))},
    )
    def export(self, request: Request) -> StreamingHttpResponse:
        """Every entry the filters select, in words, streamed as CSV in the order of the chain; the
        hash column lets a reader check an entry against the chain (manage.py audit_verify)."""
        entries = self.filter_queryset(self.get_queryset()).order_by("seq")
        response = StreamingHttpResponse(_csv_rows(entries), content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="audit-trail-{stamp}.csv"'
        return response

"""The audit trail, read-only: Quality Specialists read it; nobody writes it through the API."""

from django.db.models import QuerySet
from rest_framework import mixins, viewsets
from rest_framework.pagination import CursorPagination

from apps.audit import selectors
from apps.audit.api.serializers import AuditEntrySerializer
from apps.audit.filtersets import AuditEntryFilterSet
from apps.audit.models import AuditEntry
from openspc.permissions import IsHuman, RoleModelPermissions


class ReadOnlyPermissions(RoleModelPermissions):
    """Reads need `audit.view_auditentry`; any other method is not allowed at all (405)."""

    perms_map = {method: RoleModelPermissions.perms_map[method] for method in ("GET", "HEAD", "OPTIONS")}


class NewestFirstPagination(CursorPagination):
    """Newest first, paged by an opaque cursor: stable while entries are appended."""

    ordering = ("-at", "-id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class AuditEntryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Who changed what, when, from what to what, and why: acknowledgements, control limits,
    configuration (API and admin) and sample exclusions."""

    queryset = AuditEntry.objects.all()
    serializer_class = AuditEntrySerializer
    permission_classes = [IsHuman, ReadOnlyPermissions]
    filterset_class = AuditEntryFilterSet
    pagination_class = NewestFirstPagination
    ordering_fields: list[str] = []
    search_fields = ["object_repr", "reason"]

    def get_queryset(self) -> QuerySet[AuditEntry]:
        return selectors.audit_entry_queryset()

from django.contrib import admin

from apps.signatures.models import Signature
from openspc.admin import ReadOnlyAdmin


@admin.register(Signature)
class SignatureAdmin(ReadOnlyAdmin):
    """Signatures are stored by the actions they sign; nobody adds, changes or deletes them here."""

    list_display = ["signed_at", "full_name", "meaning", "action", "object_repr"]
    list_filter = ["meaning", "action"]
    search_fields = ["full_name", "object_repr", "user__username"]
    list_select_related = ["user"]

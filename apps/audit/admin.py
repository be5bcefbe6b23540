"""The audit trail in the admin (read-only for everyone, superusers included), and the mixin that
records the admin's own configuration changes."""

import json
from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib import admin
from django.db import models, transaction
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils.html import format_html

from apps.audit.models import AuditEntry
from apps.audit.services import Actor, audit_change, audit_fields
from openspc.admin import ReadOnlyAdmin


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Entries are appended by the services; nobody adds, changes or deletes them here."""

    list_display = ["seq", "at", "user", "action", "content_type", "object_repr", "source", "reason"]
    list_filter = ["action", "source", "content_type"]
    search_fields = ["object_repr", "object_id", "reason", "user__username"]
    list_select_related = ["user", "content_type"]
    date_hierarchy = "at"
    fields = readonly_fields = (
        "at", "user", "action", "content_type", "object_id", "object_repr", "source", "reason",
        "before_shown", "after_shown", "seq", "prev_hash", "hash",
    )  # fmt: skip

    @admin.display(description="before")
    def before_shown(self, obj: AuditEntry) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.before, indent=2, ensure_ascii=False))

    @admin.display(description="after")
    def after_shown(self, obj: AuditEntry) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.after, indent=2, ensure_ascii=False))


def _inline_rows(formset: BaseInlineFormSet) -> list[dict[str, Any]]:
    """The inline's rows of the parent as they are in the database, in primary key order."""
    parent = formset.instance
    model: Any = formset.model
    fk = getattr(formset, "fk", None)
    if parent.pk is None or fk is None:
        return []
    names = [f.name for f in model._meta.concrete_fields if not f.primary_key and f.name != fk.name]
    rows = model._default_manager.filter(**{fk.name: parent}).order_by("pk")
    return [audit_fields(row, names) for row in rows]


class AuditedAdmin(admin.ModelAdmin):
    """Records the admin's changes in the audit trail, source 'admin', each once.

    Admins whose save_model / delete_model hand the change to a service pass
    `self.audit_actor(request)` to it, and the service records. What the admin writes
    itself is recorded here: a plain save_model, deletions (one by one and the bulk
    action), and inline formsets (one entry on the parent with its rows before and after).
    """

    audited_fields: Sequence[str] = ()

    def audit_actor(self, request: HttpRequest) -> Actor:
        return Actor.of(request, "admin")

    def _fields(self) -> list[str]:
        if self.audited_fields:
            return list(self.audited_fields)
        return [f.name for f in self.model._meta.concrete_fields if not f.primary_key]

    def save_model(self, request: HttpRequest, obj: Any, form: forms.ModelForm, change: bool) -> None:
        fields = self._fields()
        before = audit_fields(type(obj)._default_manager.get(pk=obj.pk), fields) if change else None
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            audit_change(
                actor=self.audit_actor(request), instance=obj, before=before, after=audit_fields(obj, fields)
            )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            before = audit_fields(obj, self._fields())
            audit_change(actor=self.audit_actor(request), instance=obj, before=before, after=None)
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with transaction.atomic():
            for obj in queryset:
                self.delete_model(request, obj)

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool) -> None:
        name = str(formset.model._meta.verbose_name_plural)
        before = _inline_rows(formset)
        super().save_formset(request, form, formset, change)
        after = _inline_rows(formset)
        parent: models.Model = form.instance
        audit_change(
            actor=self.audit_actor(request), instance=parent, before={name: before}, after={name: after}
        )

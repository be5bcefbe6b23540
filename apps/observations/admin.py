"""Lots and observations in the admin. Lots change through services; observations are read-only."""

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from apps.audit.services import Actor
from apps.observations import services
from apps.observations.choices import LOT_DISPOSITIONS
from apps.observations.models import Invalidation, Item, Lot, Observation, Sample, ScheduledSample
from openspc.admin import ReadOnlyAdmin
from openspc.api import acting_user


class ItemInline(admin.TabularInline):
    """Items are created and assigned through the API (bulk); the admin shows them."""

    model = Item
    extra = 0
    fields = ("serial", "tester", "assigned_at", "created_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LotAdminForm(forms.ModelForm):
    class Meta:
        model = Lot
        fields = ["product", "number", "status"]

    def clean(self) -> dict[str, Any]:
        # The services' rules, in their words, next to their fields, before anything is saved.
        data = super().clean() or {}
        try:
            if self.instance.pk is None and data.get("product") and data.get("number"):
                data["number"] = services.lot_validate(product=data["product"], number=data["number"])
            elif self.instance.pk is not None and "status" in self.changed_data:
                if data.get("status") in LOT_DISPOSITIONS:
                    raise ValidationError(
                        {"status": "Release, rejection and quarantine are signed dispositions."}
                    )
                original = Lot.objects.get(pk=self.instance.pk)
                services.lot_status_validate(lot=original, status=data.get("status", ""))
        except ValidationError as exc:
            self.add_error(None, exc)
        return data


@admin.register(Lot)
class LotAdmin(admin.ModelAdmin):
    form = LotAdminForm
    list_display = [
        "number",
        "product",
        "status",
        "item_count",
        "observation_count",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "product"]
    search_fields = ["number", "product__code"]
    list_select_related = ["product", "created_by"]
    inlines = [ItemInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Lot]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                item_count=Count("items", distinct=True),
                observation_count=Count("observations", distinct=True),
            )
        )

    @admin.display(description="items", ordering="item_count")
    def item_count(self, obj: Lot) -> int:
        return int(getattr(obj, "item_count", 0))

    @admin.display(description="observations", ordering="observation_count")
    def observation_count(self, obj: Lot) -> int:
        return int(getattr(obj, "observation_count", 0))

    def get_readonly_fields(self, request: HttpRequest, obj: Lot | None = None) -> list[str]:
        base = ["item_count", "observation_count", "created_by", "created_at"]
        # A new lot starts open; an existing one keeps its product and number.
        return [*base, "status"] if obj is None else [*base, "product", "number"]

    def save_model(self, request: HttpRequest, obj: Lot, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        if change:
            if "status" in form.changed_data:
                services.lot_status_set(
                    lot=obj, status=data["status"], user=acting_user(request),
                    actor=Actor.of(request, "admin"),
                )  # fmt: skip
            return
        created = services.lot_create(
            product=data["product"], number=data["number"], user=acting_user(request),
            actor=Actor.of(request, "admin"),
        )  # fmt: skip
        obj.pk = created.pk
        obj._state.adding = False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # Lots are history: reject one instead.


@admin.register(Observation)
class ObservationAdmin(ReadOnlyAdmin):  # nothing posted is changed or discarded
    list_display = [
        "id", "lot", "item", "test", "values", "status", "reasons_text", "source", "late", "received_at",
        "retest_of", "verified_by",
    ]  # fmt: skip
    list_filter = ["status", "source", "historical", "late", "test"]
    search_fields = ["lot__number", "item__serial", "idempotency_key"]
    list_select_related = ["lot", "item__lot", "test"]
    date_hierarchy = "received_at"

    @admin.display(description="reasons")
    def reasons_text(self, obj: Observation) -> str:
        return "; ".join(str(reason.get("message", reason)) for reason in obj.reasons or [])


@admin.register(Invalidation)
class InvalidationAdmin(ReadOnlyAdmin):  # decided through the API, signed; the admin shows them
    list_display = [
        "observation",
        "status",
        "reason",
        "requested_by",
        "requested_at",
        "decided_by",
        "decided_at",
    ]
    list_filter = ["status"]
    search_fields = ["observation__lot__number", "reason"]
    list_select_related = ["observation", "requested_by", "decided_by"]


@admin.register(Sample)
class SampleAdmin(ReadOnlyAdmin):
    list_display = [
        "characteristic",
        "sequence",
        "lot",
        "n",
        "mean",
        "range",
        "sd",
        "in_control",
        "undersized",
    ]
    list_filter = ["in_control", "undersized"]
    search_fields = ["lot__number", "characteristic__product__code", "characteristic__test__code"]
    list_select_related = ["characteristic__product", "characteristic__test", "lot"]
    date_hierarchy = "created_at"


@admin.register(ScheduledSample)
class ScheduledSampleAdmin(ReadOnlyAdmin):  # opened by the schedule check, closed on the worklist or the API
    list_display = [
        "characteristic",
        "slot",
        "state",
        "due_at",
        "overdue_at",
        "taken_at",
        "reason_code",
        "closed_by",
    ]
    list_filter = ["state", "reason_code"]
    search_fields = ["characteristic__product__code", "characteristic__test__code", "note"]
    list_select_related = ["characteristic__product", "characteristic__test", "closed_by"]
    date_hierarchy = "due_at"

"""The Quality Specialist's configuration tool. Writes go through apps.config.services.

Every change is audited (source 'admin'): the services record what they write, given
`self.audit_actor(request)`; AuditedAdmin records deletions and inline rows."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from apps.audit.admin import AuditedAdmin
from apps.config import services
from apps.config.choices import ChartType, PlanStatus
from apps.config.models import (
    Characteristic,
    ControlLimits,
    Device,
    PlanAssignment,
    Product,
    SamplingSchedule,
    Test,
    TestPlan,
    TestPlanEntry,
)
from apps.signatures.api.serializers import SIGNED_IN_SESSION
from apps.signatures.choices import SignatureMeaning, SignedAction
from apps.signatures.services import Signer, SigningRefused, signer_check
from openspc.api import acting_user

admin.site.site_header = "OpenSPC configuration"
admin.site.site_title = "OpenSPC"
admin.site.index_title = "Products, tests, test plans and charts"


@admin.register(Product)
class ProductAdmin(AuditedAdmin):
    list_display = ["code", "name", "active", "characteristic_count", "updated_at"]
    list_filter = ["active"]
    search_fields = ["code", "name", "description"]
    ordering = ["code"]
    audited_fields = services.PRODUCT_FIELDS

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        return super().get_queryset(request).annotate(characteristic_count=Count("characteristics"))

    @admin.display(description="characteristics", ordering="characteristic_count")
    def characteristic_count(self, obj: Product) -> int:
        return int(getattr(obj, "characteristic_count", 0))

    def save_model(self, request: HttpRequest, obj: Product, form: forms.ModelForm, change: bool) -> None:
        data = {
            name: form.cleaned_data[name] for name in services.PRODUCT_FIELDS if name in form.cleaned_data
        }
        actor = self.audit_actor(request)
        if change:
            services.product_update(product=Product.objects.get(pk=obj.pk), data=data, actor=actor)
        else:
            obj.pk = services.product_create(**data, actor=actor).pk


class TestAdminForm(forms.ModelForm):
    class Meta:
        model = Test
        fields = list(services.TEST_FIELDS)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        services.test_validate(data=data, test=self.instance if self.instance.pk else None)
        return data


@admin.register(Test)
class TestAdmin(AuditedAdmin):
    form = TestAdminForm
    audited_fields = services.TEST_FIELDS
    list_display = [
        "code",
        "name",
        "unit",
        "kind",
        "decimals",
        "plausible_min",
        "plausible_max",
        "active",
    ]
    list_filter = ["kind", "active"]
    search_fields = ["code", "name", "instructions"]
    ordering = ["code"]
    fieldsets = [
        (None, {"fields": ["code", "name", "kind", "unit", "decimals", "active"]}),
        ("Plausible range", {"fields": ["plausible_min", "plausible_max"],
                             "description": "Values outside are rejected as implausible (typing error, "
                                            "broken sensor). This is not the specification."}),
        ("For testers", {"fields": ["instructions"]}),
    ]  # fmt: skip

    def save_model(self, request: HttpRequest, obj: Test, form: forms.ModelForm, change: bool) -> None:
        data = {name: form.cleaned_data[name] for name in services.TEST_FIELDS if name in form.cleaned_data}
        actor = self.audit_actor(request)
        if change:
            services.test_update(test=Test.objects.get(pk=obj.pk), data=data, actor=actor)
        else:
            obj.pk = services.test_create(**data, actor=actor).pk


class TestPlanEntryInline(admin.TabularInline):
    model = TestPlanEntry
    extra = 1
    ordering = ["position"]
    autocomplete_fields = ["test"]
    fields = ["position", "test", "replicates"]

    def _editable(self, obj: TestPlan | None) -> bool:
        return obj is None or obj.is_editable

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)


class ReasonActionForm(ActionForm):
    """The action bar with a reason and an electronic signature: releasing a plan says why (kept in
    the audit trail) and is signed (your password, its meaning, and your user name for the first
    signature of the session)."""

    reason = forms.CharField(
        required=False, max_length=1000, label="Reason",
        widget=forms.TextInput(attrs={"placeholder": "Why (needed to release)", "size": 40}),
    )  # fmt: skip
    signature_meaning = forms.ChoiceField(
        required=False, label="Signature meaning",
        choices=[(SignatureMeaning.APPROVED, "Approved"), (SignatureMeaning.RELEASED, "Released")],
    )  # fmt: skip
    signature_username = forms.CharField(
        required=False, label="User name",
        widget=forms.TextInput(attrs={"placeholder": "User name (first signature)", "size": 16,
                                      "autocomplete": "username"}),
    )  # fmt: skip
    signature_password = forms.CharField(
        required=False, label="Password",
        widget=forms.PasswordInput(attrs={"placeholder": "Password (to sign)", "size": 16,
                                          "autocomplete": "current-password"}),
    )  # fmt: skip


@admin.register(TestPlan)
class TestPlanAdmin(AuditedAdmin):
    action_form = ReasonActionForm
    list_display = ["code", "version", "name", "status", "test_count", "released_at"]
    list_filter = ["status"]
    search_fields = ["code", "name", "entries__test__code"]
    ordering = ["code", "-version"]
    inlines = [TestPlanEntryInline]
    readonly_fields = ["version", "status", "released_at", "released_by"]
    actions = ["release_plans", "retire_plans", "new_versions", "reinstate_plans"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[TestPlan]:
        return super().get_queryset(request).annotate(test_count=Count("entries")).distinct()

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[TestPlan], search_term: str
    ) -> tuple[QuerySet[TestPlan], bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if request.path.endswith("/autocomplete/"):
            # Every picker of plans (the assignment form's) offers released plans only: a draft
            # or a retired plan would only be refused when saved.
            results = results.filter(status=PlanStatus.RELEASED)
        return results, may_have_duplicates

    @admin.display(description="tests", ordering="test_count")
    def test_count(self, obj: TestPlan) -> int:
        return int(getattr(obj, "test_count", 0))

    def has_change_permission(self, request: HttpRequest, obj: TestPlan | None = None) -> bool:
        # A released or retired plan is shown read-only: changing it means a new version.
        editable = obj is None or obj.is_editable
        return editable and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: TestPlan | None = None) -> bool:
        # Released plans are history; only a draft may be deleted, one at a time.
        editable = obj is None or obj.is_editable
        return editable and super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a bulk delete would not look at each plan's status
        return actions

    def delete_model(self, request: HttpRequest, obj: TestPlan) -> None:
        services.test_plan_delete(plan=obj, actor=self.audit_actor(request))

    def get_readonly_fields(self, request: HttpRequest, obj: TestPlan | None = None) -> list[str]:
        if obj is not None and not obj.is_editable:
            return ["code", "name", "description", *self.readonly_fields]
        if obj is not None:
            return ["code", *self.readonly_fields]
        return list(self.readonly_fields)

    def save_model(self, request: HttpRequest, obj: TestPlan, form: forms.ModelForm, change: bool) -> None:
        data = {k: v for k, v in form.cleaned_data.items() if k in {"code", "name", "description"}}
        actor = self.audit_actor(request)
        if change:
            services.test_plan_update(plan=TestPlan.objects.get(pk=obj.pk), data=data, actor=actor)
        else:
            obj.pk = services.test_plan_create(**data, actor=actor).pk
            obj._state.adding = False

    def _each(self, request: HttpRequest, queryset: QuerySet[TestPlan], verb: str, fn: Any) -> None:
        for plan in queryset:
            try:
                result = fn(plan)
            except ValidationError as exc:
                self.message_user(
                    request,
                    f"{plan.code} v{plan.version}: {' '.join(exc.messages)}",
                    messages.ERROR,
                )
            else:
                self.message_user(request, f"{result.code} v{result.version} {verb}.", messages.SUCCESS)

    def _release_signer(self, request: HttpRequest) -> Signer | None:
        """The signer of a release from the action bar: the password and meaning typed there (and
        the user name, for the session's first signature), checked before any plan is released. A
        wrong password is refused and audited; no signature at all is refused by the service where
        plan releases are signed."""
        password = request.POST.get("signature_password", "")
        if not password:
            return None
        session = request.session
        signer = signer_check(
            user=acting_user(request),
            action=SignedAction.PLAN_RELEASE,
            meaning=request.POST.get("signature_meaning", ""),
            password=password,
            username=request.POST.get("signature_username") or None,
            username_required=not session.get(SIGNED_IN_SESSION),
            source="admin",
        )
        session[SIGNED_IN_SESSION] = True
        return signer

    @admin.action(description="Release selected draft plans", permissions=["change"])
    def release_plans(self, request: HttpRequest, queryset: QuerySet[TestPlan]) -> None:
        try:
            signer = self._release_signer(request)
        except (ValidationError, SigningRefused) as exc:
            words = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            self.message_user(request, f"Nothing was released: {words}", messages.ERROR)
            return
        self._each(
            request,
            queryset,
            "released",
            lambda p: services.test_plan_release(
                plan=p,
                signer=signer,
                user=acting_user(request),
                actor=self.audit_actor(request),
                reason=request.POST.get("reason", ""),
            ),
        )

    @admin.action(description="Retire selected released plans", permissions=["change"])
    def retire_plans(self, request: HttpRequest, queryset: QuerySet[TestPlan]) -> None:
        actor = self.audit_actor(request)
        self._each(request, queryset, "retired", lambda p: services.test_plan_retire(plan=p, actor=actor))

    @admin.action(description="Create a new draft version of each selected plan", permissions=["add"])
    def new_versions(self, request: HttpRequest, queryset: QuerySet[TestPlan]) -> None:
        self._each(
            request,
            queryset,
            "created as a draft",
            lambda p: services.test_plan_new_version(plan=p, actor=self.audit_actor(request)),
        )

    @admin.action(description="Reinstate selected retired plans as new draft versions", permissions=["add"])
    def reinstate_plans(self, request: HttpRequest, queryset: QuerySet[TestPlan]) -> None:
        actor = self.audit_actor(request)
        self._each(
            request,
            queryset,
            "created as a draft",
            lambda p: services.test_plan_reinstate(plan=p, actor=actor),
        )


class PlanAssignmentForm(forms.ModelForm):
    class Meta:
        model = PlanAssignment
        fields = ["product", "plan", "effective_from", "effective_to"]
        help_texts = {
            "plan": "Only released plans can be assigned (the search offers no other). Assigning creates "
            "the characteristics.",
            "effective_from": "When it takes effect; empty: now.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "effective_from" in self.fields:
            self.fields["effective_from"].required = False  # empty: now (plan_assign's default)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.instance.pk is not None:
            services.plan_assignment_end_validate(
                assignment=self.instance, effective_to=data.get("effective_to")
            )
        elif data.get("product") and data.get("plan"):
            services.plan_assignment_validate(
                product=data["product"], plan=data["plan"],
                effective_from=data.get("effective_from") or timezone.now(),
                effective_to=data.get("effective_to"),
            )  # fmt: skip
        return data


@admin.register(PlanAssignment)
class PlanAssignmentAdmin(AuditedAdmin):
    form = PlanAssignmentForm
    list_display = [
        "product",
        "plan",
        "effective_from",
        "effective_to",
        "assigned_by",
        "created_at",
    ]
    list_filter = ["plan__status", "effective_from"]
    search_fields = ["product__code", "plan__code"]
    autocomplete_fields = ["product", "plan"]
    list_select_related = ["product", "plan", "assigned_by"]

    def get_readonly_fields(self, request: HttpRequest, obj: PlanAssignment | None = None) -> list[str]:
        return ["product", "plan", "effective_from"] if obj is not None else []

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # End an assignment with effective_to; it stays as history.

    def save_model(
        self, request: HttpRequest, obj: PlanAssignment, form: forms.ModelForm, change: bool
    ) -> None:
        data = form.cleaned_data
        actor = self.audit_actor(request)
        if change:
            services.plan_assignment_end(assignment=obj, effective_to=data.get("effective_to"), actor=actor)
            return
        created = services.plan_assign(
            product=data["product"], plan=data["plan"], effective_from=data.get("effective_from"),
            effective_to=data.get("effective_to"), user=acting_user(request), actor=actor,
        )  # fmt: skip
        obj.pk = created.pk


LIMIT_FIELDS = (
    "version",
    "center",
    "lcl",
    "ucl",
    "sigma",
    "method",
    "frozen",
    "reason",
    "set_by",
    "created_at",
)


class ControlLimitsInline(admin.TabularInline):
    model = ControlLimits
    extra = 0
    ordering = ["-version"]
    fields = readonly_fields = LIMIT_FIELDS
    can_delete = False
    verbose_name_plural = "control limit history (read-only; set from the chart or the API)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CharacteristicAdminForm(forms.ModelForm):
    reason = forms.CharField(
        required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why: needed when the specification limits or the rules change; kept in the audit trail.",
    )  # fmt: skip

    class Meta:
        model = Characteristic
        fields = list(services.CHARACTERISTIC_FIELDS)

    def clean(self) -> dict[str, Any]:
        # The service's checks, in its plain words, next to their fields. They run before the
        # model's constraint checks, which skip the fields that already have an error.
        data = super().clean() or {}
        if self.errors:
            return data
        changes = {name: data[name] for name in services.CHARACTERISTIC_FIELDS if name in data}
        try:
            changed = services.characteristic_apply(characteristic=self.instance, data=changes)
            services.characteristic_reason_check(
                before=self.instance, after=changed, reason=data.get("reason", "")
            )
        except ValidationError as exc:
            self.add_error(None, exc)
        return data


@admin.register(Characteristic)
class CharacteristicAdmin(AuditedAdmin):
    form = CharacteristicAdminForm
    list_display = [
        "__str__",
        "lsl",
        "target",
        "usl",
        "subgroup_size",
        "chart",
        "data_source",
        "line",
        "active",
    ]
    list_filter = ["chart_type", "data_source", "active", "site", "area", "line", "product"]
    search_fields = ["product__code", "test__code", "tag", "line", "cell"]
    list_select_related = ["product", "test"]
    readonly_fields = ["product", "test", "rule_preset", "created_at", "updated_at"]
    inlines = [ControlLimitsInline]
    fieldsets = [
        (None, {"fields": ["product", "test", "active"]}),
        ("Specification", {"fields": ["lsl", "target", "usl", "spec_warning_margin"]}),
        ("Chart", {"fields": ["subgroup_size", "chart_type", "chart_params", "decimals"]}),
        ("Rules", {"fields": ["rule_preset", "rules", "acknowledge_rules", "rule_priorities"]}),
        ("Data source", {"fields": ["data_source", "tag", "subgroup_timeout", "subgroup_timeout_policy"]}),
        ("Where (ISA-95)", {"fields": ["site", "area", "line", "cell"]}),
        ("Why", {"fields": ["reason"]}),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # Characteristics come from assigning a plan to a product.

    @admin.display(description="chart", ordering="chart_type")
    def chart(self, obj: Characteristic) -> str:
        """The chart actually drawn, so 'automatic' reads as X̄-R, I-MR..."""
        drawn = str(ChartType(obj.effective_chart_type).label)
        return f"{drawn} (auto)" if obj.chart_type == ChartType.AUTO else drawn

    def save_model(
        self, request: HttpRequest, obj: Characteristic, form: forms.ModelForm, change: bool
    ) -> None:
        data = {
            name: form.cleaned_data[name]
            for name in services.CHARACTERISTIC_FIELDS
            if name in form.cleaned_data
        }
        services.characteristic_update(
            characteristic=obj, data=data, actor=self.audit_actor(request),
            reason=form.cleaned_data.get("reason", ""),
        )  # fmt: skip


class DeviceAdminForm(forms.ModelForm):
    class Meta:
        model = Device
        fields = ["name", "description", "active", "characteristics", "products"]


@admin.register(Device)
class DeviceAdmin(AuditedAdmin):
    form = DeviceAdminForm
    audited_fields = services.DEVICE_FIELDS
    list_display = ["name", "active", "bound_to", "token_prefix", "last_used_at", "created_at"]
    list_filter = ["active"]
    search_fields = ["name", "description"]
    readonly_fields = ["token_prefix", "last_used_at", "created_at"]
    filter_horizontal = ["characteristics", "products"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Device]:
        return (
            super()
            .get_queryset(request)
            .prefetch_related("products", "characteristics__product", "characteristics__test")
        )

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "characteristics":  # each is shown as "PRODUCT / TEST"
            kwargs["queryset"] = Characteristic.objects.select_related("product", "test")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description="may post to")
    def bound_to(self, obj: Device) -> str:
        names = [p.code for p in obj.products.all()] + [str(c) for c in obj.characteristics.all()]
        return ", ".join(sorted(names)) or "nothing (bind it before it posts)"

    def save_model(self, request: HttpRequest, obj: Device, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        actor = self.audit_actor(request)
        if change:
            services.device_update(device=Device.objects.get(pk=obj.pk), data=data, actor=actor)
            return
        device, token = services.device_create(**data, actor=actor)
        obj.pk = device.pk
        self.message_user(
            request, f"Token for {device.name} (shown once, copy it now): {token}", messages.WARNING
        )

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        """The binding was saved (and audited) by the service in save_model; the form's own m2m
        save would write it again, unaudited."""


class SamplingScheduleAdminForm(forms.ModelForm):
    class Meta:
        model = SamplingSchedule
        fields = list(services.SCHEDULE_FIELDS)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        services.schedule_validate(data=data, schedule=self.instance if self.instance.pk else None)
        return data


@admin.register(SamplingSchedule)
class SamplingScheduleAdmin(AuditedAdmin):
    """When samples are due (docs/alarms.md, "Sampling schedules"); written through the services."""

    form = SamplingScheduleAdminForm
    audited_fields = services.SCHEDULE_FIELDS
    list_display = ["__str__", "kind", "every_minutes", "every_units", "grace_minutes", "active"]
    list_filter = ["kind", "active"]
    list_select_related = ["characteristic__product", "characteristic__test", "test"]

    def save_model(
        self, request: HttpRequest, obj: SamplingSchedule, form: forms.ModelForm, change: bool
    ) -> None:
        data = {
            name: form.cleaned_data[name] for name in services.SCHEDULE_FIELDS if name in form.cleaned_data
        }
        actor = self.audit_actor(request)
        if change:
            services.schedule_update(schedule=SamplingSchedule.objects.get(pk=obj.pk), data=data, actor=actor)
        else:
            obj.pk = services.schedule_create(**data, actor=actor).pk

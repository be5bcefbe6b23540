"""QA packages in the admin, with a credential field that is written, never read back; runs,
their events, scenarios and step results read-only (the pipeline writes them)."""

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpRequest

from apps.qa_runs import services
from apps.qa_runs.choices import AuthKind
from apps.qa_runs.models import QaEvent, QaPackage, QaPackageRun, Scenario, StepResult
from openspc.admin import ReadOnlyAdmin


def _formfield(field: "models.Field[Any, Any]", **kwargs: Any) -> forms.Field | None:
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"  # Django 6's default, without its deprecation warning
    return field.formfield(**kwargs)


class QaPackageForm(forms.ModelForm):
    """The credential is typed into auth_value and goes through services.qa_package_auth_set.
    The field is never filled from the stored value (render_value=False): empty keeps it."""

    auth_value = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        label="Credential value",
        help_text="The token or header value. Leave empty to keep what is stored.",
    )

    request_hosts: tuple[str, ...] = ()  # set by QaPackageAdmin.get_form: this system's own names

    class Meta:
        model = QaPackage
        formfield_callback = _formfield
        fields = [
            "name", "description", "target_base_url", "spec_url", "spec_text", "auth_kind",
            "auth_header_name", "auth_secret_env", "allow_unsafe_methods", "include_tags", "path_prefix",
            "max_scenarios", "max_steps_per_scenario", "step_timeout_seconds", "run_timeout_seconds",
            "concurrency", "expected_status_overrides",
        ]  # fmt: skip

    def clean_include_tags(self) -> Any:
        return self.cleaned_data["include_tags"] or []  # an emptied field: no limit, not null

    def clean_expected_status_overrides(self) -> Any:
        value = self.cleaned_data["expected_status_overrides"]
        services.qa_package_overrides_validate(value)
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind, value, env = data.get("auth_kind"), data.get("auth_value"), data.get("auth_secret_env")
        if kind and kind != AuthKind.NONE:
            if value and env:
                self.add_error("auth_value", "Give the value or the environment variable, not both.")
            elif not (value or env or self.instance.auth_secret_encrypted):
                self.add_error("auth_value", "Give the value or the environment variable holding it.")
        if env or kind == AuthKind.NONE:
            # Dropped by qa_package_auth_set on save; cleared here so the model's one-source check passes.
            self.instance.auth_secret_encrypted = ""
        try:
            services.qa_package_selection_validate(
                include_tags=data.get("include_tags", []), path_prefix=data.get("path_prefix") or ""
            )
            if data.get("target_base_url"):
                self.instance.target_base_url = data["target_base_url"]
                services.qa_package_target_validate(package=self.instance, request_hosts=self.request_hosts)
        except ValidationError as error:
            self.add_error(None, error)
        return data


@admin.register(QaPackage)
class QaPackageAdmin(admin.ModelAdmin):
    form = QaPackageForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = [
        "name", "target_base_url", "allow_unsafe_methods", "auth_kind", "auth_shown", "updated_at",
    ]  # fmt: skip
    search_fields = ["name", "target_base_url"]
    readonly_fields = ["auth_shown"]
    fieldsets = [
        (None, {"fields": ["name", "description", "target_base_url", "spec_url", "spec_text"]}),
        (
            "Authentication against the target",
            {"fields": ["auth_kind", "auth_header_name", "auth_shown", "auth_value", "auth_secret_env"]},
        ),
        (
            "What a run may send, and to which operations",
            {"fields": ["allow_unsafe_methods", "include_tags", "path_prefix"]},
        ),
        (
            "Limits",
            {
                "fields": [
                    "max_scenarios",
                    "max_steps_per_scenario",
                    "step_timeout_seconds",
                    "run_timeout_seconds",
                    "concurrency",
                    "expected_status_overrides",
                ]
            },
        ),
    ]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"request_hosts": (request.get_host(),)})

    @admin.display(description="credential")
    def auth_shown(self, obj: QaPackage) -> str:
        return obj.auth_display

    def save_model(self, request: HttpRequest, obj: QaPackage, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        value = form.cleaned_data.get("auth_value") or None
        env = form.cleaned_data.get("auth_secret_env") or ""
        kind = form.cleaned_data["auth_kind"]
        if kind != AuthKind.NONE and value is None and not env and obj.auth_secret_encrypted:
            value = services.qa_package_secret(package=obj)  # unchanged: keep the stored one
        obj.auth_secret_env = ""  # qa_package_auth_set sets the secret's fields, checked together
        super().save_model(request, obj, form, change)
        services.qa_package_auth_set(
            package=obj,
            kind=kind,
            header_name=form.cleaned_data.get("auth_header_name") or "",
            value=value,
            env=env,
        )


class QaEventInline(admin.TabularInline):
    model = QaEvent
    fields = readonly_fields = ("sequence", "type", "payload", "created_at")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(QaPackageRun)
class QaPackageRunAdmin(ReadOnlyAdmin):
    list_display = ["plan_id", "package", "status", "verdict", "requested_at", "finished_at"]
    list_filter = ["status", "verdict", "package"]
    search_fields = ["plan_id", "package__name"]
    date_hierarchy = "requested_at"
    inlines = [QaEventInline]


class StepResultInline(admin.StackedInline):
    model = StepResult
    fields = readonly_fields = (
        "index", "passed", "response_status", "duration_ms", "error", "checks", "request", "response_headers",
        "response_body", "body_truncated", "curl",
    )  # fmt: skip
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Scenario)
class ScenarioAdmin(ReadOnlyAdmin):
    list_display = ["name", "run", "kind", "source", "passed"]
    list_filter = ["kind", "source", "passed"]
    search_fields = ["name", "operation_id", "run__plan_id"]
    inlines = [StepResultInline]

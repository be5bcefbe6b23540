from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.qa_runs.choices import AuthKind
from apps.qa_runs.models import QaEvent, QaPackage, QaPackageRun, Scenario, StepResult
from openspc.api import ModelSerializer

LIMITS = [
    "allow_unsafe_methods", "include_tags", "path_prefix", "max_scenarios", "max_steps_per_scenario",
    "step_timeout_seconds", "run_timeout_seconds", "concurrency", "expected_status_overrides",
]  # fmt: skip


class QaPackageSerializer(ModelSerializer):
    """A package. The credential is written (auth_secret, or auth_secret_env naming an environment
    variable of the workers) and never read back: `auth` says only whether it is set, or where from."""

    auth = serializers.CharField(
        source="auth_display", read_only=True, help_text='"none", "set", "not set" or "env: NAME".'
    )
    auth_secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=True,
        style={"input_type": "password"},
        help_text="The token or header value; stored encrypted, never shown. Omit to keep the stored one.",
    )
    url = serializers.HyperlinkedIdentityField(view_name="qa-package-detail")
    include_tags = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        help_text="Only operations with one of these OpenAPI tags; empty: all.",
    )

    class Meta:
        model = QaPackage
        fields = [
            "id", "url", "name", "description", "target_base_url", "spec_url", "spec_text", "generator",
            "auth_kind", "auth_header_name", "auth_secret_env", "auth_secret", "auth", *LIMITS,
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance: QaPackage | None = self.instance
        kind = attrs.get("auth_kind", instance.auth_kind if instance else AuthKind.NONE)
        secret = attrs.get("auth_secret") or ""
        env = attrs.get("auth_secret_env", instance.auth_secret_env if instance else "")
        if kind != AuthKind.NONE and not (secret or env or (instance and instance.auth_secret_encrypted)):
            raise serializers.ValidationError(
                {"auth_secret": "Give the credential, or the environment variable holding it."}
            )
        if secret and attrs.get("auth_secret_env"):
            raise serializers.ValidationError(
                {"auth_secret": "Give the credential or the environment variable, not both."}
            )
        return attrs


class RunStartSerializer(serializers.Serializer):
    confirm_unsafe = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Required (true) when the package allows unsafe methods: the run may create, change "
        "or delete records on the target.",
    )


class RunStartedSerializer(serializers.Serializer):
    plan_id = serializers.UUIDField()
    status = serializers.CharField()
    allow_unsafe_methods = serializers.BooleanField(
        help_text="The run may send POST, PUT, PATCH and DELETE; false: only GET, HEAD and OPTIONS."
    )
    warning = serializers.CharField(
        allow_blank=True, help_text="What an unsafe run may do to the target; empty for a read-only run."
    )
    status_url = serializers.CharField(help_text="GET it for the run's status, totals and verdict.")
    events_url = serializers.CharField(help_text="GET it with ?after=<sequence> for the events since.")


def run_links(run: QaPackageRun) -> dict[str, str]:
    plan = str(run.plan_id)
    return {
        "status_url": reverse("qa-run-detail", kwargs={"plan_id": plan}),
        "events_url": reverse("qa-run-events", kwargs={"plan_id": plan}),
        "junit_url": reverse("qa-run-junit", kwargs={"plan_id": plan}),
        "html_url": reverse("qa-run-html", kwargs={"plan_id": plan}),
    }


class QaRunSerializer(ModelSerializer):
    package_name = serializers.CharField(source="package.name", read_only=True)
    requested_by = serializers.SerializerMethodField()
    coverage = serializers.FloatField(
        read_only=True, allow_null=True, help_text="Operations covered / total."
    )
    verdict = serializers.CharField(
        read_only=True, help_text="PASS, PASS_WITH_WARNINGS, FAIL or ERROR; empty until evaluated."
    )
    finished = serializers.SerializerMethodField()
    cancel_requested = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = QaPackageRun
        fields = [
            "plan_id", "package", "package_name", "status", "finished", "verdict", "error", "spec_hash",
            "operations_total", "operations_covered", "coverage", "scenarios_total", "scenarios_passed",
            "scenarios_failed", "scenarios_skipped", "steps_total", "steps_failed", "last_sequence",
            "cancel_requested", "requested_by", "requested_at", "started_at", "finished_at", "links",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_requested_by(self, obj: QaPackageRun) -> str | None:
        user = obj.requested_by
        return (user.get_full_name() or user.get_username()) if user else None

    @extend_schema_field(serializers.BooleanField())
    def get_finished(self, obj: QaPackageRun) -> bool:
        return obj.finished_at is not None

    @extend_schema_field(serializers.BooleanField())
    def get_cancel_requested(self, obj: QaPackageRun) -> bool:
        return obj.cancel_requested_at is not None

    @extend_schema_field(serializers.DictField(child=serializers.CharField()))
    def get_links(self, obj: QaPackageRun) -> dict[str, str]:
        return run_links(obj)


class QaEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = QaEvent
        fields = ["sequence", "type", "payload", "created_at"]
        read_only_fields = fields


class QaEventsSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="The run's status when the events were read.")
    finished = serializers.BooleanField(help_text="The run has ended: no event will follow the last.")
    last_sequence = serializers.IntegerField(help_text="Ask next with ?after=<this>.")
    events = QaEventSerializer(many=True)


class StepResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = StepResult
        fields = [
            "index", "passed", "request", "response_status", "duration_ms", "checks", "error", "curl",
            "body_truncated",
        ]  # fmt: skip
        read_only_fields = fields


class ScenarioSerializer(serializers.ModelSerializer):
    steps_run = StepResultSerializer(source="step_results", many=True, read_only=True)

    class Meta:
        model = Scenario
        fields = [
            "id", "position", "name", "operation_id", "method", "path", "kind", "source", "passed",
            "skipped_reason", "steps", "steps_run",
        ]  # fmt: skip
        read_only_fields = fields


class OperationOutcomeSerializer(serializers.Serializer):
    operation_id = serializers.CharField()
    method = serializers.CharField()
    path = serializers.CharField()
    scenarios = serializers.IntegerField()
    passed = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField(help_text="Not executed: a step the package does not allow.")
    pending = serializers.IntegerField()

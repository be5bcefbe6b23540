from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from apps.qa_runs.choices import AuthKind, GeneratorKind


class QaPackage(models.Model):
    """An integration target to test: its base URL, its OpenAPI spec (a URL or an uploaded text),
    the credentials to call it with, and the limits a run keeps to.

    The credential is either encrypted here (auth_secret_encrypted, apps.qa_runs.crypto) or named
    as an environment variable of the workers (auth_secret_env); it is never shown back: __str__,
    the admin and the API give only auth_display. Set it through services.qa_package_auth_set.

    A run is read-only unless allow_unsafe_methods (apps.qa_runs.safety), and covers the operations
    include_tags and path_prefix select (generate.operations_select).
    """

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    target_base_url = models.URLField(max_length=2048, help_text="Where the scenarios' requests go.")
    spec_url = models.URLField(
        max_length=2048, blank=True, help_text="Where the OpenAPI document is fetched."
    )
    spec_text = models.TextField(blank=True, help_text="An uploaded OpenAPI document (JSON or YAML).")

    auth_kind = models.CharField(max_length=16, choices=AuthKind.choices, default=AuthKind.NONE)
    auth_header_name = models.CharField(
        max_length=128, blank=True, help_text="The header carrying the value (header kind only)."
    )
    auth_secret_encrypted = models.TextField(blank=True, editable=False)
    auth_secret_env = models.CharField(
        max_length=128, blank=True, help_text="Environment variable holding the value, instead of storing it."
    )

    generator = models.CharField(
        max_length=8,
        choices=GeneratorKind.choices,
        default=GeneratorKind.SPEC,
        help_text="Who writes the scenarios: the spec alone, or the AI generator when it is configured.",
    )

    allow_unsafe_methods = models.BooleanField(
        default=False,
        help_text="Off: a run sends only GET, HEAD and OPTIONS; scenarios with other methods are skipped. "
        "On: it may also POST, PUT, PATCH and DELETE, and so create, change or delete records on the target.",
    )
    include_tags = models.JSONField(
        default=list,
        blank=True,
        help_text='Only operations with one of these OpenAPI tags, e.g. ["lots", "samples"]; empty: all.',
    )
    path_prefix = models.CharField(
        max_length=2048,
        blank=True,
        help_text="Only operations whose path starts with this, e.g. /things; empty: all.",
    )

    max_scenarios = models.PositiveIntegerField(
        default=200, validators=[MinValueValidator(1), MaxValueValidator(10_000)]
    )
    max_steps_per_scenario = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    step_timeout_seconds = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(300)]
    )
    run_timeout_seconds = models.PositiveIntegerField(
        default=900, validators=[MinValueValidator(10), MaxValueValidator(24 * 3600)]
    )
    concurrency = models.PositiveIntegerField(
        default=4, validators=[MinValueValidator(1), MaxValueValidator(32)]
    )
    expected_status_overrides = models.JSONField(
        default=dict,
        blank=True,
        help_text='Statuses a valid request of an operation may answer, e.g. {"createThing": [200, 201]}.',
    )

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=~Q(spec_url="", spec_text=""), name="qa_package_has_spec"),
            models.CheckConstraint(
                condition=Q(auth_kind__in=AuthKind.values), name="qa_package_auth_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(generator__in=GeneratorKind.values), name="qa_package_generator_valid"
            ),
            # One source for the credential: stored or named, not both.
            models.CheckConstraint(
                condition=Q(auth_secret_encrypted="") | Q(auth_secret_env=""),
                name="qa_package_one_secret_source",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def auth_display(self) -> str:
        """How the credential is held, without it: what the admin and the API show."""
        if self.auth_kind == AuthKind.NONE:
            return "none"
        if self.auth_secret_env:
            return f"env: {self.auth_secret_env}"
        return "set" if self.auth_secret_encrypted else "not set"

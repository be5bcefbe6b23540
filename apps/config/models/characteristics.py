from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import models
from django.db.models import F, Q

from apps.config.cached import ConfigQuerySet
from apps.config.choices import (
    MAX_SUBGROUP_SIZE,
    MQTT_SOURCES,
    RULE_PRIORITY_DEFAULT,
    ChartType,
    DataSource,
    LimitMethod,
    RulePreset,
    SubgroupTimeoutPolicy,
    TestKind,
    chart_type_by_subgroup_size,
)


def nelson_rules_default() -> dict[str, dict[str, float]]:
    from apps.config.rules import preset_rules

    return preset_rules(RulePreset.NELSON)


def all_rules_default() -> list[int]:
    return list(range(1, 9))


class CharacteristicQuerySet(ConfigQuerySet["Characteristic"]):
    def with_config(self) -> "CharacteristicQuerySet":
        return self.select_related("product", "test")

    def visible_to(self, user: User | AnonymousUser) -> "CharacteristicQuerySet":
        """The characteristics whose SPC data (chart, samples, violations, statistics, live events)
        the user may read: the one rule of the API, the pages (overview, chart, wall screen) and
        `ws/samples/`. None without the role's right to read characteristics (a tester, a user
        with no role)."""
        from apps.config.models import Product
        from openspc.roles import is_tester_only, may_view

        if not may_view(user, self.model):
            return self.none()
        if not is_tester_only(user):
            return self
        # A site that gives testers the right reads only the products they have items assigned in.
        theirs = Product.objects.filter(lots__items__tester_id=user.pk).values("pk")
        return self.filter(product_id__in=theirs)


class Characteristic(models.Model):
    """The SPC view of one test on one product: specification, chart, rules and data source.

    Created automatically when a plan containing the test is assigned to the
    product. Control limits are kept apart, versioned, in ControlLimits.
    """

    product = models.ForeignKey("config.Product", on_delete=models.PROTECT, related_name="characteristics")
    test = models.ForeignKey("config.Test", on_delete=models.PROTECT, related_name="characteristics")
    lsl = models.FloatField(
        "LSL", null=True, blank=True, help_text="Lower specification limit; empty if none."
    )
    target = models.FloatField(null=True, blank=True, help_text="Nominal value; used by Cpm.")
    usl = models.FloatField(
        "USL", null=True, blank=True, help_text="Upper specification limit; empty if none."
    )
    spec_warning_margin = models.FloatField(
        null=True, blank=True,
        help_text="A value inside the spec limits but this close to one is a spec warning (spec.warning); "
        "empty for none.",
    )  # fmt: skip
    subgroup_size = models.PositiveSmallIntegerField(
        default=1, help_text="Values per plotted point (1–25). 1 gives an I-MR chart on 'auto'."
    )
    chart_type = models.CharField(
        max_length=16,
        choices=ChartType.choices,
        default=ChartType.AUTO,
        help_text="'Automatic' picks I-MR for n = 1, X̄-R for n = 2–10, X̄-S above.",
    )
    chart_params = models.JSONField(
        default=dict,
        blank=True,
        help_text='EWMA: {"lambda": 0.2, "L": 3}; CUSUM: {"k": 0.5, "h": 5}.',
    )
    rules = models.JSONField(
        default=nelson_rules_default,
        help_text='Enabled Nelson rules and their parameters, e.g. {"1": {"k": 3}, "2": {"length": 9}}.',
    )
    acknowledge_rules = models.JSONField(
        default=all_rules_default,
        blank=True,
        help_text="Nelson rules (1–8) whose violations must be acknowledged; others are informational.",
    )
    rule_priorities = models.JSONField(
        default=dict,
        blank=True,
        help_text="Priority of each rule's violation events where not the default (rule 1 high, the others "
        'medium), e.g. {"2": "low"}.',
    )
    data_source = models.CharField(max_length=16, choices=DataSource.choices, default=DataSource.MANUAL)
    # NULL, not "", when unset: the unique constraint below applies to set tags only.
    tag = models.CharField(  # noqa: DJ001
        max_length=255,
        null=True,
        blank=True,
        help_text="MQTT topic (JSON) or Sparkplug B metric name feeding this characteristic; unique.",
    )
    subgroup_timeout = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Seconds an unfinished subgroup may stay open, from its first value; empty: no limit.",
    )
    subgroup_timeout_policy = models.CharField(
        max_length=16,
        choices=SubgroupTimeoutPolicy.choices,
        default=SubgroupTimeoutPolicy.FLUSH,
        help_text="What happens to a subgroup still unfinished after the timeout.",
    )
    site = models.CharField(max_length=64, blank=True)
    area = models.CharField(max_length=64, blank=True)
    line = models.CharField(max_length=64, blank=True)
    cell = models.CharField(max_length=64, blank=True)
    decimals = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Decimal places on charts; empty: the test's."
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CharacteristicQuerySet.as_manager()

    class Meta:
        ordering = ["product__code", "test__code"]
        constraints = [
            models.UniqueConstraint(fields=["product", "test"], name="characteristic_product_test_unique"),
            models.UniqueConstraint(
                fields=["tag"], condition=Q(tag__isnull=False), name="characteristic_tag_unique"
            ),
            models.CheckConstraint(
                condition=Q(subgroup_size__gte=1) & Q(subgroup_size__lte=MAX_SUBGROUP_SIZE),
                name="characteristic_subgroup_size_1_25",
            ),
            models.CheckConstraint(
                condition=Q(lsl__isnull=True) | Q(usl__isnull=True) | Q(lsl__lt=F("usl")),
                name="characteristic_lsl_below_usl",
            ),
            models.CheckConstraint(
                condition=Q(target__isnull=True)
                | (
                    (Q(lsl__isnull=True) | Q(target__gte=F("lsl")))
                    & (Q(usl__isnull=True) | Q(target__lte=F("usl")))
                ),
                name="characteristic_target_within_spec",
            ),
            models.CheckConstraint(
                condition=~Q(data_source__in=MQTT_SOURCES) | Q(tag__isnull=False),
                name="characteristic_tag_source_has_tag",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product.code} / {self.test.code}"

    @property
    def rule_preset(self) -> str:
        """'nelson', 'western_electric' or 'custom': which preset the enabled rules equal."""
        from apps.config.rules import rules_preset_of

        return rules_preset_of(self.rules)

    def rule_priority(self, rule: int) -> str:
        """The priority of this rule's violation events: the characteristic's own, else the default."""
        return str((self.rule_priorities or {}).get(str(rule)) or RULE_PRIORITY_DEFAULT[rule])

    @property
    def effective_chart_type(self) -> str:
        """The chart actually drawn: 'auto' resolved by subgroup size (DESIGN.md conventions)."""
        if self.chart_type != ChartType.AUTO:
            return str(self.chart_type)
        if self.test.kind == TestKind.DEFECTIVES:
            return ChartType.P
        if self.test.kind == TestKind.DEFECTS:
            return ChartType.U
        return chart_type_by_subgroup_size(self.subgroup_size)


class ControlLimitsQuerySet(ConfigQuerySet["ControlLimits"]):
    pass


class ControlLimits(models.Model):
    """One version of a characteristic's control limits. Versions are added, never overwritten.

    The current limits are the highest version. `frozen` stops automatic
    recalculation until a quality specialist unfreezes them.
    """

    characteristic = models.ForeignKey(Characteristic, on_delete=models.PROTECT, related_name="limits")
    version = models.PositiveIntegerField()
    center = models.FloatField()
    ucl = models.FloatField("UCL")
    lcl = models.FloatField("LCL")
    sigma = models.FloatField(help_text="Process sigma (of individual values) the limits were built from.")
    dispersion_center = models.FloatField(null=True, blank=True, help_text="R̄, S̄ or MR̄.")
    dispersion_ucl = models.FloatField(null=True, blank=True)
    dispersion_lcl = models.FloatField(null=True, blank=True)
    method = models.CharField(max_length=16, choices=LimitMethod.choices)
    baseline = models.JSONField(default=dict, blank=True, help_text="Which samples the limits came from.")
    excluded = models.JSONField(default=list, blank=True, help_text="Samples left out, each with why.")
    reason = models.TextField(help_text="Why the limits were set or changed.")
    frozen = models.BooleanField(default=False)
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ControlLimitsQuerySet.as_manager()

    class Meta:
        ordering = ["characteristic", "-version"]
        get_latest_by = "version"
        verbose_name_plural = "control limits"
        constraints = [
            models.UniqueConstraint(
                fields=["characteristic", "version"], name="controllimits_version_unique"
            ),
            models.CheckConstraint(
                condition=Q(lcl__lte=F("center")) & Q(center__lte=F("ucl")),
                name="controllimits_lcl_center_ucl_ordered",
            ),
            models.CheckConstraint(condition=Q(sigma__gt=0), name="controllimits_sigma_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.characteristic} limits v{self.version}"

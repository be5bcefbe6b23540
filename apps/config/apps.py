from django.apps import AppConfig


class ConfigConfig(AppConfig):
    name = "apps.config"
    label = "config"
    verbose_name = "Configuration"

    def ready(self) -> None:
        from apps.config import signals  # noqa: F401  (connects the auth receivers)
        from apps.config.models import ControlLimits, TestPlan
        from apps.config.services.characteristics import limits_signed_content
        from apps.config.services.plans import plan_signed_content
        from apps.signatures.services import signed_content_register

        # What a plan release's signature binds (the plan and its tests, not its status), and what a
        # control limits signature binds (the version's lines, method, frozen flag and reason).
        signed_content_register(TestPlan, plan_signed_content)
        signed_content_register(ControlLimits, limits_signed_content)

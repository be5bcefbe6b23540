from django.apps import AppConfig


class ConfigConfig(AppConfig):
    name = "apps.config"
    label = "config"
    verbose_name = "Configuration"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from apps.config import signals  # noqa: F401  (connects the auth receivers)
        from apps.config.cached import config_row_written
        from apps.config.models import ControlLimits, TestPlan
        from apps.config.services.characteristics import limits_signed_content
        from apps.config.services.plans import plan_signed_content
        from apps.signatures.services import signed_content_register

        # What a plan release's signature binds (the plan and its tests, not its status), and what a
        # control limits signature binds (the version's lines, method, frozen flag and reason).
        signed_content_register(TestPlan, plan_signed_content)
        signed_content_register(ControlLimits, limits_signed_content)
        # Any write of the configuration (not a device's) drops what processes keep of it.
        for model in self.get_models():
            if model.__name__ != "Device":
                name = model.__name__
                post_save.connect(config_row_written, sender=model, dispatch_uid=f"config_saved_{name}")
                post_delete.connect(config_row_written, sender=model, dispatch_uid=f"config_deleted_{name}")
        m2m_changed.connect(config_row_written, sender=TestPlan.tests.through, dispatch_uid="config_m2m")

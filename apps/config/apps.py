from django.apps import AppConfig


class ConfigConfig(AppConfig):
    name = "apps.config"
    label = "config"
    verbose_name = "Configuration"

    def ready(self) -> None:
        from apps.config import signals  # noqa: F401  (connects the auth receivers)

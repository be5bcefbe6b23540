from django.apps import AppConfig


class WebConfig(AppConfig):
    """The browser pages (dashboards). The top layer: it reads every other app, nothing imports it."""

    name = "apps.web"
    label = "web"
    verbose_name = "Web pages"

from django.apps import AppConfig


class CalculationsConfig(AppConfig):
    name = "apps.calculations"
    label = "calculations"
    verbose_name = "Calculations"

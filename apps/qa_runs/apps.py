from django.apps import AppConfig


class QaRunsConfig(AppConfig):
    name = "apps.qa_runs"
    label = "qa_runs"
    verbose_name = "QA package runs"

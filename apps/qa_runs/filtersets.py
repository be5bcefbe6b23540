import django_filters

from apps.qa_runs.choices import RunStatus, Verdict
from apps.qa_runs.models import QaPackageRun


class QaRunFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=RunStatus.choices)
    verdict = django_filters.MultipleChoiceFilter(choices=Verdict.choices)

    class Meta:
        model = QaPackageRun
        fields = ["package", "status", "verdict"]

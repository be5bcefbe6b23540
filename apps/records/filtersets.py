import django_filters

from apps.records.choices import InvestigationStatus
from apps.records.models import OosInvestigation


class OosInvestigationFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=InvestigationStatus.choices)

    class Meta:
        model = OosInvestigation
        fields = ["lot", "status"]

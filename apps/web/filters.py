"""The filters of the list pages. They live in the page's URL (a filtered view can be bookmarked);
each form checks them and turns them into the query of the API call the page's script makes."""

import datetime
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from django import forms
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from apps.audit.choices import AuditAction
from apps.calculations.choices import Severity
from apps.config.models import Characteristic

# The one list of the Nelson rules' names: the filter's choices here, and the pages that name rules
# in the browser (chart, violations) get it as their `rule-names` json_script block.
RULE_NAMES = {
    1: "a point beyond the control limits",
    2: "a run on one side of the centre line",
    3: "a steady trend up or down",
    4: "points alternating up and down",
    5: "2 of 3 points beyond 2σ on one side",
    6: "4 of 5 points beyond 1σ on one side",
    7: "a run within 1σ of the centre line",
    8: "a run beyond 1σ on both sides",
}

# The list page's status filter → the API's filters.
STATUS_QUERY = {
    "awaiting": {"acknowledged": "false"},
    "acknowledged": {"acknowledged": "true"},
    "informational": {"requires_acknowledgement": "false"},
}
PAGE_SIZE = 50


def _day_start(day: datetime.date) -> str:
    """Midnight at the start of `day` in the plant's time zone, as the API takes it."""
    start = datetime.datetime.combine(day, datetime.time.min)
    return timezone.make_aware(start, timezone.get_current_timezone()).isoformat()


class DateRangeForm(forms.Form):
    """A date range in the plant's time zone: `from` and `to`, both days included."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword: the fields are named here, not declared on the class.
        date = forms.DateInput(attrs={"type": "date"})
        self.fields["from"] = forms.DateField(label="From", required=False, widget=date)
        self.fields["to"] = forms.DateField(label="To", required=False, widget=date)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first, last = data.get("from"), data.get("to")
        if first and last and first > last:
            raise forms.ValidationError("The first day of the range is after the last; swap them.")
        return data

    def choices(self, name: str, choices: list[tuple[Any, str]]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices

    def range_query(self, after: str, before: str) -> dict[str, str]:
        query = {}
        if first := self.cleaned_data.get("from"):
            query[after] = _day_start(first)
        if last := self.cleaned_data.get("to"):
            query[before] = _day_start(last + datetime.timedelta(days=1))
        return query

    @property
    def filtered(self) -> bool:
        """Whether any filter is set (the page words its empty state after it)."""
        return any(self.data.get(name) for name in self.fields)


class ViolationFilterForm(DateRangeForm):
    """The violations list's filters. `page` is the page of the list (not shown as a field)."""

    product = forms.TypedChoiceField(label="Product", required=False, coerce=int, empty_value=None)
    characteristic = forms.TypedChoiceField(
        label="Characteristic", required=False, coerce=int, empty_value=None
    )
    rule = forms.TypedChoiceField(
        label="Rule", required=False, coerce=int, empty_value=None,
        choices=[("", "Any rule"), *((n, f"Rule {n}: {name}") for n, name in RULE_NAMES.items())],
    )  # fmt: skip
    severity = forms.ChoiceField(
        label="Severity", required=False, choices=[("", "Any severity"), *Severity.choices]
    )
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[
            ("", "Any status"),
            ("awaiting", "Awaiting acknowledgement"),
            ("acknowledged", "Acknowledged"),
            ("informational", "Informational (no acknowledgement needed)"),
        ],
    )
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args: Any, characteristics: Iterable[Characteristic], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        characteristics = list(characteristics)
        products = {c.product_id: c.product for c in characteristics}
        self.choices(
            "product",
            [
                ("", "Any product"),
                *((p.pk, f"{p.code} — {p.name}") for p in sorted(products.values(), key=lambda p: p.code)),
            ],
        )
        self.choices(
            "characteristic",
            [
                ("", "Any characteristic"),
                *((c.pk, f"{c.product.code} / {c.test.code} — {c.test.name}") for c in characteristics),
            ],
        )
        # The page is not a filter: it stays out of `filtered` and after the date fields.
        self.fields["page"] = self.fields.pop("page")

    @property
    def filtered(self) -> bool:
        return any(self.data.get(name) for name in self.fields if name != "page")

    def api_query(self) -> str:
        """The query of GET /api/v1/violations/ for a valid form."""
        data = self.cleaned_data
        query: dict[str, Any] = {"page_size": PAGE_SIZE}
        for name in ("product", "characteristic", "rule", "severity", "page"):
            if data.get(name) not in (None, ""):
                query[name] = data[name]
        query.update(STATUS_QUERY.get(data.get("status") or "", {}))
        query.update(self.range_query("created_after", "created_before"))
        return urlencode(query)


def object_type_key(content_type: ContentType) -> str:
    return f"{content_type.app_label}.{content_type.model}"


def object_type_label(content_type: ContentType) -> str:
    return str(content_type.name).capitalize()


class AuditFilterForm(DateRangeForm):
    """The audit log's filters. `cursor` is the API's position in the list (Newer / Older)."""

    actor = forms.TypedChoiceField(label="Who", required=False, coerce=int, empty_value=None)
    action = forms.ChoiceField(
        label="Action", required=False, choices=[("", "Any action"), *AuditAction.choices]
    )
    object_type = forms.ChoiceField(label="Object type", required=False)
    object_id = forms.CharField(
        label="Record id",
        required=False,
        max_length=64,
        help_text="With an object type: one record's history.",
    )
    cursor = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)

    def __init__(
        self, *args: Any, actors: Iterable[User], object_types: Iterable[ContentType], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.choices(
            "actor",
            [
                ("", "Anyone"),
                *((u.pk, u.get_full_name() or u.get_username()) for u in actors),
            ],
        )
        self.choices(
            "object_type",
            [
                ("", "Any object"),
                *((object_type_key(t), object_type_label(t)) for t in object_types),
            ],
        )
        self.fields["cursor"] = self.fields.pop("cursor")

    @property
    def filtered(self) -> bool:
        return any(self.data.get(name) for name in self.fields if name != "cursor")

    def api_query(self) -> str:
        """The query of GET /api/v1/audit/ for a valid form (newest first: the API's order)."""
        data = self.cleaned_data
        query: dict[str, Any] = {}
        if data.get("actor") is not None:
            query["user"] = data["actor"]
        for name in ("action", "object_type", "object_id", "cursor"):
            if data.get(name):
                query[name] = data[name]
        query.update(self.range_query("at_after", "at_before"))
        return urlencode(query)

    def csv_query(self) -> str:
        """The query of GET /api/v1/audit/entries.csv: the same filters, every page."""
        return urlencode([(k, v) for k, v in parse_qsl(self.api_query()) if k != "cursor"])

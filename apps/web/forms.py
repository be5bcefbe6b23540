"""Forms of the pages. They check the shape of what was typed; the services check the rules."""

import re
from typing import Any

from django import forms

from apps.config.models import Product, TestPlan
from apps.observations.services.items import MAX_ITEMS_PER_REQUEST


class LotOpenForm(forms.Form):
    """A new lot with its items and their test plans (apps.observations.services.items.lot_open)."""

    COUNT, SERIALS = "count", "serials"

    product = forms.ModelChoiceField(
        queryset=Product.objects.filter(active=True).order_by("code"),
        empty_label="Choose a product…",
        error_messages={"required": "Choose the product.", "invalid_choice": "Choose one of the products."},
    )
    number = forms.CharField(
        label="Lot number", max_length=64, error_messages={"required": "Give the lot number."}
    )
    numbering = forms.ChoiceField(
        label="Items",
        choices=[(COUNT, "Number them for me"), (SERIALS, "I have their serials")],
        initial=COUNT,
        widget=forms.RadioSelect,
    )
    count = forms.IntegerField(
        label="How many items",
        required=False,
        min_value=1,
        max_value=MAX_ITEMS_PER_REQUEST,
        help_text="Serials 0001, 0002, … are given to them.",
        error_messages={
            "min_value": "At least one item.",
            "max_value": f"At most {MAX_ITEMS_PER_REQUEST} items at a time.",
            "invalid": "Give a whole number.",
        },
    )
    serials = forms.CharField(
        label="Serials",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One per line (or separated by commas).",
    )
    plans = forms.ModelMultipleChoiceField(
        label="Test plans",
        queryset=TestPlan.objects.in_effect(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Pick at least one test plan for the items."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.is_bound:
            # Only the chosen way of numbering counts: what the hidden field holds is no error.
            unused = "count" if self.data.get("numbering") == self.SERIALS else "serials"
            self.fields[unused].disabled = True  # a disabled field takes its initial value, not the data

    def clean_serials(self) -> list[str]:
        text: str = self.cleaned_data.get("serials") or ""
        return [serial for serial in (part.strip() for part in re.split(r"[\n,]", text)) if serial]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("numbering") == self.SERIALS:
            data["count"] = None
            if not data.get("serials") and "serials" not in self.errors:
                self.add_error("serials", "List the serials, one per line.")
            elif len(data.get("serials") or []) > MAX_ITEMS_PER_REQUEST:
                self.add_error("serials", f"At most {MAX_ITEMS_PER_REQUEST} serials at a time.")
        else:
            data["serials"] = None
            if data.get("count") is None and "count" not in self.errors:
                self.add_error("count", "Give how many items the lot has.")
        return data

    def service_arguments(self) -> dict[str, Any]:
        """What lot_open takes, from the cleaned form."""
        data = self.cleaned_data
        return {
            "product": data["product"],
            "number": data["number"],
            "count": data["count"],
            "serials": data["serials"],
            "plans": list(data["plans"]),
        }

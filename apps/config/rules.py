"""Nelson rule settings of a characteristic, validated by the SPC engine itself.

`spc` (the top-level package) is a pure numpy library below every app (no Django,
no models), so reading its parameter schema here does not make the configuration app
depend on the calculations app: there is one definition of what a valid rule set is.
"""

from typing import Any

from django.core.exceptions import ValidationError

from apps.config.choices import RulePreset
from spc.rules import PRESETS, RuleSet


def preset_rules(preset: str) -> dict[str, Any]:
    """The rules JSON of a named preset ('nelson', 'western_electric')."""
    return PRESETS[preset].to_dict()


def rules_normalize(rules: Any) -> dict[str, Any]:
    """Validate a rules JSON object and return it in canonical form, or raise ValidationError on `rules`."""
    if not isinstance(rules, dict):
        raise ValidationError({"rules": 'Give an object such as {"1": {"k": 3}, "2": {"length": 9}}.'})
    try:
        return RuleSet.from_dict(rules).to_dict()
    except (ValueError, TypeError) as exc:
        raise ValidationError({"rules": str(exc)}) from None


def rules_preset_of(rules: dict[str, Any]) -> str:
    """The preset a canonical rules object equals, or 'custom'."""
    for name in (RulePreset.NELSON, RulePreset.WESTERN_ELECTRIC):
        if preset_rules(name) == rules:
            return str(name)
    return str(RulePreset.CUSTOM)

"""Audit entries in words: who by name, the action and the record's type by label, and each field
change with its label and its values as text, foreign keys as the thing they name.

The trail stores foreign keys by id (apps.audit.services.audit_fields); `references_load` finds
what a list of entries refers to with one query per kind of thing referred to, however many
entries there are.
"""

import datetime
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.audit.models import AuditEntry

NONE = "—"
# Abbreviations that stay in capitals in a field's label.
ABBREVIATIONS = {
    "lsl",
    "usl",
    "ucl",
    "lcl",
    "sd",
    "mr",
    "cp",
    "cpk",
    "pp",
    "ppk",
    "ewma",
    "cusum",
    "id",
    "mqtt",
}

# {(model, pk): text} of the things a list of entries refers to.
References = dict[tuple[type[models.Model], Any], str]


@dataclass(frozen=True)
class Change:
    """One field of an entry: its name, its label, and its value before and after as text."""

    field: str
    label: str
    before: str
    after: str


def user_name(user: User | None) -> str:
    if user is None:
        return "The system"
    return user.get_full_name() or user.get_username()


def record_type(entry: AuditEntry) -> str:
    return str(entry.content_type.name).capitalize()


def _model_field(model: type[models.Model] | None, name: str) -> "models.Field[Any, Any] | None":
    if model is None:
        return None
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    return field if isinstance(field, models.Field) else None


def _referenced(model: type[models.Model] | None, name: str) -> type[models.Model] | None:
    """The model a field of the entry's model refers to (foreign key, one-to-one, many-to-many)."""
    field = _model_field(model, name)
    if field is None or not field.is_relation or field.related_model is None:
        return None
    related = field.related_model
    return related if isinstance(related, type) and issubclass(related, models.Model) else None


def field_label(model: type[models.Model] | None, name: str) -> str:
    field = _model_field(model, name)
    text = str(field.verbose_name) if field is not None else name.replace("_", " ")
    words = [word.upper() if word.lower() in ABBREVIATIONS else word for word in text.split()]
    label = " ".join(words)
    return label[:1].upper() + label[1:]


def _values(entry: AuditEntry) -> Iterable[tuple[str, Any]]:
    for side in (entry.before, entry.after):
        if isinstance(side, dict):
            yield from side.items()


def _is_pk(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def references_load(entries: Sequence[AuditEntry]) -> References:
    """The text of every thing the entries' fields refer to by id: one query per kind of thing."""
    wanted: dict[type[models.Model], set[Any]] = defaultdict(set)
    for entry in entries:
        model = entry.content_type.model_class()
        for name, value in _values(entry):
            related = _referenced(model, name)
            if related is None or value is None:
                continue
            for pk in value if isinstance(value, list) else [value]:
                if _is_pk(pk):
                    wanted[related].add(pk)
    found: References = {}
    for related, pks in wanted.items():
        rows = related._default_manager.filter(pk__in=pks)
        if related is User:
            found.update({(related, row.pk): user_name(row) for row in rows})  # type: ignore[arg-type]
        else:
            found.update({(related, row.pk): str(row) for row in rows})
    return found


def _time(value: str) -> str | None:
    if len(value) < 19 or value[4] != "-" or "T" not in value:
        return None
    moment = parse_datetime(value)
    if moment is None:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, datetime.UTC)
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")


def value_text(
    value: Any, related: type[models.Model] | None = None, references: References | None = None
) -> str:
    """A stored value as text: a reference by what it names, yes/no, times in the plant's zone."""
    if value is None or value == "":
        return NONE
    items = value if isinstance(value, list) else [value]
    if related is not None and all(_is_pk(item) for item in items):
        named = [(references or {}).get((related, pk), f"#{pk} (gone)") for pk in items]
        return ", ".join(named) if named else "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return _time(value) or value
    if isinstance(value, list) and all(not isinstance(item, dict | list) for item in value):
        return ", ".join(value_text(item) for item in value) if value else "none"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return str(value)


def entry_changes(entry: AuditEntry, references: References) -> list[Change]:
    """The entry's fields (an update stores only those that changed) with their values as text."""
    model = entry.content_type.model_class()
    before = entry.before if isinstance(entry.before, dict) else {}
    after = entry.after if isinstance(entry.after, dict) else {}
    stored = list(dict.fromkeys([*before, *after]))
    # In the model's order (PostgreSQL's jsonb keeps no order of its own); other names after.
    order = {field.name: n for n, field in enumerate(model._meta.get_fields())} if model else {}
    changes = []
    for name in sorted(stored, key=lambda name: (order.get(name, len(order)), stored.index(name))):
        related = _referenced(model, name)
        changes.append(
            Change(
                field=name,
                label=field_label(model, name),
                before=value_text(before.get(name), related, references) if entry.before is not None else "",
                after=value_text(after.get(name), related, references) if entry.after is not None else "",
            )
        )
    return changes


def changes_text(changes: Sequence[Change]) -> str:
    """'USL: 2.0 → 2.5; Line: — → L4' (a creation or deletion shows the one side it has)."""
    parts = []
    for change in changes:
        if change.before and change.after:
            parts.append(f"{change.label}: {change.before} → {change.after}")
        else:
            parts.append(f"{change.label}: {change.before or change.after}")
    return "; ".join(parts)

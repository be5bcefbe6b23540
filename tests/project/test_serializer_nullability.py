"""Every serializer field that can carry a database NULL says so (`allow_null`), so the OpenAPI
schema marks it `nullable` and clients generated from it accept the null the API really sends.

A field declared by hand (a SlugRelatedField for a reason code, a field with a dotted `source`)
does not inherit the model field's `null=True` the way ModelSerializer's own fields do: that is
how `acknowledgement_reason` came to be typed a plain string while the API answered null.
"""

import importlib
from collections.abc import Iterator

import pytest
from django.apps import apps
from django.db import models
from rest_framework import serializers

from apps.calculations.models import Violation


def _serializer_classes() -> Iterator[type[serializers.ModelSerializer]]:
    for config in apps.get_app_configs():
        if not config.name.startswith("apps."):
            continue
        try:
            module = importlib.import_module(f"{config.name}.api.serializers")
        except ModuleNotFoundError:
            continue
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, serializers.ModelSerializer)
                and value.__module__ == module.__name__
            ):
                yield value


def _nullable(model: type[models.Model], source: str) -> bool | None:
    """Whether following `source` from `model` can end in NULL; None when it is not a model path."""
    nullable = False
    for name in source.split("."):
        try:
            field = model._meta.get_field(name)
        except Exception:
            return None
        nullable = nullable or bool(getattr(field, "null", False))
        if field.is_relation and field.related_model is not None and name != source.split(".")[-1]:
            model = field.related_model
    return nullable


def _field_cases() -> Iterator[tuple[str, str, bool]]:
    for serializer_class in _serializer_classes():
        meta = getattr(serializer_class, "Meta", None)
        model = getattr(meta, "model", None)
        if model is None:
            continue
        for name, field in serializer_class().fields.items():
            if isinstance(field, serializers.ManyRelatedField | serializers.ListSerializer):
                continue
            if field.source == "*" or field.write_only:
                continue
            nullable = _nullable(model, field.source)
            if nullable:
                yield f"{serializer_class.__name__}.{name}", field.source, field.allow_null


CASES = list(_field_cases())


@pytest.mark.parametrize(("where", "source", "allow_null"), CASES, ids=[case[0] for case in CASES])
def test_a_field_that_can_be_null_allows_null(where, source, allow_null):
    assert allow_null, f"{where} (source {source!r}) can be NULL in the database: declare allow_null=True"


def test_the_check_sees_the_violation_reason():
    """The guard itself: the field that slipped through before is among the cases it checks."""
    assert Violation._meta.get_field("acknowledgement_reason").null
    assert any(where == "ViolationSerializer.acknowledgement_reason" for where, _, _ in CASES)

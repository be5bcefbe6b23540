"""Small helpers shared by the apps' service modules."""

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from django.db import connections, models, router

M = TypeVar("M", bound=models.Model)


def model_update(*, instance: M, fields: Iterable[str], data: Mapping[str, Any]) -> tuple[M, bool]:
    """Set the given fields that are present in `data` and save only those. Returns (instance, changed)."""
    changed = [name for name in fields if name in data and getattr(instance, name) != data[name]]
    for name in changed:
        setattr(instance, name, data[name])
    if changed:
        if any(f.name == "updated_at" for f in instance._meta.get_fields()):
            changed.append("updated_at")
        instance.save(update_fields=changed)
    return instance, bool(changed)


# Rows per UPDATE … FROM (VALUES …): keeps a statement within every backend's parameter limit.
UPDATE_CHUNK = 500


def rows_update(*, model: type[models.Model], rows: Iterable[models.Model], fields: Iterable[str]) -> int:
    """Write `fields` of many rows in one statement per chunk: UPDATE … FROM a VALUES list.

    Django's bulk_update builds a CASE WHEN per field and row, which costs more CPU than the
    database work (milliseconds per row at a few hundred rows); the observation pipeline
    updates every row it processes, so it uses this. Values are prepared by each field
    (get_db_prep_save), and cast on PostgreSQL, where a VALUES list has no column types.
    """

    concrete: list[models.Field[Any, Any]] = []
    for name in fields:
        field = model._meta.get_field(name)
        assert isinstance(field, models.Field), f"{name} is not a concrete field"
        concrete.append(field)
    pk = model._meta.pk
    assert pk is not None
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    columns = [pk, *concrete]

    def placeholder(field: Any) -> str:
        if connection.vendor == "postgresql":
            return f"CAST(%s AS {field.db_type(connection)})"
        return "%s"

    row_sql = "(" + ", ".join(placeholder(field) for field in columns) + ")"
    table = quote(model._meta.db_table)
    column_list = ", ".join(quote(str(field.column)) for field in columns)
    assignments = ", ".join(f"{quote(str(f.column))} = v.{quote(str(f.column))}" for f in concrete)
    pending = list(rows)
    updated = 0
    with connection.cursor() as cursor:
        for start in range(0, len(pending), UPDATE_CHUNK):
            chunk = pending[start : start + UPDATE_CHUNK]
            params: list[Any] = []
            for row in chunk:
                params.append(pk.get_db_prep_save(row.pk, connection))
                params.extend(
                    field.get_db_prep_save(getattr(row, field.attname), connection) for field in concrete
                )
            key = quote(str(pk.column))
            sql = (
                f"WITH v ({column_list}) AS (VALUES {', '.join([row_sql] * len(chunk))}) "
                f"UPDATE {table} SET {assignments} FROM v WHERE {table}.{key} = v.{key}"
            )
            cursor.execute(sql, params)
            updated += cursor.rowcount
    return updated

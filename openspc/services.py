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


# Rows per UPDATE … FROM (VALUES …) outside PostgreSQL: within every backend's parameter limit.
UPDATE_CHUNK = 500


def rows_update(*, model: type[models.Model], rows: Iterable[models.Model], fields: Iterable[str]) -> int:
    """Write `fields` of many rows in one statement: UPDATE … FROM one array per column (PostgreSQL)
    or a VALUES list (per chunk, elsewhere).

    Django's bulk_update builds a CASE WHEN per field and row, which costs more CPU than the
    database work (milliseconds per row at a few hundred rows); the observation pipeline
    updates every row it processes, so it uses this. On PostgreSQL a column is one parameter
    (an array), so the statement is the same text whatever the number of rows: psycopg, which
    binds parameters on the client, neither splits a long query nor quotes a parameter per row
    and field. Values are prepared by each field (get_db_prep_save).
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
    table = quote(model._meta.db_table)
    column_list = ", ".join(quote(str(field.column)) for field in columns)
    assignments = ", ".join(f"{quote(str(f.column))} = v.{quote(str(f.column))}" for f in concrete)
    key = quote(str(pk.column))
    pending = list(rows)
    if not pending:
        return 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in columns)
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM unnest({arrays}) AS v ({column_list}) "
                f"WHERE {table}.{key} = v.{key}",
                [[field.get_db_prep_save(getattr(row, field.attname), connection) for row in pending]
                 for field in columns],
            )  # fmt: skip
            return cursor.rowcount
        updated = 0
        row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
        for start in range(0, len(pending), UPDATE_CHUNK):
            chunk = pending[start : start + UPDATE_CHUNK]
            params = [field.get_db_prep_save(getattr(row, field.attname), connection)
                      for row in chunk for field in columns]  # fmt: skip
            cursor.execute(
                f"WITH v ({column_list}) AS (VALUES {', '.join([row_sql] * len(chunk))}) "
                f"UPDATE {table} SET {assignments} FROM v WHERE {table}.{key} = v.{key}",
                params,
            )
            updated += cursor.rowcount
    return updated


def rows_locked(*, model: type[M], ids: Iterable[int]) -> list[M]:
    """The rows of `model` with these primary keys, created (all defaults) if missing, locked FOR
    UPDATE in key order, so that two transactions never deadlock. Missing rows are inserted in key
    order too, and only when some are missing: a steady pipeline takes one statement."""
    wanted = sorted(set(ids))
    rows = list(model._default_manager.select_for_update().filter(pk__in=wanted).order_by("pk"))
    if len(rows) < len(wanted):
        have = {row.pk for row in rows}
        missing = [model(pk=pk) for pk in wanted if pk not in have]
        model._default_manager.bulk_create(missing, ignore_conflicts=True)
        rows = list(model._default_manager.select_for_update().filter(pk__in=wanted).order_by("pk"))
    return rows

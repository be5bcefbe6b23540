"""Row helpers shared by the apps' service modules: update an instance's changed fields, insert,
update and lock many rows at once."""

import datetime
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connections, models, router
from django.db.models.expressions import RawSQL

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
# Values a database driver takes as they are: get_db_prep_save would only check and return them.
# Exact types only: anything else, a TextChoices member included, goes through its field.
_PLAIN = frozenset({int, float, str, bool, type(None)})


def _column(field: "models.Field[Any, Any]", rows: Sequence[models.Model], connection: Any) -> list[Any]:
    """One column of `rows`, prepared for the database: plain values and aware datetimes as they
    are, anything else (JSON, decimals, choices, naive times) by the field. A column of mixed plain
    types (an int among floats) goes through the field too: psycopg dumps an array's elements
    with the dumper of its first one."""
    values = [getattr(row, field.attname) for row in rows]
    kinds = {type(value) for value in values} - {type(None)}
    if len(kinds) == 1:
        (kind,) = kinds
        if kind in _PLAIN or (kind is datetime.datetime and all(v is None or v.tzinfo for v in values)):
            return values
    return [field.get_db_prep_save(value, connection) for value in values]


@dataclass(frozen=True)
class _Update:
    """What an UPDATE of some fields of a model's rows is made of."""

    table: str
    key: str
    columns: list["models.Field[Any, Any]"]  # the primary key first
    column_list: str
    assignments: str

    @classmethod
    def of(cls, model: type[models.Model], fields: Iterable[str], connection: Any) -> "_Update":
        concrete: list[models.Field[Any, Any]] = []
        for name in fields:
            field = model._meta.get_field(name)
            assert isinstance(field, models.Field), f"{name} is not a concrete field"
            concrete.append(field)
        pk = model._meta.pk
        assert pk is not None
        quote = connection.ops.quote_name
        columns = [pk, *concrete]
        return cls(
            table=quote(model._meta.db_table),
            key=quote(str(pk.column)),
            columns=columns,
            column_list=", ".join(quote(str(field.column)) for field in columns),
            assignments=", ".join(f"{quote(str(f.column))} = v.{quote(str(f.column))}" for f in concrete),
        )

    def arrays(self, rows: Sequence[models.Model], connection: Any) -> tuple[str, list[Any]]:
        """PostgreSQL: the statement, one array parameter per column."""
        arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in self.columns)
        sql = (
            f"UPDATE {self.table} SET {self.assignments} FROM unnest({arrays}) AS v ({self.column_list}) "
            f"WHERE {self.table}.{self.key} = v.{self.key}"
        )
        return sql, [_column(field, rows, connection) for field in self.columns]


def rows_update(*, model: type[models.Model], rows: Iterable[models.Model], fields: Iterable[str]) -> int:
    """Write `fields` of many rows in one statement: UPDATE … FROM one array per column (PostgreSQL)
    or a VALUES list (per chunk, elsewhere).

    Django's bulk_update builds a CASE WHEN per field and row, which costs more CPU than the
    database work (milliseconds per row at a few hundred rows); the observation pipeline
    updates every row it processes, so it uses this. On PostgreSQL a column is one parameter
    (an array), so the statement is the same text whatever the number of rows: psycopg, which
    binds parameters on the client, neither splits a long query nor quotes a parameter per row
    and field.
    """
    connection = connections[router.db_for_write(model)]
    update = _Update.of(model, fields, connection)
    table, key, columns, assignments = update.table, update.key, update.columns, update.assignments
    quote = connection.ops.quote_name
    pending = list(rows)
    if not pending:
        return 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(*update.arrays(pending, connection))
            return cursor.rowcount
        updated = 0
        row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
        named = ", ".join(f"column{n} AS {quote(str(field.column))}" for n, field in enumerate(columns, 1))
        for start in range(0, len(pending), UPDATE_CHUNK):
            chunk = pending[start : start + UPDATE_CHUNK]
            prepared = [_column(field, chunk, connection) for field in columns]
            # Starts with UPDATE, not WITH: Python's sqlite3 counts the rows only then. A VALUES
            # list names its columns column1, column2, …
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM (SELECT {named} FROM (VALUES "
                f"{', '.join([row_sql] * len(chunk))})) AS v WHERE {table}.{key} = v.{key}",
                [value for values in zip(*prepared, strict=True) for value in values],
            )
            updated += cursor.rowcount
    return updated


@dataclass(frozen=True)
class RowsUpdate:
    """One rows_update's arguments, for rows_update_together."""

    model: type[models.Model]
    rows: Sequence[models.Model]
    fields: Sequence[str]


def rows_update_together(updates: Sequence[RowsUpdate]) -> None:
    """rows_update for each, in one statement on PostgreSQL (each UPDATE a data-modifying WITH of
    one statement: one round trip, not one per table; the tables must differ, as a statement may
    not update a row twice); one after the other elsewhere."""
    updates = [update for update in updates if update.rows]
    if not updates:
        return
    connection = connections[router.db_for_write(updates[0].model)]
    if connection.vendor != "postgresql" or len(updates) == 1:
        for update in updates:
            rows_update(model=update.model, rows=update.rows, fields=update.fields)
        return
    tables = [update.model._meta.db_table for update in updates]
    assert len(set(tables)) == len(tables), f"one statement cannot update a table twice: {tables}"
    parts, params = [], []
    for n, update in enumerate(updates):
        statement = _Update.of(update.model, update.fields, connection)
        sql, values = statement.arrays(list(update.rows), connection)
        parts.append(f"u{n} AS ({sql} RETURNING 1)")
        params += values
    counted = ", ".join(f"(SELECT count(*) FROM u{n})" for n in range(len(updates)))
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(parts)} SELECT {counted}", params)


def rows_insert(*, model: type[M], rows: Sequence[M]) -> list[M]:
    """Insert new rows and set generated primary keys, like bulk_create; on PostgreSQL in one
    statement of column arrays (INSERT … SELECT FROM unnest), which takes a fraction of
    bulk_create's CPU for the same reasons as rows_update. Fields are filled as bulk_create fills
    them (pre_save: auto_now_add and the like). No signals, no conflicts handled."""
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql" or not rows:
        return model._default_manager.bulk_create(rows)
    pk = model._meta.pk
    assert pk is not None
    generated = isinstance(pk, models.fields.AutoFieldMixin)
    fields = [f for f in model._meta.concrete_fields if not (generated and f is pk)]
    for row in rows:
        for field in fields:
            field.pre_save(row, add=True)
    quote = connection.ops.quote_name
    column_list = ", ".join(quote(str(field.column)) for field in fields)
    arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in fields)
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({column_list}) SELECT * FROM unnest({arrays})"
    if generated:
        sql += f" RETURNING {quote(str(pk.column))}"
    with connection.cursor() as cursor:
        # Rows come back in the arrays' order, as they do for bulk_create's multi-row VALUES.
        cursor.execute(
            sql,
            [_column(field, rows, connection) for field in fields],
        )
        if generated:
            for row, (pk_value,) in zip(rows, cursor.fetchall(), strict=True):
                setattr(row, pk.attname, pk_value)
    for row in rows:
        row._state.adding, row._state.db = False, connection.alias
    return list(rows)


def rows_locked(
    *, model: type[M], ids: Iterable[int], skip_locked: bool = False, **annotations: Any
) -> list[M]:
    """The rows of `model` with these primary keys, created (all defaults) if missing, locked FOR
    UPDATE in key order, so that two transactions never deadlock. A steady pipeline, every row
    there, takes one statement. The `annotations` (QuerySet.annotate's) are read in the same
    statement.

    With `skip_locked`, the rows another transaction holds are left out instead of waited for (the
    caller sees which by their keys)."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    manager = model._default_manager
    locked = manager.select_for_update(skip_locked=skip_locked).annotate(**annotations).filter(pk__in=wanted)
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":  # no row locks: writers take turns on the whole database
        rows = list(locked.order_by("pk"))
        if len(rows) < len(wanted):
            _rows_create(model, wanted)
            rows = list(locked.order_by("pk"))
        return rows
    # Nothing is locked unless every row is there. Locking the rows that are and then creating the
    # rest would deadlock: a row made here may be one another transaction has just made too
    # (its insert waits for ours) while that one waits for a row we locked.
    table, key = (
        connection.ops.quote_name(model._meta.db_table),
        connection.ops.quote_name(str(model._meta.pk.column)),
    )
    every = RawSQL(
        f"(SELECT count(*) FROM {table} WHERE {key} IN ({', '.join(['%s'] * len(wanted))})) = %s",
        (*wanted, len(wanted)),
        output_field=models.BooleanField(),
    )
    rows = list(locked.filter(every).order_by("pk"))
    if rows:
        return rows
    # Some are missing (or, skipping locked rows, all are held). Rows are made by one transaction at a
    # time, holding none of them yet: those that wait here hold nothing the maker could wait for.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_creation_key(model)])
    _rows_create(model, wanted)
    return list(locked.order_by("pk"))


def _rows_create(model: type[M], wanted: Sequence[int]) -> None:
    """Insert, all defaults and in key order, the rows of `wanted` that are not there."""
    manager = model._default_manager
    have = set(manager.filter(pk__in=wanted).values_list("pk", flat=True))
    missing = [model(pk=pk) for pk in wanted if pk not in have]
    if missing:
        manager.bulk_create(missing, ignore_conflicts=True)


def _creation_key(model: type[models.Model]) -> int:
    """The transaction advisory lock that makes one transaction at a time create `model`'s rows (a
    signed 64-bit key, steady across processes)."""
    return int.from_bytes(
        hashlib.blake2b(model._meta.db_table.encode(), digest_size=8).digest(), "big", signed=True
    )

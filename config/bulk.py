"""Inserting many rows at once: PostgreSQL's COPY where it is the database, `bulk_create` elsewhere;
rows the database makes itself from a query (INSERT ... SELECT); and many rows updated in one
statement.

The billing run writes about eight rows per bill. `bulk_create` prepares every value through each
field's Python machinery and builds one very long INSERT, which holds a run to a few thousand bills
a second; COPY streams the values as they are. Ids are drawn from the table's sequence first, so the
inserted objects carry them (for the line rows and for the bulk signal), exactly as `bulk_create`
leaves them.

Used by every app that writes in bulk (the billing run's bills and their e-mails, the overdue job, the
audit trail), from accounts up: so it lives here, beside the other cross-cutting glue.
"""

import json
from collections.abc import Iterable, Sequence

from django.db import connection
from django.db.models import JSONField, Model, QuerySet
from django.utils import timezone
from psycopg.types.json import Jsonb


def insert_objects(model: type[Model], objects: Sequence[Model]) -> None:
    """Insert unsaved `objects` of `model`; each gets its primary key (unless `assign_ids` gave them)."""
    if not objects:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objects)
        return
    PreparedCopy(model, objects).insert()


class PreparedCopy:
    """Unsaved `objects` of `model` (PostgreSQL) given their ids and encoded for COPY now, inserted
    later by `insert`, which may set some fields last: a writer encodes its rows before it takes a
    lock that every writer waits for (a document number), and holds it only for the COPY."""

    def __init__(self, model: type[Model], objects: Sequence[Model]) -> None:
        meta = model._meta
        if any(obj.pk is None for obj in objects):
            assign_ids(model, objects)
        now = timezone.now()
        fields = meta.concrete_fields
        for field in fields:
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                for obj in objects:
                    setattr(obj, field.attname, now)
        self.model, self.objects = model, objects
        self.attnames = [field.attname for field in fields]
        self.columns = [field.column for field in fields]
        self.rows = list(_values(objects, fields))

    def insert(self, *late: str) -> None:
        """COPY the rows, with the `late` fields (plain, not JSON) as the objects hold them now."""
        for name in late:
            at = self.attnames.index(name)
            for row, obj in zip(self.rows, self.objects, strict=True):
                row[at] = obj.__dict__[name]
        _copy(self.model, self.columns, self.rows)


def assign_ids(model: type[Model], objects: Sequence[Model]) -> None:
    """Give unsaved `objects` ids drawn from the table's sequence (PostgreSQL), before inserting them."""
    meta = model._meta
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(objects)],
        )
        for obj, (pk,) in zip(objects, cursor.fetchall(), strict=True):
            obj.pk = pk


def insert_values(model: type[Model], field_names: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Insert rows given as plain values for `field_names` (ids come from the database)."""
    meta = model._meta
    fields = [meta.get_field(name) for name in field_names]
    if connection.vendor != "postgresql":
        model.objects.bulk_create(
            model(**{field.attname: value for field, value in zip(fields, row, strict=True)}) for row in rows
        )
        return
    json_fields = [isinstance(field, JSONField) for field in fields]
    _copy(
        model,
        [field.column for field in fields],
        (
            [Jsonb(value) if is_json else value for value, is_json in zip(row, json_fields, strict=True)]
            for row in rows
        ),
    )


def insert_json_rows(model: type[Model], field_names: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Insert rows of plain values whose JSON fields are given as JSON text already (encoded once by the
    caller, who hashed that text): copied as they are on PostgreSQL (ids from the table's sequence)."""
    if connection.vendor == "postgresql":
        meta = model._meta
        _copy(model, [meta.get_field(name).column for name in field_names], rows)
        return
    fields = [model._meta.get_field(name) for name in field_names]
    decode = [isinstance(field, JSONField) for field in fields]
    model.objects.bulk_create(
        model(
            **{
                field.attname: json.loads(value) if is_json and value is not None else value
                for field, is_json, value in zip(fields, decode, row, strict=True)
            }
        )
        for row in rows
    )


def update_objects(model: type[Model], objects: Sequence[Model], field_names: Sequence[str]) -> None:
    """Write `field_names` of saved `objects` in one UPDATE ... FROM (VALUES ...) on PostgreSQL, by id:
    `bulk_update` builds a CASE expression per field and row, which costs far more Python than the
    statement costs the database (`bulk_update` elsewhere)."""
    if not objects:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objects, field_names)
        return
    meta = model._meta
    quote = connection.ops.quote_name
    fields = [meta.get_field(name) for name in field_names]
    columns = [meta.pk, *fields]
    row = "(" + ", ".join(f"%s::{field.db_type(connection)}" for field in columns) + ")"
    # Our own table's and columns' names; every value a parameter.
    statement = (
        f"UPDATE {quote(meta.db_table)} AS updated SET "  # noqa: S608
        + ", ".join(f"{quote(field.column)} = given.{quote(field.column)}" for field in fields)
        + f" FROM (VALUES {', '.join([row] * len(objects))}) AS given "
        + f"({', '.join(quote(field.column) for field in columns)}) "
        + f"WHERE updated.{quote(meta.pk.column)} = given.{quote(meta.pk.column)}"
    )
    params = [
        field.get_db_prep_save(getattr(obj, field.attname), connection)
        for obj in objects
        for field in columns
    ]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def insert_selected(model: type[Model], field_names: Sequence[str], query: QuerySet) -> list[int]:
    """INSERT ... SELECT: rows of `model` the database makes from `query`, a `values_list` whose columns
    are the values of `field_names` in order; nothing passes through Python. Returns the new ids."""
    meta = model._meta
    quote = connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in field_names)
    select, params = query.query.sql_with_params()
    statement = f"INSERT INTO {quote(meta.db_table)} ({columns}) {select} RETURNING {quote(meta.pk.column)}"
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return [pk for (pk,) in cursor.fetchall()]


def _values(objects: Sequence[Model], fields: Sequence) -> Iterable[list]:
    getters = [(field.attname, isinstance(field, JSONField)) for field in fields]
    encoded: dict[int, str] = {}  # a document shared by many rows (a chunk's provider snapshot) once

    def as_json(value: object) -> str | None:
        if value is None:
            return None
        text = encoded.get(id(value))
        if text is None:
            text = encoded[id(value)] = json.dumps(value)
        return text

    for obj in objects:
        values = obj.__dict__
        yield [as_json(values[name]) if is_json else values[name] for name, is_json in getters]


def _copy(model: type[Model], columns: list[str], rows: Iterable[Sequence]) -> None:
    quote = connection.ops.quote_name
    statement = f"COPY {quote(model._meta.db_table)} ({', '.join(map(quote, columns))}) FROM STDIN"
    # The driver's own cursor copies: its errors are made Django's, as a statement's are (a row the
    # database refuses is an IntegrityError to the caller either way).
    with (
        connection.wrap_database_errors,
        connection.cursor() as cursor,
        cursor.cursor.copy(statement) as copy,
    ):
        for row in rows:
            copy.write_row(row)

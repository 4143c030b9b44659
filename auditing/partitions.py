"""The audit log's monthly partitions (PostgreSQL): `auditing_auditlog` is partitioned by the month of
`created_at`, so a provider with ten years of trail appends to and reads this month's partition as one
with a year does, and a month's rows are found without touching the others.

A month's partition is made ahead of time (celery beat runs `audit_partitions_ahead` daily, the
migration makes the first ones); a row whose month has none yet (a clock set back, a job that did not
run) lands in the default partition rather than fail its transaction. A month is never made once the
default partition holds rows of it: PostgreSQL would have to move append-only rows, so they stay there.
SQLite has one plain table and nothing to do.
"""

import logging
from datetime import date

from django.db import connection, transaction
from django.db.utils import DatabaseError
from psycopg import sql

from billing.months import add_months, next_month

logger = logging.getLogger(__name__)

TABLE = "auditing_auditlog"
DEFAULT_PARTITION = f"{TABLE}_default"
MONTHS_AHEAD = 3


def month_partition(month: date) -> str:
    return f"{TABLE}_y{month.year:04d}m{month.month:02d}"


def months(first: date, last: date) -> list[date]:
    """The first days of the months from `first`'s to `last`'s, both included."""
    found, month = [], first.replace(day=1)
    while month <= last:
        found.append(month)
        month = next_month(month)
    return found


def partition_names(cursor) -> set[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass",
        [TABLE],
    )
    return {name for (name,) in cursor.fetchall()}


def ensure_month_partitions(cursor, first: date, last: date) -> list[str]:
    """Make the monthly partitions from `first`'s month to `last`'s that do not exist yet; the names
    made. A month whose rows already sit in the default partition is left there (logged)."""
    existing = partition_names(cursor)
    made = []
    for month in months(first, last):
        name = month_partition(month)
        if name in existing:
            continue
        statement = sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(name),
            sql.Identifier(TABLE),
            sql.Literal(f"{month.isoformat()} 00:00:00+00"),
            sql.Literal(f"{next_month(month).isoformat()} 00:00:00+00"),
        )
        try:
            with transaction.atomic():  # a savepoint: one refused month leaves the others to be made
                cursor.execute(statement.as_string(cursor.connection))
        except DatabaseError as refused:
            logger.warning("Audit partition %s not made: %s", name, refused)
            continue
        made.append(name)
    return made


def audit_partitions_ahead(*, today: date, months_ahead: int = MONTHS_AHEAD) -> list[str]:
    """This month's partition and the next `months_ahead` months', where missing (PostgreSQL only)."""
    if connection.vendor != "postgresql":
        return []
    with transaction.atomic(), connection.cursor() as cursor:
        # Making a partition locks the whole log: waiting behind a long billing chunk's transaction
        # would hold every writer behind this job. Given up in seconds, it is tried again tomorrow.
        cursor.execute("SET LOCAL lock_timeout = '5s'")
        return ensure_month_partitions(cursor, today, add_months(today, months_ahead))

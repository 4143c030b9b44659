"""Running an auditor's query so that it holds even if validation and rewriting had a hole.

`run()` receives the final SQL (checked by `validate`, scoped by `scope`) and treats it as hostile
anyway: whatever the text says, it can only read the allowed tables and columns, only the
auditor's provider's rows (on PostgreSQL), never change anything, and never run long.

PostgreSQL, on a fresh connection per query (never Django's) as the role `AI_QUERY_DB_USER`
(`billing_ai_reader`, created by migration auditing 0002), which can read only the views in schema
`ai_views`, one per logical table with exactly its allowed columns, and (migration auditing 0004)
neither the system catalogs and statistics views nor the built-ins that signal other sessions, take
advisory locks, touch large objects, sequences, files or settings, notify or sleep; the executor
refuses to run while the reader can still read pg_class (`CATALOG_PROBE`):
1. The session is bound to the provider first, in its own short transaction: `ai_scope.bind()` (a
   function of the app's role) writes the id into a temporary table the reader may not read, change
   or drop, and refuses to run twice in a session. The views keep only that provider's rows. A
   session setting could be changed from inside a SELECT (`set_config`); this binding cannot.
2. The query runs in a READ ONLY transaction with statement, lock and idle timeouts and is always
   rolled back, then the connection is closed (session advisory locks, large objects, NOTIFYs and
   temporary state go with it).
3. It runs as `DECLARE ... CURSOR FOR <sql>`, sent with the extended protocol: the server takes one
   statement only, a cursor takes only a query (no SET, COPY, DO, LOCK, DDL or DML, no
   data-modifying WITH, no SELECT INTO), and FETCH reads at most `limit + 1` rows, so a huge result
   never reaches this process.

Either way the answer is capped in bytes as well as rows (`AI_ANSWER_MAX_BYTES`, 256 KB by default):
rows are fetched a few at a time, and those past the cap are cut with a note (`QueryResult.note`);
an answer whose first row alone is past it is refused. Floats (SQLite keeps money as floating point)
come back as decimal text, never as JSON floats.

SQLite (the embedded default): a new connection to the same database opened read-only
(`mode=ro`), `PRAGMA query_only`, an authorizer that allows only SELECT, reads of the allowed tables
and columns of the main database and an allow-list of functions (no ATTACH, PRAGMA, writes, schema
tables or recursive CTEs), length limits, and a progress handler that stops the query after the
time budget. `execute()` runs one statement only. SQLite has no roles or views to scope rows with:
there the provider filter is the rewriter's literal.
The test database is SQLite's shared in-memory database, which cannot be opened read-only: the
executor then opens it read-write with `query_only` (the authorizer denies writes anyway) and
`read_uncommitted`, so that it sees the rows of the test's open transaction as a worker would see
committed rows.
"""

import json
import logging
import math
import re
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import psycopg
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.utils.translation import gettext, ngettext
from psycopg import errors as pg_errors
from psycopg import sql as pg_sql

from auditing.ai.schema import TABLES
from config.errors import DomainError

logger = logging.getLogger(__name__)

VIEW_SCHEMA = "ai_views"
DEFAULT_USER = "billing_ai_reader"
DEFAULT_TIMEOUT_SECONDS = 5
FETCH_BATCH = 10  # rows fetched at a time, so a cut answer stops fetching early
LOCK_TIMEOUT = "1s"
APPLICATION_NAME = "billing-ai-query"

# What SQLite may call. Aggregates, window functions, dates, text, numbers and JSON reads: what an
# auditor's question needs. Not here: load_extension, randomblob/zeroblob (memory), sqlite_* (build
# details), changes/last_insert_rowid, anything else. LIKE and GLOB are functions to the authorizer.
SQLITE_FUNCTIONS = frozenset(
    {
        # aggregates
        "count", "sum", "total", "avg", "min", "max", "group_concat", "string_agg",
        # window functions
        "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
        "first_value", "last_value", "nth_value",
        # conditionals and comparison
        "coalesce", "ifnull", "nullif", "iif", "like", "glob", "typeof",
        # text
        "lower", "upper", "length", "substr", "substring", "trim", "ltrim", "rtrim", "replace", "instr",
        "printf", "format", "char", "unicode", "concat", "concat_ws",
        # numbers
        "abs", "round", "ceil", "ceiling", "floor", "trunc", "sign", "mod", "power", "pow", "sqrt",
        # dates
        "date", "time", "datetime", "julianday", "strftime", "unixepoch", "current_date", "current_time",
        "current_timestamp",
        # percentiles (`percentile_cont ... WITHIN GROUP` as the rewriter writes it for SQLite)
        "percentile_cont", "percentile_disc",
        # JSON reads (audit values)
        "json", "json_extract", "json_array_length", "json_type", "json_valid", "->", "->>",
    }
)  # fmt: skip
# Length limits of the SQLite connection: a value or row of at most 10 MB, SQL of at most 100 kB,
# expressions nested at most 200 deep, no attached databases.
SQLITE_LIMITS = {
    sqlite3.SQLITE_LIMIT_LENGTH: 10_000_000,
    sqlite3.SQLITE_LIMIT_SQL_LENGTH: 100_000,
    sqlite3.SQLITE_LIMIT_EXPR_DEPTH: 200,
    sqlite3.SQLITE_LIMIT_ATTACHED: 0,
}
# The real tables auditors may read and, for each, the columns.
SQLITE_READABLE = {table.source: frozenset(table.columns) for table in TABLES}


class QueryFailed(DomainError):
    """The database refused or stopped the query; `detail` says why in words."""

    code = "query_failed"


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[list]  # JSON-friendly values: numbers other than integers as decimal text, dates in ISO 8601
    truncated: bool  # more rows matched than `rows` holds (the row or the byte cap)
    milliseconds: int
    note: str = ""  # why the answer was cut, when the byte cap cut it


def sources() -> dict[str, str]:
    """What the rewriter should read for each logical table: on PostgreSQL the reader's views, on
    SQLite the real tables."""
    if connections["default"].vendor == "postgresql":
        return {table.name: f"{VIEW_SCHEMA}.{table.name}" for table in TABLES}
    return {table.name: table.source for table in TABLES}


def run(sql: str, *, provider_id: int, limit: int = 100) -> QueryResult:
    """Run one query for an auditor of `provider_id`, read-only, and return at most `limit` rows.

    Raises QueryFailed when the database refuses the query, it breaks a rule of the sandbox, or it
    runs out of time."""
    if not isinstance(provider_id, int) or isinstance(provider_id, bool):
        raise TypeError("provider_id must be an int")
    if not isinstance(limit, int) or limit < 1:
        raise ValueError("limit must be a positive int")
    if "\x00" in sql:
        # libpq would cut the text there; no query needs the character.
        raise QueryFailed(gettext("The query could not run: it contains a NUL character."))
    started = time.monotonic()
    vendor = connections["default"].vendor
    if vendor == "postgresql":
        columns, rows = _run_postgresql(sql, provider_id=provider_id, limit=limit)
    elif vendor == "sqlite":
        columns, rows = _run_sqlite(sql, limit=limit)
    else:
        raise ImproperlyConfigured(f"AI queries do not run on {vendor}.")
    kept, note = _within_byte_cap(columns, rows[:limit])
    return QueryResult(
        columns=columns,
        rows=kept,
        truncated=len(rows) > len(kept),
        milliseconds=round((time.monotonic() - started) * 1000),
        note=note,
    )


def max_bytes() -> int:
    """An answer kept for an auditor holds at most this many bytes of JSON: the rows past it are cut,
    with a note."""
    return settings.AI_ANSWER_MAX_BYTES


def _size(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _within_byte_cap(columns: list[str], rows: list[tuple]) -> tuple[list[list], str]:
    """The rows as JSON values, as many as fit in `max_bytes()` with the column names; a note when
    some were cut. Refused when not even the first row fits."""
    cap = max_bytes()
    size = _size(columns)
    kept: list[list] = []
    for row in rows:
        values = [_json_value(value) for value in row]
        size += _size(values) + 1
        if size > cap:
            if not kept:
                raise QueryFailed(
                    gettext(
                        "The answer's first row alone is larger than the %(cap)s bytes an answer may hold; select "
                        "fewer or shorter columns."
                    )
                    % {"cap": format(cap, ",")}
                )
            return kept, (
                f"The answer was cut to its first {len(kept)} row{'' if len(kept) == 1 else 's'}: "
                f"an answer may hold at most {cap:,} bytes. Select fewer or shorter columns, or fewer rows."
            )
        kept.append(values)
    return kept, ""


def _fetch(cursor: Any, limit: int) -> list[tuple]:
    """At most `limit + 1` rows, a few at a time, stopping once they are past the byte cap."""
    rows: list[tuple] = []
    size, cap = 0, max_bytes()
    while len(rows) <= limit and size <= cap:
        batch = cursor.fetchmany(min(FETCH_BATCH, limit + 1 - len(rows)))
        if not batch:
            break
        rows.extend(batch)
        size += sum(len(repr(row)) for row in batch)
    return rows


def _timeout_seconds() -> float:
    return float(getattr(settings, "AI_QUERY_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))


def _too_slow() -> QueryFailed:
    seconds = _timeout_seconds()
    return QueryFailed(
        ngettext(
            "The query took longer than %(seconds)s second; narrow it down.",
            "The query took longer than %(seconds)s seconds; narrow it down.",
            1 if seconds == 1 else 2,  # a fraction of a second reads as plural
        )
        % {"seconds": format(seconds, "g")}
    )


NOT_ALLOWED = "This query reads something auditors may not read."
WRITES = "Queries may only read data; this one tries to change something."
ONE_STATEMENT = "Only one statement can run at a time."
UNAVAILABLE = "Queries cannot reach the database right now; try again later."
TOO_BIG = "The query needs more memory or temporary disk than queries may use; narrow it down."
NOT_SET_UP = "Queries are off until an administrator finishes setting up the database; see the server log."
# Run as the reader: true while it can still read the catalogs or call the statistics functions
# (migration auditing 0004 not applied by a superuser).
CATALOG_PROBE = (
    "SELECT has_table_privilege('pg_catalog.pg_class', 'SELECT') "
    "OR has_function_privilege('pg_catalog.pg_stat_get_live_tuples(oid)', 'EXECUTE')"
)


# --- PostgreSQL -------------------------------------------------------------------------------------


def _run_postgresql(sql: str, *, provider_id: int, limit: int) -> tuple[list[str], list[tuple]]:
    try:
        conn = psycopg.connect(**_reader_params(), autocommit=True)
    except psycopg.Error as exc:
        logger.error("AI query: cannot connect as the reader role: %s", exc)
        raise QueryFailed(UNAVAILABLE) from exc
    try:
        # The binding is written in a transaction of its own (the query's is read-only); the
        # session keeps it until the connection closes.
        # A misconfigured AI_QUERY_DB_USER (the app's own role, a superuser) would make every
        # other layer moot: refuse to run anything as a role with more than a reader's powers. The
        # reader cannot read pg_roles itself (migration auditing 0004): the app's connection asks.
        if _more_than_a_reader(conn.info.user):
            logger.error("AI query: the role %s has more than a reader's powers; not running", conn.info.user)
            raise QueryFailed(UNAVAILABLE)
        conn.read_only = False
        with conn.transaction():
            conn.execute("SELECT ai_scope.bind(%s)", [provider_id])
            (catalogs_open,) = conn.execute(CATALOG_PROBE).fetchone()
        if catalogs_open:
            logger.error(
                "AI query: the role %s can read PostgreSQL's catalogs and statistics; a superuser must "
                "migrate auditing 0004 (manage.py migrate auditing 0003, then manage.py migrate)",
                conn.info.user,
            )
            raise QueryFailed(NOT_SET_UP)
        conn.read_only = True
        with conn.transaction(force_rollback=True):
            for statement in _session_settings():
                conn.execute(statement)
            # A server-side cursor: `DECLARE "ai_..." CURSOR FOR <sql>` through the extended
            # protocol (psycopg forces it for DECLARE), then one FETCH of limit + 1 rows.
            with conn.cursor(name=f"ai_{uuid.uuid4().hex[:12]}") as cursor:
                cursor.execute(sql)
                rows = _fetch(cursor, limit)
                columns = [column.name for column in cursor.description or ()]
    except psycopg.Error as exc:
        raise _postgresql_failure(exc, sql) from exc
    finally:
        conn.close()
    return columns, rows


def _more_than_a_reader(role: str) -> bool:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper OR rolinherit OR rolcreaterole OR rolcreatedb OR rolbypassrls "
            "OR EXISTS (SELECT FROM pg_catalog.pg_auth_members AS m WHERE m.member = r.oid) "
            "FROM pg_catalog.pg_roles AS r WHERE r.rolname = %s",
            [role],
        )
        row = cursor.fetchone()
    return row is None or row[0]


def _reader_params() -> dict[str, Any]:
    """Django's connection parameters for the default database (its test database in tests), with
    the reader's login."""
    params = connections["default"].get_connection_params()
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    params["user"] = getattr(settings, "AI_QUERY_DB_USER", DEFAULT_USER)
    params.pop("password", None)
    password = getattr(settings, "AI_QUERY_DB_PASSWORD", "")
    if password:
        params["password"] = password
    params.setdefault("connect_timeout", 5)
    params["application_name"] = APPLICATION_NAME
    return params


def _session_settings() -> list[pg_sql.Composable]:
    milliseconds = max(1, round(_timeout_seconds() * 1000))  # 0 would mean no limit
    return [
        pg_sql.SQL("SET LOCAL statement_timeout = {}").format(pg_sql.Literal(f"{milliseconds}ms")),
        pg_sql.SQL("SET LOCAL lock_timeout = {}").format(pg_sql.Literal(LOCK_TIMEOUT)),
        pg_sql.SQL("SET LOCAL idle_in_transaction_session_timeout = {}").format(
            pg_sql.Literal(f"{2 * milliseconds}ms")
        ),
        pg_sql.SQL("SET LOCAL search_path = {}").format(pg_sql.Identifier(VIEW_SCHEMA)),
        pg_sql.SQL("SET LOCAL TimeZone = {}").format(pg_sql.Literal(settings.TIME_ZONE)),
    ]


def _postgresql_failure(exc: psycopg.Error, sql: str) -> QueryFailed:
    logger.info("AI query refused by PostgreSQL: %s %s", exc.sqlstate, _first_line(exc))
    if isinstance(exc, pg_errors.QueryCanceled):
        return _too_slow()
    if isinstance(exc, pg_errors.LockNotAvailable):
        return QueryFailed(gettext("The query waited too long for rows other work is changing; try again."))
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return QueryFailed(NOT_ALLOWED)
    if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
        return QueryFailed(WRITES)
    if isinstance(exc, pg_errors.SyntaxError) and "multiple commands" in str(exc):
        return QueryFailed(ONE_STATEMENT)
    # The query runs as a cursor, which takes only a query: a statement of another kind fails on
    # its first word.
    first_word = re.match(r"\s*([A-Za-z]*)", sql).group(1)  # always matches, maybe empty
    if (
        isinstance(exc, pg_errors.SyntaxError)
        and first_word
        and _first_line(exc).lower() == f'syntax error at or near "{first_word.lower()}"'
    ):
        return QueryFailed(
            gettext("Only a query can run here (SELECT, WITH or VALUES), not %(upper)s.")
            % {"upper": first_word.upper()}
        )
    if isinstance(exc, pg_errors.ConfigurationLimitExceeded | pg_errors.OutOfMemory | pg_errors.DiskFull):
        return QueryFailed(TOO_BIG)
    if exc.sqlstate is None or exc.sqlstate.startswith("08"):  # the connection itself failed
        return QueryFailed(
            gettext("The query could not run: the database connection was lost (%(first_line)s).")
            % {"first_line": _first_line(exc)}
        )
    return QueryFailed(gettext("The query could not run: %(first_line)s") % {"first_line": _first_line(exc)})


def _first_line(exc: Exception) -> str:
    diag = getattr(exc, "diag", None)
    message = (diag.message_primary if diag is not None else None) or str(exc)
    lines = message.strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# --- SQLite -----------------------------------------------------------------------------------------


def _run_sqlite(sql: str, *, limit: int) -> tuple[list[str], list[tuple]]:
    try:
        conn = _sqlite_connect()
    except sqlite3.Error as exc:
        logger.error("AI query: cannot open the database read-only: %s", exc)
        raise QueryFailed(UNAVAILABLE) from exc
    authorizer = _SqliteAuthorizer()
    try:
        authorizer.tables = {
            name.lower()
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
        }
        deadline = time.monotonic() + _timeout_seconds()
        conn.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
        conn.set_authorizer(authorizer)
        # execute() refuses a second statement (ProgrammingError), comments aside.
        cursor = conn.execute(sql)
        rows = _fetch(cursor, limit)
        columns = [column[0] for column in cursor.description or ()]
    except (sqlite3.Error, sqlite3.Warning) as exc:
        raise _sqlite_failure(exc, authorizer.refused) from exc
    finally:
        conn.close()
    return columns, rows


def _sqlite_connect() -> sqlite3.Connection:
    name = str(connections["default"].settings_dict["NAME"])
    in_memory = False
    if name.startswith("file:"):
        path, _, query = name.removeprefix("file:").partition("?")
        options = dict(parse_qsl(query))
        in_memory = options.get("mode") == "memory"
        if in_memory and options.get("cache") != "shared":
            raise ImproperlyConfigured("AI queries need a database other connections can open.")
        if not in_memory:
            options["mode"] = "ro"
        uri = f"file:{path}?{urlencode(options)}"
    elif name in ("", ":memory:"):
        raise ImproperlyConfigured("AI queries need a database other connections can open.")
    else:
        uri = f"file:{quote(str(Path(name).resolve()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=1, isolation_level=None)
    try:
        for category, value in SQLITE_LIMITS.items():
            conn.setlimit(category, value)
        conn.execute("PRAGMA query_only = ON")
        add_sqlite_functions(conn)
        if in_memory:
            conn.execute("PRAGMA read_uncommitted = ON")
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def add_sqlite_functions(conn: sqlite3.Connection) -> None:
    """What SQLite lacks of what the validator accepts: percentiles (see `auditing.ai.scope`)."""
    for name, aggregate in (("percentile_cont", _PercentileCont), ("percentile_disc", _PercentileDisc)):
        conn.create_aggregate(name, 2, aggregate)


class _PercentileCont:
    """`percentile_cont(value, fraction)`: PostgreSQL's `percentile_cont(fraction) WITHIN GROUP (ORDER BY
    value)` for SQLite, interpolating between the two nearest values (NULLs are left out)."""

    def __init__(self) -> None:
        self.values: list[Decimal] = []
        self.fraction: Decimal | None = None

    def step(self, value: Any, fraction: Any) -> None:
        if fraction is None or not 0 <= Decimal(str(fraction)) <= 1:
            raise ValueError("percentile fraction must be between 0 and 1")
        self.fraction = Decimal(str(fraction))
        if value is not None:
            self.values.append(Decimal(str(value)))

    def finalize(self) -> float | None:
        # Worked out in Decimal; SQLite has no decimal type, so it gets a float back, which the answer
        # turns into decimal text like every other REAL.
        if not self.values or self.fraction is None:
            return None
        values = sorted(self.values)
        position = self.fraction * (len(values) - 1)
        lower = int(position)
        upper = min(lower + 1, len(values) - 1)
        return float(values[lower] + (values[upper] - values[lower]) * (position - lower))


class _PercentileDisc(_PercentileCont):
    """`percentile_disc(value, fraction)`: the first value whose position in order reaches the fraction."""

    def finalize(self) -> float | None:
        if not self.values or self.fraction is None:
            return None
        values = sorted(self.values)
        index = max(math.ceil(self.fraction * len(values)) - 1, 0)
        return float(values[index])


class _SqliteAuthorizer:
    """SQLite asks this while compiling the statement; anything not allowed here makes it fail.
    The refusals are kept, to tell the auditor what was refused."""

    def __init__(self) -> None:
        self.tables: set[str] = set()  # the database's tables and views, lower case
        self.refused: list[tuple[int, str | None, str | None]] = []

    def __call__(
        self, action: int, arg1: str | None, arg2: str | None, database: str | None, _: object
    ) -> int:
        if action == sqlite3.SQLITE_SELECT:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_READ:
            if database == "main" and arg2 in SQLITE_READABLE.get(arg1 or "", ()):
                return sqlite3.SQLITE_OK
            # Rows counted without a column read (count(*)) come with an empty column name: allowed
            # over an allowed table or a WITH query, not over any other table, view or schema table.
            name = (arg1 or "").lower()
            if arg2 == "" and (
                name in SQLITE_READABLE
                or (name not in self.tables and not name.startswith(("sqlite_", "pragma_")))
            ):
                return sqlite3.SQLITE_OK
        elif action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in SQLITE_FUNCTIONS:
            return sqlite3.SQLITE_OK
        self.refused.append((action, arg1, arg2))
        return sqlite3.SQLITE_DENY


def _sqlite_failure(exc: Exception, refused: list[tuple[int, str | None, str | None]]) -> QueryFailed:
    message = _first_line(exc)
    logger.info("AI query refused by SQLite: %s %s", message, refused)
    if message == "interrupted":
        return _too_slow()
    # The most telling refusal first: a change, a recursive query, a function, then a read.
    reads = (sqlite3.SQLITE_READ, sqlite3.SQLITE_SELECT)
    for action, _, _ in refused:
        if action not in (*reads, sqlite3.SQLITE_RECURSIVE, sqlite3.SQLITE_FUNCTION):
            return QueryFailed(WRITES)
    for action, _, name in refused:
        if action == sqlite3.SQLITE_RECURSIVE:
            return QueryFailed(gettext("Recursive queries are not allowed."))
        if action == sqlite3.SQLITE_FUNCTION:
            return QueryFailed(
                gettext("This query calls %(name)s(), which auditors' queries may not use.") % {"name": name}
            )
    if refused:
        return QueryFailed(NOT_ALLOWED)
    if "readonly" in message or "read-only" in message:
        return QueryFailed(WRITES)
    if "one statement at a time" in message:
        return QueryFailed(ONE_STATEMENT)
    if "too big" in message or "out of memory" in message:
        return QueryFailed(TOO_BIG)
    return QueryFailed(gettext("The query could not run: %(message)s") % {"message": message})


# --- values -----------------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    """A database value as JSON can carry it: money and other decimals as strings (exact), floats as
    decimal text too, dates, times in ISO 8601, durations as text, bytes in hex, JSON documents as
    they are."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date | time_of_day):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    return str(value)


def _float_text(value: float) -> str:
    """A float as decimal text, to 15 significant digits: what a float holds exactly. SQLite keeps
    money as floating point, so a sum of cents comes back as 247740.94000000003: it reads 247740.94."""
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    text = format(Decimal(format(value, ".15g")), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text

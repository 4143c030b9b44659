"""The validator of auditors' SQL: one read-only SELECT over the allow-listed tables, or a refusal that
says why.

`check(sql, dialect=...)` parses the text with sqlglot and returns the tree; the rewriter
(`auditing.ai.scope`) then generates the SQL that actually runs from that tree, so what runs is exactly
what was checked (the original text, its comments and its quoting never reach the database).

It fails closed: every node of the tree must be of a class on an allow-list (anything sqlglot parses
that is not listed, including any construct a newer sqlglot may add, is refused), every function on
the function allow-list, every table one of `schema.BY_NAME` (or a WITH name visible where it is
used), every column one of the allowed columns or a name the query itself defines.

Choices:
- `*` is allowed: the rewriter replaces every table by a subquery selecting only its allowed columns,
  so `*` can never reach a column that is not on the allow-list.
- At most `MAX_JOINS` joins in one SELECT and `MAX_TABLES` table references in the whole query
  (cross joins of many tables are the cheapest way to an endless query); statement timeouts in the
  executor stop the rest.
- No recursive CTE, no LATERAL, no VALUES. The one function allowed in FROM is `generate_series`
  over constants (a series of dates or numbers to join the data to); its name is a column name.
- Percentiles: `percentile_cont` / `percentile_disc` ... WITHIN GROUP (ORDER BY ...).
- A trailing semicolon is accepted (`SELECT 1;`); anything after it, even a comment, is refused.
- Comments are allowed in the text (models write them) but never generated into the SQL that runs.
- Table names are resolved by PostgreSQL's rules (`pg_name`): an unquoted name folds to lower case, a
  quoted one is exact. A reference means a WITH query only when the two names are equal so; one that
  differs from a visible WITH name only in case is refused (SQLite, which ignores case, would read the
  WITH query, PostgreSQL a table of the same name, such as `pg_stat_user_tables` from pg_catalog).
  Any other reference must be an allowed table by the same rule (`"INVOICES"` is not `invoices`).
- Column names are compared case-insensitively, which only refuses more: every table is read through
  a subquery of its allowed columns, so a column name can reach nothing else.
"""

import re
from collections.abc import Callable
from functools import cache

import sqlglot
from django.utils.translation import gettext as _
from sqlglot import exp

from auditing.ai import schema
from config.errors import DomainError

DIALECTS = ("postgres", "sqlite")
MAX_CHARS = 5_000
MAX_NODES = 2_000
MAX_DEPTH = 100  # levels of the expression tree
MAX_QUERY_NESTING = 10  # SELECTs inside SELECTs
MAX_JOINS = 6  # in one SELECT
MAX_TABLES = 16  # table references in the whole query

# A WITH name shadows a table of that name in every query inside it, including the rewriter's.
RESERVED_NAMES = frozenset(name for table in schema.TABLES for name in (table.name, table.source))
ALLOWED_COLUMNS = frozenset(column for table in schema.TABLES for column in table.columns)
_TABLE_LIST = ", ".join(schema.BY_NAME)

# Names: ASCII only (no look-alike letters); quoted names may also hold spaces and a few signs.
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_QUOTED_NAME = re.compile(r"[A-Za-z0-9_ %()/-]{1,63}")

SET_OPERATIONS = (exp.Union, exp.Intersect, exp.Except)
QUERY = (exp.Select, *SET_OPERATIONS)
TABLE_OR_COLUMN = (exp.Table, exp.Column)
TABLE_OR_SUBQUERY = (exp.Table, exp.Subquery)
FROM_OR_JOIN = (exp.From, exp.Join)
ALIAS_OR_CTE = (exp.Alias, exp.CTE)

# Functions, as sqlglot parses them in PostgreSQL or SQLite.
FUNCTIONS: tuple[type[exp.Expression], ...] = (
    exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.GroupConcat,
    exp.Coalesce, exp.Nullif, exp.Greatest, exp.Least, exp.If, exp.Case,
    exp.Round, exp.Abs, exp.Floor, exp.Ceil,
    exp.Lower, exp.Upper, exp.Length, exp.Trim, exp.Substring, exp.Replace, exp.Concat, exp.DPipe,
    exp.TimestampTrunc, exp.DateTrunc, exp.Extract, exp.CurrentDate, exp.CurrentTimestamp,
    exp.TimeToStr, exp.ToChar, exp.TsOrDsToTimestamp, exp.Date, exp.Datetime, exp.Cast,
    exp.RowNumber, exp.Rank, exp.DenseRank, exp.Lag, exp.Lead,
    exp.PercentileCont, exp.PercentileDisc, exp.WithinGroup,
)  # fmt: skip
# A series in FROM: `generate_series(start, stop[, step])`, its arguments constants.
SERIES = (exp.GenerateSeries, exp.ExplodingGenerateSeries)
# Functions sqlglot does not know in a dialect (it parses them as `Anonymous`), by lower-case name.
ANONYMOUS_FUNCTIONS = frozenset(
    {"date", "datetime", "julianday", "strftime", "date_part", "date_trunc", "now", "to_char", "age", "total"}
)
FUNCTION_NAMES = (
    "count, sum, avg, min, max, string_agg/group_concat, coalesce/ifnull, nullif, greatest, least, CASE, iif, "
    "round, abs, floor, ceil, lower, upper, length, trim, substr/substring, replace, concat, ||, date_trunc, "
    "extract, date_part, now, current_date, current_timestamp, to_char, strftime, date, datetime, julianday, "
    "age, cast, row_number, rank, dense_rank, lag, lead, percentile_cont/percentile_disc ... WITHIN GROUP "
    "(ORDER BY ...), and generate_series(start, stop, step) in FROM"
)

ALLOWED: tuple[type[exp.Expression], ...] = (
    *QUERY, exp.Subquery, exp.With, exp.CTE, exp.From, exp.Join, exp.Where, exp.Group, exp.Having,
    exp.Order, exp.Ordered, exp.Limit, exp.Offset, exp.Distinct, exp.Alias, exp.TableAlias, exp.Table,
    exp.Column, exp.Identifier, exp.Star, exp.Paren, exp.Tuple, exp.Window, exp.WindowSpec, exp.Filter,
    exp.Exists, exp.Any, exp.All, exp.Null, exp.Boolean, exp.Literal, exp.Interval, exp.Var,
    exp.DataType, exp.DataTypeParam,
    exp.Neg, exp.Not, exp.And, exp.Or, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Is,
    exp.In, exp.Between, exp.Like, exp.ILike, exp.Escape, exp.If, exp.Case,
    *FUNCTIONS, *SERIES, exp.Anonymous,
)  # fmt: skip
ALLOWED_CLASSES = frozenset(ALLOWED)

# Which arguments a structural node may carry (anything else, such as SELECT ... INTO, FOR UPDATE,
# TABLESAMPLE, ONLY, AS OF or a table hint, is refused even when sqlglot stores it as a plain value).
ALLOWED_ARGS: dict[type[exp.Expression], frozenset[str]] = {
    exp.Select: frozenset(
        {
            "with_",
            "expressions",
            "distinct",
            "from_",
            "joins",
            "where",
            "group",
            "having",
            "windows",
            "order",
            "limit",
            "offset",
        }
    ),
    **{
        operation: frozenset({"with_", "this", "expression", "distinct", "order", "limit", "offset"})
        for operation in SET_OPERATIONS
    },
    exp.Subquery: frozenset({"this", "alias", "order", "limit", "offset"}),
    exp.Table: frozenset({"this", "alias"}),
    exp.Join: frozenset({"this", "on", "side", "kind", "using", "method"}),
    exp.With: frozenset({"expressions"}),
    exp.CTE: frozenset({"this", "alias", "materialized"}),
    exp.TableAlias: frozenset({"this", "columns"}),
    exp.Column: frozenset({"this", "table"}),
    exp.Identifier: frozenset({"this", "quoted"}),
    exp.Star: frozenset(),
    exp.Distinct: frozenset({"expressions", "on"}),
    exp.Window: frozenset({"this", "partition_by", "order", "spec", "alias", "over"}),
    exp.Cast: frozenset({"this", "to"}),
    exp.DataType: frozenset({"this", "expressions", "nested"}),
    exp.Anonymous: frozenset({"this", "expressions"}),
    exp.Literal: frozenset({"this", "is_string"}),
    **{series: frozenset({"start", "end", "step"}) for series in SERIES},
    exp.WithinGroup: frozenset({"this", "expression"}),
}
ARG_WORDS = {
    "sample": "TABLESAMPLE", "only": "ONLY", "version": "AS OF", "hints": "table hints", "pivots": "PIVOT",
    "laterals": "LATERAL", "joins": "a join inside a table", "kind": "SELECT AS", "scalar": "a scalar WITH",
    "format": "FORMAT", "safe": "TRY_CAST", "nullable": "a nullable type", "collate": "COLLATE",
    "qualify": "QUALIFY", "connect": "CONNECT BY", "by_name": "UNION BY NAME", "side": "an outer UNION",
    "first": "FIRST", "partition": "PARTITION", "ordinality": "WITH ORDINALITY", "values": "type values",
    "hint": "optimizer hints", "global_": "GLOBAL", "temporary": "TEMPORARY",
}  # fmt: skip
JOIN_WORDS = {
    "side": {"LEFT", "RIGHT", "FULL"},
    "kind": {"INNER", "OUTER", "CROSS"},
    "method": {"NATURAL"},
}

T = exp.DataType.Type
CAST_TYPES = frozenset(
    {
        T.TEXT, T.VARCHAR, T.CHAR, T.NVARCHAR, T.NCHAR, T.BPCHAR,
        T.SMALLINT, T.INT, T.BIGINT, T.TINYINT, T.DECIMAL, T.DOUBLE, T.FLOAT,
        T.DATE, T.TIME, T.TIMESTAMP, T.TIMESTAMPTZ, T.DATETIME, T.INTERVAL, T.BOOLEAN,
    }
)  # fmt: skip
DATE_UNITS = frozenset(
    {
        "MILLENNIUM", "CENTURY", "DECADE", "YEAR", "YEARS", "ISOYEAR", "QUARTER", "MONTH", "MONTHS", "WEEK",
        "WEEKS", "DAY", "DAYS", "DOW", "ISODOW", "DOY", "HOUR", "HOURS", "MINUTE", "MINUTES", "SECOND",
        "SECONDS", "MILLISECOND", "MILLISECONDS", "MICROSECOND", "MICROSECONDS", "EPOCH",
    }
)  # fmt: skip
UNIT_HOLDERS = (exp.Interval, exp.Extract, exp.TimestampTrunc, exp.DateTrunc)

_TOO_DEEP = f"The query is nested too deeply; at most {MAX_DEPTH} levels are allowed."
_ONLY_SELECT = "Only SELECT queries over the audit tables can run; this one"
WRITES = {
    exp.Insert: "INSERT", exp.Update: "UPDATE", exp.Delete: "DELETE", exp.Merge: "MERGE",
    exp.TruncateTable: "TRUNCATE", exp.Into: "SELECT INTO", exp.Returning: "RETURNING",
}  # fmt: skip
STRUCTURE = {
    exp.Create: "CREATE", exp.Drop: "DROP", exp.Alter: "ALTER", exp.Grant: "GRANT", exp.Revoke: "REVOKE",
    exp.Comment: "COMMENT", exp.AlterRename: "RENAME", exp.RenameColumn: "RENAME",
}  # fmt: skip
SESSION = {
    exp.Transaction: "BEGIN", exp.Commit: "COMMIT", exp.Rollback: "ROLLBACK", exp.Set: "SET",
    exp.Pragma: "PRAGMA", exp.Attach: "ATTACH", exp.Detach: "DETACH", exp.Use: "USE",
}  # fmt: skip
COMMANDS = {
    exp.Copy: "COPY", exp.Analyze: "ANALYZE", exp.Execute: "EXECUTE", exp.Declare: "DECLARE",
    exp.Kill: "KILL", exp.Cache: "CACHE", exp.Uncache: "UNCACHE", exp.Refresh: "REFRESH",
    exp.LoadData: "LOAD DATA", exp.Describe: "DESCRIBE", exp.Show: "SHOW", exp.Summarize: "SUMMARIZE",
    exp.Export: "EXPORT", exp.Install: "INSTALL", exp.Put: "PUT", exp.Get: "GET",
}  # fmt: skip


class QueryRefused(DomainError):
    code = "query_refused"


def check(sql: str, *, dialect: str) -> exp.Expression:
    """The parsed tree of `sql` if it is one read-only SELECT auditors may run; else `QueryRefused`."""
    return check_nodes(sql, dialect=dialect)[0]


def check_nodes(sql: str, *, dialect: str) -> list[exp.Expression]:
    """`check`, returning every node of the checked tree, the tree first (the rewriter reads them
    without walking the tree again)."""
    _check_dialect(dialect)
    if not isinstance(sql, str) or not sql.strip():
        raise QueryRefused(_("The query is empty."))
    if len(sql) > MAX_CHARS:
        raise QueryRefused(
            _("The query is %(count)s characters long; at most %(max_chars)s can be checked.")
            % {"count": format(len(sql), ","), "max_chars": format(MAX_CHARS, ",")}
        )
    try:
        statements = sqlglot.parse(sql, read=dialect)
    except RecursionError:
        raise QueryRefused(_TOO_DEEP) from None
    except Exception:  # whatever the parser cannot read is refused, never guessed at
        raise QueryRefused(
            _("The query could not be read as SQL; only a single SELECT query can run.")
        ) from None
    real = [statement for statement in statements if statement is not None]
    if len(statements) != 1 or len(real) != 1:
        if not real:
            raise QueryRefused(_("The query is empty."))
        kinds = [_statement_word(s) for s in real if not isinstance(s, exp.Semicolon)]
        if len(kinds) == 1:
            raise QueryRefused(_("Nothing may follow the semicolon that ends the query, not even a comment."))
        raise QueryRefused(
            _(
                "The text holds more than one statement (%(kinds)s); only one SELECT query can run, with "
                "nothing after its semicolon."
            )
            % {"kinds": ", ".join(kinds)}
        )
    nodes = check_tree(real[0])
    if dialect == "sqlite":
        _check_sqlite_can_run(nodes)
    return nodes


# What PostgreSQL runs and SQLite does not: refused when checking SQLite SQL, with what to write instead
# (the executor would otherwise fail on it after the validator let it through).
SQLITE_LACKS: dict[type[exp.Expression], str] = {
    exp.Extract: "extract(); use strftime('%Y', ...) or strftime('%m', ...)",
    exp.DateTrunc: "date_trunc(); use date(..., 'start of month') or strftime('%Y-%m', ...)",
    exp.TimestampTrunc: "date_trunc(); use date(..., 'start of month') or strftime('%Y-%m', ...)",
    exp.Interval: "INTERVAL; use date(..., '-1 month') or datetime(..., '+7 days')",
    exp.Concat: "concat(); use ||",
    exp.ToChar: "to_char(); use strftime()",
}
SQLITE_LACKS_NAMED = {
    "now": "now(); use datetime('now') or current_timestamp",
    "age": "age(); use julianday(...) - julianday(...)",
    "date_part": "date_part(); use strftime('%Y', ...)",
    "date_trunc": "date_trunc(); use date(..., 'start of month') or strftime('%Y-%m', ...)",
    "to_char": "to_char(); use strftime()",
}


def _check_sqlite_can_run(nodes: list[exp.Expression]) -> None:
    if not any(_sqlite_lacks(node) for node in nodes):
        return
    for node in nodes[0].walk():  # the one nearest the top of the query is named
        if what := _sqlite_lacks(node):
            raise QueryRefused(_("This database (SQLite) cannot run %(what)s.") % {"what": what})


def _sqlite_lacks(node: exp.Expression) -> str | None:
    """What SQLite cannot run in this node, and what to write instead; None when it can."""
    if isinstance(node, exp.Table) and is_series(node):
        return None  # a series of constants is written out for SQLite (auditing.ai.scope)
    if isinstance(node, exp.Interval) and node.find_ancestor(*SERIES):
        return None
    if isinstance(node, exp.Anonymous):
        return SQLITE_LACKS_NAMED.get(node.name.lower())
    return SQLITE_LACKS.get(type(node))


def check_tree(tree: exp.Expression) -> list[exp.Expression]:
    """Refuse a parsed tree that is anything but one allowed SELECT (see the module's notes); return
    every node of the tree, the tree first."""
    if not isinstance(tree, exp.Expression):
        raise QueryRefused(_("The query could not be read as SQL."))
    nodes = _bounded_nodes(tree)
    _refuse_statements(nodes)
    if not isinstance(tree, QUERY):
        raise QueryRefused(_("%(only_select)s is not a SELECT query.") % {"only_select": _ONLY_SELECT})
    for node in nodes:
        _check_node(node)
    _check_shape(tree, nodes)
    _check_tables(nodes)
    _check_columns(nodes)
    return nodes


def _check_dialect(dialect: str) -> None:
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {DIALECTS}, not {dialect!r}")


def _bounded_nodes(tree: exp.Expression) -> list[exp.Expression]:
    """Every node of the tree, refusing trees that are too big or too deep (walked without recursion)."""
    nodes: list[exp.Expression] = []
    stack: list[tuple[exp.Expression, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise QueryRefused(_TOO_DEEP)
        nodes.append(node)
        if len(nodes) > MAX_NODES:
            raise QueryRefused(
                _("The query is too large (more than %(max_nodes)s parts); ask a narrower question.")
                % {"max_nodes": format(MAX_NODES, ",")}
            )
        depth += 1
        for value in node.args.values():  # its children, in order
            if isinstance(value, list):
                stack.extend((item, depth) for item in value if isinstance(item, exp.Expression))
            elif isinstance(value, exp.Expression):
                stack.append((value, depth))
    return nodes


def _statement_word(node: exp.Expression) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    for table in (WRITES, STRUCTURE, SESSION, COMMANDS):
        for cls, word in table.items():
            if isinstance(node, cls):
                return word
    if isinstance(node, QUERY):
        return "SELECT"
    return type(node).__name__.upper()


STATEMENT_KINDS = (
    (WRITES, "writes data"),
    (STRUCTURE, "changes the database's tables or permissions"),
    (SESSION, "controls the transaction or the session"),
    (COMMANDS, "is a command"),
)


@cache
def _statement_kind(cls: type[exp.Expression]) -> tuple[int, str] | None:
    """(rank, refusal) of the first of `STATEMENT_KINDS` (then a command) a node of this class is, by
    rank; None for anything else."""
    for rank, (table, what) in enumerate(STATEMENT_KINDS):
        for statement, word in table.items():
            if issubclass(cls, statement):
                return rank, f"{_ONLY_SELECT} {what} ({word})."
    if issubclass(cls, exp.Command):
        return len(STATEMENT_KINDS), ""
    return None


def _refuse_statements(nodes: list[exp.Expression]) -> None:
    """Statements other than SELECT anywhere in the tree, named the way the auditor wrote them: the
    first node of the first kind found, in the order of `STATEMENT_KINDS`, then commands."""
    found: tuple[int, str, exp.Expression] | None = None
    for node in nodes:
        kind = _statement_kind(type(node))
        if kind is not None and (found is None or kind[0] < found[0]):
            found = (*kind, node)
    if found is None:
        return
    rank, refusal, node = found
    if rank == len(STATEMENT_KINDS):
        refusal = f"{_ONLY_SELECT} is a command ({_statement_word(node)})."
    raise QueryRefused(refusal)


def _check_node(node: exp.Expression) -> None:
    for rule in _rules(type(node)):
        if rule(node):
            break


_LOCKING = "Locking clauses (FOR UPDATE, FOR SHARE, NOWAIT, SKIP LOCKED) are not allowed; queries only read."


@cache
def _rules(cls: type[exp.Expression]) -> tuple[Callable[[exp.Expression], bool], ...]:
    """The rules a node of this class must pass, in order; a rule refuses the node or returns whether
    the rules after it are skipped. Which rules apply depends only on the class (as isinstance would
    say), so they are chosen once per class."""

    def kind(*classes: type[exp.Expression]) -> bool:
        return issubclass(cls, classes)

    rules = [_refuse_lock if kind(exp.Lock) else _no_locks]
    if kind(exp.With):
        rules.append(_not_recursive)
    if kind(exp.Dot):
        rules.append(_refuse_schema)
    elif kind(*TABLE_OR_COLUMN):
        rules.append(_no_schema)
    if kind(exp.DataType):
        rules.append(_castable_type)
    if kind(*SERIES):
        rules.append(_series_in_from)
    if kind(exp.Anonymous):
        rules.append(_anonymous_function)
    elif kind(exp.Func) and cls not in ALLOWED_CLASSES:
        rules.append(_refuse_function)
    if cls not in ALLOWED_CLASSES:  # exactly: a subclass may mean something else
        rules.append(_refuse_class)
    if cls in ALLOWED_ARGS:
        rules.append(_allowed_args)
    # The first of these whose class fits: the ones with a condition are skipped when it does not hold.
    for classes, rule, last in (
        ((exp.Identifier,), _check_name, True),
        ((exp.Literal,), _text_or_number, False),
        ((exp.Var,), _date_unit, True),
        ((exp.DataType,), _type_parameters, True),
        ((exp.Join,), _join, True),
        ((exp.Subquery,), _subquery_of_select, False),
        ((exp.CTE,), _with_query_of_select, False),
        ((exp.Table,), _table_in_from, False),
        (FROM_OR_JOIN, _reads_table_or_subquery, False),
    ):
        if kind(*classes):
            rules.append(rule)
            if last:
                break
    return tuple(rules)


# Each rule: refuse the node (QueryRefused), or return True when no later rule applies to it.
def _refuse_lock(node: exp.Expression) -> bool:
    raise QueryRefused(_LOCKING)


def _no_locks(node: exp.Expression) -> bool:
    if node.args.get("locks"):
        raise QueryRefused(_LOCKING)
    return False


def _not_recursive(node: exp.Expression) -> bool:
    if node.args.get("recursive"):
        raise QueryRefused(_("Recursive queries (WITH RECURSIVE) are not allowed."))
    return False


def _refuse_schema(node: exp.Expression) -> bool:
    raise QueryRefused(
        _(
            "%(sql)s names a schema; names with a schema (such as pg_catalog.pg_user or "
            "information_schema.tables) are never allowed; the tables auditors may read are: "
            "%(table_list)s."
        )
        % {"sql": node.sql(), "table_list": _TABLE_LIST}
    )


def _no_schema(node: exp.Expression) -> bool:
    if node.args.get("db") or node.args.get("catalog"):
        _refuse_schema(node)
    return False


def _castable_type(node: exp.Expression) -> bool:
    if node.this not in CAST_TYPES or node.args.get("kind"):
        raise QueryRefused(
            _("Converting to %(sql)s is not allowed; text, numbers, dates, times and booleans are.")
            % {"sql": node.sql()}
        )
    return False


def _series_in_from(node: exp.Expression) -> bool:
    if not isinstance(node.parent, exp.Table):
        raise _function_refused("generate_series outside FROM")
    return False


def _anonymous_function(node: exp.Expression) -> bool:
    name = node.name
    if name.lower() not in ANONYMOUS_FUNCTIONS or not _PLAIN_NAME.fullmatch(name):
        raise _function_refused(name)
    return False


def _refuse_function(node: exp.Expression) -> bool:
    raise _function_refused(node.sql_name() if hasattr(node, "sql_name") else type(node).__name__)


def _refuse_class(node: exp.Expression) -> bool:
    raise QueryRefused(
        _("This query uses %(describe)s, which auditors' queries may not use.")
        % {"describe": _describe(node)}
    )


def _allowed_args(node: exp.Expression) -> bool:
    allowed_args = ALLOWED_ARGS[type(node)]
    if not allowed_args.issuperset(node.args):
        extra = sorted(key for key, value in node.args.items() if key not in allowed_args and _present(value))
        if extra:
            words = ", ".join(ARG_WORDS.get(key, f"{type(node).__name__} {key}") for key in extra)
            raise QueryRefused(
                _("This query uses %(words)s, which auditors' queries may not use.") % {"words": words}
            )
    return False


def _text_or_number(node: exp.Expression) -> bool:
    if not node.is_string and not _is_number(node.this):
        raise QueryRefused(_("The query holds a value that is neither text nor a number."))
    return False


def _date_unit(node: exp.Expression) -> bool:
    if not isinstance(node.parent, UNIT_HOLDERS) or node.name.upper() not in DATE_UNITS:
        raise QueryRefused(
            _("%(name)s is not a column or a value auditors' queries may use.") % {"name": node.name}
        )
    return True


def _type_parameters(node: exp.Expression) -> bool:
    if any(not isinstance(e, exp.DataTypeParam) for e in node.expressions):
        raise QueryRefused(
            _("Converting to %(sql)s is not allowed; text, numbers, dates, times and booleans are.")
            % {"sql": node.sql()}
        )
    return True


def _join(node: exp.Expression) -> bool:
    for key, words in JOIN_WORDS.items():
        value = node.args.get(key)
        if _present(value) and str(value).upper() not in words:
            raise QueryRefused(_("%(upper)s joins are not allowed.") % {"upper": str(value).upper()})
    for name in node.args.get("using") or []:
        if not isinstance(name, exp.Identifier) or name.name.lower() not in ALLOWED_COLUMNS:
            raise QueryRefused(_("Column %(sql)s is not one auditors may read.") % {"sql": name.sql()})
    return True


def _subquery_of_select(node: exp.Expression) -> bool:
    if not isinstance(node.this, QUERY):
        raise QueryRefused(_("A subquery must be a SELECT query."))
    return False


def _with_query_of_select(node: exp.Expression) -> bool:
    if not isinstance(node.this, QUERY):
        raise QueryRefused(_("A WITH query must be a SELECT query."))
    return False


def _table_in_from(node: exp.Expression) -> bool:
    if not isinstance(node.parent, FROM_OR_JOIN):
        raise QueryRefused(_("Tables may only be read in FROM and JOIN."))
    return False


def _reads_table_or_subquery(node: exp.Expression) -> bool:
    if not isinstance(node.this, TABLE_OR_SUBQUERY):
        raise QueryRefused(_("Only tables and subqueries can be read in FROM and JOIN; functions cannot."))
    return False


def _present(value: object) -> bool:
    return value not in (None, False, "", [])


def _is_number(text: object) -> bool:
    return (
        isinstance(text, str)
        and re.fullmatch(r"[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+\.", text) is not None
    )


def _describe(node: exp.Expression) -> str:
    name = type(node).__name__
    words = {
        "Lateral": "LATERAL", "Values": "VALUES", "Unnest": "UNNEST", "Parameter": "a parameter",
        "Placeholder": "a parameter", "ByteString": "an escaped string (E'...')",
        "UnicodeString": "a Unicode-escaped string (U&'...')", "RawString": "a dollar-quoted string",
        "HexString": "a hex string", "BitString": "a bit string", "National": "a national string",
        "Collate": "COLLATE", "TableSample": "TABLESAMPLE", "SessionParameter": "a session setting",
    }  # fmt: skip
    return words.get(name, name)


def _function_refused(name: str) -> QueryRefused:
    return QueryRefused(
        _("Function %(name)s is not one auditors' queries may call; these are: %(function_names)s.")
        % {"name": name, "function_names": FUNCTION_NAMES}
    )


def _check_name(identifier: exp.Identifier) -> bool:
    name = identifier.this
    pattern = _QUOTED_NAME if identifier.quoted else _PLAIN_NAME
    if not isinstance(name, str) or not pattern.fullmatch(name):
        raise QueryRefused(
            _("The name %(name)s is not allowed: names are plain ASCII letters, digits and underscores.")
            % {"name": repr(name)}
        )
    return True


def _check_shape(tree: exp.Expression, nodes: list[exp.Expression]) -> None:
    for node in nodes:
        if isinstance(node, exp.Select) and len(node.args.get("joins") or []) > MAX_JOINS:
            raise QueryRefused(
                _("A SELECT may join at most %(max_joins)s tables to its first one.")
                % {"max_joins": MAX_JOINS}
            )
        if isinstance(node, QUERY) and _query_nesting(node) > MAX_QUERY_NESTING:
            raise QueryRefused(
                _("Queries may nest at most %(max_query_nesting)s SELECTs deep.")
                % {"max_query_nesting": MAX_QUERY_NESTING}
            )
    tables = sum(isinstance(node, exp.Table) for node in nodes)
    if tables > MAX_TABLES:
        raise QueryRefused(
            _("The query reads %(tables)s tables; at most %(max_tables)s can be read at once.")
            % {"tables": tables, "max_tables": MAX_TABLES}
        )


def _query_nesting(node: exp.Expression) -> int:
    depth, current = 0, node
    while current is not None:
        if isinstance(current, exp.Select):
            depth += 1
        current = current.parent
    return depth


def pg_name(identifier: exp.Identifier) -> str:
    """A name as PostgreSQL reads it: unquoted, folded to lower case; quoted, exactly as written."""
    return identifier.this if identifier.quoted else identifier.this.lower()


def _cte_name(cte: exp.CTE) -> str:
    alias = cte.args["alias"]
    return pg_name(alias.this) if isinstance(alias.this, exp.Identifier) else cte.alias_or_name


def visible_ctes(table: exp.Table) -> set[str]:
    """The WITH names (as PostgreSQL reads them, `pg_name`) a table reference can mean where it stands:
    those of every WITH above it, but inside a WITH list only the ones defined before the query it is
    in (a WITH query naming itself or a later one means a real table, or in SQLite recursion)."""
    names: set[str] = set()
    child: exp.Expression = table
    parent = table.parent
    while parent is not None:
        with_ = parent.args.get("with_") if isinstance(parent, (*QUERY, exp.Subquery)) else None
        if isinstance(with_, exp.With) and child is not with_:
            names.update(_cte_name(cte) for cte in with_.expressions)
        if isinstance(parent, exp.With) and isinstance(child, exp.CTE):
            for cte in parent.expressions:
                if cte is child:
                    break
                names.add(_cte_name(cte))
        child, parent = parent, parent.parent
    return names


def resolve(table: exp.Table) -> schema.Table | None:
    """What a table reference reads, by PostgreSQL's rules: None for a WITH query, else the allowed
    table; anything else is refused (see the module's notes)."""
    name = pg_name(table.this)
    ctes = visible_ctes(table)
    if name in ctes:
        return None
    if any(cte.lower() == name.lower() for cte in ctes):
        raise QueryRefused(
            _(
                "Table %(sql)s differs from a WITH query's name only in quotes or case: PostgreSQL folds "
                "unquoted names to lower case and reads quoted ones exactly, so it would not read the WITH "
                "query. Write the name exactly as the WITH query does."
            )
            % {"sql": table.this.sql()}
        )
    if name in schema.BY_NAME:
        return schema.BY_NAME[name]
    if name.lower() in schema.BY_NAME:
        raise QueryRefused(
            _("Table %(sql)s is not one auditors may read: a quoted name is exact; write %(lower)s.")
            % {"sql": table.this.sql(), "lower": name.lower()}
        )
    raise QueryRefused(
        _("Table %(name)s is not one auditors may read; these are: %(table_list)s.")
        % {"name": table.name, "table_list": _TABLE_LIST}
    )


def _check_tables(nodes: list[exp.Expression]) -> None:
    for node in nodes:
        if isinstance(node, exp.CTE) and node.alias_or_name.lower() in RESERVED_NAMES:
            raise QueryRefused(
                _("A WITH query may not be named %(alias_or_name)s, like a table.")
                % {"alias_or_name": node.alias_or_name}
            )
        if not isinstance(node, exp.Table):
            continue
        if is_series(node):
            _check_series(node.this)
            continue
        if not isinstance(node.this, exp.Identifier):
            raise QueryRefused(
                _(
                    "Only tables, subqueries and generate_series can be read in FROM and JOIN; other functions cannot."
                )
            )
        resolve(node)


def is_series(table: exp.Table) -> bool:
    return isinstance(table.this, SERIES)


def _check_series(series: exp.Expression) -> None:
    for argument in series.args.values():
        if isinstance(argument, exp.Expression) and argument.find(exp.Column, exp.Star, *QUERY):
            raise QueryRefused(
                _("generate_series takes constants only (dates, numbers, intervals), not columns or queries.")
            )


@cache
def _names_or_reads(cls: type[exp.Expression]) -> bool:
    """Whether a node of this class may define a name or read a table (see `_check_columns`)."""
    return issubclass(cls, (*ALIAS_OR_CTE, exp.TableAlias, exp.Window, *TABLE_OR_SUBQUERY))


def _check_columns(nodes: list[exp.Expression]) -> None:
    """Each column is an allowed column or a name the query defines; qualified by a table the query
    reads under that name, it is one of that table's columns."""
    defined: set[str] = set()
    sources: dict[str, set[str]] = {}  # name or alias a query reads -> logical tables it may mean
    for node in nodes:
        if not _names_or_reads(type(node)):
            continue
        if isinstance(node, ALIAS_OR_CTE):
            defined.add(node.alias.lower())
        if isinstance(node, exp.TableAlias):
            defined.update(column.name.lower() for column in node.columns)
            if isinstance(node.parent, exp.Table) and is_series(node.parent) and not node.columns:
                defined.add(node.name.lower())  # a series' alias names its one column too
        if isinstance(node, exp.Window) and isinstance(node.this, exp.Identifier):
            defined.add(node.this.name.lower())
        if isinstance(node, TABLE_OR_SUBQUERY):
            logical = node.name.lower() if isinstance(node, exp.Table) else ""
            key = (node.alias or logical).lower()
            sources.setdefault(key, set()).add(logical if logical in schema.BY_NAME else "")
    read = {logical for meant in sources.values() for logical in meant if logical}
    for node in nodes:
        if not isinstance(node, exp.Column):
            continue
        qualifier = node.table.lower()
        if qualifier and qualifier not in sources:
            raise QueryRefused(
                _("%(sql)s names %(table)s, which this query does not read.")
                % {"sql": node.sql(), "table": node.table}
            )
        if isinstance(node.this, exp.Star):
            continue
        name = node.name.lower()
        meant = sources.get(qualifier, set()) if qualifier else (read if len(read) == 1 else set())
        if len(meant) == 1 and "" not in meant and name not in defined:
            table = schema.BY_NAME[next(iter(meant))]
            if name not in table.columns:
                raise QueryRefused(
                    _(
                        "Column %(name)s is not one auditors may read in %(table_name)s; its columns are: "
                        "%(columns)s."
                    )
                    % {"name": node.name, "table_name": table.name, "columns": ", ".join(table.columns)}
                )
        if name not in ALLOWED_COLUMNS and name not in defined:
            raise QueryRefused(
                _(
                    "Column %(name)s is not one auditors may read in any table (password hashes, tokens, "
                    "e-mail addresses and sessions never are)."
                )
                % {"name": node.name}
            )

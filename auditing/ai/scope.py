"""Scoping by rewriting: the SQL that runs reads every table through a subquery of one provider's rows.

`scoped_sql(check(sql, dialect=d), provider_id=..., dialect=d)` replaces every reference to a logical
table (in the main query, subqueries, joins, WITH queries and every branch of a set operation) by

    (SELECT t."col", ... FROM <source> AS t WHERE <provider filter>) AS <the alias the query used>

selecting only the table's allowed columns, and caps the whole query at `limit + 1` rows (the extra
row tells the caller the answer was truncated). The provider id is written as an integer literal; it
must come from the database (the auditor's provider), never from the request or the model. The SQL is
generated from the tree, in the dialect it runs in, without the query's comments.

`check_and_scope(sql, ...)` is the same from the text, the way the service runs it: one parse, one check,
and no copy of the tree. The tree is not rewritten: a generator writes each table's subquery where
the table stands. Each subquery's SQL is generated once per table, provider, sources and dialect and
kept as a string, so nothing one query does can change what the next one reads; a table the plan does
not know (a node the generator made or copied) is refused rather than written as it is.

SQLite has neither `generate_series` nor `percentile_cont ... WITHIN GROUP`, which the validator
accepts: for SQLite a series of constants is written out as its values (at most `MAX_SERIES`), and a
percentile becomes `percentile_cont(value, fraction)`, an aggregate the executor registers.
"""

import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache, lru_cache

import sqlglot
from django.utils import timezone
from django.utils.translation import gettext as _
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.generator import Generator

from auditing.ai import schema
from auditing.ai.validate import QueryRefused, check_nodes, check_tree, is_series, resolve

MAX_LIMIT = 10_000
MAX_SERIES = 10_000  # values of one generate_series written out for SQLite


def default_sources() -> dict[str, str]:
    """Logical name -> the real table it reads."""
    return {table.name: table.source for table in schema.TABLES}


def scoped_sql(
    tree: exp.Expression,
    *,
    provider_id: int,
    dialect: str,
    limit: int = 100,
    sources: Mapping[str, str] | None = None,
) -> str:
    """The SQL to run for a checked query: each table replaced by its provider-filtered subquery, the
    whole capped at `limit + 1` rows.

    The tree may come from anywhere: it is checked again (the rewrite relies on what the validator
    guarantees), and a copy is written, since writing may change the tree it writes (sqlglot turns a
    PostgreSQL INTERVAL in quarters into months in place). `check_and_scope` needs neither."""
    _check_arguments(provider_id, limit)
    nodes = check_tree(tree.copy() if isinstance(tree, exp.Expression) else tree)
    return _rewrite(nodes, provider_id=provider_id, dialect=dialect, limit=limit, sources=sources)


def check_and_scope(
    sql: str,
    *,
    provider_id: int,
    dialect: str,
    limit: int = 100,
    sources: Mapping[str, str] | None = None,
) -> str:
    """`scoped_sql(check(sql))` with one parse, one check and no copy: the tree is parsed and checked
    here and never leaves, so nothing can change it between the check and the rewrite."""
    _check_arguments(provider_id, limit)
    nodes = check_nodes(sql, dialect=dialect)
    return _rewrite(nodes, provider_id=provider_id, dialect=dialect, limit=limit, sources=sources)


def _check_arguments(provider_id: int, limit: int) -> None:
    if isinstance(provider_id, bool) or not isinstance(provider_id, int) or provider_id <= 0:
        raise ValueError(f"provider_id must be a positive int, not {provider_id!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an int from 1 to {MAX_LIMIT}, not {limit!r}")


def _rewrite(
    nodes: list[exp.Expression],
    *,
    provider_id: int,
    dialect: str,
    limit: int,
    sources: Mapping[str, str] | None,
) -> str:
    """The SQL of a checked tree with its tables scoped, written by a generator that puts each table's
    subquery where the table stands, so the tree is not copied, and not changed but by sqlglot's own
    writing (see `scoped_sql`). `nodes`: every node of the checked tree, the tree first."""
    tree = nodes[0]
    reads = {**default_sources(), **(sources or {})}
    # A WITH name would shadow an unqualified source inside the subqueries written below.
    shadowed = {source.rsplit(".", 1)[-1].strip('"').lower() for source in reads.values()}
    for cte in nodes:
        if isinstance(cte, exp.CTE) and cte.alias_or_name.lower() in shadowed:
            raise QueryRefused(
                _("A WITH query may not be named %(alias_or_name)s, like a table.")
                % {"alias_or_name": cte.alias_or_name}
            )
    # id -> (the table, what is written for it: its subquery's SQL, a series' subquery, or None: as it is)
    tables: dict[int, tuple[exp.Table, str | exp.Subquery | None]] = {}
    for table in nodes:
        if not isinstance(table, exp.Table):
            continue
        if is_series(table):
            tables[id(table)] = (table, _sqlite_series(table) if dialect == "sqlite" else None)
            continue
        logical = resolve(table)  # by PostgreSQL's rules, as the validator read it
        scoped = None
        if logical is not None:
            scoped = _scoped_select(
                logical.name,
                provider_id=int(provider_id),
                dialect=dialect,
                source=reads[logical.name],
                parents=tuple((parent, reads[parent]) for parent in logical.parents),
            )
        tables[id(table)] = (table, scoped)
    names = _column_names(tree)
    generator = _generator_class(dialect, naming=bool(names))(
        dialect=Dialect.get_or_raise(dialect), comments=False, tables=tables, names=names
    )
    query = generator.generate(tree, copy=False)
    # The query is generated from the checked tree and the limit is an int: nothing else goes in.
    return f"SELECT * FROM ({query}) AS answer LIMIT {int(limit) + 1}"  # noqa: S608


def provider_condition(table: schema.Table, *, provider_id: int, sources: Mapping[str, str]) -> str | None:
    """The table's provider filter with the provider id and the sources of the tables it reads filled in."""
    if table.provider_filter is None:
        return None
    return table.provider_filter.format(
        provider=int(provider_id), **{parent: sources[parent] for parent in table.parents}
    )


@lru_cache(maxsize=4096)
def _scoped_select(
    name: str, *, provider_id: int, dialect: str, source: str, parents: tuple[tuple[str, str], ...]
) -> str:
    """`SELECT t."col", ... FROM <source> AS t WHERE <provider filter>` for one logical table, written
    once per provider, sources and dialect: a string, so no query can change what the next one reads.
    `parents`: (logical name, source) of each table its provider filter reads."""
    logical = schema.BY_NAME[name]
    select = exp.Select(
        expressions=[
            exp.column(exp.to_identifier(column, quoted=True), table="t") for column in logical.columns
        ]
    ).from_(exp.alias_(exp.to_table(source, dialect=dialect), "t", table=True), copy=False)
    condition = provider_condition(logical, provider_id=provider_id, sources=dict(parents))
    if condition is not None:
        select = select.where(sqlglot.parse_one(condition, read=dialect), copy=False)
    return select.sql(dialect=dialect, comments=False)


@cache
def _generator_class(dialect: str, *, naming: bool) -> type[Generator]:
    """The dialect's generator, writing each table as `_rewrite` planned it, and with `naming` the
    names of the answer's computed columns (apart: it sees every node written, so only when needed)."""
    base = Dialect.get_or_raise(dialect).generator_class

    class ScopingGenerator(base):
        # The methods below, not a transform of the dialect, write tables and WITHIN GROUP.
        TRANSFORMS = {
            key: value for key, value in base.TRANSFORMS.items() if key not in (exp.Table, exp.WithinGroup)
        }

        def __init__(self, *, tables, names, **options) -> None:
            super().__init__(**options)
            self._tables = tables
            self._names = names

        def table_sql(self, expression: exp.Table, sep: str = " AS ") -> str:
            planned = self._tables.get(id(expression))
            if planned is None or planned[0] is not expression:
                # Fails closed: a table the rewrite did not see (a copy, a node made while writing) is
                # never written as it is.
                raise QueryRefused(_("The query could not be rewritten to read only your provider's rows."))
            scoped = planned[1]
            if scoped is None:
                return super().table_sql(expression, sep)
            if isinstance(scoped, exp.Subquery):  # a series written out for SQLite: a new node, its own alias
                return self.sql(scoped)
            alias = expression.args.get("alias") or expression.this
            return f"({scoped}){sep}{self.sql(alias)}"

        def withingroup_sql(self, expression: exp.WithinGroup) -> str:
            if dialect == "sqlite":
                return _sqlite_percentile(self, expression)
            return super().withingroup_sql(expression)

    if not naming:
        return ScopingGenerator

    class NamingGenerator(ScopingGenerator):
        def sql(self, expression, key=None, comment=True) -> str:
            written = super().sql(expression, key, comment)
            if key is None and isinstance(expression, exp.Expression):
                named = self._names.get(id(expression))
                if named is not None and named[0] is expression:
                    return f"{written} AS {super().sql(exp.to_identifier(named[1], quoted=True))}"
            return written

    return NamingGenerator


def _column_names(query: exp.Expression) -> dict[int, tuple[exp.Expression, str]]:
    """A readable name for each computed column of the answer (`sum_balance` for SUM(i.balance)) where
    the query gave none: PostgreSQL would call it `sum`, SQLite `SUM(i.balance)`. By node id."""
    select = query
    while isinstance(select, exp.Union | exp.Intersect | exp.Except):
        select = select.this  # the first SELECT names the columns
    if not isinstance(select, exp.Select):
        return {}
    taken = {
        expression.alias_or_name.lower()
        for expression in select.expressions
        if isinstance(expression, exp.Alias | exp.Column)
    }
    names = {}
    for expression in select.expressions:
        if isinstance(expression, exp.Alias | exp.Column | exp.Star):
            continue
        name = base = _readable_name(expression)
        number = 1
        while name in taken:
            number += 1
            name = f"{base}_{number}"
        taken.add(name)
        names[id(expression)] = (expression, name)
    return names


def _readable_name(expression: exp.Expression) -> str:
    words: list[str] = []
    for node in expression.walk():
        if isinstance(node, exp.Column | exp.Anonymous):
            word = node.name
        elif isinstance(node, exp.Func):
            word = node.sql_name()
        else:
            continue
        word = re.sub(r"[^a-z0-9]+", "_", word.lower()).strip("_")
        if word and (not words or words[-1] != word):
            words.append(word)
    return "_".join(words)[:60].rstrip("_") or "value"


def _sqlite_percentile(generator: Generator, within: exp.WithinGroup) -> str:
    """`percentile_cont(fraction) WITHIN GROUP (ORDER BY value)` as `percentile_cont(value, fraction)`."""
    function, order = within.this, within.expression
    ordered = order.expressions if isinstance(order, exp.Order) else []
    if not isinstance(function, exp.PercentileCont | exp.PercentileDisc) or len(ordered) != 1:
        raise QueryRefused(_("WITHIN GROUP takes percentile_cont or percentile_disc ordered by one value."))
    (value,) = ordered
    fraction = generator.sql(function.this)
    if value.args.get("desc"):
        fraction = f"1 - ({fraction})"
    name = "percentile_cont" if isinstance(function, exp.PercentileCont) else "percentile_disc"
    return generator.func(name, generator.sql(value.this), fraction)


_INTERVAL = re.compile(r"\s*(\d+)\s*(day|week|month|year)s?\s*", re.IGNORECASE)


def _sqlite_series(table: exp.Table) -> exp.Subquery:
    """`generate_series(start, stop[, step]) AS alias[(column)]` as a subquery of its values."""
    series = table.this
    start, stop = _constant(series.args["start"]), _constant(series.args["end"])
    step = series.args.get("step")
    values = []
    for value in _steps(start, stop, step):
        if len(values) == MAX_SERIES:
            raise QueryRefused(
                _("A series may have at most %(max_series)s values here; ask for a shorter one.")
                % {"max_series": format(MAX_SERIES, ",")}
            )
        values.append(
            exp.Literal.number(value) if isinstance(value, int | Decimal) else exp.Literal.string(value)
        )
    alias = table.args.get("alias")
    name = alias.this.copy() if alias is not None and alias.this else exp.to_identifier("generate_series")
    column = alias.columns[0].copy() if alias is not None and alias.columns else name.copy()
    rows = exp.Values(expressions=[exp.Tuple(expressions=[value]) for value in values])
    if not values:  # no rows: a query of the right shape that returns none
        select = exp.Select(expressions=[exp.alias_(exp.Null(), column)]).where(exp.false())
    else:
        select = exp.Select(expressions=[exp.alias_(exp.column("column1"), column)]).from_(
            exp.Subquery(this=rows), copy=False
        )
    return exp.Subquery(this=select, alias=exp.TableAlias(this=name))


def _constant(node: exp.Expression) -> int | Decimal | date | datetime:
    inner = node.this if isinstance(node, exp.Cast) else node
    if isinstance(inner, exp.Neg):
        value = _constant(inner.this)
        if isinstance(value, int | Decimal):
            return -value
    if isinstance(inner, exp.CurrentDate):
        return timezone.localdate()
    if isinstance(inner, exp.Literal) and not inner.is_string:
        number = Decimal(inner.this)
        return int(number) if number == number.to_integral_value() else number
    if isinstance(inner, exp.Literal):
        try:
            moment = datetime.fromisoformat(inner.this)
        except ValueError:
            pass
        else:
            return moment.date() if len(inner.this) == 10 else moment
    raise QueryRefused(
        _("On this database generate_series takes literal dates ('2025-01-01'), numbers or current_date.")
    )


def _steps(start, stop, step: exp.Expression | None) -> Iterator[object]:
    if isinstance(start, date):
        if type(start) is not type(stop):
            raise QueryRefused(_("generate_series needs two dates, or two timestamps, as its bounds."))
        count, unit = _interval(step)
        current = start
        while current <= stop:
            yield current.isoformat(sep=" ") if isinstance(current, datetime) else current.isoformat()
            current = _add(current, count, unit)
        return
    increment = 1 if step is None else _constant(step)
    if not isinstance(increment, int | Decimal) or not increment or isinstance(stop, date):
        raise QueryRefused(_("generate_series needs a step other than 0, of the same kind as its bounds."))
    current = start
    while (current <= stop) if increment > 0 else (current >= stop):
        yield current
        current += increment


def _interval(step: exp.Expression | None) -> tuple[int, str]:
    text = None
    if isinstance(step, exp.Interval) and isinstance(step.this, exp.Literal):
        unit = step.args.get("unit")
        text = f"{step.this.this} {unit.name if unit is not None else ''}"
    elif isinstance(step, exp.Cast) and isinstance(step.this, exp.Literal):
        text = step.this.this
    match = _INTERVAL.fullmatch(text or "")
    if match is None or not int(match.group(1)):
        raise QueryRefused(
            _("A series of dates needs a step such as INTERVAL '1 day', '1 week', '1 month' or '1 year'.")
        )
    return int(match.group(1)), match.group(2).lower()


def _add(moment, count: int, unit: str):
    if unit in ("day", "week"):
        return moment + timedelta(days=count * (7 if unit == "week" else 1))
    months = moment.month - 1 + count * (12 if unit == "year" else 1)
    year, month = moment.year + months // 12, months % 12 + 1
    last_day = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))

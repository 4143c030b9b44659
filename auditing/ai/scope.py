"""Scoping by rewriting: the SQL that runs reads every table through a subquery of one provider's rows.

`scoped_sql(check(sql, dialect=d), provider_id=..., dialect=d)` replaces every reference to a logical
table (in the main query, subqueries, joins, WITH queries and every branch of a set operation) by

    (SELECT t."col", ... FROM <source> AS t WHERE <provider filter>) AS <the alias the query used>

selecting only the table's allowed columns, and caps the whole query at `limit + 1` rows (the extra
row tells the caller the answer was truncated). The provider id is written as an integer literal; it
must come from the database (the auditor's provider), never from the request or the model. The SQL is
generated from the tree, in the dialect it runs in, without the query's comments.

SQLite has neither `generate_series` nor `percentile_cont ... WITHIN GROUP`, which the validator
accepts: for SQLite a series of constants is written out as its values (at most `MAX_SERIES`), and a
percentile becomes `percentile_cont(value, fraction)`, an aggregate the executor registers.
"""

import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlglot
from django.utils import timezone
from sqlglot import exp

from auditing.ai import schema
from auditing.ai.validate import QueryRefused, check_tree, is_series, resolve

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
    whole capped at `limit + 1` rows."""
    if isinstance(provider_id, bool) or not isinstance(provider_id, int) or provider_id <= 0:
        raise ValueError(f"provider_id must be a positive int, not {provider_id!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an int from 1 to {MAX_LIMIT}, not {limit!r}")
    check_tree(tree)  # again: the rewrite relies on what the validator guarantees
    reads = {**default_sources(), **(sources or {})}
    query = tree.copy()
    # A WITH name would shadow an unqualified source inside the subqueries written below.
    shadowed = {source.rsplit(".", 1)[-1].strip('"').lower() for source in reads.values()}
    for cte in query.find_all(exp.CTE):
        if cte.alias_or_name.lower() in shadowed:
            raise QueryRefused(f"A WITH query may not be named {cte.alias_or_name}, like a table.")
    for table in list(query.find_all(exp.Table)):
        if is_series(table):
            if dialect == "sqlite":
                table.replace(_sqlite_series(table))
            continue
        logical = resolve(table)  # by PostgreSQL's rules, as the validator read it
        if logical is not None:
            table.replace(_scoped_table(table, logical, int(provider_id), reads, dialect))
    if dialect == "sqlite":
        for within in list(query.find_all(exp.WithinGroup)):
            within.replace(_sqlite_percentile(within))
    _name_columns(query)
    answer = exp.Select(expressions=[exp.Star()]).from_(query.subquery("answer", copy=False), copy=False)
    answer = answer.limit(int(limit) + 1, copy=False)
    return answer.sql(dialect=dialect, comments=False)


def provider_condition(table: schema.Table, *, provider_id: int, sources: Mapping[str, str]) -> str | None:
    """The table's provider filter with the provider id and the sources filled in."""
    if table.provider_filter is None:
        return None
    return table.provider_filter.format(
        provider=int(provider_id), invoices=sources["invoices"], payments=sources["payments"]
    )


def _scoped_table(
    table: exp.Table, logical: schema.Table, provider_id: int, sources: Mapping[str, str], dialect: str
) -> exp.Subquery:
    select = exp.Select(
        expressions=[
            exp.column(exp.to_identifier(column, quoted=True), table="t") for column in logical.columns
        ]
    ).from_(exp.alias_(exp.to_table(sources[logical.name], dialect=dialect), "t", table=True), copy=False)
    condition = provider_condition(logical, provider_id=provider_id, sources=sources)
    if condition is not None:
        select = select.where(sqlglot.parse_one(condition, read=dialect), copy=False)
    alias = table.args.get("alias")
    if alias is None:  # the name it was read under stays the name its columns are qualified with
        alias = exp.TableAlias(this=table.this.copy())
    return exp.Subquery(this=select, alias=alias.copy())


def _name_columns(query: exp.Expression) -> None:
    """Give each computed column of the answer a readable name (`sum_balance` for SUM(i.balance)),
    where the query gave none: PostgreSQL would call it `sum`, SQLite `SUM(i.balance)`."""
    select = query
    while isinstance(select, exp.Union | exp.Intersect | exp.Except):
        select = select.this  # the first SELECT names the columns
    if not isinstance(select, exp.Select):
        return
    taken = {
        expression.alias_or_name.lower()
        for expression in select.expressions
        if isinstance(expression, exp.Alias | exp.Column)
    }
    for expression in list(select.expressions):
        if isinstance(expression, exp.Alias | exp.Column | exp.Star):
            continue
        name = base = _readable_name(expression)
        number = 1
        while name in taken:
            number += 1
            name = f"{base}_{number}"
        taken.add(name)
        expression.replace(exp.alias_(expression.copy(), exp.to_identifier(name, quoted=True)))


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


def _sqlite_percentile(within: exp.WithinGroup) -> exp.Expression:
    function, order = within.this, within.expression
    ordered = order.expressions if isinstance(order, exp.Order) else []
    if not isinstance(function, exp.PercentileCont | exp.PercentileDisc) or len(ordered) != 1:
        raise QueryRefused("WITHIN GROUP takes percentile_cont or percentile_disc ordered by one value.")
    (value,) = ordered
    fraction = function.this.copy()
    if value.args.get("desc"):
        fraction = exp.Sub(this=exp.Literal.number(1), expression=exp.Paren(this=fraction))
    name = "percentile_cont" if isinstance(function, exp.PercentileCont) else "percentile_disc"
    return exp.Anonymous(this=name, expressions=[value.this.copy(), fraction])


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
                f"A series may have at most {MAX_SERIES:,} values here; ask for a shorter one."
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
        "On this database generate_series takes literal dates ('2025-01-01'), numbers or current_date."
    )


def _steps(start, stop, step: exp.Expression | None) -> Iterator[object]:
    if isinstance(start, date):
        if type(start) is not type(stop):
            raise QueryRefused("generate_series needs two dates, or two timestamps, as its bounds.")
        count, unit = _interval(step)
        current = start
        while current <= stop:
            yield current.isoformat(sep=" ") if isinstance(current, datetime) else current.isoformat()
            current = _add(current, count, unit)
        return
    increment = 1 if step is None else _constant(step)
    if not isinstance(increment, int | Decimal) or not increment or isinstance(stop, date):
        raise QueryRefused("generate_series needs a step other than 0, of the same kind as its bounds.")
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
            "A series of dates needs a step such as INTERVAL '1 day', '1 week', '1 month' or '1 year'."
        )
    return int(match.group(1)), match.group(2).lower()


def _add(moment, count: int, unit: str):
    if unit in ("day", "week"):
        return moment + timedelta(days=count * (7 if unit == "week" else 1))
    months = moment.month - 1 + count * (12 if unit == "year" else 1)
    year, month = moment.year + months // 12, months % 12 + 1
    last_day = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))

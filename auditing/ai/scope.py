"""Scoping by rewriting: the SQL that runs reads every table through a subquery of one provider's rows.

`scoped_sql(check(sql, dialect=d), provider_id=..., dialect=d)` replaces every reference to a logical
table (in the main query, subqueries, joins, WITH queries and every branch of a set operation) by

    (SELECT t."col", ... FROM <source> AS t WHERE <provider filter>) AS <the alias the query used>

selecting only the table's allowed columns, and caps the whole query at `limit + 1` rows (the extra
row tells the caller the answer was truncated). The provider id is written as an integer literal; it
must come from the database (the auditor's provider), never from the request or the model. The SQL is
generated from the tree, in the dialect it runs in, without the query's comments.
"""

from collections.abc import Mapping

import sqlglot
from sqlglot import exp

from auditing.ai import schema
from auditing.ai.validate import QueryRefused, check_tree, resolve

MAX_LIMIT = 10_000


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
        logical = resolve(table)  # by PostgreSQL's rules, as the validator read it
        if logical is not None:
            table.replace(_scoped_table(table, logical, int(provider_id), reads, dialect))
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

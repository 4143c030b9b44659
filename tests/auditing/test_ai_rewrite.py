"""The check and rewrite the service runs, `scope.check_and_scope`: one parse, one check, no copy of the
tree. It writes exactly what `scoped_sql(check(sql))` writes and refuses what `check` refuses; each
table's subquery is kept as text per provider, sources and dialect, so nothing one query does reaches
the next; and a table the rewrite did not plan is refused, never written as it is.

Building SQL text is what this module is about."""

# ruff: noqa: S608

import re

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from auditing.ai import schema, scope
from auditing.ai.scope import check_and_scope, scoped_sql
from auditing.ai.validate import DIALECTS, MAX_TABLES, QueryRefused, check, check_tree
from tests.auditing.test_ai_validation import ADVERSARIAL, ANALYTIC, CONTAINED

VIEWS = {name: f"ai_views.{name}" for name in schema.BY_NAME}
# Every table, those filtered through another table's provider filter too, in as few queries as the
# validator's cap on the tables one query reads allows.
NAMES = list(schema.BY_NAME)
EVERY_TABLE = [
    " UNION ALL ".join(f"SELECT count(*) AS n FROM {name}" for name in NAMES[start : start + MAX_TABLES])
    for start in range(0, len(NAMES), MAX_TABLES)
]
# Written specially: SQLite's series and percentiles, PostgreSQL's quarters (sqlglot rewrites an
# INTERVAL in quarters into months in the tree it writes), a computed column to name.
SPECIAL = {
    "postgres": [
        "SELECT number FROM invoices WHERE period > current_date - INTERVAL '2' QUARTER",
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY i.balance DESC) FROM invoices AS i",
        "SELECT g.d, count(i.id) FROM generate_series(DATE '2024-01-01', DATE '2024-01-03', INTERVAL '1 day') "
        "AS g(d) LEFT JOIN invoices AS i ON i.issue_date = g.d GROUP BY g.d",
    ],
    "sqlite": [
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY i.balance DESC) FROM invoices AS i",
        "SELECT g.d, count(i.id) FROM generate_series(DATE '2024-01-01', DATE '2024-01-03', INTERVAL '1 day') "
        "AS g(d) LEFT JOIN invoices AS i ON i.issue_date = g.d GROUP BY g.d",
        "SELECT g.n FROM generate_series(5, 1) AS g(n)",
    ],
}


def provider_ids(scoped: str) -> set[str]:
    return set(re.findall(r"\b(?:provider_id|t\.id) = (\d+)", scoped))


def queries(dialect: str) -> list[str]:
    both = [sql.format(mine=1, theirs=2) for param in CONTAINED for sql in param.values]
    analytic = [param.values[0 if dialect == "postgres" else 1] for param in ANALYTIC]
    return [*analytic, *both, *EVERY_TABLE, *SPECIAL[dialect]]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_it_writes_what_the_check_and_the_rewrite_write_apart(dialect):
    for sql in queries(dialect):
        for sources in (None, VIEWS):
            apart = scoped_sql(check(sql, dialect=dialect), provider_id=5, dialect=dialect, sources=sources)

            assert check_and_scope(sql, provider_id=5, dialect=dialect, sources=sources) == apart


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("sql", "reason"), ADVERSARIAL)
def test_it_refuses_what_the_check_refuses(sql, reason, dialect):
    with pytest.raises(QueryRefused) as refused_by_check:
        check(sql, dialect=dialect)

    with pytest.raises(QueryRefused) as refused:
        check_and_scope(sql, provider_id=1, dialect=dialect)

    assert refused.value.detail == refused_by_check.value.detail


@pytest.mark.parametrize("dialect", DIALECTS)
def test_providers_one_after_another_each_read_their_own_rows(dialect):
    for provider_id in (7001, 7002, 7001, 7003):
        scoped = [check_and_scope(sql, provider_id=provider_id, dialect=dialect) for sql in EVERY_TABLE]

        assert set().union(*map(provider_ids, scoped)) == {str(provider_id)}
        # One filter per filtered table: those that filter through another have it inside that one's.
        filtered = [table for table in schema.TABLES if table.provider_filter is not None]
        assert sum(len(re.findall(rf"= {provider_id}\b", sql)) for sql in scoped) == len(filtered)


def test_each_sources_and_dialect_read_their_own_tables():
    for dialect, sources in [("postgres", VIEWS), ("postgres", None), ("sqlite", None), ("postgres", VIEWS)]:
        scoped = [
            check_and_scope(sql, provider_id=4, dialect=dialect, sources=sources) for sql in EVERY_TABLE
        ]

        reads = {
            exp.table_name(table)
            for sql in scoped
            for table in sqlglot.parse_one(sql, read=dialect).find_all(exp.Table)
        }
        expected = sources or scope.default_sources()
        assert reads == set(expected.values())


@pytest.mark.parametrize("dialect", DIALECTS)
def test_nothing_a_query_does_while_written_reaches_the_next(dialect):
    """The subqueries are kept as text: the queries before, including those sqlglot changes while
    writing them, leave the next one exactly as a cold start writes it."""
    scope._scoped_select.cache_clear()
    cold = [check_and_scope(sql, provider_id=8, dialect=dialect) for sql in EVERY_TABLE]

    for sql in [*SPECIAL[dialect], *EVERY_TABLE]:
        for provider_id in (8, 9):
            check_and_scope(sql, provider_id=provider_id, dialect=dialect, sources=VIEWS)
            check_and_scope(sql, provider_id=provider_id, dialect=dialect)

    assert [check_and_scope(sql, provider_id=8, dialect=dialect) for sql in EVERY_TABLE] == cold


def test_the_rewrite_leaves_a_tree_it_is_given_as_it_was():
    tree = check(SPECIAL["postgres"][0], dialect="postgres")
    before = repr(tree)

    scoped = scoped_sql(tree, provider_id=3, dialect="postgres")
    again = scoped_sql(tree, provider_id=3, dialect="postgres")

    assert repr(tree) == before
    assert again == scoped
    assert "INTERVAL '6 MONTH'" in scoped  # the written copy was changed, not the tree


def test_a_table_the_rewrite_did_not_plan_is_refused_never_written_as_it_is():
    tree = check_tree(sqlglot.parse_one("SELECT number FROM invoices", read="sqlite"))[0]
    planned = {id(table): (table, "SELECT 1 AS number") for table in tree.find_all(exp.Table)}
    generator = scope._generator_class("sqlite", naming=False)

    def write(tables: dict, *, copy: bool) -> str:
        options = {"dialect": Dialect.get_or_raise("sqlite"), "comments": False}
        return generator(tables=tables, names={}, **options).generate(tree, copy=copy)

    assert write(planned, copy=False) == "SELECT number FROM (SELECT 1 AS number) AS invoices"
    for tables, copy in [({}, False), (planned, True)]:  # no plan; a copy of the tree the plan is of
        with pytest.raises(QueryRefused, match="could not be rewritten"):
            write(tables, copy=copy)


def test_a_computed_column_is_named_after_the_query_as_written():
    scoped = check_and_scope(
        "SELECT count(*), (SELECT max(id) FROM invoices) FROM payments", provider_id=2, dialect="sqlite"
    )

    assert 'COUNT(*) AS "count"' in scoped
    assert ') AS invoices) AS "max_id" FROM' in scoped

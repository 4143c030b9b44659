"""What an auditor gets back, on the database the suite runs on (SQLite, then PostgreSQL in the second
pass): the questions auditors really ask run (a date series, percentiles, their provider's own name
and settings, today's date), money comes back as decimal text under readable headers, and an answer
is capped in bytes as well as rows: cut with a note, never stored whole.

Each query goes the whole way: checked, scoped to the auditor's provider, run by the executor.
"""

# ruff: noqa: S608 -- the queries under test are SQL built from literal ids and fillers.
import hashlib
import json
from decimal import Decimal

import pytest
from django.db import connection

from accounts.services import user_create
from auditing.ai import execute, validate
from auditing.ai.execute import QueryFailed, QueryResult
from auditing.ai.scope import scoped_sql
from auditing.models import AIQueryStatus
from auditing.services import ai_query_answer, ai_query_submit
from tests.auditing.ai_tenants import alpha_and_bravo, assert_only_provider
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)  # the executor reads committed rows

DIALECT = "postgres" if connection.vendor == "postgresql" else "sqlite"
FILLER = "x" * 100


@pytest.fixture
def tenants():
    return alpha_and_bravo()


def answer(sql: str, provider_id: int, limit: int = 100) -> QueryResult:
    tree = validate.check(sql, dialect=DIALECT)
    scoped = scoped_sql(
        tree, provider_id=provider_id, dialect=DIALECT, sources=execute.sources(), limit=limit
    )
    return execute.run(scoped, provider_id=provider_id, limit=limit)


def test_a_series_of_days_runs(tenants):
    alpha, _ = tenants

    days = answer(
        "SELECT CAST(g.day AS DATE) AS day FROM generate_series(DATE '2024-01-01', DATE '2024-01-31', "
        "INTERVAL '1 day') AS g(day) ORDER BY 1",
        alpha.provider.pk,
    )

    assert days.columns == ["day"]
    assert [row[0] for row in days.rows] == [f"2024-01-{day:02}" for day in range(1, 32)]


def test_a_series_of_months_joins_the_bills_of_each_month(tenants):
    alpha, _ = tenants

    months = answer(
        "SELECT CAST(m.month AS DATE) AS month, count(i.id) AS invoices FROM generate_series(DATE '2023-12-01', "
        "DATE '2024-03-01', INTERVAL '1 month') AS m(month) LEFT JOIN invoices AS i ON i.period = m.month "
        "GROUP BY m.month ORDER BY m.month",
        alpha.provider.pk,
    )

    assert months.rows == [["2023-12-01", 0], ["2024-01-01", 1], ["2024-02-01", 0], ["2024-03-01", 0]]


def test_percentiles_run_within_group(tenants):
    alpha, _ = tenants

    result = answer(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY g.n) AS median, "
        "percentile_disc(0.9) WITHIN GROUP (ORDER BY g.n) AS p90, "
        "percentile_cont(0.25) WITHIN GROUP (ORDER BY g.n DESC) AS upper_quartile "
        "FROM generate_series(1, 10) AS g(n)",
        alpha.provider.pk,
    )

    assert result.columns == ["median", "p90", "upper_quartile"]
    assert [Decimal(str(value)) for value in result.rows[0]] == [Decimal("5.5"), 9, Decimal("7.75")]


def test_the_median_payment_is_of_the_auditors_provider_only(tenants):
    alpha, _ = tenants

    result = answer(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY p.amount) AS median_payment FROM payments AS p",
        alpha.provider.pk,
    )

    assert result.rows == [["1000"]]  # BRAVO's 4321.09 would make it 2660.545
    assert_only_provider(result, alpha.provider.pk)


def test_the_auditor_reads_their_own_providers_name_and_settings(tenants):
    alpha, bravo = tenants

    mine = answer("SELECT * FROM provider", alpha.provider.pk)
    theirs = answer(f"SELECT name FROM provider WHERE id = {bravo.provider.pk}", alpha.provider.pk)

    named = dict(zip(mine.columns, mine.rows[0], strict=True))
    assert len(mine.rows) == 1
    assert (named["id"], named["name"], named["currency"], named["due_days"]) == (
        alpha.provider.pk,
        "Alpha Power",
        "PKR",
        10,
    )
    assert Decimal(str(named["late_surcharge_percent"])) == Decimal("10")
    assert "email" not in named and "phone" not in named
    assert theirs.rows == []


def test_current_date_runs_where_the_validator_accepts_it(tenants):
    alpha, _ = tenants

    result = answer(
        "SELECT count(*) AS past_due FROM invoices WHERE due_date < current_date AND status <> 'Paid'",
        alpha.provider.pk,
    )

    assert result.rows == [[1]]


def test_money_is_decimal_text_never_a_float(tenants):
    alpha, _ = tenants

    result = answer(
        "SELECT SUM(x.amount) FROM (SELECT 0.1 AS amount UNION ALL SELECT 0.2 UNION ALL SELECT 247740.64) AS x",
        alpha.provider.pk,
    )

    assert result.rows == [["247740.94"]]


def test_computed_columns_get_readable_headers(tenants):
    alpha, _ = tenants

    result = answer(
        "SELECT i.status, SUM(i.balance), COUNT(*), ROUND(AVG(i.current_charges), 2), COUNT(*) "
        "FROM invoices AS i GROUP BY i.status",
        alpha.provider.pk,
    )

    assert result.columns == ["status", "sum_balance", "count", "round_avg_current_charges", "count_2"]


def test_an_answer_over_the_byte_cap_is_cut_with_a_note(tenants, settings):
    alpha, _ = tenants
    settings.AI_ANSWER_MAX_BYTES = 2_000

    result = answer(
        f"SELECT g.n, '{FILLER}' AS filler FROM generate_series(1, 100) AS g(n)", alpha.provider.pk
    )

    assert 10 <= len(result.rows) < 20
    assert result.truncated is True
    assert len(json.dumps([result.columns, result.rows])) <= 2_000
    assert result.note == (
        f"The answer was cut to its first {len(result.rows)} rows: an answer may hold at most 2,000 bytes. "
        "Select fewer or shorter columns, or fewer rows."
    )


def test_an_answer_whose_first_row_is_over_the_byte_cap_is_refused(tenants, settings):
    alpha, _ = tenants
    settings.AI_ANSWER_MAX_BYTES = 2_000

    with pytest.raises(QueryFailed) as refused:
        answer(f"SELECT '{FILLER * 30}' AS filler", alpha.provider.pk)

    assert refused.value.detail == (
        "The answer's first row alone is larger than the 2,000 bytes an answer may hold; "
        "select fewer or shorter columns."
    )


def test_a_stored_answer_is_never_larger_than_the_byte_cap(tenants, settings):
    alpha, _ = tenants
    settings.AI_ANSWER_MAX_BYTES = 2_000
    auditor = UserFactory(provider=alpha.provider, roles=["Auditor"])
    question = ai_query_submit(
        asked_by=auditor, question=f"SELECT g.n, '{FILLER}' AS filler FROM generate_series(1, 500) AS g(n)"
    )

    stored = ai_query_answer(query_id=question.pk)

    stored.refresh_from_db()
    assert stored.status == AIQueryStatus.ANSWERED
    assert stored.truncated is True
    assert len(json.dumps(stored.rows)) <= 2_000
    assert stored.reason.startswith("The answer was cut to its first ")


def test_the_audit_trail_read_through_the_ai_holds_no_address_nor_a_digest_anyone_can_confirm(tenants):
    alpha, _ = tenants
    user_create(
        email="private@example.com",
        name="Private Person",
        phone="0300-1234567",
        provider=alpha.provider,
        roles=[],
    )

    trail = answer("SELECT object_repr, old_values, new_values FROM audit_log", alpha.provider.pk, limit=1000)

    text = json.dumps(trail.rows)
    assert "Private Person" in text
    assert "private@example.com" not in text
    for value in ("private@example.com", "0300-1234567"):
        assert hashlib.sha256(value.encode()).hexdigest()[:16] not in text

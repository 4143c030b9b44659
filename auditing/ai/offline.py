"""The offline assistant: hand-written SQL for the common auditor questions, with no network and
no model. It stands in for Gemini (`auditing.ai.llm`) when no key is set: the demo uses it, and the
tests do. Every template aliases its computed columns and leaves provider scoping to the rewriter.
"""

# S608: this module writes SQL text on purpose. It never runs it: the validator, the rewriter and the
# read-only executor decide what runs. Only fixed fragments, ISO dates, numbers parsed as Decimal and a
# customer number matched by a quote-free pattern go into the templates.
# ruff: noqa: S608

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from django.utils import timezone
from django.utils.translation import gettext as _

from auditing.ai.generation import ROW_CAP, GenerationFailed, clean_sql, dialect_of, is_sql
from billing.months import add_months, first_of

OPEN = "('Pending', 'Partially_Paid', 'Overdue')"

_MONTHS = {
    name.lower(): number
    for number in range(1, 13)
    for name in (calendar.month_name[number], calendar.month_abbr[number])
}
_MONTHS["sept"] = 9
_MONTH_NAMES = "|".join(sorted(_MONTHS, key=len, reverse=True))
_MONTH_YEAR = re.compile(rf"\b({_MONTH_NAMES})\.?,?\s+(?:of\s+)?(\d{{4}})\b")
_YEAR_MONTH = re.compile(r"\b(\d{4})-(0?[1-9]|1[0-2])\b(?!-\d)")
_MONTH_ALONE = re.compile(rf"\b(?:in|for|during|of|since)\s+({_MONTH_NAMES})\b")
_YEAR = re.compile(r"\b(?:in|for|during|of|year)\s+(\d{4})\b")
_BY_MONTH = re.compile(
    r"\b(by|per|each|every) month\b|\bmonthly\b|month[- ]?(wise|by[- ]month)|\bmonths\b|\btrend"
)
_AMOUNT = re.compile(
    r"(?:above|over|more than|greater than|higher than|exceeding|exceeds?|at least|>=?|bigger than|larger than)"
    r"\s*(?:rs\.?|pkr|rupees)?\s*([\d,]+(?:\.\d+)?)\s*(k|thousand|lakh|lac|m|million)?\b"
)
_TOP = re.compile(r"\b(?:top|first|biggest|largest|highest)\s+(\d{1,3})\b")
_CUSTOMER_NUMBER = re.compile(
    r"\bcustomer(?:'s)?\s+(?:(?:number|no\.?|num|id|code|#)\s*:?\s*)?#?([a-z0-9][a-z0-9_./-]*\d[a-z0-9_./-]*)",
    re.IGNORECASE,
)
_MULTIPLIERS = {
    "k": 1_000,
    "thousand": 1_000,
    "lakh": 100_000,
    "lac": 100_000,
    "m": 1_000_000,
    "million": 1_000_000,
}


@dataclass(frozen=True)
class _Period:
    start: date
    end: date  # exclusive


def _period(low: str, today: date) -> _Period | None:
    this_month = first_of(today)
    if re.search(r"\b(last|previous|past|prior) month\b", low):
        return _Period(add_months(this_month, -1), this_month)
    if re.search(r"\b(this|current) month\b", low):
        return _Period(this_month, add_months(this_month, 1))
    if match := _MONTH_YEAR.search(low):
        start = date(int(match.group(2)), _MONTHS[match.group(1)], 1)
        return _Period(start, add_months(start, 1))
    if match := _YEAR_MONTH.search(low):
        start = date(int(match.group(1)), int(match.group(2)), 1)
        return _Period(start, add_months(start, 1))
    if match := re.search(r"\blast (\d{1,2}) months\b", low):
        return _Period(add_months(this_month, -int(match.group(1))), this_month)
    if re.search(r"\b(last|previous|past) year\b", low):
        return _Period(date(today.year - 1, 1, 1), date(today.year, 1, 1))
    if re.search(r"\b(this|current) year\b|\byear to date\b|\bytd\b", low):
        return _Period(date(today.year, 1, 1), date(today.year + 1, 1, 1))
    if match := _MONTH_ALONE.search(low):  # "in March": the latest March that has begun
        month = _MONTHS[match.group(1)]
        start = date(today.year if month <= today.month else today.year - 1, month, 1)
        return _Period(start, add_months(start, 1))
    if match := _YEAR.search(low):
        year = int(match.group(1))
        return _Period(date(year, 1, 1), date(year + 1, 1, 1))
    return None


@dataclass(frozen=True)
class _Ask:
    text: str  # as typed, stripped
    low: str  # lower-cased, single-spaced
    dialect: str
    today: date
    period: _Period | None

    def has(self, pattern: str) -> bool:
        return re.search(pattern, self.low) is not None

    @property
    def by_month(self) -> bool:
        return _BY_MONTH.search(self.low) is not None

    def in_period(self, column: str) -> str:
        """`column` within the asked period (dates as literals), or nothing when none was asked."""
        if self.period is None:
            return ""
        return f"{column} >= '{self.period.start.isoformat()}' AND {column} < '{self.period.end.isoformat()}'"

    def month_of(self, column: str) -> str:
        if self.dialect == "postgres":
            return f"to_char({column}, 'YYYY-MM')"
        return f"strftime('%Y-%m', {column})"

    def amount(self, default: int = 0) -> Decimal:
        match = _AMOUNT.search(self.low)
        if not match:
            return Decimal(default)
        try:
            value = Decimal(match.group(1).replace(",", ""))
        except InvalidOperation:
            return Decimal(default)
        return value * _MULTIPLIERS.get(match.group(2) or "", 1)

    def top(self, default: int = 10) -> int:
        match = _TOP.search(self.low)
        return min(max(int(match.group(1)), 1), ROW_CAP) if match else default


def _where(*conditions: str) -> str:
    kept = [condition for condition in conditions if condition]
    return "WHERE " + "\n  AND ".join(kept) if kept else ""


def _sql(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines() if line.strip())


CUSTOMER_JOIN = "JOIN customers c ON c.id = i.customer_id\nLEFT JOIN users u ON u.id = c.user_id"


def _invoices_of_customer(a: _Ask) -> str:
    number = _CUSTOMER_NUMBER.search(a.text).group(1).rstrip(".").replace("'", "''")  # type: ignore[union-attr]
    only_open = f"i.status IN {OPEN}" if a.has(r"unpaid|not paid|outstanding|\bopen\b|overdue|owe") else ""
    return _sql(f"""
SELECT i.number, i.period, i.issue_date, i.due_date, i.kwh_consumed, i.current_charges, i.arrears,
       i.payable_before_due, i.adjustment_total, i.amount_paid, i.balance, i.status, i.paid_on
FROM invoices i
JOIN customers c ON c.id = i.customer_id
{_where(f"c.number = '{number}'", only_open, a.in_period("i.period"))}
ORDER BY i.period DESC, i.id DESC
LIMIT {ROW_CAP}
""")


def _late_surcharges(a: _Ask) -> str:
    if a.by_month or a.has(r"\btotal|\bsum\b|how much|how many"):
        return _sql(f"""
SELECT i.period, COUNT(*) AS surcharges, SUM(a.amount) AS surcharge_total
FROM adjustments a
JOIN invoices i ON i.id = a.invoice_id
{_where("a.kind = 'late_surcharge'", a.in_period("i.period"))}
GROUP BY i.period
ORDER BY i.period DESC
LIMIT {ROW_CAP}
""")
    return _sql(f"""
SELECT a.number AS adjustment_number, i.number AS invoice_number, c.number AS customer_number,
       u.name AS customer_name, i.period, i.due_date, a.amount, a.created_at
FROM adjustments a
JOIN invoices i ON i.id = a.invoice_id
{CUSTOMER_JOIN}
{_where("a.kind = 'late_surcharge'", a.in_period("i.period"))}
ORDER BY a.created_at DESC, a.id DESC
LIMIT {ROW_CAP}
""")


def _cancelled(a: _Ask) -> str:
    return _sql(f"""
SELECT i.number, c.number AS customer_number, u.name AS customer_name, i.period, i.issue_date,
       i.current_charges, creator.name AS created_by, i.created_at
FROM invoices i
{CUSTOMER_JOIN}
LEFT JOIN users creator ON creator.id = i.created_by_id
{_where("i.status = 'Cancelled'", a.in_period("i.period"))}
ORDER BY i.period DESC, i.number
LIMIT {ROW_CAP}
""")


def _billing_runs(a: _Ask) -> str:
    only_problems = a.has(r"\b(with|had|having|that|which|only)\b.*\b(skip|fail|problem|miss)")
    problems = "(r.skipped > 0 OR r.failed > 0)" if only_problems else ""
    return _sql(f"""
SELECT r.id, r.period, r.status, r.total, r.issued, r.already_billed, r.skipped, r.failed,
       r.billed_amount, u.name AS started_by, r.started_at, r.finished_at
FROM billing_runs r
LEFT JOIN users u ON u.id = r.started_by_id
{_where(problems, a.in_period("r.period"))}
ORDER BY r.period DESC, r.id DESC
LIMIT {ROW_CAP}
""")


def _collection_rate(a: _Ask) -> str:
    return _sql(f"""
SELECT i.period, COUNT(*) AS invoices,
       SUM(i.current_charges + i.adjustment_total) AS billed,
       SUM(i.amount_paid) AS collected,
       ROUND(100.0 * SUM(i.amount_paid) / NULLIF(SUM(i.current_charges + i.adjustment_total), 0), 1)
         AS collection_rate_percent
FROM invoices i
{_where("i.status <> 'Cancelled'", a.in_period("i.period"))}
GROUP BY i.period
ORDER BY i.period DESC
LIMIT {ROW_CAP}
""")


def _tariff_history(a: _Ask) -> str:
    return _sql(f"""
SELECT t.valid_from, t.valid_to, ct.code AS connection_type, t.code, t.bucket, t.mode, t.slab,
       t.band_low, t.band_high, t.rate, t.min_units, t.min_amount, u.name AS created_by, t.created_at
FROM tariffs t
LEFT JOIN connection_types ct ON ct.id = t.connection_type_id
LEFT JOIN users u ON u.id = t.created_by_id
{_where(a.in_period("t.valid_from"))}
ORDER BY t.valid_from DESC, ct.code, t.bucket, t.slab
LIMIT {ROW_CAP}
""")


def _overdue_condition(a: _Ask) -> str:
    today = a.today.isoformat()
    return f"(i.status = 'Overdue' OR (i.status IN ('Pending', 'Partially_Paid') AND i.due_date < '{today}'))"


def _overdue(a: _Ask) -> str:
    if a.has(r"customer|consumer|who\b|defaulter|payer|people|account"):
        minimum = a.amount()
        having = f"\nHAVING SUM(i.balance) > {minimum}" if minimum else ""
        return _sql(f"""
SELECT c.number AS customer_number, u.name AS customer_name, COUNT(*) AS overdue_invoices,
       SUM(i.balance) AS overdue_balance, MIN(i.due_date) AS oldest_due_date
FROM invoices i
{CUSTOMER_JOIN}
{_where(_overdue_condition(a), a.in_period("i.period"))}
GROUP BY c.id, c.number, u.name{having}
ORDER BY SUM(i.balance) DESC, c.number
LIMIT {ROW_CAP}
""")
    return _sql(f"""
SELECT i.number, c.number AS customer_number, u.name AS customer_name, i.period, i.due_date,
       i.payable_after_due, i.amount_paid, i.balance, i.status
FROM invoices i
{CUSTOMER_JOIN}
{_where(_overdue_condition(a), a.in_period("i.period"))}
ORDER BY i.due_date, i.number
LIMIT {ROW_CAP}
""")


def _arrears_above(a: _Ask) -> str:
    return _sql(f"""
SELECT c.number AS customer_number, u.name AS customer_name, COUNT(*) AS open_invoices,
       SUM(i.balance) AS balance, MIN(i.due_date) AS oldest_due_date
FROM invoices i
{CUSTOMER_JOIN}
WHERE i.status IN {OPEN}
GROUP BY c.id, c.number, u.name
HAVING SUM(i.balance) > {a.amount()}
ORDER BY SUM(i.balance) DESC, c.number
LIMIT {ROW_CAP}
""")


def _payments_by_method(a: _Ask) -> str:
    return _sql(f"""
SELECT m.code AS method_code, m.name AS method, COUNT(*) AS payments, SUM(p.amount) AS collected
FROM payments p
JOIN payment_methods m ON m.id = p.method_id
{_where(a.in_period("p.received_at"))}
GROUP BY m.code, m.name
ORDER BY SUM(p.amount) DESC
LIMIT {ROW_CAP}
""")


def _payments_by_staff(a: _Ask) -> str:
    return _sql(f"""
SELECT p.received_by_id, u.name AS received_by, u.designation, COUNT(*) AS payments,
       SUM(p.amount) AS collected
FROM payments p
LEFT JOIN users u ON u.id = p.received_by_id
{_where(a.in_period("p.received_at"))}
GROUP BY p.received_by_id, u.name, u.designation
ORDER BY SUM(p.amount) DESC
LIMIT {ROW_CAP}
""")


def _payments(a: _Ask) -> str:
    if a.period is not None and not a.by_month:
        return _sql(f"""
SELECT COUNT(*) AS payments, SUM(p.amount) AS collected
FROM payments p
{_where(a.in_period("p.received_at"))}
""")
    month = a.month_of("p.received_at")
    return _sql(f"""
SELECT {month} AS month, COUNT(*) AS payments, SUM(p.amount) AS collected
FROM payments p
{_where(a.in_period("p.received_at"))}
GROUP BY {month}
ORDER BY {month} DESC
LIMIT {ROW_CAP}
""")


def _adjustments_per_officer(a: _Ask) -> str:
    return _sql(f"""
SELECT a.officer_id, a.officer_name, a.officer_designation, COUNT(*) AS adjustments,
       SUM(CASE WHEN a.direction = 'credit' THEN a.amount ELSE 0 END) AS credited,
       SUM(CASE WHEN a.direction = 'debit' THEN a.amount ELSE 0 END) AS debited
FROM adjustments a
{_where("a.kind = 'officer'", a.in_period("a.created_at"))}
GROUP BY a.officer_id, a.officer_name, a.officer_designation
ORDER BY COUNT(*) DESC, a.officer_name
LIMIT {ROW_CAP}
""")


def _invoices_per_creator(a: _Ask) -> str:
    return _sql(f"""
SELECT i.created_by_id, u.name AS created_by, u.designation, COUNT(*) AS invoices,
       SUM(i.current_charges) AS billed
FROM invoices i
LEFT JOIN users u ON u.id = i.created_by_id
{_where(a.in_period("i.period"))}
GROUP BY i.created_by_id, u.name, u.designation
ORDER BY COUNT(*) DESC
LIMIT {ROW_CAP}
""")


def _top_consumers(a: _Ask) -> str:
    return _sql(f"""
SELECT c.number AS customer_number, u.name AS customer_name, SUM(i.kwh_consumed) AS kwh,
       COUNT(*) AS invoices, SUM(i.current_charges) AS billed
FROM invoices i
{CUSTOMER_JOIN}
{_where("i.status <> 'Cancelled'", a.in_period("i.period"))}
GROUP BY c.id, c.number, u.name
ORDER BY SUM(i.kwh_consumed) DESC, c.number
LIMIT {a.top()}
""")


def _average_bill_by_type(a: _Ask) -> str:
    return _sql(f"""
SELECT ct.code AS connection_type, ct.description, COUNT(*) AS invoices,
       ROUND(AVG(i.current_charges), 2) AS average_bill, ROUND(AVG(i.kwh_consumed), 2) AS average_kwh
FROM invoices i
JOIN connections s ON s.id = i.connection_id
JOIN connection_types ct ON ct.id = s.connection_type_id
{_where("i.status <> 'Cancelled'", a.in_period("i.period"))}
GROUP BY ct.id, ct.code, ct.description
ORDER BY AVG(i.current_charges) DESC
LIMIT {ROW_CAP}
""")


def _count_by_status(a: _Ask) -> str:
    return _sql(f"""
SELECT i.status, COUNT(*) AS invoices, SUM(i.current_charges) AS billed, SUM(i.balance) AS balance
FROM invoices i
{_where(a.in_period("i.period"))}
GROUP BY i.status
ORDER BY COUNT(*) DESC
LIMIT {ROW_CAP}
""")


def _unpaid(a: _Ask) -> str:
    return _sql(f"""
SELECT i.number, c.number AS customer_number, u.name AS customer_name, i.period, i.due_date,
       i.payable_before_due, i.amount_paid, i.balance, i.status
FROM invoices i
{CUSTOMER_JOIN}
{_where(f"i.status IN {OPEN}", a.in_period("i.period"))}
ORDER BY i.due_date, i.number
LIMIT {ROW_CAP}
""")


def _revenue(a: _Ask) -> str:
    if a.period is not None and not a.by_month:
        return _sql(f"""
SELECT COUNT(*) AS invoices, SUM(i.current_charges) AS billed, SUM(i.adjustment_total) AS adjustments,
       SUM(i.amount_paid) AS collected, SUM(i.balance) AS outstanding
FROM invoices i
{_where("i.status <> 'Cancelled'", a.in_period("i.period"))}
""")
    return _sql(f"""
SELECT i.period, COUNT(*) AS invoices, SUM(i.current_charges) AS billed,
       SUM(i.adjustment_total) AS adjustments, SUM(i.amount_paid) AS collected, SUM(i.balance) AS outstanding
FROM invoices i
{_where("i.status <> 'Cancelled'", a.in_period("i.period"))}
GROUP BY i.period
ORDER BY i.period DESC
LIMIT {ROW_CAP}
""")


def _audit_activity(a: _Ask) -> str:
    return _sql(f"""
SELECT l.actor_id, u.name AS actor, l.actor_role, l.action, COUNT(*) AS events,
       MAX(l.created_at) AS last_at
FROM audit_log l
LEFT JOIN users u ON u.id = l.actor_id
{_where(a.in_period("l.created_at"))}
GROUP BY l.actor_id, u.name, l.actor_role, l.action
ORDER BY COUNT(*) DESC
LIMIT {ROW_CAP}
""")


def _provider_settings(a: _Ask) -> str:
    return _sql("""
SELECT p.code, p.name, p.city, p.currency, p.due_days, p.late_surcharge_percent, p.is_active
FROM provider p
""")


def _median_bill(a: _Ask) -> str:
    median = "percentile_cont(0.5) WITHIN GROUP (ORDER BY i.current_charges)"
    return _sql(f"""
SELECT i.period, COUNT(*) AS invoices, {median} AS median_bill,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY i.current_charges) AS bill_90th_percentile,
       MAX(i.current_charges) AS largest_bill
FROM invoices i
{_where("i.status <> 'Cancelled'", a.in_period("i.period"))}
GROUP BY i.period
ORDER BY i.period DESC
LIMIT {ROW_CAP}
""")


def _daily(a: _Ask) -> str:
    """Every day of the asked period (last month when none was asked), days without bills included."""
    this_month = first_of(a.today)
    period = a.period or _Period(add_months(this_month, -1), this_month)
    last = date.fromordinal(period.end.toordinal() - 1)
    return _sql(f"""
SELECT CAST(d.day AS DATE) AS day, COUNT(i.id) AS invoices_issued,
       COALESCE(SUM(i.current_charges), 0) AS billed
FROM generate_series(DATE '{period.start.isoformat()}', DATE '{last.isoformat()}', INTERVAL '1 day') AS d(day)
LEFT JOIN invoices i ON i.issue_date = d.day AND i.status <> 'Cancelled'
GROUP BY d.day
ORDER BY d.day
LIMIT {ROW_CAP}
""")


def _invoices_in_period(a: _Ask) -> str:
    column = "i.issue_date" if a.has(r"\bissued\b|\bissue date\b") else "i.period"
    return _sql(f"""
SELECT i.number, c.number AS customer_number, u.name AS customer_name, i.period, i.issue_date,
       i.due_date, i.kwh_consumed, i.current_charges, i.balance, i.status
FROM invoices i
{CUSTOMER_JOIN}
{_where(a.in_period(column))}
ORDER BY {column}, i.number
LIMIT {ROW_CAP}
""")


def _credit_notes(a: _Ask) -> str:
    if a.by_month:
        month = a.month_of("n.issue_date")
        return _sql(f"""
SELECT {month} AS month, COUNT(*) AS credit_notes, SUM(n.amount) AS credited,
       SUM(n.applied) AS taken_off_bills, SUM(n.to_balance) AS to_credit_balances
FROM credit_notes n
{_where(a.in_period("n.issue_date"))}
GROUP BY {month}
ORDER BY {month} DESC
LIMIT {ROW_CAP}
""")
    if a.has(r"\btotal|\bsum\b|how much|how many|\bcount\b"):
        return _sql(f"""
SELECT COUNT(*) AS credit_notes, SUM(n.amount) AS credited, SUM(n.applied) AS taken_off_bills,
       SUM(n.to_balance) AS to_credit_balances
FROM credit_notes n
{_where(a.in_period("n.issue_date"))}
""")
    return _sql(f"""
SELECT n.number AS credit_note_number, i.number AS invoice_number, c.number AS customer_number,
       c.name AS customer_name, n.issue_date, n.amount, n.applied, n.to_balance, n.reason, n.issued_by_name
FROM credit_notes n
JOIN invoices i ON i.id = n.invoice_id
JOIN customers c ON c.id = n.customer_id
{_where(a.in_period("n.issue_date"))}
ORDER BY n.issue_date DESC, n.id DESC
LIMIT {ROW_CAP}
""")


def _credit_balances(a: _Ask) -> str:
    return _sql(f"""
SELECT c.number AS customer_number, c.name AS customer_name, cc.balance AS credit_balance, cc.updated_at
FROM customer_credits cc
JOIN customers c ON c.id = cc.customer_id
WHERE cc.balance > {a.amount()}
ORDER BY cc.balance DESC, c.number
LIMIT {ROW_CAP}
""")


def _refunds(a: _Ask) -> str:
    return _sql(f"""
SELECT r.number AS refund_number, c.number AS customer_number, c.name AS customer_name, r.amount,
       m.name AS method, r.reference, r.reason, r.officer_name, r.created_at
FROM credit_refunds r
JOIN customers c ON c.id = r.customer_id
JOIN payment_methods m ON m.id = r.method_id
{_where(a.in_period("r.created_at"))}
ORDER BY r.created_at DESC, r.id DESC
LIMIT {ROW_CAP}
""")


def _reversals(a: _Ask) -> str:
    kinds = [
        kind
        for kind, pattern in (
            ("bounced", r"bounced?"),
            ("charged_back", r"charge[- ]?backs?|charged back"),
            ("posted_in_error", r"in error|by mistake|wrong(ly)?"),
        )
        if a.has(pattern)
    ]
    only = f"r.kind IN ({', '.join(repr(kind) for kind in kinds)})" if kinds else ""
    return _sql(f"""
SELECT r.number AS reversal_number, p.receipt_number, r.kind, r.reason, r.amount, r.surcharge_total,
       u.name AS reversed_by, r.reversed_at
FROM payment_reversals r
JOIN payments p ON p.id = r.payment_id
LEFT JOIN users u ON u.id = r.reversed_by_id
{_where(only, a.in_period("r.reversed_at"))}
ORDER BY r.reversed_at DESC, r.id DESC
LIMIT {ROW_CAP}
""")


_DUNNING_ACTIONS = (
    ("final_notice", r"final notices?"),
    ("disconnection", r"disconnect"),
    ("reminder", r"reminders?"),
)


def _dunning(a: _Ask) -> str:
    """Open debts at the level asked (any level when none was), with the balance their last step chased."""
    action = next((action for action, pattern in _DUNNING_ACTIONS if a.has(pattern)), "")
    return _sql(f"""
SELECT c.number AS customer_number, c.name AS customer_name, s.number AS connection_number,
       l.action AS dunning_level, l.days_after_due, d.opened_on, d.last_step_on,
       st.balance AS overdue_balance, st.days_overdue, st.order_number
FROM dunning_cases d
JOIN dunning_levels l ON l.id = d.level_id
JOIN dunning_steps st ON st.case_id = d.id AND st.level_id = d.level_id
JOIN customers c ON c.id = d.customer_id
JOIN connections s ON s.id = d.connection_id
{_where("d.closed_on IS NULL", f"l.action = '{action}'" if action else "", a.in_period("st.taken_on"))}
ORDER BY st.balance DESC, c.number
LIMIT {ROW_CAP}
""")


def _disconnection_orders(a: _Ask) -> str:
    return _sql(f"""
SELECT st.order_number, st.taken_on, c.number AS customer_number, c.name AS customer_name,
       s.number AS connection_number, s.status AS connection_status, st.balance AS overdue_balance,
       st.days_overdue
FROM dunning_steps st
JOIN customers c ON c.id = st.customer_id
JOIN connections s ON s.id = st.connection_id
{_where("st.action = 'disconnection'", a.in_period("st.taken_on"))}
ORDER BY st.taken_on DESC, st.id DESC
LIMIT {ROW_CAP}
""")


def _payment_plans(a: _Ask) -> str:
    status = next(
        (
            status
            for status, pattern in (
                ("broken", r"\bbroken\b|\bmissed\b|\bdefaulted\b"),
                ("completed", r"\bcompleted?\b|\bfinished\b|\bpaid off\b"),
                ("kept", r"\bkept\b|\bactive\b|\bcurrent\b|\bon track\b"),
            )
            if a.has(pattern)
        ),
        "",
    )
    return _sql(f"""
SELECT p.id AS plan_id, c.number AS customer_number, c.name AS customer_name,
       s.number AS connection_number, p.arrears, p.status, COUNT(n.id) AS instalments,
       MIN(n.due_date) AS first_due_date, MAX(n.due_date) AS last_due_date, p.created_at, p.ended_on
FROM payment_plans p
JOIN customers c ON c.id = p.customer_id
JOIN connections s ON s.id = p.connection_id
LEFT JOIN payment_instalments n ON n.plan_id = p.id
{_where(f"p.status = '{status}'" if status else "", a.in_period("p.created_at"))}
GROUP BY p.id, c.number, c.name, s.number, p.arrears, p.status, p.created_at, p.ended_on
ORDER BY p.created_at DESC, p.id DESC
LIMIT {ROW_CAP}
""")


def _pending_charges(a: _Ask) -> str:
    return _sql(f"""
SELECT c.number AS customer_number, c.name AS customer_name, s.number AS connection_number, g.kind,
       g.label, g.amount, g.created_at, i.number AS billed_on_invoice
FROM pending_charges g
JOIN customers c ON c.id = g.customer_id
JOIN connections s ON s.id = g.connection_id
LEFT JOIN invoices i ON i.id = g.invoice_id
{_where("g.invoice_id IS NULL" if a.has(_UNPAID + r"|unbilled|not (yet )?billed") else "", a.in_period("g.created_at"))}
ORDER BY g.created_at DESC, g.id DESC
LIMIT {ROW_CAP}
""")


def _payment_files(a: _Ask) -> str:
    return _sql(f"""
SELECT f.name AS file_name, b.name AS bank, f.uploaded_at, u.name AS uploaded_by, f.status, f.total AS row_count,
       f.posted, f.duplicates, f.refused, f.posted_amount, f.finished_at
FROM payment_files f
JOIN payment_file_formats b ON b.id = f.file_format_id
LEFT JOIN users u ON u.id = f.uploaded_by_id
{_where(a.in_period("f.uploaded_at"))}
ORDER BY f.uploaded_at DESC, f.id DESC
LIMIT {ROW_CAP}
""")


@dataclass(frozen=True)
class _Rule:
    name: str
    matches: Callable[[_Ask], bool]
    build: Callable[[_Ask], str]


def _all(*patterns: str) -> Callable[[_Ask], bool]:
    return lambda a: all(a.has(pattern) for pattern in patterns)


_UNPAID = r"unpaid|not (yet )?(been )?paid|outstanding|\bopen\b|\bpending\b|unsettled|uncollected"

# First match wins: the more specific questions come first.
RULES: tuple[_Rule, ...] = (
    _Rule(
        "provider_settings",
        _all(
            r"\b(our|my|the) (provider|company|utility)\b|provider'?s? (settings|name|details)|\bdue days\b"
            r"|\bcurrency\b|surcharge (percent|rate)"
        ),
        _provider_settings,
    ),
    _Rule("median_bill", _all(r"\bmedian\b|percentile|quartile"), _median_bill),
    _Rule("daily", _all(r"\b(per|each|every|by) day\b|\bdaily\b|day[- ]by[- ]day"), _daily),
    _Rule(
        "invoices_of_customer",
        lambda a: _CUSTOMER_NUMBER.search(a.text) is not None,
        _invoices_of_customer,
    ),
    _Rule("credit_notes", _all(r"credit[- ]notes?|credit memos?"), _credit_notes),
    _Rule(
        "credit_balances",
        _all(r"credit balances?|\bin credit\b|customer credits?|credits? (left|remaining|held)"),
        _credit_balances,
    ),
    _Rule("refunds", _all(r"\brefund"), _refunds),
    _Rule(
        "reversals",
        _all(r"\brevers(al|als|ed|e)\b|\bbounced?\b|charge[- ]?backs?|charged back"),
        _reversals,
    ),
    _Rule(
        "disconnection_orders", _all(r"disconnection orders?|orders? to disconnect"), _disconnection_orders
    ),
    _Rule(
        "dunning",
        _all(r"dunning|final notices?|\breminders?\b|collection (stages?|levels?|ladder)"),
        _dunning,
    ),
    _Rule("payment_plans", _all(r"payment plans?|instal+ments?"), _payment_plans),
    _Rule(
        "pending_charges",
        _all(r"reconnection fees?|pending charges?|one[- ]off (fees|charges)|unbilled (fees|charges)"),
        _pending_charges,
    ),
    _Rule("payment_files", _all(r"payment files?|bank files?|uploaded files?"), _payment_files),
    _Rule(
        "late_surcharges",
        _all(r"surcharge|late fees?|late (payment )?(charges?|penalt)|penalt"),
        _late_surcharges,
    ),
    _Rule("cancelled_invoices", _all(r"cancel+(ed|ations?)?\b|\bvoid"), _cancelled),
    _Rule(
        "billing_runs",
        _all(r"billing runs?|\bruns?\b|skipped|failed connections?"),
        _billing_runs,
    ),
    _Rule(
        "collection_rate",
        _all(
            r"collection (rate|ratio|efficiency|percent)|recovery (rate|ratio)|rate of (collection|recovery)|percent\w* (collected|paid)"
        ),
        _collection_rate,
    ),
    _Rule(
        "tariff_history",
        _all(
            r"\btariffs?\b|\bprices?\b|\bpricing\b|\brates? (changes?|history|per)|per[- ]kwh rate|\brates\b"
        ),
        _tariff_history,
    ),
    _Rule(
        "overdue",
        _all(r"overdue|past due|late pay|\blate\b|defaulters?|delinquen"),
        _overdue,
    ),
    _Rule(
        "arrears_above",
        lambda a: (
            a.has(r"arrears?|\bowes?\b|\bowing\b|\bdebts?\b|\bdues\b")
            or (a.has(r"\bbalances?\b") and _AMOUNT.search(a.low) is not None)
        ),
        _arrears_above,
    ),
    _Rule(
        "payments_by_method",
        _all(
            r"\bmethods?\b|\bchannels?\b|payment (modes?|types?)|jazzcash|easypaisa|\bibft\b|\bcard\b|bank counter"
        ),
        _payments_by_method,
    ),
    _Rule(
        "payments_by_staff",
        _all(
            r"payments?|collect|received|receipts?",
            r"cashiers?|\b(by|per|each) (staff|employee|clerk|cashier|officer|user)"
            r"|(received|collected|taken) by (?!month|year|week|day|method|channel)",
        ),
        _payments_by_staff,
    ),
    _Rule(
        "adjustments_per_officer",
        _all(r"adjust|write[- ]?offs?|corrections?|\bofficers?\b"),
        _adjustments_per_officer,
    ),
    _Rule(
        "invoices_per_creator",
        _all(
            r"\binvoices?\b|\bbills?\b",
            r"(created|issued|raised|generated|prepared|made|entered) by|\b(per|each|by) (creator|employee|"
            r"staff|clerk|user|person)|\bcreators?\b|who (created|issued|raised|prepared|made)",
        ),
        _invoices_per_creator,
    ),
    _Rule(
        "payments",
        _all(r"\bpayments?\b|\bcollect(ed|ions?)?\b|\breceived\b|\breceipts?\b|\brecover(y|ed)\b|\bcash\b"),
        _payments,
    ),
    _Rule(
        "top_consumers",
        _all(r"consum|kwh|usage|\bunits\b|electricity", r"\btop\b|most|highest|largest|biggest|heav|\brank"),
        _top_consumers,
    ),
    _Rule(
        "average_bill_by_connection_type",
        _all(r"average|\bavg\b|\bmean\b|\btypical\b"),
        _average_bill_by_type,
    ),
    _Rule(
        "count_by_status",
        _all(r"\bstatus(es)?\b"),
        _count_by_status,
    ),
    _Rule("unpaid_invoices", _all(_UNPAID), _unpaid),
    _Rule(
        "revenue",
        _all(r"revenue|billed|billing amount|\bbilling\b|\bsales\b|turnover|income|earn|how much"),
        _revenue,
    ),
    _Rule(
        "audit_activity",
        _all(
            r"\baudit|activity|actions?\b|who (did|changed|modified|deleted|edited)|\blog ?ins?\b|\bevents?\b"
        ),
        _audit_activity,
    ),
    _Rule(
        "invoices_in_period",
        lambda a: a.period is not None and a.has(r"\binvoices?\b|\bbills?\b"),
        _invoices_in_period,
    ),
)


# The questions the offline assistant answers, written once: the question page shows the first three,
# a refusal the first six, and every template is reached by one of them (a test checks).
EXAMPLES: tuple[str, ...] = (
    "Unpaid invoices last month",
    "Median bill by month",
    "Bills issued per day last month",
    "Our provider's settings",
    "Revenue by month",
    "Customers with overdue payments",
    "Invoices created by each employee",
    "Adjustments per officer",
    "Payments by method",
    "Total revenue for January 2025",
    "Open invoices",
    "Overdue invoices",
    "Payments collected by month",
    "Collection rate by month",
    "Top 10 consumers by kWh",
    "Average bill by connection type",
    "Late surcharges",
    "Late surcharges by month",
    "Cancelled invoices",
    "Billing runs and skipped connections",
    "Tariff price changes history",
    "Customers with arrears above 10000",
    "Invoices of customer LHR-RES-0001",
    "Count of invoices by status",
    "Payments received by each cashier",
    "Audit log activity by user",
    "Invoices issued last month",
    "Total credit notes this year",
    "Customers in dunning at final notice",
    "Disconnection orders last month",
    "Broken payment plans",
    "Customers with a credit balance",
    "Refunds last month",
    "Bounced payment reversals",
    "Reconnection fees not billed yet",
    "Payment files uploaded this month",
)


class OfflineGenerator:
    """Hand-written SQL for the common auditor questions: no network, no model."""

    name = "offline"
    examples = EXAMPLES

    def generate(self, question: str, *, dialect: str) -> str:
        return self.answer(question, dialect=dialect)[1]

    def answer(self, question: str, *, dialect: str) -> tuple[str, str]:
        """(the template's name, its SQL); "sql" when the question was a query already."""
        dialect = dialect_of(dialect)
        text = question.strip().replace("\u2019", "'")
        if not text:
            raise GenerationFailed(_("Ask a question first."), reason="empty")
        if is_sql(text):
            return "sql", clean_sql(text)
        today = timezone.localdate()
        low = " ".join(text.lower().split())
        ask = _Ask(text=text, low=low, dialect=dialect, today=today, period=_period(low, today))
        for rule in RULES:
            if rule.matches(ask):
                return rule.name, rule.build(ask)
        shown = "; ".join(f'"{example}"' for example in self.examples[:6])
        raise GenerationFailed(
            _(
                "The offline assistant cannot answer this question; ask one of: %(shown)s (or type a "
                "SELECT query)."
            )
            % {"shown": shown},
            reason="unanswerable",
        )

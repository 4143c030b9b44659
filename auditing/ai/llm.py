"""Turning an auditor's plain-language question into one SQL statement.

Two clients behind one small interface (`SqlGenerator`):

- `GeminiGenerator` asks Gemini through `google-genai`. It is shown only `schema_text()` (the logical
  tables and columns auditors may read), today's date and the question: never a row of data.
- `OfflineGenerator` answers the common auditor questions from hand-written templates, without any
  network (the demo uses it when no key is set, and the tests do).

Either may answer a question that is itself SQL (starts with SELECT or WITH) by returning it as is.
What they return is only a proposal: the validator, the provider-scoping rewriter and the read-only
executor decide what runs. Both raise `GenerationFailed` with a message an auditor can act on.
"""

# S608: this module writes SQL text on purpose. It never runs it: the validator, the rewriter and the
# read-only executor decide what runs. Only fixed fragments, ISO dates, numbers parsed as Decimal and a
# customer number matched by a quote-free pattern go into the templates.
# ruff: noqa: S608

from __future__ import annotations

import calendar
import importlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from django.conf import settings
from django.utils import timezone
from rest_framework import status

from auditing.ai.schema import schema_text
from config.errors import DomainError

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "gemini-2.5-flash"
DEFAULT_TIMEOUT = 30.0  # seconds
ROW_CAP = 100

DIALECTS = {"postgres": "PostgreSQL", "postgresql": "PostgreSQL", "sqlite": "SQLite"}


class GenerationFailed(DomainError):
    """No SQL could be produced for the question; `detail` says why in words an auditor understands.

    `reason` is stable for programs (unanswerable, blocked, empty, rate_limited, api_key, model,
    rejected, unavailable, timeout, unreachable, unexpected); `retryable` says whether asking again
    later may succeed (quota, outages, timeouts).
    """

    code = "generation_failed"
    status = status.HTTP_422_UNPROCESSABLE_ENTITY

    def __init__(self, detail: str, *, reason: str = "unanswerable", retryable: bool = False) -> None:
        super().__init__(detail, reason=reason)
        self.reason = reason
        self.retryable = retryable
        if retryable:
            self.status = status.HTTP_503_SERVICE_UNAVAILABLE


class SqlGenerator(Protocol):
    name: str

    def generate(self, question: str, *, dialect: str) -> str:
        """One SQL statement for `question` in `dialect` ("postgres" or "sqlite"), without fences."""
        ...


def _dialect(dialect: str) -> str:
    key = dialect.lower()
    if key not in DIALECTS:
        raise ValueError(f"Unknown SQL dialect {dialect!r}: use 'postgres' or 'sqlite'.")
    return "postgres" if key == "postgresql" else key


_SQL_START = re.compile(r"^\s*(?:\(\s*)*(select|with)\b", re.IGNORECASE)


def is_sql(question: str) -> bool:
    """True when the auditor typed a query rather than a question."""
    return bool(_SQL_START.match(question))


_FENCE = re.compile(r"```[ \t]*[A-Za-z0-9_+-]*[ \t]*\r?\n?(.*?)```", re.DOTALL)
_OPEN_FENCE = re.compile(r"^```[ \t]*[A-Za-z0-9_+-]*[ \t]*\r?\n?")


def clean_sql(text: str) -> str:
    """The statement inside a model's answer: the first ``` fenced block if any, no trailing `;`."""
    fenced = _FENCE.search(text)
    # Without a closed fence: strip an opening fence the answer never closed, or a stray closing one.
    text = fenced.group(1) if fenced else _OPEN_FENCE.sub("", text.strip()).removesuffix("```")
    text = text.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


# --------------------------------------------------------------------------------------------------
# Gemini


def _httpx_exceptions() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """Timeout and transport error classes of whichever of httpx / httpx2 the SDK may use."""
    timeouts: list[type[BaseException]] = [TimeoutError]
    transport: list[type[BaseException]] = []
    for module_name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        timeouts.append(module.TimeoutException)
        transport.append(module.TransportError)
    return tuple(timeouts), tuple(transport)


_TIMEOUTS, _TRANSPORT_ERRORS = _httpx_exceptions()

_BLOCKING_FINISH = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "LANGUAGE",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
}

CANNOT_ANSWER = "CANNOT_ANSWER"


def system_instruction(dialect: str, today: date) -> str:
    """What Gemini is told: the rules, the allowed tables and columns, today's date. No data."""
    name = DIALECTS[_dialect(dialect)]
    month_of = (
        "to_char(<timestamp>, 'YYYY-MM')"
        if _dialect(dialect) == "postgres"
        else "strftime('%Y-%m', <timestamp>)"
    )
    return f"""You write SQL for auditors of an electricity distribution company.
Turn the auditor's question into exactly one read-only {name} SELECT statement.

Rules:
- Use only these tables and columns; nothing else exists (table(columns) -- meaning):
{schema_text()}
- Exactly one statement: a SELECT (WITH ... SELECT, UNION, EXCEPT and INTERSECT are fine). Never INSERT,
  UPDATE, DELETE, MERGE, DDL, SELECT INTO, FOR UPDATE/SHARE, recursive CTEs, or functions that change
  anything, read files or reach other databases.
- Do not filter by provider: the system limits every table to the auditor's own provider.
- Return at most {ROW_CAP} rows (LIMIT {ROW_CAP} or fewer) and give computed columns readable aliases.
- People's names are users.name (join users.id to customers.user_id, invoices.created_by_id,
  payments.received_by_id, adjustments.officer_id, billing_runs.started_by_id, audit_log.actor_id).
- invoices.period is the first day of the billing month: filter and group months on it. Write dates as
  'YYYY-MM-DD' literals; for the month of a timestamp use {month_of}. Today is {today.isoformat()}.
- Open (unpaid) invoices have status Pending, Partially_Paid or Overdue; leave out Cancelled invoices
  from money totals.
- Answer with the SQL only: no explanation, no markdown, no code fences, no trailing semicolon.
- If the question cannot be answered from these tables, or asks to change data, answer exactly:
  {CANNOT_ANSWER}: <one short reason>"""


def _short(message: Any, limit: int = 300) -> str:
    text = " ".join(str(message or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class GeminiGenerator:
    """Gemini through google-genai's `client.models.generate_content`, at temperature 0.

    `httpx_client` (or `http_options`, a `types.HttpOptions` or its dict) reaches the SDK's own
    transport hook, `HttpOptions.httpx_client`: tests pass a client whose transport replays recorded
    responses. The SDK makes one attempt (no retry options): the Celery task decides about retrying.
    """

    def __init__(
        self,
        api_key: str,
        model: str = DEFAULT_MODEL,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        http_options: Any = None,
        httpx_client: Any = None,
    ) -> None:
        from google import genai
        from google.genai import types

        if not api_key:
            raise ValueError("GeminiGenerator needs an API key (settings.GEMINI_API_KEY).")
        self.model = model
        self.timeout = timeout
        self.name = f"gemini:{model}"
        self._types = types
        options = (
            types.HttpOptions(**http_options) if isinstance(http_options, dict) else http_options
        ) or types.HttpOptions()
        options = options.model_copy()
        if options.timeout is None:
            options.timeout = max(1, round(timeout * 1000))  # milliseconds
        if httpx_client is not None:
            options.httpx_client = httpx_client
        self._client = genai.Client(api_key=api_key, http_options=options)

    def generate(self, question: str, *, dialect: str) -> str:
        from google.genai import errors

        dialect = _dialect(dialect)
        question = question.strip()
        if not question:
            raise GenerationFailed("Ask a question first.", reason="empty")
        if is_sql(question):
            return clean_sql(question)
        config = self._types.GenerateContentConfig(
            system_instruction=system_instruction(dialect, timezone.localdate()),
            temperature=0,
            candidate_count=1,
            response_mime_type="text/plain",
            automatic_function_calling=self._types.AutomaticFunctionCallingConfig(disable=True),  # no tools
        )
        try:
            response = self._client.models.generate_content(
                model=self.model, contents=question, config=config
            )
        except errors.APIError as exc:
            raise self._api_failure(exc) from exc
        except _TIMEOUTS as exc:
            raise GenerationFailed(
                f"The language model did not answer within {self.timeout:g} seconds; try again, or ask a "
                "shorter question.",
                reason="timeout",
                retryable=True,
            ) from exc
        except _TRANSPORT_ERRORS as exc:
            raise GenerationFailed(
                f"The language model could not be reached ({type(exc).__name__}); try again later.",
                reason="unreachable",
                retryable=True,
            ) from exc
        except Exception as exc:  # a malformed answer the SDK could not read: fail closed, keep the trace
            logger.exception("Gemini call failed unexpectedly")
            raise GenerationFailed(
                "The language model's answer could not be read; try again later.", reason="unexpected"
            ) from exc
        return self._sql_from(response)

    def _api_failure(self, exc: Any) -> GenerationFailed:
        code, api_status, message = exc.code, exc.status or "", _short(exc.message)
        logger.warning("Gemini refused: %s %s %s", code, api_status, message)
        if code == 429 or api_status == "RESOURCE_EXHAUSTED":
            return GenerationFailed(
                "The language model's quota or rate limit was reached (HTTP 429); try again in a minute.",
                reason="rate_limited",
                retryable=True,
            )
        if code in (401, 403) or "api key" in message.lower():
            return GenerationFailed(
                f"The language model refused the configured API key (HTTP {code}: {message}); an "
                "administrator must check GEMINI_API_KEY.",
                reason="api_key",
            )
        if code == 404:
            return GenerationFailed(
                f"The language model {self.model!r} was not found (HTTP 404); an administrator must check "
                "GEMINI_MODEL.",
                reason="model",
            )
        if code is not None and int(code) >= 500:
            http = f"HTTP {code} {api_status}".strip()
            return GenerationFailed(
                f"The language model service failed ({http}); try again later.",
                reason="unavailable",
                retryable=True,
            )
        return GenerationFailed(
            f"The language model rejected the request (HTTP {code} {api_status}: {message}).",
            reason="rejected",
        )

    def _sql_from(self, response: Any) -> str:
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            why = _short(feedback.block_reason_message) or _enum_name(feedback.block_reason)
            raise GenerationFailed(
                f"The language model declined this question ({why}); rephrase it as a question about "
                "bills, payments or customers.",
                reason="blocked",
            )
        if not response.candidates:
            raise GenerationFailed(
                "The language model gave no answer; rephrase the question.", reason="empty"
            )
        finish = _enum_name(response.candidates[0].finish_reason)
        if finish in _BLOCKING_FINISH:
            raise GenerationFailed(
                f"The language model stopped its answer ({finish}); rephrase the question.", reason="blocked"
            )
        if finish == "MAX_TOKENS":
            raise GenerationFailed(
                "The language model's answer was cut off before the query was complete; ask a simpler "
                "question.",
                reason="empty",
            )
        sql = clean_sql(response.text or "")
        if sql.upper().startswith(CANNOT_ANSWER):
            why = sql[len(CANNOT_ANSWER) :].lstrip(" :-").strip() or "not answerable from the audit tables"
            raise GenerationFailed(f"The question cannot be answered from the audit data: {_short(why)}.")
        if not sql:
            raise GenerationFailed(
                "The language model gave an empty answer; rephrase the question.", reason="empty"
            )
        return sql


def _enum_name(value: Any) -> str:
    if value is None:
        return ""
    return str(getattr(value, "value", value)).upper()


# --------------------------------------------------------------------------------------------------
# Offline templates

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


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _period(low: str, today: date) -> _Period | None:
    this_month = today.replace(day=1)
    if re.search(r"\b(last|previous|past|prior) month\b", low):
        return _Period(_add_months(this_month, -1), this_month)
    if re.search(r"\b(this|current) month\b", low):
        return _Period(this_month, _add_months(this_month, 1))
    if match := _MONTH_YEAR.search(low):
        start = date(int(match.group(2)), _MONTHS[match.group(1)], 1)
        return _Period(start, _add_months(start, 1))
    if match := _YEAR_MONTH.search(low):
        start = date(int(match.group(1)), int(match.group(2)), 1)
        return _Period(start, _add_months(start, 1))
    if match := re.search(r"\blast (\d{1,2}) months\b", low):
        return _Period(_add_months(this_month, -int(match.group(1))), this_month)
    if re.search(r"\b(last|previous|past) year\b", low):
        return _Period(date(today.year - 1, 1, 1), date(today.year, 1, 1))
    if re.search(r"\b(this|current) year\b|\byear to date\b|\bytd\b", low):
        return _Period(date(today.year, 1, 1), date(today.year + 1, 1, 1))
    if match := _MONTH_ALONE.search(low):  # "in March": the latest March that has begun
        month = _MONTHS[match.group(1)]
        start = date(today.year if month <= today.month else today.year - 1, month, 1)
        return _Period(start, _add_months(start, 1))
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


@dataclass(frozen=True)
class _Rule:
    name: str
    matches: Callable[[_Ask], bool]
    build: Callable[[_Ask], str]
    example: str


def _all(*patterns: str) -> Callable[[_Ask], bool]:
    return lambda a: all(a.has(pattern) for pattern in patterns)


_UNPAID = r"unpaid|not (yet )?(been )?paid|outstanding|\bopen\b|\bpending\b|unsettled|uncollected"

# First match wins: the more specific questions come first.
RULES: tuple[_Rule, ...] = (
    _Rule(
        "invoices_of_customer",
        lambda a: _CUSTOMER_NUMBER.search(a.text) is not None,
        _invoices_of_customer,
        "Invoices of customer LHR-RES-0001",
    ),
    _Rule(
        "late_surcharges",
        _all(r"surcharge|late fees?|late (payment )?(charges?|penalt)|penalt"),
        _late_surcharges,
        "Late surcharges by month",
    ),
    _Rule("cancelled_invoices", _all(r"cancel+(ed|ations?)?\b|\bvoid"), _cancelled, "Cancelled invoices"),
    _Rule(
        "billing_runs",
        _all(r"billing runs?|\bruns?\b|skipped|failed connections?"),
        _billing_runs,
        "Billing runs and skipped connections",
    ),
    _Rule(
        "collection_rate",
        _all(
            r"collection (rate|ratio|efficiency|percent)|recovery (rate|ratio)|rate of (collection|recovery)|percent\w* (collected|paid)"
        ),
        _collection_rate,
        "Collection rate by month",
    ),
    _Rule(
        "tariff_history",
        _all(
            r"\btariffs?\b|\bprices?\b|\bpricing\b|\brates? (changes?|history|per)|per[- ]kwh rate|\brates\b"
        ),
        _tariff_history,
        "Tariff price changes history",
    ),
    _Rule(
        "overdue",
        _all(r"overdue|past due|late pay|\blate\b|defaulters?|delinquen"),
        _overdue,
        "Customers with overdue payments",
    ),
    _Rule(
        "arrears_above",
        lambda a: (
            a.has(r"arrears?|\bowes?\b|\bowing\b|\bdebts?\b|\bdues\b")
            or (a.has(r"\bbalances?\b") and _AMOUNT.search(a.low) is not None)
        ),
        _arrears_above,
        "Customers with arrears above 10000",
    ),
    _Rule(
        "payments_by_method",
        _all(
            r"\bmethods?\b|\bchannels?\b|payment (modes?|types?)|jazzcash|easypaisa|\bibft\b|\bcard\b|bank counter"
        ),
        _payments_by_method,
        "Payments by method",
    ),
    _Rule(
        "payments_by_staff",
        _all(
            r"payments?|collect|received|receipts?",
            r"cashiers?|\b(by|per|each) (staff|employee|clerk|cashier|officer|user)"
            r"|(received|collected|taken) by (?!month|year|week|day|method|channel)",
        ),
        _payments_by_staff,
        "Payments received by each cashier",
    ),
    _Rule(
        "adjustments_per_officer",
        _all(r"adjust|credit notes?|write[- ]?offs?|corrections?|\bofficers?\b"),
        _adjustments_per_officer,
        "Adjustments per officer",
    ),
    _Rule(
        "invoices_per_creator",
        _all(
            r"\binvoices?\b|\bbills?\b",
            r"(created|issued|raised|generated|prepared|made|entered) by|\b(per|each|by) (creator|employee|"
            r"staff|clerk|user|person)|\bcreators?\b|who (created|issued|raised|prepared|made)",
        ),
        _invoices_per_creator,
        "Invoices created by each employee",
    ),
    _Rule(
        "payments",
        _all(r"\bpayments?\b|\bcollect(ed|ions?)?\b|\breceived\b|\breceipts?\b|\brecover(y|ed)\b|\bcash\b"),
        _payments,
        "Payments collected by month",
    ),
    _Rule(
        "top_consumers",
        _all(r"consum|kwh|usage|\bunits\b|electricity", r"\btop\b|most|highest|largest|biggest|heav|\brank"),
        _top_consumers,
        "Top 10 consumers by kWh",
    ),
    _Rule(
        "average_bill_by_connection_type",
        _all(r"average|\bavg\b|\bmean\b|\btypical\b"),
        _average_bill_by_type,
        "Average bill by connection type",
    ),
    _Rule(
        "count_by_status",
        _all(r"\bstatus(es)?\b"),
        _count_by_status,
        "Count of invoices by status",
    ),
    _Rule("unpaid_invoices", _all(_UNPAID), _unpaid, "Unpaid invoices last month"),
    _Rule(
        "revenue",
        _all(r"revenue|billed|billing amount|\bbilling\b|\bsales\b|turnover|income|earn|how much"),
        _revenue,
        "Total revenue for January 2025",
    ),
    _Rule(
        "audit_activity",
        _all(
            r"\baudit|activity|actions?\b|who (did|changed|modified|deleted|edited)|\blog ?ins?\b|\bevents?\b"
        ),
        _audit_activity,
        "Audit log activity by user",
    ),
    _Rule(
        "invoices_in_period",
        lambda a: a.period is not None and a.has(r"\binvoices?\b|\bbills?\b"),
        _invoices_in_period,
        "Invoices issued last month",
    ),
)


class OfflineGenerator:
    """Hand-written SQL for the common auditor questions: no network, no model."""

    name = "offline"
    # The questions the templates answer, the issue's own first (the refusal shows the first few).
    examples: tuple[str, ...] = (
        "Unpaid invoices last month",
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
    )

    def generate(self, question: str, *, dialect: str) -> str:
        return self.answer(question, dialect=dialect)[1]

    def answer(self, question: str, *, dialect: str) -> tuple[str, str]:
        """(the template's name, its SQL); "sql" when the question was a query already."""
        dialect = _dialect(dialect)
        text = question.strip().replace("\u2019", "'")
        if not text:
            raise GenerationFailed("Ask a question first.", reason="empty")
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
            "The offline assistant cannot answer this question; ask one of: "
            f"{shown} (or type a SELECT query).",
            reason="unanswerable",
        )


def generator() -> SqlGenerator:
    """Gemini when settings carry a key (GEMINI_API_KEY; GEMINI_MODEL, GEMINI_TIMEOUT), else offline."""
    api_key = (getattr(settings, "GEMINI_API_KEY", "") or "").strip()
    if not api_key:
        return OfflineGenerator()
    return GeminiGenerator(
        api_key,
        getattr(settings, "GEMINI_MODEL", DEFAULT_MODEL) or DEFAULT_MODEL,
        timeout=float(getattr(settings, "GEMINI_TIMEOUT", DEFAULT_TIMEOUT) or DEFAULT_TIMEOUT),
    )

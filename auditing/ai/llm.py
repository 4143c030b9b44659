"""Gemini, the language model that turns an auditor's plain-language question into one SQL statement.

`GeminiGenerator` asks Gemini through `google-genai`. It is shown only `schema_text()` (the logical
tables and columns auditors may read), today's date and the question: never a row of data. A question
that is itself SQL (starts with SELECT or WITH) is returned as is. `generator()` picks Gemini when a key
is set, else the offline assistant (`auditing.ai.offline`), which stands in for it.

What it returns is only a proposal: the validator, the provider-scoping rewriter and the read-only
executor decide what runs. It raises `GenerationFailed` with a message an auditor can act on.
"""

from __future__ import annotations

import importlib
import logging
from datetime import date
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from auditing.ai.generation import (
    DIALECTS,
    ROW_CAP,
    GenerationFailed,
    SqlGenerator,
    clean_sql,
    dialect_of,
    is_sql,
)
from auditing.ai.offline import OfflineGenerator
from auditing.ai.schema import schema_text

__all__ = ["GeminiGenerator", "GenerationFailed", "OfflineGenerator", "clean_sql", "generator", "is_sql"]

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "gemini-2.5-flash"
DEFAULT_TIMEOUT = 30.0  # seconds


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
    name = DIALECTS[dialect_of(dialect)]
    month_of = (
        "to_char(<timestamp>, 'YYYY-MM')"
        if dialect_of(dialect) == "postgres"
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
- A customer's name is customers.name (join customers.id to the customer_id of a table). Staff names
  are users.name (join users.id to invoices.created_by_id, payments.received_by_id,
  adjustments.officer_id, billing_runs.started_by_id, payment_reversals.reversed_by_id,
  audit_log.actor_id).
- invoices.period is the first day of the billing month: filter and group months on it. Write dates as
  'YYYY-MM-DD' literals; for the month of a timestamp use {month_of}. Today is {today.isoformat()}.
- For a series of days or months to join the data to, use generate_series('YYYY-MM-DD', 'YYYY-MM-DD',
  INTERVAL '1 day') AS g(day) in FROM; for a median or percentile, percentile_cont(0.5) WITHIN GROUP
  (ORDER BY ...). The provider table holds the auditor's own provider (one row).
- Open (unpaid) invoices have status Pending, Partially_Paid or Overdue; leave out Cancelled invoices
  from money totals.
- Answer with the SQL only: no explanation, no markdown, no code fences, no trailing semicolon.
- If the question cannot be answered from these tables, or asks to change data, answer exactly:
  {CANNOT_ANSWER}: <one short reason>"""  # noqa: S608 -- a prompt, not SQL that runs


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

        dialect = dialect_of(dialect)
        question = question.strip()
        if not question:
            raise GenerationFailed(_("Ask a question first."), reason="empty")
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
                _(
                    "The language model did not answer within %(timeout)s seconds; try again, or ask a shorter "
                    "question."
                )
                % {"timeout": format(self.timeout, "g")},
                reason="timeout",
                retryable=True,
            ) from exc
        except _TRANSPORT_ERRORS as exc:
            raise GenerationFailed(
                _("The language model could not be reached (%(name)s); try again later.")
                % {"name": type(exc).__name__},
                reason="unreachable",
                retryable=True,
            ) from exc
        except Exception as exc:  # a malformed answer the SDK could not read: fail closed, keep the trace
            logger.exception("Gemini call failed unexpectedly")
            raise GenerationFailed(
                _("The language model's answer could not be read; try again later."), reason="unexpected"
            ) from exc
        return self._sql_from(response)

    def _api_failure(self, exc: Any) -> GenerationFailed:
        code, api_status, message = exc.code, exc.status or "", _short(exc.message)
        logger.warning("Gemini refused: %s %s %s", code, api_status, message)
        if code == 429 or api_status == "RESOURCE_EXHAUSTED":
            return GenerationFailed(
                _("The language model's quota or rate limit was reached (HTTP 429); try again in a minute."),
                reason="rate_limited",
                retryable=True,
            )
        if code in (401, 403) or "api key" in message.lower():
            return GenerationFailed(
                _(
                    "The language model refused the configured API key (HTTP %(code)s: %(message)s); an "
                    "administrator must check GEMINI_API_KEY."
                )
                % {"code": code, "message": message},
                reason="api_key",
            )
        if code == 404:
            return GenerationFailed(
                _(
                    "The language model %(model)s was not found (HTTP 404); an administrator must check "
                    "GEMINI_MODEL."
                )
                % {"model": repr(self.model)},
                reason="model",
            )
        if code is not None and int(code) >= 500:
            http = f"HTTP {code} {api_status}".strip()
            return GenerationFailed(
                _("The language model service failed (%(http)s); try again later.") % {"http": http},
                reason="unavailable",
                retryable=True,
            )
        return GenerationFailed(
            _("The language model rejected the request (HTTP %(code)s %(api_status)s: %(message)s).")
            % {"code": code, "api_status": api_status, "message": message},
            reason="rejected",
        )

    def _sql_from(self, response: Any) -> str:
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            why = _short(feedback.block_reason_message) or _enum_name(feedback.block_reason)
            raise GenerationFailed(
                _(
                    "The language model declined this question (%(why)s); rephrase it as a question about "
                    "bills, payments or customers."
                )
                % {"why": why},
                reason="blocked",
            )
        if not response.candidates:
            raise GenerationFailed(
                _("The language model gave no answer; rephrase the question."), reason="empty"
            )
        finish = _enum_name(response.candidates[0].finish_reason)
        if finish in _BLOCKING_FINISH:
            raise GenerationFailed(
                _("The language model stopped its answer (%(finish)s); rephrase the question.")
                % {"finish": finish},
                reason="blocked",
            )
        if finish == "MAX_TOKENS":
            raise GenerationFailed(
                _(
                    "The language model's answer was cut off before the query was complete; ask a simpler "
                    "question."
                ),
                reason="empty",
            )
        sql = clean_sql(response.text or "")
        if sql.upper().startswith(CANNOT_ANSWER):
            why = sql[len(CANNOT_ANSWER) :].lstrip(" :-").strip() or "not answerable from the audit tables"
            raise GenerationFailed(
                _("The question cannot be answered from the audit data: %(short)s.") % {"short": _short(why)}
            )
        if not sql:
            raise GenerationFailed(
                _("The language model gave an empty answer; rephrase the question."), reason="empty"
            )
        return sql


def _enum_name(value: Any) -> str:
    if value is None:
        return ""
    return str(getattr(value, "value", value)).upper()


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

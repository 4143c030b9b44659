"""The question -> SQL clients: Gemini against recorded REST responses, the offline templates.

Gemini is reached only through the SDK's own transport hook (`HttpOptions.httpx_client`, or
`client_args={"transport": ...}`): a MockTransport replays responses recorded in the shape of the
Gemini API's generateContent. Sockets are refused for the whole module, so no test can reach the
network even by mistake.
"""

import json
import socket
import sqlite3
from datetime import date
from unittest import mock

import pytest
import sqlglot
from sqlglot import exp

from auditing.ai import llm, schema
from auditing.ai.execute import add_sqlite_functions
from auditing.ai.offline import RULES
from auditing.ai.scope import scoped_sql
from auditing.ai.validate import check, is_series

try:  # google-genai 3.x's default HTTP backend; it accepts httpx clients too
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx

MODEL = "gemini-2.5-flash"
ENDPOINT = f"/models/{MODEL}:generateContent"
QUESTION = "Which invoices are still unpaid for last month?"
TODAY = date(2025, 3, 15)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any attempt to resolve a name or open a connection fails the test."""

    def refuse(*args, **kwargs):
        # pytest.fail raises a BaseException: no `except Exception` in the SDK or the client can hide it.
        pytest.fail(f"a test tried to reach the network: {args!r}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    for name in (
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_GENAI_HTTP_CLIENT",
        "GOOGLE_GENAI_API_VERSION",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_LOCATION",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def today():
    with mock.patch("django.utils.timezone.localdate", return_value=TODAY):
        yield TODAY


# -- Recorded Gemini REST responses (generateContent, v1), trimmed ids ------------------------------

USAGE = {
    "promptTokenCount": 1187,
    "candidatesTokenCount": 52,
    "totalTokenCount": 1466,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1187}],
    "thoughtsTokenCount": 227,
}

FENCED_SQL = {
    "candidates": [
        {
            "content": {
                "parts": [
                    {
                        "text": "```sql\nSELECT i.number, i.balance\nFROM invoices AS i\n"
                        "WHERE i.status IN ('Pending', 'Partially_Paid', 'Overdue')\n"
                        "  AND i.period = '2025-02-01'\nLIMIT 100;\n```"
                    }
                ],
                "role": "model",
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": USAGE,
    "modelVersion": "gemini-2.5-flash",
    "responseId": "x1rWaK2pFoGTz7IPq8LAuQ4",
}

PLAIN_SQL = {
    "candidates": [
        {
            "content": {
                "parts": [{"text": "SELECT COUNT(*) AS invoices FROM invoices AS i\n"}],
                "role": "model",
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": USAGE,
    "modelVersion": "gemini-2.5-flash",
    "responseId": "J1vWaKnWB4mTz7IP0sSYgAs",
}

PROMPT_BLOCKED = {
    "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
    "usageMetadata": {
        "promptTokenCount": 1190,
        "totalTokenCount": 1190,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1190}],
    },
    "modelVersion": "gemini-2.5-flash",
    "responseId": "VFzWaNmTL7WWz7IPn5CjmAU",
}

CANDIDATE_BLOCKED = {
    "candidates": [
        {
            "finishReason": "SAFETY",
            "index": 0,
            "safetyRatings": [
                {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
                {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
                {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
            ],
        }
    ],
    "usageMetadata": {"promptTokenCount": 1192, "totalTokenCount": 1192},
    "modelVersion": "gemini-2.5-flash",
    "responseId": "gFzWaOu2Kpm3z7IP_MvGqQ0",
}

EMPTY_CANDIDATE = {
    "candidates": [{"content": {"role": "model"}, "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": 1187, "totalTokenCount": 1187},
    "modelVersion": "gemini-2.5-flash",
    "responseId": "q1zWaJ3CNs2Tz7IPl-SJ6AQ",
}

NO_CANDIDATES = {
    "usageMetadata": {"promptTokenCount": 1187, "totalTokenCount": 1187},
    "modelVersion": "gemini-2.5-flash",
    "responseId": "y1zWaLe7CtqTz7IPy7_R4Q0",
}

CUT_OFF = {
    "candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}],
    "usageMetadata": {"promptTokenCount": 1187, "totalTokenCount": 9379, "thoughtsTokenCount": 8192},
    "modelVersion": "gemini-2.5-flash",
    "responseId": "31zWaIbOA8WTz7IPx8nKgQ4",
}

CANNOT = {
    "candidates": [
        {
            "content": {
                "parts": [{"text": "CANNOT_ANSWER: there is no table about the weather"}],
                "role": "model",
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": USAGE,
    "modelVersion": "gemini-2.5-flash",
    "responseId": "9FzWaPKEMK2Tz7IPjt6Y0Q4",
}

RATE_LIMITED = {
    "error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                        "quotaValue": "10",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"},
        ],
    }
}

INTERNAL = {
    "error": {
        "code": 500,
        "message": "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
        "status": "INTERNAL",
    }
}

OVERLOADED = {
    "error": {
        "code": 503,
        "message": "The model is overloaded. Please try again later.",
        "status": "UNAVAILABLE",
    }
}

BAD_KEY = {
    "error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": "API key not valid. Please pass a valid API key.",
            },
        ],
    }
}

BAD_REQUEST = {
    "error": {
        "code": 400,
        "message": "Request contains an invalid argument.",
        "status": "INVALID_ARGUMENT",
    }
}

UNKNOWN_MODEL = {
    "error": {
        "code": 404,
        "message": "models/gemini-0-nano is not found for API version v1, or is not supported for "
        "generateContent. Call ListModels to see the list of available models and their supported methods.",
        "status": "NOT_FOUND",
    }
}


class Replay:
    """A MockTransport handler: hands out the recorded responses in order and keeps the requests."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list = []

    def __call__(self, request):
        self.requests.append(request)
        assert self.answers, f"unexpected extra request to {request.url}"
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            raise answer(request)
        status, body = answer
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers={"content-type": "text/html; charset=UTF-8"})
        return httpx.Response(status, json=body, headers={"content-type": "application/json; charset=UTF-8"})

    @property
    def body(self) -> dict:
        (request,) = self.requests
        return json.loads(request.content)


def gemini(replay: Replay, model: str = MODEL, **kwargs) -> llm.GeminiGenerator:
    client = httpx.Client(transport=httpx.MockTransport(replay))
    return llm.GeminiGenerator("test-key", model, timeout=5, httpx_client=client, **kwargs)


# -- Gemini --------------------------------------------------------------------------------------


def test_gemini_request_carries_schema_and_question_only(today):
    replay = Replay((200, FENCED_SQL))

    gemini(replay).generate(QUESTION, dialect="postgres")

    (request,) = replay.requests
    assert request.method == "POST"
    assert request.url.host == "generativelanguage.googleapis.com"
    assert request.url.path.endswith(ENDPOINT)
    assert request.headers["x-goog-api-key"] == "test-key"
    assert request.extensions["timeout"]["read"] == 5.0

    body = replay.body
    # The question, the instruction (rules + schema + today's date) and the generation settings: nothing else.
    assert set(body) == {"contents", "systemInstruction", "generationConfig"}
    assert body["contents"] == [{"role": "user", "parts": [{"text": QUESTION}]}]
    assert body["generationConfig"]["temperature"] == 0
    assert body["generationConfig"]["candidateCount"] == 1
    (instruction,) = body["systemInstruction"]["parts"]
    text = instruction["text"]
    assert text == llm.system_instruction("postgres", TODAY)
    assert schema.schema_text() in text
    for table in schema.TABLES:
        assert f"{table.name}({', '.join(table.columns)})" in text
    assert "PostgreSQL" in text and "Today is 2025-03-15" in text
    assert "LIMIT 100" in text and "Do not filter by provider" in text
    for secret in ("password", "token", "session", "idempotency", "auditing_auditlog", "invoicing_invoice"):
        assert secret not in text.lower()


def test_gemini_answer_is_unfenced_and_loses_its_semicolon(today):
    sql = gemini(Replay((200, FENCED_SQL))).generate(QUESTION, dialect="sqlite")

    assert sql == (
        "SELECT i.number, i.balance\nFROM invoices AS i\n"
        "WHERE i.status IN ('Pending', 'Partially_Paid', 'Overdue')\n  AND i.period = '2025-02-01'\nLIMIT 100"
    )
    sqlglot.parse_one(sql, read="sqlite")


def test_gemini_plain_answer_and_sqlite_instruction(today):
    replay = Replay((200, PLAIN_SQL))

    assert gemini(replay).generate("How many invoices?", dialect="sqlite") == (
        "SELECT COUNT(*) AS invoices FROM invoices AS i"
    )
    assert "SQLite" in replay.body["systemInstruction"]["parts"][0]["text"]


def test_gemini_uses_the_configured_model(today):
    replay = Replay((200, PLAIN_SQL))

    generator = gemini(replay, model="gemini-2.5-pro")
    generator.generate("How many invoices?", dialect="postgres")

    assert replay.requests[0].url.path.endswith("/models/gemini-2.5-pro:generateContent")
    assert generator.name == "gemini:gemini-2.5-pro"


def test_gemini_through_client_args_transport(today):
    """The other half of the hook: `HttpOptions.client_args` builds the SDK's own client on our transport."""
    replay = Replay((200, PLAIN_SQL))
    generator = llm.GeminiGenerator(
        "test-key", MODEL, http_options={"client_args": {"transport": httpx.MockTransport(replay)}}
    )

    assert generator.generate("How many invoices?", dialect="postgres").startswith("SELECT COUNT(*)")
    assert replay.requests[0].url.path.endswith(ENDPOINT)


def test_sql_typed_by_the_auditor_is_not_sent_to_the_model():
    replay = Replay()

    sql = gemini(replay).generate("  select i.number from invoices i;  ", dialect="postgres")

    assert sql == "select i.number from invoices i"
    assert replay.requests == []


@pytest.mark.parametrize(
    ("status", "body", "reason", "retryable", "words"),
    [
        (429, RATE_LIMITED, "rate_limited", True, "rate limit"),
        (500, INTERNAL, "unavailable", True, "HTTP 500 INTERNAL"),
        (503, OVERLOADED, "unavailable", True, "try again later"),
        (400, BAD_KEY, "api_key", False, "GEMINI_API_KEY"),
        (400, BAD_REQUEST, "rejected", False, "Request contains an invalid argument"),
        (404, UNKNOWN_MODEL, "model", False, "GEMINI_MODEL"),
    ],
)
def test_gemini_api_errors_become_readable_refusals(today, status, body, reason, retryable, words):
    replay = Replay((status, body))

    with pytest.raises(llm.GenerationFailed) as refused:
        gemini(replay).generate(QUESTION, dialect="postgres")

    assert len(replay.requests) == 1  # one attempt: the Celery task decides about retrying
    assert refused.value.reason == reason
    assert refused.value.extra == {"reason": reason}
    assert refused.value.retryable is retryable
    assert words in refused.value.detail
    assert refused.value.detail.startswith("The language model")
    assert "test-key" not in refused.value.detail


@pytest.mark.parametrize(
    ("body", "reason", "words"),
    [
        (PROMPT_BLOCKED, "blocked", "declined this question (PROHIBITED_CONTENT)"),
        (CANDIDATE_BLOCKED, "blocked", "stopped its answer (SAFETY)"),
        (EMPTY_CANDIDATE, "empty", "empty answer"),
        (NO_CANDIDATES, "empty", "gave no answer"),
        (CUT_OFF, "empty", "cut off"),
        (
            CANNOT,
            "unanswerable",
            "cannot be answered from the audit data: there is no table about the weather",
        ),
    ],
)
def test_gemini_answers_without_sql_are_refused(today, body, reason, words):
    with pytest.raises(llm.GenerationFailed) as refused:
        gemini(Replay((200, body))).generate(QUESTION, dialect="postgres")

    assert refused.value.reason == reason
    assert words in refused.value.detail
    assert refused.value.code == "generation_failed"
    assert refused.value.status == 422


@pytest.mark.parametrize(
    "failure",
    [
        lambda request: httpx.ReadTimeout("The read operation timed out", request=request),
        lambda request: httpx.ConnectTimeout("timed out", request=request),
        lambda request: httpx.TimeoutException("timed out", request=request),
    ],
)
def test_gemini_timeout_is_a_refusal(today, failure):
    replay = Replay(failure)

    with pytest.raises(llm.GenerationFailed) as refused:
        gemini(replay).generate(QUESTION, dialect="postgres")

    assert refused.value.reason == "timeout"
    assert refused.value.retryable is True
    assert refused.value.status == 503
    assert "did not answer within 5 seconds" in refused.value.detail


def test_gemini_unreachable_is_a_refusal(today):
    replay = Replay(lambda request: httpx.ConnectError("Name or service not known", request=request))

    with pytest.raises(llm.GenerationFailed) as refused:
        gemini(replay).generate(QUESTION, dialect="postgres")

    assert refused.value.reason == "unreachable"
    assert "could not be reached" in refused.value.detail


def test_gemini_unreadable_answer_is_a_refusal(today):
    replay = Replay((200, "<html><body>Captive portal: please sign in</body></html>"))

    with pytest.raises(llm.GenerationFailed) as refused:
        gemini(replay).generate(QUESTION, dialect="postgres")

    assert refused.value.reason == "unexpected"


def test_gemini_needs_a_key_and_a_known_dialect():
    with pytest.raises(ValueError, match="API key"):
        llm.GeminiGenerator("", MODEL)
    with pytest.raises(ValueError, match="dialect"):
        gemini(Replay()).generate(QUESTION, dialect="mysql")


@pytest.mark.parametrize(
    ("answer", "sql"),
    [
        ("SELECT 1", "SELECT 1"),
        ("SELECT 1;", "SELECT 1"),
        ("SELECT 1 ;\n;", "SELECT 1"),
        ("```sql\nSELECT 1;\n```", "SELECT 1"),
        ("```SQL\nSELECT 1\n```", "SELECT 1"),
        ("```\nSELECT 1\n```", "SELECT 1"),
        ("Here it is:\n```sql\nSELECT 1\n```\nIt lists one.", "SELECT 1"),
        ("```sql\nSELECT 1", "SELECT 1"),
        ("  \n", ""),
    ],
)
def test_clean_sql(answer, sql):
    assert llm.clean_sql(answer) == sql


# -- Offline -------------------------------------------------------------------------------------

DIALECTS = ("postgres", "sqlite")


def referenced_tables(sql: str, dialect: str) -> set[str]:
    """The logical tables a statement reads; asserts that every column is one of its table's."""
    statements = sqlglot.parse(sql, read=dialect)
    assert len(statements) == 1
    tree = statements[0]
    assert isinstance(tree, exp.Select | exp.Union)
    aliases, series = {}, {}
    for table in tree.find_all(exp.Table):
        if is_series(table):  # a series of days: its alias names its one column
            series[table.alias_or_name] = {column.name for column in table.args["alias"].columns}
            continue
        assert table.name in schema.BY_NAME, table.name
        aliases[table.alias_or_name] = schema.BY_NAME[table.name]
    for column in tree.find_all(exp.Column):
        assert column.table in aliases or column.table in series, (
            f"unqualified or unknown column {column.sql()}"
        )
        assert column.name in (series.get(column.table) or aliases[column.table].columns), column.sql()
    limit = tree.args.get("limit")
    if limit is not None:
        assert 1 <= int(limit.expression.name) <= llm.ROW_CAP
    else:
        assert not tree.args.get("group"), "a grouped answer without a row cap"
    return {table.name for table in aliases.values()}


def logical_database() -> sqlite3.Connection:
    """An in-memory SQLite database with the logical tables as auditors see them (no rows)."""
    connection = sqlite3.connect(":memory:")
    add_sqlite_functions(connection)
    for table in schema.TABLES:
        connection.execute(f"CREATE TABLE {table.name} ({', '.join(table.columns)})")
    return connection


LOGICAL = {table.name: table.name for table in schema.TABLES}


def offline(question: str, dialect: str = "sqlite") -> str:
    return llm.OfflineGenerator().generate(question, dialect=dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("question", llm.OfflineGenerator.examples)
def test_every_offline_question_parses_and_reads_only_allowed_tables(today, question, dialect):
    sql = offline(question, dialect)

    assert "```" not in sql and not sql.rstrip().endswith(";")
    assert "provider_id" not in sql  # the rewriter scopes; the templates never try
    assert referenced_tables(sql, dialect) <= set(schema.BY_NAME)
    scoped = scoped_sql(check(sql, dialect=dialect), provider_id=1, dialect=dialect, sources=LOGICAL)
    if dialect == "sqlite":
        logical_database().execute(scoped).fetchall()


def test_every_template_is_reached_by_an_example(today):
    generator = llm.OfflineGenerator()

    reached = {generator.answer(question, dialect="sqlite")[0] for question in generator.examples}

    assert reached == {rule.name for rule in RULES}
    assert len(generator.examples) >= 15


@pytest.mark.parametrize(
    ("question", "template", "tables"),
    [
        ("Unpaid invoices last month", "unpaid_invoices", {"invoices", "customers", "users"}),
        ("show me all open invoices", "unpaid_invoices", {"invoices", "customers", "users"}),
        ("Which customers have overdue payments?", "overdue", {"invoices", "customers", "users"}),
        ("overdue invoices", "overdue", {"invoices", "customers", "users"}),
        ("Revenue by month", "revenue", {"invoices"}),
        ("how much did we bill in 2024", "revenue", {"invoices"}),
        ("payments collected last month", "payments", {"payments"}),
        ("Collection rate by month", "collection_rate", {"invoices"}),
        ("How many invoices did each employee create?", "invoices_per_creator", {"invoices", "users"}),
        ("who created the most invoices", "invoices_per_creator", {"invoices", "users"}),
        ("adjustments per officer in 2025", "adjustments_per_officer", {"adjustments"}),
        ("payments by method this month", "payments_by_method", {"payments", "payment_methods"}),
        (
            "which customers consumed the most electricity",
            "top_consumers",
            {"invoices", "customers", "users"},
        ),
        (
            "average bill per connection type",
            "average_bill_by_connection_type",
            {"invoices", "connections", "connection_types"},
        ),
        ("late payment surcharges", "late_surcharges", {"adjustments", "invoices", "customers", "users"}),
        ("cancelled bills", "cancelled_invoices", {"invoices", "customers", "users"}),
        ("billing runs with skipped connections", "billing_runs", {"billing_runs", "users"}),
        ("history of tariff changes", "tariff_history", {"tariffs", "connection_types", "users"}),
        ("customers who owe more than 5,000", "arrears_above", {"invoices", "customers", "users"}),
        ("unpaid invoices of customer LHR-RES-0001", "invoices_of_customer", {"invoices", "customers"}),
        ("how many invoices per status", "count_by_status", {"invoices"}),
        ("payments received by each cashier", "payments_by_staff", {"payments", "users"}),
        ("who did what in the audit log last month", "audit_activity", {"audit_log", "users"}),
        ("invoices issued in January 2025", "invoices_in_period", {"invoices", "customers", "users"}),
        ("total credit notes this year", "credit_notes", {"credit_notes"}),
        ("credit notes by month", "credit_notes", {"credit_notes"}),
        (
            "list the credit notes issued last month",
            "credit_notes",
            {"credit_notes", "invoices", "customers"},
        ),
        (
            "customers in dunning at final notice",
            "dunning",
            {"dunning_cases", "dunning_levels", "dunning_steps", "customers", "connections"},
        ),
        (
            "disconnection orders issued in 2024",
            "disconnection_orders",
            {"dunning_steps", "customers", "connections"},
        ),
        (
            "which payment plans were broken?",
            "payment_plans",
            {"payment_plans", "customers", "connections", "payment_instalments"},
        ),
        (
            "customers holding a credit balance above 500",
            "credit_balances",
            {"customer_credits", "customers"},
        ),
        ("refunds paid this year", "refunds", {"credit_refunds", "customers", "payment_methods"}),
        ("charge-backs last month", "reversals", {"payment_reversals", "payments", "users"}),
        (
            "unbilled reconnection fees",
            "pending_charges",
            {"pending_charges", "customers", "connections", "invoices"},
        ),
        ("bank files loaded last month", "payment_files", {"payment_files", "payment_file_formats", "users"}),
    ],
)
def test_offline_understands_phrasings(today, question, template, tables):
    name, sql = llm.OfflineGenerator().answer(question, dialect="postgres")

    assert name == template
    assert referenced_tables(sql, "postgres") == tables


def test_last_month_is_computed_when_asked():
    generator = llm.OfflineGenerator()

    with mock.patch("django.utils.timezone.localdate", return_value=date(2025, 3, 15)):
        march = generator.generate("Unpaid invoices last month", dialect="postgres")
    with mock.patch("django.utils.timezone.localdate", return_value=date(2025, 1, 2)):
        january = generator.generate("Unpaid invoices last month", dialect="postgres")

    assert "i.period >= '2025-02-01' AND i.period < '2025-03-01'" in march
    assert "i.period >= '2024-12-01' AND i.period < '2025-01-01'" in january
    assert "i.status IN ('Pending', 'Partially_Paid', 'Overdue')" in march


def test_unpaid_last_month_returns_last_months_open_bills():
    connection = logical_database()
    connection.executemany(
        "INSERT INTO users (id, name) VALUES (?, ?)", [(1, "Ayesha Khan"), (2, "Bilal Ahmed")]
    )
    connection.executemany(
        "INSERT INTO customers (id, user_id, number) VALUES (?, ?, ?)",
        [(1, 1, "LHR-RES-0001"), (2, 2, "LHR-RES-0002")],
    )
    invoices = [
        # number, customer, period, due date, balance, status
        ("A-2025-1", 1, "2025-02-01", "2025-03-10", "4200.00", "Pending"),
        ("A-2025-2", 2, "2025-02-01", "2025-03-10", "1000.00", "Partially_Paid"),
        ("A-2025-3", 2, "2025-02-01", "2025-03-10", "0.00", "Paid"),
        ("A-2025-4", 1, "2025-01-01", "2025-02-10", "3900.00", "Overdue"),
        ("A-2025-5", 1, "2025-03-01", "2025-04-10", "4100.00", "Pending"),
        ("A-2025-6", 2, "2025-02-01", "2025-03-10", "900.00", "Cancelled"),
    ]
    connection.executemany(
        "INSERT INTO invoices (number, customer_id, period, due_date, balance, status) VALUES (?, ?, ?, ?, ?, ?)",
        invoices,
    )

    with mock.patch("django.utils.timezone.localdate", return_value=TODAY):
        sql = offline("Unpaid invoices last month")
    rows = connection.execute(sql).fetchall()

    assert [(row[0], row[1], row[2]) for row in rows] == [
        ("A-2025-1", "LHR-RES-0001", "Ayesha Khan"),
        ("A-2025-2", "LHR-RES-0002", "Bilal Ahmed"),
    ]


def test_overdue_compares_due_dates_with_today(today):
    sql = offline("customers with overdue payments", "postgres")

    assert "i.due_date < '2025-03-15'" in sql
    assert "i.status = 'Overdue'" in sql


@pytest.mark.parametrize(
    ("question", "start", "end"),
    [
        ("Total revenue for January 2025", "2025-01-01", "2025-02-01"),
        ("total revenue for december, 2024", "2024-12-01", "2025-01-01"),
        ("revenue for Sept 2024", "2024-09-01", "2024-10-01"),
        ("revenue in 2024-11", "2024-11-01", "2024-12-01"),
        ("revenue in March", "2025-03-01", "2025-04-01"),
        ("revenue in April", "2024-04-01", "2024-05-01"),
        ("revenue in 2023", "2023-01-01", "2024-01-01"),
        ("revenue this year", "2025-01-01", "2026-01-01"),
    ],
)
def test_revenue_for_a_named_period_is_one_total(today, question, start, end):
    sql = offline(question, "postgres")

    assert f"i.period >= '{start}' AND i.period < '{end}'" in sql
    assert "GROUP BY" not in sql
    assert "i.status <> 'Cancelled'" in sql


def test_revenue_by_month_groups_on_the_period(today):
    sql = offline("Revenue by month", "postgres")

    assert "GROUP BY i.period" in sql and "ORDER BY i.period DESC" in sql
    assert "i.period >=" not in sql


def test_payments_by_month_use_each_dialects_month_function(today):
    assert "to_char(p.received_at, 'YYYY-MM')" in offline("payments collected by month", "postgres")
    assert "strftime('%Y-%m', p.received_at)" in offline("payments collected by month", "sqlite")
    last_month = offline("payments collected last month", "postgres")
    assert "p.received_at >= '2025-02-01' AND p.received_at < '2025-03-01'" in last_month
    assert "GROUP BY" not in last_month


@pytest.mark.parametrize(
    ("question", "amount"),
    [
        ("Customers with arrears above 10000", "10000"),
        ("customers with arrears over Rs. 25,000", "25000"),
        ("customers with balance above 10k", "10000"),
        ("customers owing more than 1.5 lakh", "150000.0"),
        ("customers with arrears", "0"),
    ],
)
def test_arrears_threshold_is_read_from_the_question(today, question, amount):
    assert f"HAVING SUM(i.balance) > {amount}\n" in offline(question)


def test_customer_number_and_top_n_are_read_from_the_question(today):
    sql = offline("Invoices of customer LHR-RES-0001", "postgres")
    assert "c.number = 'LHR-RES-0001'" in sql
    assert "i.status IN" not in sql
    assert "i.status IN" in offline("unpaid invoices of customer no. isb-com-17", "postgres")
    assert "c.number = 'isb-com-17'" in offline("unpaid invoices of customer no. isb-com-17", "postgres")

    assert offline("Top 5 consumers by kWh").endswith("LIMIT 5")
    assert offline("top consumers by kwh").endswith("LIMIT 10")
    assert offline("top 500 consumers by kwh").endswith("LIMIT 100")


def test_billing_runs_filter_problems_only_when_asked(today):
    assert "r.skipped > 0" not in offline("Billing runs and skipped connections")
    assert "(r.skipped > 0 OR r.failed > 0)" in offline("billing runs that skipped connections")


@pytest.mark.parametrize(
    ("question", "sql"),
    [
        ("SELECT i.number FROM invoices i", "SELECT i.number FROM invoices i"),
        ("  select count(*) from invoices;  ", "select count(*) from invoices"),
        ("WITH open AS (SELECT * FROM invoices) SELECT COUNT(*) FROM open", None),
        ("with x as (select 1) select * from x", None),
    ],
)
def test_sql_questions_pass_through(question, sql):
    assert offline(question) == (sql or question)


def test_unknown_question_is_refused_with_examples(today):
    with pytest.raises(llm.GenerationFailed) as refused:
        offline("What will the weather be tomorrow?")

    assert refused.value.detail.startswith("The offline assistant cannot answer this question; ask one of:")
    assert '"Unpaid invoices last month"' in refused.value.detail
    assert refused.value.reason == "unanswerable"
    assert refused.value.status == 422


def test_empty_question_and_unknown_dialect():
    with pytest.raises(llm.GenerationFailed):
        offline("   ")
    with pytest.raises(ValueError, match="dialect"):
        offline("Revenue by month", "oracle")
    assert offline("select 1", "postgresql") == "select 1"


# -- Choosing the client -------------------------------------------------------------------------


def test_generator_is_gemini_with_a_key(settings):
    settings.GEMINI_API_KEY = "a-key"
    settings.GEMINI_MODEL = "gemini-2.5-pro"

    chosen = llm.generator()

    assert isinstance(chosen, llm.GeminiGenerator)
    assert chosen.model == "gemini-2.5-pro"
    assert chosen.name == "gemini:gemini-2.5-pro"


def test_generator_model_defaults_to_flash(settings):
    settings.GEMINI_API_KEY = "a-key"
    if hasattr(settings, "GEMINI_MODEL"):
        del settings.GEMINI_MODEL

    chosen = llm.generator()

    assert isinstance(chosen, llm.GeminiGenerator)
    assert chosen.model == "gemini-2.5-flash"


@pytest.mark.parametrize("key", ["", "   ", None])
def test_generator_is_offline_without_a_key(settings, key):
    settings.GEMINI_API_KEY = key

    chosen = llm.generator()

    assert isinstance(chosen, llm.OfflineGenerator)
    assert chosen.name == "offline"


def test_generator_is_offline_when_the_setting_is_absent(settings):
    if hasattr(settings, "GEMINI_API_KEY"):
        del settings.GEMINI_API_KEY

    assert isinstance(llm.generator(), llm.OfflineGenerator)


def test_collections_questions_read_their_filters_from_the_question(today):
    generator = llm.OfflineGenerator()

    def sql(question: str) -> str:
        return generator.generate(question, dialect="postgres")

    assert "l.action = 'final_notice'" in sql("customers in dunning at final notice")
    assert "l.action = 'reminder'" in sql("who got a dunning reminder?")
    assert "l.action =" not in sql("dunning cases")
    assert "p.status = 'broken'" in sql("broken payment plans")
    assert "p.status =" not in sql("payment plans")
    assert "r.kind IN ('charged_back')" in sql("charge-backs")
    assert "r.kind IN" not in sql("payment reversals")
    assert "cc.balance > 500" in sql("customers with a credit balance above 500")
    assert "g.invoice_id IS NULL" in sql("reconnection fees not billed yet")
    assert "g.invoice_id IS NULL" not in sql("reconnection fees")

"""What every SQL assistant shares: the interface (`SqlGenerator`), its one failure
(`GenerationFailed`), and the handling of a question that is already SQL.

The assistants themselves live apart: `auditing.ai.llm` (Gemini, the real service) and
`auditing.ai.offline` (hand-written templates, the stand-in when no key is set), as a payment
gateway and its dummy live apart. What an assistant returns is only a proposal: the validator, the
provider-scoping rewriter and the read-only executor decide what runs.
"""

import re
from typing import Protocol

from rest_framework import status

from config.errors import DomainError

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


def dialect_of(dialect: str) -> str:
    """ "postgres" or "sqlite" for any spelling the callers use; ValueError for another database."""
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

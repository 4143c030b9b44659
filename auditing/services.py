"""Appending to the audit trail, and checking it.

Rows are appended per chain (a provider's rows; platform rows, with no provider, are chain 0) under
a lock on the chain's head, each hashed over its content and the hash before it. Receivers call
`audit_append` inside the writer's transaction, so a row that cannot be written rolls the change
back with it.
"""

import functools
import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.crypto import salted_hmac

from auditing.ai import execute, llm, scope, validate
from auditing.models import AIQuery, AIQueryStatus, AuditLog, ChainHead
from config import context
from config.bulk import insert_objects
from config.errors import DomainError
from providers.models import Provider

GENESIS = "0" * 64
# Never written to the trail: secrets, and what changes on every sign-in.
SECRET_FIELDS = frozenset({"password", "last_login", "digest", "request_hash", "idempotency_key"})
# Personal details: recorded as a keyed digest (HMAC), so a change shows in the trail but the value
# does not, and nobody without the key can confirm a guessed address by hashing it. Rows written
# before the key was used keep their plain "sha256:" digests (the trail is append-only).
PERSONAL_FIELDS = frozenset({"email", "phone", "address"})
DIGEST_PREFIX = "hmac:"
_DIGEST_SALT = "auditing.personal-detail"
# Large documents kept on the row itself (frozen at issue): the trail records the rest.
DOCUMENT_FIELDS = frozenset({"trace", "customer_snapshot", "provider_snapshot"})


@dataclass(frozen=True)
class Entry:
    action: str
    provider_id: int | None
    object_type: str = ""
    object_id: str = ""
    object_repr: str = ""
    old_values: dict | None = None
    new_values: dict | None = None
    # Who acted, when the request context cannot know yet (a sign-in names its user itself).
    actor_id: int | None = None
    actor_role: str = ""


_ENCODER = DjangoJSONEncoder()
_NATIVE = (str, int, float, bool, type(None), list, dict)


def _json_value(value: Any) -> Any:
    kind = type(value)
    if kind is Decimal:  # the common case first, written as DjangoJSONEncoder writes it
        return str(value)
    if kind is date:
        return value.isoformat()
    return value if isinstance(value, _NATIVE) else _ENCODER.default(value)


def as_json(values: dict) -> dict:
    """Values as JSON values: decimals, dates and times as strings (as DjangoJSONEncoder writes them)."""
    return {name: _json_value(value) for name, value in values.items()}


@functools.cache
def _audited_names(model: type[Model]) -> tuple[str, ...]:
    return tuple(
        field.attname
        for field in model._meta.concrete_fields
        if field.name not in SECRET_FIELDS and field.name not in DOCUMENT_FIELDS
    )


def values_of(obj: Model, fields: Iterable[str] | None = None) -> dict:
    """A row's field values as JSON values (decimals and dates as strings), secrets left out."""
    names = _audited_names(type(obj))
    if fields is not None:
        wanted = set(fields)
        names = tuple(name for name in names if name in wanted or name.removesuffix("_id") in wanted)
    values = obj.__dict__
    return {
        name: digest_of(values.get(name)) if name in PERSONAL_FIELDS else _json_value(values.get(name))
        for name in names
    }


def digest_of(value: Any) -> str | None:
    """The keyed digest of a personal detail: AUDIT_DIGEST_KEY, or else a key derived from SECRET_KEY."""
    if value in (None, ""):
        return None
    secret = settings.AUDIT_DIGEST_KEY or None
    mac = salted_hmac(_DIGEST_SALT, str(value), secret=secret, algorithm="sha256")
    return DIGEST_PREFIX + mac.hexdigest()[:16]


def label_of(obj: Model) -> str:
    """How the trail names a row: a person by their name, never by their e-mail address (the label
    reaches auditors through the log and the AI query)."""
    label = obj._meta.label_lower
    if label == settings.AUTH_USER_MODEL.lower():
        return (obj.name or f"user {obj.pk}")[:200]
    if label == "accounts.userrole":
        return f"{label_of(obj.user)}: {obj.role}"[:200]
    return str(obj)[:200]


def entry_for(action: str, obj: Model, *, old: dict | None = None, new: dict | None = None) -> Entry:
    meta = obj._meta
    provider_id = getattr(obj, "provider_id", None)
    if provider_id is None and meta.model_name == "provider":
        provider_id = obj.pk
    return Entry(
        action=action,
        provider_id=provider_id if provider_id is not None else context.current().provider_id,
        object_type=meta.label_lower,
        object_id=str(obj.pk),
        object_repr=label_of(obj),
        old_values=old,
        new_values=new,
    )


def _digest(row: AuditLog) -> str:
    content = json.dumps(
        [
            row.prev_hash,
            row.provider_id,
            row.actor_id,
            row.actor_role,
            row.action,
            row.object_type,
            row.object_id,
            row.object_repr,
            row.old_values,
            row.new_values,
            row.request_id,
            row.created_at.isoformat(),
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(content.encode()).hexdigest()


@transaction.atomic
def audit_append(entries: Sequence[Entry]) -> list[AuditLog]:
    """Append `entries`, acted by whoever the request or task context names, to their chains."""
    if not entries:
        return []
    who = context.current()
    now = timezone.now()
    rows: list[AuditLog] = []
    by_chain: dict[int, list[Entry]] = {}
    for entry in entries:
        by_chain.setdefault(entry.provider_id or 0, []).append(entry)
    for chain in sorted(by_chain):  # heads are locked in one order, so two writers never deadlock
        head = _locked_head(chain)
        previous = head.last_hash
        for entry in by_chain[chain]:
            # Positional arguments, in the model's field order: Django's fast path, for bulk writes.
            row = AuditLog(
                None,
                entry.provider_id,
                entry.actor_id or who.actor_id,
                entry.actor_role or who.role or "",
                entry.action,
                entry.object_type,
                entry.object_id,
                entry.object_repr,
                entry.old_values,
                entry.new_values,
                who.request_id,
                now,
                previous,
                "",
            )
            row.hash = previous = _digest(row)
            rows.append(row)
        ChainHead.objects.filter(pk=chain).update(last_hash=previous)
    insert_objects(AuditLog, rows)
    return rows


def _locked_head(chain: int) -> ChainHead:
    head, _ = ChainHead.objects.select_for_update().get_or_create(
        chain=chain, defaults={"last_hash": GENESIS}
    )
    return head


@dataclass(frozen=True)
class ChainBreak:
    chain: int
    row_id: int
    problem: str


def audit_verify(*, chain: int | None = None) -> list[ChainBreak]:
    """Recompute every chain (or one) up to its head as it is now (rows appended meanwhile are left
    for the next check); the first broken row of each broken chain, with what is wrong."""
    heads = dict(ChainHead.objects.values_list("chain", "last_hash"))
    chains = [chain] if chain is not None else sorted(heads)
    breaks = []
    for number in chains:
        head = heads.get(number, GENESIS)
        previous = GENESIS
        for row in (
            AuditLog.objects.filter(provider_id=number or None).order_by("id").iterator(chunk_size=2000)
        ):
            if previous == head:
                break
            if row.prev_hash != previous:
                breaks.append(ChainBreak(number, row.pk, "the row before it was changed or removed"))
                break
            if _digest(row) != row.hash:
                breaks.append(ChainBreak(number, row.pk, "this row was changed after it was written"))
                break
            previous = row.hash
        else:
            if previous != head:
                breaks.append(ChainBreak(number, 0, "rows at the end of the chain were removed"))
    return breaks


# --- AI queries ----------------------------------------------------------------------------------

MAX_QUESTION = 2000


class QuestionRefused(DomainError):
    code = "question_refused"


@transaction.atomic
def ai_query_submit(*, asked_by: Any, question: str) -> AIQuery:
    """Record an auditor's question; the caller hands it to a worker (`auditing.tasks`) after commit."""
    question = question.strip()
    if not question:
        raise QuestionRefused("Ask a question, or write a SELECT query.", field="question")
    if len(question) > MAX_QUESTION:
        raise QuestionRefused(f"Ask in at most {MAX_QUESTION:,} characters.", field="question")
    if asked_by.provider_id is None:
        raise QuestionRefused("Questions are answered over one provider's data: sign in as its auditor.")
    return AIQuery.objects.create(provider_id=asked_by.provider_id, asked_by=asked_by, question=question)


def ai_query_dispatched(*, query_id: int) -> None:
    """Note that a question was just handed to the broker (bookkeeping for the reconciler)."""
    AIQuery.objects.filter(pk=query_id).update(dispatched_at=timezone.now())


def ai_query_answer(*, query_id: int) -> AIQuery:
    """Generate the SQL, check it, scope it to the asker's provider, run it, record it all.

    The provider id comes from the stored question's row, never from the request or the model."""
    with transaction.atomic():
        query = AIQuery.objects.select_for_update().select_related("asked_by").get(pk=query_id)
        if query.status != AIQueryStatus.PENDING:
            return query
        provider_id = Provider.objects.values_list("pk", flat=True).get(pk=query.provider_id)
        token = context.bind(actor_id=query.asked_by_id, role="Auditor", provider_id=provider_id)
        try:
            _answer(query, provider_id=provider_id)
            audit_append([_query_entry(query)])
        finally:
            context.reset(token)
        return query


def _answer(query: AIQuery, *, provider_id: int) -> None:
    started = time.monotonic()
    dialect = "postgres" if connection.vendor == "postgresql" else "sqlite"
    assistant = llm.generator()
    query.generator = type(assistant).__name__
    try:
        query.generated_sql = assistant.generate(query.question, dialect=dialect)
        query.executed_sql = scope.check_and_scope(
            query.generated_sql, provider_id=provider_id, dialect=dialect, sources=execute.sources()
        )
        result = execute.run(query.executed_sql, provider_id=provider_id)
    except validate.QueryRefused as refusal:
        query.status, query.reason = AIQueryStatus.REFUSED, refusal.detail
    except (llm.GenerationFailed, execute.QueryFailed) as failure:
        query.status, query.reason = AIQueryStatus.FAILED, failure.detail
    else:
        query.status = AIQueryStatus.ANSWERED
        query.columns, query.rows, query.truncated = result.columns, result.rows, result.truncated
        query.reason = result.note  # why a too-large answer was cut, if it was
    query.milliseconds = int((time.monotonic() - started) * 1000)
    query.finished_at = timezone.now()
    query.save()


def _query_entry(query: AIQuery) -> Entry:
    return Entry(
        action="ai_query",
        provider_id=query.provider_id,
        object_type="auditing.aiquery",
        object_id=str(query.pk),
        object_repr=query.question[:200],
        new_values={
            "question": query.question,
            "generator": query.generator,
            "generatedSql": query.generated_sql,
            "verdict": query.status,
            "reason": query.reason,
            "executedSql": query.executed_sql,
            "rowsReturned": len(query.rows),
            "truncated": query.truncated,
            "milliseconds": query.milliseconds,
        },
    )

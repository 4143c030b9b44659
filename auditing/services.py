"""Appending to the audit trail, and checking it.

Rows are appended per chain (a provider's rows; platform rows, with no provider, are chain 0) under
a lock on the chain's head, each hashed over its content and the hash before it. Receivers call
`audit_append` inside the writer's transaction, so a row that cannot be written rolls the change
back with it. Inside an audit batch (`billing.signals.audit_batch`) the rows wait for the batch's end
and are appended together, by the same code.
"""

import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext

from auditing.ai import execute, llm, scope, validate
from auditing.models import AIQuery, AIQueryStatus, AuditLog, ChainHead
from billing.signals import open_audit_batch
from config import context
from config.bulk import insert_json_rows
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
    # `new_values` encoded already, as `_CANONICAL` encodes them (see `audit_created_later`).
    new_json: str | None = None


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
    return {name: _audited_value(name, values.get(name)) for name in names}


def _audited_value(name: str, value: Any) -> Any:
    return digest_of(value) if name in PERSONAL_FIELDS else _json_value(value)


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


# Rows with no provider of their own that belong to one through a parent: on the parent's chain when
# the parent is at hand (a payment's allocations, made with it), not on the platform's.
_PROVIDER_PARENT = {"invoicing.paymentallocation": "payment"}


def entry_for(action: str, obj: Model, *, old: dict | None = None, new: dict | None = None) -> Entry:
    meta = obj._meta
    provider_id = getattr(obj, "provider_id", None)
    if provider_id is None and meta.model_name == "provider":
        provider_id = obj.pk
    if provider_id is None and meta.label_lower in _PROVIDER_PARENT:
        parent = obj._state.fields_cache.get(_PROVIDER_PARENT[meta.label_lower])
        provider_id = getattr(parent, "provider_id", None)
    return Entry(
        action=action,
        provider_id=provider_id if provider_id is not None else context.current().provider_id,
        object_type=meta.label_lower,
        object_id=str(obj.pk),
        object_repr=label_of(obj),
        old_values=old,
        new_values=new,
    )


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def audit_created_later(rows: Sequence[Model], late: str) -> Callable[[], None]:
    """The records of new `rows` whose field `late` is set after this call (an invoice's number,
    taken under a lock every issuer waits for): their values are read and encoded now, and the
    returned function appends them, `late` and each row's label read then.

    The encoding is `_CANONICAL`'s, keys sorted: the values before `late` and those after it are
    encoded apart and `late` is put between them, so the text and its hash are what encoding the
    whole row at once gives."""
    if not rows:
        return lambda: None
    names = _audited_names(type(rows[0]))
    before = sorted(name for name in names if name < late)
    after = sorted(name for name in names if name > late)
    encode = _CANONICAL.encode
    key = encode(late)

    def values(row: Model, part: list[str]) -> dict:
        stored = row.__dict__
        return {name: _audited_value(name, stored[name]) for name in part}

    # Each part's members without its braces ("" for none): the row's JSON is them around `late`'s.
    encoded = [(encode(values(row, before))[1:-1], encode(values(row, after))[1:-1]) for row in rows]

    def append() -> None:
        entries = []
        for row, (first, last) in zip(rows, encoded, strict=True):
            middle = f"{key}:{encode(_audited_value(late, row.__dict__[late]))}"
            text = "{" + ",".join(part for part in (first, middle, last) if part) + "}"
            entries.append(replace(entry_for("create", row), new_json=text))
        audit_append(entries)

    return append


def _digest(row: AuditLog) -> str:
    content = _CANONICAL.encode(
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
        ]
    )
    return hashlib.sha256(content.encode()).hexdigest()


# The columns COPY writes (the id comes from the table's sequence, drawn under the lane's lock).
_COPIED = (
    "provider_id",
    "actor_id",
    "actor_role",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "old_values",
    "new_values",
    "request_id",
    "created_at",
    "prev_hash",
    "hash",
    "lane",
)


def audit_append(entries: Sequence[Entry]) -> None:
    """Append `entries`, acted by whoever the request or task context names, to a free lane of their
    provider's trail; inside an audit batch, when the batch ends.

    Each entry's values are encoded to JSON once: that text is both hashed (as `_digest` would encode
    it: the row's content is one JSON list, so it is the encoded values joined) and copied."""
    if not entries:
        return
    batch = open_audit_batch()
    if batch is not None:
        batch.extend(entries)
        return
    _append(entries)


# No savepoint of its own: a row that cannot be written fails the writer's whole transaction, which is
# what the trail asks for, and a savepoint would cost two statements on every append.
@transaction.atomic(savepoint=False)
def _append(entries: Sequence[Entry]) -> None:
    who = context.current()
    now = timezone.now()
    encode = _CANONICAL.encode
    created, request_id = now.isoformat(), who.request_id
    rows: list[tuple] = []
    heads: list[tuple[int, str]] = []  # each lane's id and its new last hash
    by_chain: dict[int, list[Entry]] = {}
    for entry in entries:
        by_chain.setdefault(entry.provider_id or 0, []).append(entry)
    for chain in sorted(by_chain):
        head = _free_lane(chain)
        previous = head.last_hash
        for entry in by_chain[chain]:
            actor_id = entry.actor_id or who.actor_id
            role = entry.actor_role or who.role or ""
            old = None if entry.old_values is None else encode(entry.old_values)
            new = entry.new_json or (None if entry.new_values is None else encode(entry.new_values))
            content = ",".join(
                (
                    f'["{previous}"',
                    encode(entry.provider_id),
                    encode(actor_id),
                    encode(role),
                    encode(entry.action),
                    encode(entry.object_type),
                    encode(entry.object_id),
                    encode(entry.object_repr),
                    old or "null",
                    new or "null",
                    encode(request_id),
                    f'"{created}"]',
                )
            )
            digest = hashlib.sha256(content.encode()).hexdigest()
            rows.append(
                (
                    entry.provider_id,
                    actor_id,
                    role,
                    entry.action,
                    entry.object_type,
                    entry.object_id,
                    entry.object_repr,
                    old,
                    new,
                    request_id,
                    now,
                    previous,
                    digest,
                    head.lane,
                )
            )
            previous = digest
        heads.append((head.pk, previous))
    if connection.vendor == "postgresql" and len(rows) <= _FEW:
        _insert_with_heads(heads, rows)
        return
    for pk, last_hash in heads:
        ChainHead.objects.filter(pk=pk).update(last_hash=last_hash)
    insert_json_rows(AuditLog, _COPIED, rows)


# A few rows (one transaction of a service) go in one INSERT that moves the lanes' heads too: one round
# trip where an update and a COPY take three. Many rows (a billing run's chunk) are copied.
_FEW = 50
_JSON_COLUMNS = frozenset({"old_values", "new_values"})


def _insert_with_heads(heads: list[tuple[int, str]], rows: list[tuple]) -> None:
    quote = connection.ops.quote_name
    row_sql = "(" + ", ".join("%s::jsonb" if name in _JSON_COLUMNS else "%s" for name in _COPIED) + ")"
    # Our own tables' names; every value a parameter.
    statement = (
        f"WITH heads AS (UPDATE {quote(ChainHead._meta.db_table)} AS head SET last_hash = moved.last_hash "  # noqa: S608
        f"FROM (VALUES {', '.join(['(%s::bigint, %s)'] * len(heads))}) AS moved (id, last_hash) "
        f"WHERE head.id = moved.id) "
        f"INSERT INTO {quote(AuditLog._meta.db_table)} ({', '.join(map(quote, _COPIED))}) "
        f"VALUES {', '.join([row_sql] * len(rows))}"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            statement, [value for head in heads for value in head] + [v for row in rows for v in row]
        )


# An advisory lock (LANE_LOCKS, chain * MAX_LANES + lane) marks a lane being added; nothing else takes
# these. Lanes are as many as the provider's writers at once, far below MAX_LANES.
LANE_LOCKS = 0x6175
MAX_LANES = 1000


def _free_lane(chain: int) -> ChainHead:
    """A lane of `chain` no other transaction holds, locked until this one commits; a new lane when
    every lane is held. Never waits: a held lane is skipped, a lane another writer is adding too is
    left to it, and a lane this transaction holds already counts as free."""
    if connection.vendor != "postgresql":  # one writer at a time: one lane
        head, _ = ChainHead.objects.get_or_create(chain=chain, lane=0, defaults={"last_hash": GENESIS})
        return head
    table = ChainHead._meta.db_table
    for _ in range(100):
        with connection.cursor() as cursor:
            # Written out: every audited write takes a lane, and the ORM's statement costs more to build
            # than to run.
            cursor.execute(
                f"SELECT id, lane, last_hash FROM {table} WHERE chain = %s "  # noqa: S608 (our table)
                "ORDER BY lane LIMIT 1 FOR UPDATE SKIP LOCKED",
                [chain],
            )
            free = cursor.fetchone()
            if free is not None:
                return ChainHead(pk=free[0], chain=chain, lane=free[1], last_hash=free[2])
            cursor.execute(f"SELECT coalesce(max(lane) + 1, 0) FROM {table} WHERE chain = %s", [chain])  # noqa: S608
            (lane,) = cursor.fetchone()
            # A lane another writer is adding (its row not committed yet) is left to it: an insert
            # would wait for that writer's commit.
            while lane < MAX_LANES:
                cursor.execute(
                    "SELECT pg_try_advisory_xact_lock(%s, %s)", [LANE_LOCKS, chain * MAX_LANES + lane]
                )
                if cursor.fetchone()[0]:
                    break
                lane += 1
            else:
                continue
            cursor.execute(
                f"""INSERT INTO {table} (chain, lane, last_hash) VALUES (%s, %s, %s)
                    ON CONFLICT (chain, lane) DO NOTHING RETURNING id""",  # noqa: S608 (our table)
                [chain, lane, GENESIS],
            )
            added = cursor.fetchone()
        if added is not None:
            return ChainHead(pk=added[0], chain=chain, lane=lane, last_hash=GENESIS)
    raise RuntimeError(f"No lane of audit chain {chain} could be taken.")


@dataclass(frozen=True)
class ChainBreak:
    chain: int
    row_id: int
    problem: str
    lane: int = 0


def audit_verify(*, chain: int | None = None) -> list[ChainBreak]:
    """Recompute every chain (or one) lane by lane up to each lane's head; the first broken row of each
    broken lane, with what is wrong.

    Heads and rows are read in one snapshot (rows appended meanwhile are left for the next check). A
    chain is read once, in id order: a lane's rows are appended one transaction at a time under its
    head's lock, with ids drawn then, so id order is each lane's order."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return _verified(chain)


def _verified(chain: int | None) -> list[ChainBreak]:
    heads: dict[int, dict[int, str]] = {}
    for number, lane, last_hash in ChainHead.objects.values_list("chain", "lane", "last_hash"):
        heads.setdefault(number, {})[lane] = last_hash
    chains = [chain] if chain is not None else sorted(heads)
    breaks = []
    for number in chains:
        lanes = heads.get(number, {0: GENESIS})
        previous = dict.fromkeys(lanes, GENESIS)
        open_lanes = {lane for lane, head in lanes.items() if head != GENESIS}
        broken: set[int] = set()
        rows = AuditLog.objects.filter(provider_id=number or None).order_by("id").iterator(chunk_size=2000)
        for row in rows:
            lane = row.lane
            if lane not in lanes:
                breaks.append(ChainBreak(number, row.pk, "this row is in no lane of the chain", lane))
                broken.add(lane)
                lanes[lane] = previous[lane] = ""
            if lane in broken or lane not in open_lanes:
                continue  # reported already, or appended after the heads were read
            if row.prev_hash != previous[lane]:
                breaks.append(ChainBreak(number, row.pk, "the row before it was changed or removed", lane))
                broken.add(lane)
            elif _digest(row) != row.hash:
                breaks.append(ChainBreak(number, row.pk, "this row was changed after it was written", lane))
                broken.add(lane)
            else:
                previous[lane] = row.hash
                if row.hash == lanes[lane]:
                    open_lanes.discard(lane)
            if not open_lanes - broken:
                break
        for lane in sorted(open_lanes - broken):
            breaks.append(ChainBreak(number, 0, "rows at the end of the chain were removed", lane))
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
        raise QuestionRefused(gettext("Ask a question, or write a SELECT query."), field="question")
    if len(question) > MAX_QUESTION:
        raise QuestionRefused(
            gettext("Ask in at most %(max_question)s characters.")
            % {"max_question": format(MAX_QUESTION, ",")},
            field="question",
        )
    if asked_by.provider_id is None:
        raise QuestionRefused(
            gettext("Questions are answered over one provider's data: sign in as its auditor.")
        )
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

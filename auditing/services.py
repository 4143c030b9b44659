"""Appending to the audit trail, and checking it.

Rows are appended per chain (a provider's rows; platform rows, with no provider, are chain 0) under
a lock on the chain's head, each hashed over its content and the hash before it. Receivers call
`audit_append` inside the writer's transaction, so a row that cannot be written rolls the change
back with it.
"""

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from auditing.models import AuditLog, ChainHead
from config import context
from invoicing.bulk import insert_objects

GENESIS = "0" * 64
# Never written to the trail: secrets, and what changes on every sign-in.
SECRET_FIELDS = frozenset({"password", "last_login", "digest", "request_hash", "idempotency_key"})
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


def as_json(values: dict) -> dict:
    """Values as JSON values: decimals, dates and times as strings."""
    return json.loads(json.dumps(values, cls=DjangoJSONEncoder))


def values_of(obj: Model, fields: Iterable[str] | None = None) -> dict:
    """A row's field values as JSON values (decimals and dates as strings), secrets left out."""
    names = [
        field.attname
        for field in obj._meta.concrete_fields
        if field.name not in SECRET_FIELDS and field.name not in DOCUMENT_FIELDS
    ]
    if fields is not None:
        wanted = set(fields)
        names = [name for name in names if name in wanted or name.removesuffix("_id") in wanted]
    return as_json({name: obj.__dict__.get(name) for name in names})


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
        object_repr=str(obj)[:200],
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
            row = AuditLog(
                provider_id=entry.provider_id,
                actor_id=who.actor_id,
                actor_role=who.role or "",
                action=entry.action,
                object_type=entry.object_type,
                object_id=entry.object_id,
                object_repr=entry.object_repr,
                old_values=entry.old_values,
                new_values=entry.new_values,
                request_id=who.request_id,
                created_at=now,
                prev_hash=previous,
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
    """Recompute every chain (or one); the first broken row of each broken chain, with what is wrong."""
    chains = [chain] if chain is not None else sorted(ChainHead.objects.values_list("chain", flat=True))
    breaks = []
    for number in chains:
        rows = AuditLog.objects.filter(provider_id=number or None).order_by("id")
        previous = GENESIS
        for row in rows.iterator(chunk_size=2000):
            if row.prev_hash != previous:
                breaks.append(ChainBreak(number, row.pk, "the row before it was changed or removed"))
                break
            if _digest(row) != row.hash:
                breaks.append(ChainBreak(number, row.pk, "this row was changed after it was written"))
                break
            previous = row.hash
        else:
            head = ChainHead.objects.filter(pk=number).values_list("last_hash", flat=True).first()
            if head is not None and head != previous:
                breaks.append(ChainBreak(number, 0, "rows at the end of the chain were removed"))
    return breaks

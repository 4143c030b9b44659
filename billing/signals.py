"""The bulk-write signals, and the audit batch. `bulk_create` and `QuerySet.update()` send no model
signals, so every bulk path sends one of these itself, after writing, with `sender` = the model; the
audit trail listens (DESIGN.md, "Audit").

- `rows_bulk_created`: `rows` = the rows inserted (with their ids). Or, sent before the insert with
  `late` = a field not set yet (an invoice's number, taken under a lock every issuer waits for): a
  receiver prepares what it can and returns a function, which the sender calls once `late` is set
  and the rows are inserted, in the same transaction.
- `rows_bulk_updated`: `rows` = the rows as they are after the update, `fields` = the columns changed,
  `before` = {id: {field: old value}} for those columns.

`audit_batch()`: the audit rows that a block's writes record are appended together, in one append, when
the block ends (a payment writes a payment, an invoice update and allocations: one lane lock, one head
update and one insert instead of three of each). The block runs inside the writer's transaction, so the
rows still commit or roll back with the change; a block that raises appends nothing. Nothing inside the
block may carry on past a failed write of its own (a savepoint rolled back inside it would leave that
write's entries in the batch). The audit trail collects into the open batch and appends it on
`audit_batch_closed` (`entries` = what it collected).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.dispatch import Signal

rows_bulk_created = Signal()
rows_bulk_updated = Signal()
audit_batch_closed = Signal()

_batch: ContextVar[list | None] = ContextVar("audit_batch", default=None)


def open_audit_batch() -> list | None:
    """The entries of the batch open here, to add to; None when none is open."""
    return _batch.get()


@contextmanager
def audit_batch() -> Iterator[None]:
    """Collect the audit rows written inside the block, and append them at its end (inside a
    transaction: the caller's). A batch opened inside another joins it."""
    if _batch.get() is not None:
        yield
        return
    entries: list = []
    token = _batch.set(entries)
    try:
        yield
    finally:
        _batch.reset(token)
    if entries:
        audit_batch_closed.send(sender=None, entries=entries)

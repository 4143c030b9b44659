"""The bulk-write signals. `bulk_create` and `QuerySet.update()` send no model signals, so every bulk
path sends one of these itself, after writing, with `sender` = the model; the audit trail listens
(DESIGN.md, "Audit").

- `rows_bulk_created`: `rows` = the rows inserted (with their ids). Or, sent before the insert with
  `late` = a field not set yet (an invoice's number, taken under a lock every issuer waits for): a
  receiver prepares what it can and returns a function, which the sender calls once `late` is set
  and the rows are inserted, in the same transaction.
- `rows_bulk_updated`: `rows` = the rows as they are after the update, `fields` = the columns changed,
  `before` = {id: {field: old value}} for those columns.
"""

from django.dispatch import Signal

rows_bulk_created = Signal()
rows_bulk_updated = Signal()

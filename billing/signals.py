"""The bulk-write signals. `bulk_create` and `QuerySet.update()` send no model signals, so every bulk
path sends one of these itself, after writing, with `sender` = the model; the audit trail listens
(DESIGN.md, "Audit").

- `rows_bulk_created`: `rows` = the rows inserted (with their ids).
- `rows_bulk_updated`: `rows` = the rows as they are after the update, `fields` = the columns changed,
  `before` = {id: {field: old value}} for those columns.
"""

from django.dispatch import Signal

rows_bulk_created = Signal()
rows_bulk_updated = Signal()

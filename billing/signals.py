"""The bulk-write signal. `bulk_create` and `QuerySet.update()` send no model signals, so every bulk
path sends this itself, after writing, with `sender` = the model and `rows` = the rows written; the
audit trail listens (DESIGN.md, "Audit")."""

from django.dispatch import Signal

rows_bulk_created = Signal()

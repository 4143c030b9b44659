"""Idempotent writes: a retried request (the same Idempotency-Key) gets back the row the first one made."""

import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import IntegrityError
from django.db.models import Model
from django.utils.translation import gettext as _

from invoicing.services.errors import IdempotencyMismatch

Row = TypeVar("Row", bound=Model)


def hash_request(**values: Any) -> str:
    text = "|".join(f"{key}={values[key]}" for key in sorted(values))
    return hashlib.sha256(text.encode()).hexdigest()


def replayed(earlier: Any, request_hash: str) -> Any:
    """The row a retried request made before (a payment, an adjustment), if any; the same key with
    another body is refused."""
    if earlier is not None and earlier.request_hash != request_hash:
        what = type(earlier)._meta.verbose_name
        raise IdempotencyMismatch(
            _("This Idempotency-Key was already used for a different %(what)s; use a new key for a new one.")
            % {"what": what}
        )
    return earlier


def earlier_request(
    model: type[Row], by: str, user: Any, idempotency_key: str, request_hash: str
) -> Row | None:
    """The row `user`'s earlier request with this key made (`by`: the field naming them), if any."""
    rows = model.objects.filter(**{by: user}, idempotency_key=idempotency_key)
    return replayed(rows.first(), request_hash)


def created_once(
    create: Callable[[], tuple[Row, bool]], earlier: Callable[[], Row | None], *, idempotency_key: str
) -> tuple[Row, bool]:
    """`create()`, or, when a retry with the same key won the race to the key's unique constraint,
    the row that retry made (not new)."""
    try:
        return create()
    except IntegrityError:
        found = earlier() if idempotency_key else None
        if found is None:
            raise
        return found, False

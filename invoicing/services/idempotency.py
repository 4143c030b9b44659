"""Idempotent writes: a retried request (the same Idempotency-Key) gets back the row the first one made."""

import hashlib
from typing import Any

from invoicing.services.errors import IdempotencyMismatch


def hash_request(**values: Any) -> str:
    text = "|".join(f"{key}={values[key]}" for key in sorted(values))
    return hashlib.sha256(text.encode()).hexdigest()


def replayed(earlier: Any, request_hash: str) -> Any:
    """The row a retried request made before (a payment, an adjustment), if any; the same key with
    another body is refused."""
    if earlier is not None and earlier.request_hash != request_hash:
        what = type(earlier)._meta.verbose_name
        raise IdempotencyMismatch(
            f"This Idempotency-Key was already used for a different {what}; use a new key for a new one."
        )
    return earlier

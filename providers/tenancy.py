"""Scoping rows to the caller's provider: the rule behind every staff lookup."""

from typing import Any

from django.db.models import QuerySet


def scope_to_provider(queryset: QuerySet, user: Any, *, field: str = "provider_id") -> QuerySet:
    """Rows of the user's provider; every provider's rows for a platform user (one with no provider).

    Anonymous or inactive callers get nothing. Ids from a request are looked up in what this returns,
    so a row of another provider is simply not found (404), never forbidden (403).
    """
    if not (user and user.is_authenticated and user.is_active):
        return queryset.none()
    if user.provider_id is None:
        return queryset
    return queryset.filter(**{field: user.provider_id})

from typing import Any

from django.db.models import QuerySet

from auditing.models import AIQuery, AuditLog
from providers.tenancy import scope_to_provider


def audit_log_for(*, user: Any) -> QuerySet[AuditLog]:
    """The trail of the caller's provider (a platform user: every provider's), newest first."""
    return scope_to_provider(AuditLog.objects.select_related("actor"), user).order_by("-id")


def invoice_history_for(*, user: Any, invoice_id: int) -> QuerySet[AuditLog]:
    """Every audit row of one invoice, oldest first: its issue, each change, its payments' effects."""
    return (
        audit_log_for(user=user)
        .filter(object_type="invoicing.invoice", object_id=str(invoice_id))
        .order_by("id")
    )


def ai_queries_of(*, user: Any) -> QuerySet[AIQuery]:
    """The caller's own questions, within their provider."""
    return scope_to_provider(AIQuery.objects.filter(asked_by=user), user)

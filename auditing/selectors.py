from datetime import datetime
from typing import Any

from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast

from auditing.models import AIQuery, AIQueryStatus, AuditLog
from invoicing.models import Invoice, Payment
from providers.tenancy import scope_to_provider


def audit_log_for(*, user: Any) -> QuerySet[AuditLog]:
    """The trail of the caller's provider (a platform user: every provider's), newest first."""
    return scope_to_provider(AuditLog.objects.select_related("actor"), user).order_by("-id")


def invoice_history_for(*, user: Any, invoice: Invoice) -> QuerySet[AuditLog]:
    """Every audit row of one invoice, oldest first: its issue and each change, with the rows of its
    payments (posted on it, or on a later bill and settling this one too), their allocations to it,
    and its adjustments."""

    def keys(related: QuerySet) -> QuerySet:
        return related.annotate(key=Cast("pk", output_field=CharField())).values("key")

    payments = Payment.objects.filter(Q(invoice=invoice) | Q(allocations__invoice=invoice)).distinct()
    rows = (
        Q(object_type="invoicing.invoice", object_id=str(invoice.pk))
        | Q(object_type="invoicing.payment", object_id__in=keys(payments))
        | Q(object_type="invoicing.paymentallocation", object_id__in=keys(invoice.allocations.all()))
        | Q(object_type="invoicing.adjustment", object_id__in=keys(invoice.adjustments.all()))
    )
    return audit_log_for(user=user).filter(rows).order_by("id")


def ai_queries_of(*, user: Any) -> QuerySet[AIQuery]:
    """The caller's own questions, within their provider."""
    return scope_to_provider(AIQuery.objects.filter(asked_by=user), user)


def ai_queries_stalled(*, still_since: datetime) -> QuerySet[AIQuery]:
    """Questions still waiting for a worker, neither asked nor sent since `still_since`: their message
    was lost, or has waited that long in the queue; either way sending them again is safe."""
    return (
        AIQuery.objects.filter(status=AIQueryStatus.PENDING, created_at__lt=still_since)
        .exclude(dispatched_at__gte=still_since)
        .order_by("pk")
    )

"""The seed's auditor endpoints: the provider's invoices and the audit trail, read-only, and the
plain-language questions answered as checked, provider-scoped, read-only SQL."""

import time
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import Allowed
from auditing.models import AIQueryStatus, AuditLog
from auditing.selectors import ai_queries_of, audit_log_for, invoice_history_for
from auditing.services import MAX_QUESTION, ai_query_submit
from auditing.tasks import dispatch
from config.errors import DomainError
from config.queue import require_queue
from invoicing.api import ERRORS, QUEUE_DOWN, InvoiceOutput
from invoicing.models import Invoice
from invoicing.selectors import invoice_get_for, invoice_list_for

MAX_WAIT = 30  # seconds a request may wait for its answer
POLL_SECONDS = 0.2


class AuditLogOutput(serializers.Serializer):
    auditId = serializers.IntegerField(source="pk")
    action = serializers.CharField()
    objectType = serializers.CharField(source="object_type")
    objectId = serializers.CharField(source="object_id")
    objectRepr = serializers.CharField(source="object_repr")
    performedBy = serializers.SerializerMethodField()
    role = serializers.CharField(source="actor_role")
    oldValue = serializers.JSONField(source="old_values")
    newValue = serializers.JSONField(source="new_values")
    requestId = serializers.CharField(source="request_id")
    performedAt = serializers.DateTimeField(source="created_at")

    def get_performedBy(self, row: AuditLog) -> dict | None:
        return {"userId": row.actor.pk, "name": row.actor.name} if row.actor else None


class InstantField(IsoDateTimeField):
    """An ISO date and time that is an instant the database can compare: refused with a 400 when it
    lies outside years 1 to 9999 in UTC, where converting it would overflow."""

    def to_python(self, value: Any) -> datetime | None:
        try:
            instant = super().to_python(value)
            return instant if instant is None else instant.astimezone(UTC)
        except OverflowError as exc:
            raise ValidationError(
                _("Give a date and time between the years 1 and 9999."), code="invalid"
            ) from exc


class InstantFilter(filters.IsoDateTimeFilter):
    field_class = InstantField


class AuditLogFilter(filters.FilterSet):
    action = filters.CharFilter()
    objectType = filters.CharFilter(field_name="object_type")
    actor = filters.NumberFilter(field_name="actor_id", min_value=1, max_value=2**63 - 1)
    since = InstantFilter(field_name="created_at", lookup_expr="gte")
    until = InstantFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditLog
        fields: list[str] = []


class AuditInvoicesApi(generics.ListAPIView):
    """Every invoice of the auditor's provider (read-only)."""

    permission_classes = [Allowed.to("invoicing.view_invoice", provider_wide=True)]
    serializer_class = InvoiceOutput
    queryset = Invoice.objects.none()

    def get_queryset(self) -> QuerySet[Invoice]:
        return invoice_list_for(user=self.request.user)


class AuditInvoiceSearchApi(AuditInvoicesApi):
    """Invoices whose number contains `number` (e.g. DISCO-2024-0001)."""

    @extend_schema(
        parameters=[OpenApiParameter("number", str, required=True)],
        responses={200: InvoiceOutput(many=True), **ERRORS},
    )
    def get(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Invoice]:
        number = self.request.query_params.get("number", "").strip()
        if not number:
            raise DomainError(_("Give part of an invoice number to search for (number=…)."), field="number")
        return super().get_queryset().filter(number__icontains=number[:40])


class AuditLogsApi(generics.ListAPIView):
    permission_classes = [Allowed.to("auditing.view_auditlog")]
    serializer_class = AuditLogOutput
    filterset_class = AuditLogFilter
    queryset = AuditLog.objects.none()

    def get_queryset(self) -> QuerySet[AuditLog]:
        return audit_log_for(user=self.request.user)


class AuditLogSearchApi(AuditLogsApi):
    """The trail of the invoices whose number contains `invoiceNumber`."""

    filterset_class = None

    @extend_schema(
        parameters=[OpenApiParameter("invoiceNumber", str, required=True)],
        responses={200: AuditLogOutput(many=True), **ERRORS},
    )
    def get(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[AuditLog]:
        number = self.request.query_params.get("invoiceNumber", "").strip()
        if not number:
            raise DomainError(_("Give part of an invoice number (invoiceNumber=…)."), field="invoiceNumber")
        ids = (
            invoice_list_for(user=self.request.user)
            .filter(number__icontains=number[:40])
            .values_list("pk", flat=True)
        )
        return (
            super()
            .get_queryset()
            .filter(object_type="invoicing.invoice", object_id__in=[str(pk) for pk in ids[:500]])
        )


class InvoiceHistoryApi(generics.ListAPIView):
    """One invoice's change history, oldest first, with its payments and adjustments."""

    permission_classes = [Allowed.to("auditing.view_auditlog")]
    serializer_class = AuditLogOutput
    queryset = AuditLog.objects.none()

    def get_queryset(self) -> QuerySet[AuditLog]:
        invoice = invoice_get_for(user=self.request.user, invoice_id=self.kwargs["invoice_id"])
        return invoice_history_for(user=self.request.user, invoice=invoice)


class AIQueryOutput(serializers.Serializer):
    queryId = serializers.IntegerField(source="pk")
    question = serializers.CharField()
    status = serializers.CharField()
    generatedSql = serializers.CharField(source="generated_sql")
    executedSql = serializers.CharField(source="executed_sql")
    reason = serializers.CharField()
    columns = serializers.JSONField()
    rows = serializers.JSONField()
    truncated = serializers.BooleanField()
    milliseconds = serializers.IntegerField(allow_null=True)
    askedAt = serializers.DateTimeField(source="created_at")
    finishedAt = serializers.DateTimeField(source="finished_at", allow_null=True)


class AIQueryInput(serializers.Serializer):
    question = serializers.CharField(max_length=MAX_QUESTION, help_text="Plain language, or a SELECT query.")
    wait = serializers.IntegerField(
        min_value=0,
        max_value=MAX_WAIT,
        default=0,
        help_text="Seconds to wait for the answer before returning.",
    )


class AIQueryCollectionApi(APIView):
    """An auditor's question: answered by a worker; `wait` returns the answer when it comes in time."""

    permission_classes = [Allowed.to("auditing.add_aiquery")]

    @extend_schema(
        request=AIQueryInput,
        responses={202: AIQueryOutput, 200: AIQueryOutput, **ERRORS, **QUEUE_DOWN},
        summary="Ask a question about the provider's data (read-only, this provider's rows only)",
    )
    def post(self, request: Request) -> Response:
        data = AIQueryInput(data=request.data)
        data.is_valid(raise_exception=True)
        require_queue("Answering a question")
        query = ai_query_submit(asked_by=request.user, question=data.validated_data["question"])
        dispatch(query)
        deadline = time.monotonic() + data.validated_data["wait"]
        query.refresh_from_db()
        while query.status == AIQueryStatus.PENDING and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            query.refresh_from_db()
        done = query.status != AIQueryStatus.PENDING
        return Response(
            AIQueryOutput(query).data, status=status.HTTP_200_OK if done else status.HTTP_202_ACCEPTED
        )


class AIQueryItemApi(APIView):
    permission_classes = [Allowed.to("auditing.add_aiquery")]

    @extend_schema(responses={200: AIQueryOutput, **ERRORS}, summary="A question's answer (the asker's own)")
    def get(self, request: Request, query_id: int) -> Response:
        query = get_object_or_404(ai_queries_of(user=request.user), pk=query_id)
        return Response(AIQueryOutput(query).data)

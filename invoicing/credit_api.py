"""Credit notes, a customer's credit balance and refunds of it, in the API. Thin, as invoicing/api.py:
parse, look up through a selector, call one service, render. A credit note made by cancelling or
re-rating a bill comes from PUT /api/invoices/{id}; an officer credits part of any bill here."""

from decimal import Decimal

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import Allowed
from invoicing import pdf, selectors, services
from invoicing.api import (
    ERRORS,
    ID,
    IDEMPOTENCY_HEADER,
    MONEY,
    PDF_RESPONSE,
    idempotency_key,
    method_named,
    pdf_response,
    replay_aware,
)
from invoicing.models import CreditNote, CreditRefund


class CreditNoteLineOutput(serializers.Serializer):
    label = serializers.CharField()
    amount = serializers.DecimalField(**MONEY, help_text="Signed: what the line credits.")


class CreditNoteOutput(serializers.Serializer):
    creditNoteId = serializers.IntegerField(source="pk")
    creditNoteNumber = serializers.CharField(source="number")
    billId = serializers.IntegerField(source="invoice_id")
    invoiceNumber = serializers.CharField(source="invoice.number")
    customerId = serializers.CharField(source="customer.number")
    issueDate = serializers.DateField(source="issue_date")
    amount = serializers.DecimalField(**MONEY, help_text="Credited in all.")
    applied = serializers.DecimalField(**MONEY, help_text="Taken off the bill's balance.")
    toCreditBalance = serializers.DecimalField(
        source="to_balance", **MONEY, help_text="What the bill no longer owed: the customer's credit balance."
    )
    reason = serializers.CharField()
    issuedBy = serializers.CharField(source="issued_by_name")
    balanceBefore = serializers.DecimalField(source="balance_before", **MONEY)
    newBalance = serializers.DecimalField(source="balance_after", **MONEY)
    createdAt = serializers.DateTimeField(source="created_at")


class CreditNoteDetailOutput(CreditNoteOutput):
    lines = CreditNoteLineOutput(many=True)


class CreditNoteInput(serializers.Serializer):
    billId = serializers.IntegerField(**ID)
    amount = serializers.DecimalField(**MONEY, min_value=Decimal("0.01"))
    reason = serializers.CharField(max_length=500)


class CreditNoteCollectionApi(generics.ListAPIView):
    serializer_class = CreditNoteOutput

    def get_permissions(self) -> list:
        perm = "invoicing.add_creditnote" if self.request.method == "POST" else "invoicing.view_creditnote"
        return [Allowed.to(perm)()]

    def get_queryset(self) -> QuerySet[CreditNote]:
        return selectors.credit_note_list_for(user=self.request.user)

    @extend_schema(summary="Credit notes, newest first")
    def get(self, request: Request) -> Response:
        return super().get(request)

    @extend_schema(
        request=CreditNoteInput,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: CreditNoteDetailOutput, 200: CreditNoteDetailOutput, **ERRORS},
        summary="Credit part or all of an issued bill, paid or not (officers); beyond what it owes, the "
        "credit becomes the customer's credit balance",
    )
    def post(self, request: Request) -> Response:
        key = idempotency_key(request)
        data = CreditNoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        invoice = selectors.invoice_get_for(
            user=request.user, invoice_id=values["billId"], perm="invoicing.add_creditnote"
        )
        note, new = services.credit_note_issue(
            invoice=invoice,
            amount=values["amount"],
            reason=values["reason"],
            issued_by=request.user,
            idempotency_key=key,
        )
        note = selectors.credit_note_get_for(user=request.user, credit_note_id=note.pk)
        return replay_aware(CreditNoteDetailOutput(note).data, replayed=not new)


class CreditNoteItemApi(APIView):
    permission_classes = [Allowed.to("invoicing.view_creditnote")]

    @extend_schema(responses={200: CreditNoteDetailOutput, **ERRORS}, summary="A credit note with its lines")
    def get(self, request: Request, credit_note_id: int) -> Response:
        note = selectors.credit_note_get_for(user=request.user, credit_note_id=credit_note_id)
        return Response(CreditNoteDetailOutput(note).data)


class CreditNotePdfApi(APIView):
    permission_classes = [Allowed.to("invoicing.view_creditnote")]

    @extend_schema(
        responses={(200, "application/pdf"): PDF_RESPONSE, **ERRORS}, summary="A credit note as a PDF"
    )
    def get(self, request: Request, credit_note_id: int) -> HttpResponse:
        note = selectors.credit_note_get_for(user=request.user, credit_note_id=credit_note_id)
        return pdf_response(pdf.credit_note_pdf(note), note.number)


# --- the credit balance and refunds ----------------------------------------------------------------


class CreditEntryOutput(serializers.Serializer):
    kind = serializers.CharField()
    amount = serializers.DecimalField(**MONEY, help_text="Signed: positive into the balance.")
    balanceAfter = serializers.DecimalField(source="balance_after", **MONEY)
    creditNoteNumber = serializers.CharField(source="credit_note.number", default=None)
    receiptNumber = serializers.CharField(source="payment.receipt_number", default=None)
    invoiceNumber = serializers.CharField(source="invoice.number", default=None)
    refundNumber = serializers.CharField(source="refund.number", default=None)
    createdAt = serializers.DateTimeField(source="created_at")


class CustomerCreditOutput(serializers.Serializer):
    customerId = serializers.IntegerField()
    customerNumber = serializers.CharField()
    creditBalance = serializers.DecimalField(**MONEY)
    entries = CreditEntryOutput(many=True)


class CustomerCreditApi(APIView):
    permission_classes = [Allowed.to("invoicing.view_customercredit")]

    @extend_schema(
        responses={200: CustomerCreditOutput, **ERRORS},
        summary="A customer's credit balance and its movements, newest first",
    )
    def get(self, request: Request, customer_id: int) -> Response:
        customer, balance, entries = selectors.customer_credit_for(user=request.user, customer_id=customer_id)
        body = {
            "customerId": customer.pk,
            "customerNumber": customer.number,
            "creditBalance": balance,
            "entries": entries[:100],
        }
        return Response(CustomerCreditOutput(body).data)


class CreditRefundOutput(serializers.Serializer):
    refundId = serializers.IntegerField(source="pk")
    refundNumber = serializers.CharField(source="number")
    customerId = serializers.IntegerField(source="customer_id")
    customerNumber = serializers.CharField(source="customer.number")
    amount = serializers.DecimalField(**MONEY)
    method = serializers.CharField(source="method.name")
    reference = serializers.CharField()
    reason = serializers.CharField()
    officerName = serializers.CharField(source="officer_name")
    officerDesignation = serializers.CharField(source="officer_designation")
    balanceBefore = serializers.DecimalField(source="balance_before", **MONEY)
    newBalance = serializers.DecimalField(source="balance_after", **MONEY)
    createdAt = serializers.DateTimeField(source="created_at")


class CreditRefundInput(serializers.Serializer):
    customerId = serializers.IntegerField(**ID)
    amount = serializers.DecimalField(**MONEY, min_value=Decimal("0.01"))
    method = serializers.CharField(
        max_length=30, help_text="How the money is paid back: a payment method's code or id."
    )
    reason = serializers.CharField(max_length=500)
    reference = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)


class CreditRefundCollectionApi(generics.ListAPIView):
    serializer_class = CreditRefundOutput

    def get_permissions(self) -> list:
        perm = (
            "invoicing.add_creditrefund" if self.request.method == "POST" else "invoicing.view_creditrefund"
        )
        return [Allowed.to(perm)()]

    def get_queryset(self) -> QuerySet[CreditRefund]:
        return selectors.credit_refund_list_for(user=self.request.user)

    @extend_schema(summary="Refunds of customers' credit balances, newest first")
    def get(self, request: Request) -> Response:
        return super().get(request)

    @extend_schema(
        request=CreditRefundInput,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: CreditRefundOutput, 200: CreditRefundOutput, **ERRORS},
        summary="Refund part or all of a customer's credit balance (officers), with a refund receipt",
    )
    def post(self, request: Request) -> Response:
        key = idempotency_key(request)
        data = CreditRefundInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        customer, _, _ = selectors.customer_credit_for(user=request.user, customer_id=values["customerId"])
        refund, new = services.credit_refund(
            customer=customer,
            amount=values["amount"],
            method=method_named(values["method"]),
            reason=values["reason"],
            reference=values["reference"],
            officer=request.user,
            idempotency_key=key,
        )
        refund = selectors.credit_refund_get_for(user=request.user, refund_id=refund.pk)
        return replay_aware(CreditRefundOutput(refund).data, replayed=not new)


class CreditRefundItemApi(APIView):
    permission_classes = [Allowed.to("invoicing.view_creditrefund")]

    @extend_schema(responses={200: CreditRefundOutput, **ERRORS}, summary="A refund")
    def get(self, request: Request, refund_id: int) -> Response:
        refund = selectors.credit_refund_get_for(user=request.user, refund_id=refund_id)
        return Response(CreditRefundOutput(refund).data)


class CreditRefundReceiptPdfApi(APIView):
    permission_classes = [Allowed.to("invoicing.view_creditrefund")]

    @extend_schema(
        responses={(200, "application/pdf"): PDF_RESPONSE, **ERRORS}, summary="A refund receipt as a PDF"
    )
    def get(self, request: Request, refund_id: int) -> HttpResponse:
        refund = selectors.credit_refund_get_for(user=request.user, refund_id=refund_id)
        return pdf_response(pdf.refund_receipt_pdf(refund), refund.number)

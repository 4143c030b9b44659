"""The invoice endpoints of the second seed, the first seed's bill retrieval, payments, officers'
adjustments, receipts and PDFs, billing runs, and the e-mails sent about them. Thin: parse, look up through a selector, call one
service, render. JSON keys follow the seeds (camelCase); money is a decimal string."""

import re
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import ERRORS as ACCOUNT_ERRORS
from accounts.models import Message, MessageKind, MessageStatus
from accounts.permissions import Allowed
from accounts.roles import Role
from accounts.selectors import message_get_for, message_list_for
from billing.api import BILL_RESPONSE, bill_body
from billing.models import ServiceConnection
from billing.months import first_of, parse_month
from billing.selectors import connection_get_for, connection_list_for
from config.errors import DomainError, NotFound
from config.queue import require_queue
from invoicing import pdf, selectors, services
from invoicing.models import BillingRun, Invoice, InvoiceStatus, Payment, PaymentMethod, ReversalKind
from invoicing.tasks import dispatch

MONEY = {"max_digits": 14, "decimal_places": 2}
KWH = {"max_digits": 14, "decimal_places": 4}
ID = {"min_value": 1, "max_value": 2**63 - 1}  # a database id; anything else is a 400, not an overflow
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,100}")  # printable ASCII, no spaces


def month_of(value: str, field: str = "month") -> date:
    try:
        return parse_month(value)
    except ValueError as problem:
        raise DomainError(str(problem), field=field) from problem


class MonthField(serializers.CharField):
    def to_internal_value(self, data: Any) -> date:
        try:
            return month_of(str(data))
        except DomainError as problem:
            raise serializers.ValidationError(problem.detail) from problem

    def to_representation(self, value: date) -> str:
        return f"{value:%Y-%m}"


IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="Send the same key when retrying: the first result is returned (200, header "
    "Idempotent-Replayed: true), never a second one; the same key with another body is a 409.",
)
ERRORS = {
    **ACCOUNT_ERRORS,
    409: OpenApiResponse(description="The bill's state refuses it (paid, cancelled, locked, key reused)."),
}


# Work handed to the background workers (config.queue): refused, with nothing stored, while their
# broker is unreachable.
QUEUE_DOWN = {
    503: OpenApiResponse(
        description="The task queue is unreachable: nothing was stored; try again after `Retry-After` seconds."
    ),
}


def idempotency_key(request: Request) -> str:
    key = request.headers.get("Idempotency-Key", "")
    if key and not IDEMPOTENCY_KEY.fullmatch(key):
        raise DomainError(_("Idempotency-Key must be 1 to 100 printable characters without spaces."))
    return key


def replay_aware(body: dict, *, replayed: bool) -> Response:
    """201 for what this request made; 200 and `Idempotent-Replayed` for what a retry returned."""
    response = Response(body, status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED)
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def pdf_response(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}.pdf"'
    return response


PDF_RESPONSE = OpenApiResponse(OpenApiTypes.BINARY, description="The document as a PDF.")


# --- invoices ------------------------------------------------------------------------------------


class InvoiceOutput(serializers.Serializer):
    invoiceId = serializers.IntegerField(source="pk")
    invoiceNumber = serializers.CharField(source="number")
    customerId = serializers.CharField(
        source="customer.number", help_text="The customer's number as printed, e.g. LHR-RES-0001."
    )
    customerUserId = serializers.IntegerField(
        source="customer.user_id",
        help_text="The customer's user id: what POST /api/invoices takes as customerId.",
    )
    customerName = serializers.CharField(source="customer.name")
    providerId = serializers.IntegerField(source="provider_id")
    providerName = serializers.CharField(source="provider.name")
    connectionId = serializers.IntegerField(source="connection_id")
    connectionNumber = serializers.CharField(source="connection.number")
    billingMonth = MonthField(source="period")
    source = serializers.CharField()
    estimated = serializers.BooleanField(
        help_text="Billed on an estimate (no meter reading that month); the next actual reading trues it up."
    )
    periodStart = serializers.DateTimeField(
        source="period_start", allow_null=True, help_text="Where the previous bill ended; null for typed kWh."
    )
    periodEnd = serializers.DateTimeField(source="period_end", allow_null=True)
    kwhConsumed = serializers.DecimalField(source="kwh_consumed", **KWH)
    peakUnits = serializers.DecimalField(source="peak_units", **KWH)
    offPeakUnits = serializers.DecimalField(source="off_peak_units", **KWH)
    totalAmount = serializers.DecimalField(source="current_charges", **MONEY, help_text="Current charges.")
    arrears = serializers.DecimalField(**MONEY)
    payableBeforeDue = serializers.DecimalField(source="payable_before_due", **MONEY)
    lateSurcharge = serializers.DecimalField(source="late_surcharge", **MONEY)
    payableAfterDue = serializers.DecimalField(source="payable_after_due", **MONEY)
    amountPaid = serializers.DecimalField(source="amount_paid", **MONEY)
    adjustmentTotal = serializers.DecimalField(source="adjustment_total", **MONEY)
    balance = serializers.DecimalField(**MONEY)
    issueDate = serializers.DateField(source="issue_date")
    dueDate = serializers.DateField(source="due_date")
    paymentStatus = serializers.CharField(source="status")
    paymentDate = serializers.DateField(source="paid_on", allow_null=True)
    pricingId = serializers.IntegerField(source="pricing_id", allow_null=True)
    createdBy = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")

    def get_createdBy(self, invoice: Invoice) -> dict | None:
        user = invoice.created_by
        return {"userId": user.pk, "name": user.name} if user else None


class LineOutput(serializers.Serializer):
    kind = serializers.CharField()
    label = serializers.CharField()
    code = serializers.CharField()
    amount = serializers.DecimalField(**MONEY)


class AdjustmentOutput(serializers.Serializer):
    adjustmentId = serializers.IntegerField(source="pk")
    adjustmentNumber = serializers.CharField(source="number")
    billId = serializers.IntegerField(source="invoice_id")
    invoiceNumber = serializers.CharField(source="invoice.number")
    kind = serializers.CharField()
    direction = serializers.CharField()
    amount = serializers.DecimalField(**MONEY)
    reason = serializers.CharField()
    officerName = serializers.CharField(source="officer_name")
    officerDesignation = serializers.CharField(source="officer_designation")
    originalAmount = serializers.DecimalField(source="original_amount", **MONEY)
    balanceBefore = serializers.DecimalField(source="balance_before", **MONEY)
    newBalance = serializers.DecimalField(source="balance_after", **MONEY)
    createdAt = serializers.DateTimeField(source="created_at")


class AllocationOutput(serializers.Serializer):
    billId = serializers.IntegerField(source="invoice_id")
    invoiceNumber = serializers.CharField(source="invoice.number")
    amount = serializers.DecimalField(**MONEY)


class ReopenedBillOutput(serializers.Serializer):
    billId = serializers.IntegerField()
    invoiceNumber = serializers.CharField()
    billingMonth = serializers.CharField(source="period")
    amount = serializers.DecimalField(**MONEY, help_text="What the reversal took back from this bill.")
    surcharge = serializers.DecimalField(**MONEY, help_text="The late surcharge it added (past due).")
    balance = serializers.DecimalField(**MONEY, help_text="The bill's balance after the reversal.")
    paymentStatus = serializers.CharField(source="status")


class ReversalOutput(serializers.Serializer):
    reversalNumber = serializers.CharField(source="number")
    kind = serializers.ChoiceField(choices=ReversalKind.choices)
    reason = serializers.CharField()
    amount = serializers.DecimalField(**MONEY)
    surchargeTotal = serializers.DecimalField(source="surcharge_total", **MONEY)
    payableBefore = serializers.DecimalField(source="payable_before", **MONEY)
    payableAfter = serializers.DecimalField(source="payable_after", **MONEY)
    reversedBy = serializers.CharField(source="reversed_by.name")
    reversedAt = serializers.DateTimeField(source="reversed_at")
    reopened = ReopenedBillOutput(many=True)


class PaymentOutput(serializers.Serializer):
    paymentId = serializers.IntegerField(source="pk")
    receiptNumber = serializers.CharField(source="receipt_number")
    billId = serializers.IntegerField(source="invoice_id")
    invoiceNumber = serializers.CharField(source="invoice.number")
    customerId = serializers.CharField(source="invoice.customer.number")
    customerName = serializers.CharField(source="invoice.customer.name")
    connectionNumber = serializers.CharField(source="connection.number")
    amount = serializers.DecimalField(**MONEY)
    method = serializers.CharField(source="method.name")
    reference = serializers.CharField()
    payableBefore = serializers.DecimalField(source="payable_before", **MONEY)
    payableAfter = serializers.DecimalField(source="payable_after", **MONEY)
    receivedBy = serializers.CharField(source="received_by.name")
    receivedAt = serializers.DateTimeField(source="received_at")
    settled = AllocationOutput(source="allocations", many=True)
    reversal = ReversalOutput(
        allow_null=True, help_text="Set once the payment is reversed: what it settled is owed again."
    )


class BillRefOutput(serializers.Serializer):
    billId = serializers.IntegerField()
    invoiceNumber = serializers.CharField()


class InvoiceDetailOutput(InvoiceOutput):
    billingDays = serializers.DecimalField(source="billing_days", max_digits=12, decimal_places=6)
    energyCharge = serializers.DecimalField(source="energy_charge", **MONEY)
    taxTotal = serializers.DecimalField(source="tax_total", **MONEY)
    fixedTotal = serializers.DecimalField(source="fixed_total", **MONEY)
    feeTotal = serializers.DecimalField(
        source="fee_total", help_text="One-off charges on this bill (a reconnection fee); not taxed.", **MONEY
    )
    subsidyTotal = serializers.DecimalField(source="subsidy_total", **MONEY)
    estimatedBilled = serializers.DecimalField(
        source="estimated_billed",
        **MONEY,
        help_text="A true-up: what the estimates since charged for usage, taken back.",
    )
    creditBrought = serializers.DecimalField(source="credit_brought", **MONEY)
    creditCarried = serializers.DecimalField(
        source="credit_carried",
        **MONEY,
        help_text="Below zero: carried to the next bill (this one is then 0).",
    )
    lines = LineOutput(many=True)
    trace = serializers.JSONField()
    customer = serializers.JSONField(source="customer_snapshot")
    provider = serializers.JSONField(source="provider_snapshot")
    credited = serializers.DecimalField(
        **MONEY, help_text="Taken off the balance by credit notes and the customer's credit balance."
    )
    creditApplied = serializers.DecimalField(
        source="credit_applied", **MONEY, help_text="The customer's credit balance applied at issue."
    )
    replaces = serializers.SerializerMethodField(help_text="The bill this one replaces (a re-rate).")
    replacedBy = serializers.SerializerMethodField(help_text="The bill that replaced this one (a re-rate).")
    creditNotes = serializers.SerializerMethodField()
    adjustments = serializers.SerializerMethodField()
    payments = serializers.SerializerMethodField()
    amountPayable = serializers.SerializerMethodField(
        help_text="What settles this bill now, earlier bills included."
    )

    @extend_schema_field(BillRefOutput(allow_null=True))
    def get_replaces(self, invoice: Invoice) -> dict | None:
        return _bill_ref(invoice.replaces)

    @extend_schema_field(BillRefOutput(allow_null=True))
    def get_replacedBy(self, invoice: Invoice) -> dict | None:
        return _bill_ref(getattr(invoice, "replaced_by", None))

    def get_creditNotes(self, invoice: Invoice) -> list[dict]:
        return [
            {
                "creditNoteId": row.pk,
                "creditNoteNumber": row.number,
                "amount": f"{row.amount}",
                "applied": f"{row.applied}",
                "toCreditBalance": f"{row.to_balance}",
                "reason": row.reason,
                "issuedBy": row.issued_by_name,
                "issueDate": f"{row.issue_date}",
            }
            for row in invoice.credit_notes.all()
        ]

    def get_adjustments(self, invoice: Invoice) -> list[dict]:
        return [
            {
                "adjustmentNumber": row.number,
                "kind": row.kind,
                "direction": row.direction,
                "amount": f"{row.amount}",
                "reason": row.reason,
                "officerName": row.officer_name,
                "createdAt": serializers.DateTimeField().to_representation(row.created_at),
            }
            for row in invoice.adjustments.all()
        ]

    def get_payments(self, invoice: Invoice) -> list[dict]:
        return [
            {
                "receiptNumber": row.payment.receipt_number,
                "amount": f"{row.amount}",
                "method": row.payment.method.name,
                "receivedAt": serializers.DateTimeField().to_representation(row.payment.received_at),
                "reversed": row.payment.is_reversed,
            }
            for row in invoice.allocations.all()
        ]

    def get_amountPayable(self, invoice: Invoice) -> str:
        return f"{selectors.amount_payable(invoice):.2f}"


def _bill_ref(bill: Invoice | None) -> dict | None:
    return {"billId": bill.pk, "invoiceNumber": bill.number} if bill else None


class InvoiceFilter(filters.FilterSet):
    status = filters.ChoiceFilter(label="Status", choices=InvoiceStatus.choices)
    month = filters.CharFilter(label="Billing month", method="filter_month", help_text="YYYY-MM")
    customer = filters.CharFilter(
        label="Customer ID",
        field_name="customer__number",
        help_text="Customer id as printed, e.g. LHR-RES-0001",
    )
    connection = filters.CharFilter(
        label="Connection ID", field_name="connection__number", help_text="Connection id as printed"
    )
    overdue = filters.BooleanFilter(
        label="Overdue", method="filter_overdue", help_text="Unpaid after the due date"
    )
    number = filters.CharFilter(label="Bill number contains", field_name="number", lookup_expr="icontains")

    class Meta:
        model = Invoice
        fields: list[str] = []

    def filter_month(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(period=month_of(value))

    def filter_overdue(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        late = selectors.unpaid_after_due()
        return queryset.filter(late) if value else queryset.exclude(late)


class InvoiceListBase(generics.ListAPIView):
    serializer_class = InvoiceOutput
    filterset_class = InvoiceFilter
    queryset = Invoice.objects.none()  # for the schema; requests use get_queryset

    def invoices(self) -> QuerySet[Invoice]:
        return selectors.invoice_list_for(user=self.request.user)


class ProviderInvoicesApi(InvoiceListBase):
    """Every invoice of the caller's provider (Super_Creator, Auditor, Admin)."""

    permission_classes = [Allowed.to("invoicing.view_invoice", provider_wide=True)]

    def get_queryset(self) -> QuerySet[Invoice]:
        return self.invoices()


class MyInvoicesApi(InvoiceListBase):
    """The signed-in customer's own bills."""

    permission_classes = [Allowed.to("invoicing.view_invoice")]

    def get_queryset(self) -> QuerySet[Invoice]:
        return self.invoices().filter(customer__user=self.request.user)


class MyCreatedInvoicesApi(InvoiceListBase):
    """The invoices the caller issued."""

    permission_classes = [Allowed.to("invoicing.add_invoice")]

    def get_queryset(self) -> QuerySet[Invoice]:
        return self.invoices().filter(created_by=self.request.user)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": ID["min_value"], "maximum": ID["max_value"]},
            {"type": "string", "minLength": 1, "maxLength": 40},
        ]
    }
)
class ConnectionRefField(serializers.Field):
    """A connection named by its id (a JSON number, the `id` of GET /api/connections) or by its number as
    printed (text, the `connectionId` there and on the bill, e.g. DISCO-RES-1101)."""

    default_error_messages = {
        "invalid": "Give the connection's id (a number) or its number as printed, e.g. DISCO-RES-1101."
    }

    def to_internal_value(self, data: Any) -> int | str:
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        if isinstance(data, int):
            return serializers.IntegerField(**ID).run_validation(data)
        return serializers.CharField(max_length=40).run_validation(data)

    def to_representation(self, value: int | str) -> int | str:
        return value


class InvoiceCreateInput(serializers.Serializer):
    connectionId = ConnectionRefField(
        required=False,
        help_text="The connection to bill: its id (a number) or its number as printed. Required when the "
        "customer has several connections; with customerId it must be one of that customer's.",
    )
    customerId = serializers.IntegerField(
        **ID,
        required=False,
        help_text="The customer's USER id (a user holding the Customer role in the caller's provider), as the "
        "second seed defines it; not the customer's number and not any internal customer id. Enough alone "
        "when that customer has exactly one connection.",
    )
    month = MonthField(required=False, help_text="YYYY-MM; the current month by default.")
    kwhConsumed = serializers.DecimalField(**KWH, min_value=0, required=False)
    peakKwh = serializers.DecimalField(**KWH, min_value=0, required=False)
    offPeakKwh = serializers.DecimalField(**KWH, min_value=0, required=False)
    issueDate = serializers.DateField(required=False, help_text="Default: the month's last day, or today.")
    dueDate = serializers.DateField(
        required=False, help_text="Default: issue date + the provider's due days."
    )


# How many of a customer's connections a refusal lists by number.
LISTED_CONNECTIONS = 5


def _numbers(connections: list[ServiceConnection]) -> str:
    listed = ", ".join(connection.number for connection in connections[:LISTED_CONNECTIONS])
    return listed + (", ..." if len(connections) > LISTED_CONNECTIONS else "")


def _connection_named(connections: QuerySet[ServiceConnection], ref: int | str) -> ServiceConnection:
    """The caller's connection named by id (a number) or by printed number (text). Text of digits may be
    either; when it names two connections (one's id, another's number; or, for a platform user, the
    same number at two providers), which was meant is not guessed."""
    if isinstance(ref, int):
        named = connections.filter(pk=ref)
    elif ref.isascii() and ref.isdigit() and int(ref) <= ID["max_value"]:
        named = connections.filter(Q(number=ref) | Q(pk=int(ref)))
    else:
        named = connections.filter(number=ref)
    found = list(named[:2])
    if not found:
        raise NotFound(
            _(
                "No connection %(ref)s in your company; give its id or its number as GET /api/connections "
                "lists them."
            )
            % {"ref": repr(ref)},
            field="connectionId",
        )
    if len(found) > 1:
        listing = " and ".join(f"{connection.number} (id {connection.pk})" for connection in found)
        raise DomainError(
            _(
                "%(ref)s names more than one connection: %(listing)s; send the id of the one you mean as a "
                "JSON number."
            )
            % {"ref": repr(ref), "listing": listing},
            field="connectionId",
        )
    return found[0]


class InvoiceCollectionApi(APIView):
    permission_classes = [Allowed.to("invoicing.add_invoice")]

    @extend_schema(
        request=InvoiceCreateInput,
        responses={201: InvoiceDetailOutput, **ERRORS},
        summary="Issue an invoice: for kWh entered, or for a month of meter readings",
        description="Name the customer by their user id (customerId), the connection (connectionId), or "
        "both. A customer with several connections needs connectionId; a connection that is not the named "
        "customer's, an unknown or ambiguous one is refused (400 or 404, saying what to send): a bill is "
        "never issued to anyone but the customer named.",
    )
    def post(self, request: Request) -> Response:
        data = InvoiceCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        connection = self._connection(request, values)
        invoice = services.invoice_issue(
            connection=connection,
            period=values.get("month") or first_of(timezone.localdate()),
            created_by=request.user,
            issue_date=values.get("issueDate"),
            due_date=values.get("dueDate"),
            kwh=values.get("kwhConsumed"),
            peak_kwh=values.get("peakKwh"),
            off_peak_kwh=values.get("offPeakKwh"),
        )
        detail = selectors.invoice_detail_for(user=request.user, invoice_id=invoice.pk)
        return Response(InvoiceDetailOutput(detail).data, status=status.HTTP_201_CREATED)

    def _connection(self, request: Request, values: dict) -> ServiceConnection:
        connections = connection_list_for(user=request.user)
        if "customerId" not in values:
            if "connectionId" not in values:
                raise DomainError(
                    _(
                        "Say whom to bill: customerId (the customer's user id) or connectionId (the "
                        "connection's id or number)."
                    ),
                    field="customerId",
                )
            return _connection_named(connections, values["connectionId"])
        theirs = list(
            connections.filter(
                customer__user_id=values["customerId"], customer__user__roles__role=Role.CUSTOMER
            ).order_by("number")
        )
        if not theirs:
            # The same answer for an unknown id, another provider's user and a user who is no
            # customer: nothing here tells them apart.
            raise NotFound(
                _(
                    "No customer with user id %(customerid)s has a connection in your company. customerId is "
                    "the user id of a customer (a user with the Customer role: customerUserId in GET "
                    "/api/connections); or name the connection (connectionId)."
                )
                % {"customerid": values["customerId"]},
                field="customerId",
            )
        customer = theirs[0].customer
        if "connectionId" in values:
            connection = _connection_named(connections, values["connectionId"])
            if connection.customer_id != customer.pk:
                raise DomainError(
                    _(
                        "Connection %(number)s is not %(name)s's; name one of theirs (%(numbers)s), or leave "
                        "customerId out."
                    )
                    % {"number": connection.number, "name": customer.name, "numbers": _numbers(theirs)},
                    field="connectionId",
                )
            return connection
        if len(theirs) > 1:
            raise DomainError(
                _(
                    "%(name)s has %(count)s connections (%(numbers)s); say which one to bill: connectionId "
                    "(its id or number)."
                )
                % {"name": customer.name, "count": len(theirs), "numbers": _numbers(theirs)},
                field="connectionId",
            )
        return theirs[0]


class InvoiceUpdateInput(serializers.Serializer):
    dueDate = serializers.DateField(required=False)
    paymentStatus = serializers.ChoiceField(
        choices=InvoiceStatus.choices, required=False, help_text="Only Cancelled; payments change the rest."
    )
    kwhConsumed = serializers.DecimalField(**KWH, min_value=0, required=False)
    peakKwh = serializers.DecimalField(**KWH, min_value=0, required=False)
    offPeakKwh = serializers.DecimalField(**KWH, min_value=0, required=False)
    rerate = serializers.BooleanField(default=False, help_text="Rate the month's readings again.")
    reason = serializers.CharField(
        max_length=500,
        required=False,
        default="",
        help_text="Printed on the credit note of a cancel or re-rate.",
    )

    def validate_paymentStatus(self, value: str) -> str:
        if value != InvoiceStatus.CANCELLED:
            raise serializers.ValidationError(
                _("Only Cancelled can be set here; record a payment at POST /api/payments to pay a bill.")
            )
        return value


class InvoiceItemApi(APIView):
    def get_permissions(self) -> list:
        perm = "invoicing.change_invoice" if self.request.method == "PUT" else "invoicing.view_invoice"
        return [Allowed.to(perm)()]

    @extend_schema(
        responses={200: InvoiceDetailOutput, **ERRORS},
        summary="An invoice with its lines, payments and adjustments",
    )
    def get(self, request: Request, invoice_id: int) -> Response:
        invoice = selectors.invoice_detail_for(user=request.user, invoice_id=invoice_id)
        return Response(InvoiceDetailOutput(invoice).data)

    @extend_schema(
        request=InvoiceUpdateInput,
        responses={200: InvoiceDetailOutput, **ERRORS},
        summary="Change the due date, cancel a bill (a credit note for what it owes), or re-rate it (a credit "
        "note for all it charged and a new bill replacing it: the answer is the new bill)",
    )
    def put(self, request: Request, invoice_id: int) -> Response:
        invoice = selectors.invoice_get_for(
            user=request.user, invoice_id=invoice_id, perm="invoicing.change_invoice"
        )
        data = InvoiceUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        invoice = services.invoice_update(
            invoice=invoice,
            updated_by=request.user,
            due_date=values.get("dueDate"),
            cancel=values.get("paymentStatus") == InvoiceStatus.CANCELLED,
            kwh=values.get("kwhConsumed"),
            peak_kwh=values.get("peakKwh"),
            off_peak_kwh=values.get("offPeakKwh"),
            rerate=values["rerate"],
            reason=values["reason"],
        )
        detail = selectors.invoice_detail_for(user=request.user, invoice_id=invoice.pk)
        return Response(InvoiceDetailOutput(detail).data)


class InvoicePdfApi(APIView):
    permission_classes = [Allowed.to("invoicing.view_invoice")]

    @extend_schema(responses={(200, "application/pdf"): PDF_RESPONSE, **ERRORS}, summary="The bill as a PDF")
    def get(self, request: Request, invoice_id: int) -> HttpResponse:
        bill = selectors.bill_get_for(user=request.user, invoice_id=invoice_id)
        return pdf_response(pdf.invoice_pdf(bill, bill.history), bill.number)


# --- the bill preview ----------------------------------------------------------------------------


class BillPreviewApi(APIView):
    permission_classes = [Allowed.to("billing.view_serviceconnection")]

    class PreviewQuery(serializers.Serializer):
        year = serializers.IntegerField(min_value=2000, max_value=2100)
        month = serializers.IntegerField(min_value=1, max_value=12)

    @extend_schema(
        parameters=[
            OpenApiParameter("year", int, required=True),
            OpenApiParameter("month", int, required=True),
        ],
        responses={200: BILL_RESPONSE, **ERRORS},
        summary="Rate a connection's month now, without issuing anything (the rate check)",
        description="The period continues from the connection's previous bill (periodStart) to the "
        "month's last reading (periodEnd); the arrears are those the bill would print today.",
    )
    def get(self, request: Request, connection_id: int) -> Response:
        connection = connection_get_for(user=request.user, connection_id=connection_id)
        query = self.PreviewQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        rated = services.bill_preview(
            connection=connection,
            year=query.validated_data["year"],
            month=query.validated_data["month"],
        )
        when = serializers.DateTimeField()
        return Response(
            {
                "connectionId": connection.number,
                "periodStart": when.to_representation(rated.period.start),
                "periodEnd": when.to_representation(rated.period.end.at),
                "estimated": rated.period.estimated,
                **bill_body(rated.bill),
            }
        )


# --- the first seed's bill retrieval ------------------------------------------------------------


class HistoryOutput(serializers.Serializer):
    billId = serializers.IntegerField(source="pk")
    invoiceNumber = serializers.CharField(source="number")
    billingMonth = MonthField(source="period")
    issueDate = serializers.DateField(source="issue_date")
    dueDate = serializers.DateField(source="due_date")
    totalAmount = serializers.DecimalField(source="current_charges", **MONEY)
    amountPaid = serializers.DecimalField(source="amount_paid", **MONEY)
    balance = serializers.DecimalField(**MONEY)
    paymentStatus = serializers.CharField(source="status")
    paymentDate = serializers.DateField(source="paid_on", allow_null=True)


class BillOutput(serializers.Serializer):
    billId = serializers.IntegerField(source="pk")
    invoiceNumber = serializers.CharField(source="number")
    billingMonth = MonthField(source="period")
    estimated = serializers.BooleanField(help_text="Billed on an estimate (no meter reading that month).")
    issueDate = serializers.DateField(source="issue_date")
    dueDate = serializers.DateField(source="due_date")
    customer = serializers.JSONField(source="customer_snapshot")
    provider = serializers.JSONField(source="provider_snapshot")
    connection = serializers.SerializerMethodField()
    usage = serializers.SerializerMethodField()
    lines = LineOutput(many=True)
    trace = serializers.JSONField()
    currentCharges = serializers.DecimalField(source="current_charges", **MONEY)
    arrears = serializers.DecimalField(**MONEY)
    payableBeforeDue = serializers.DecimalField(source="payable_before_due", **MONEY)
    lateSurcharge = serializers.DecimalField(source="late_surcharge", **MONEY)
    payableAfterDue = serializers.DecimalField(source="payable_after_due", **MONEY)
    amountPaid = serializers.DecimalField(source="amount_paid", **MONEY)
    balance = serializers.DecimalField(**MONEY)
    paymentStatus = serializers.CharField(source="status")
    previousBills = HistoryOutput(source="history", many=True)

    def get_connection(self, bill: Invoice) -> dict:
        connection = bill.connection
        return {
            "connectionId": connection.number,
            "connectionType": connection.connection_type.code,
            "connectionTypeDescription": connection.connection_type.description,
            "meterNumber": connection.meter_number,
            "meterType": connection.meter_type,
            "division": connection.division,
            "subdivision": connection.subdivision,
            "status": connection.status,
        }

    def get_usage(self, bill: Invoice) -> dict:
        return {
            "billingDays": f"{bill.billing_days}",
            "peakUnits": f"{bill.peak_units}",
            "offPeakUnits": f"{bill.off_peak_units}",
            "kwhConsumed": f"{bill.kwh_consumed}",
        }


class BillRetrievalApi(APIView):
    permission_classes = [Allowed.to("invoicing.view_invoice")]

    class Query(serializers.Serializer):
        customerId = serializers.CharField(
            max_length=40,
            help_text="The customer's number as printed, e.g. LHR-RES-0001 (the first seed's Customer ID; "
            "not the user id POST /api/invoices takes).",
        )
        connectionId = serializers.CharField(max_length=40, help_text="As printed, e.g. DISCO-RES-1101")
        month = serializers.IntegerField(min_value=1, max_value=12)
        year = serializers.IntegerField(min_value=2000, max_value=2100)

    @extend_schema(
        parameters=[Query],
        responses={200: BillOutput, **ERRORS},
        summary="A customer's bill for a month, with every line, arrears, payable amounts and the previous 10 bills",
    )
    def get(self, request: Request) -> Response:
        query = self.Query(data=request.query_params)
        query.is_valid(raise_exception=True)
        values = query.validated_data
        # Built by the selector in the shape `BillOutput` documents (tests hold the two together).
        answer = selectors.bill_answer_for(
            user=request.user,
            customer_number=values["customerId"],
            connection_number=values["connectionId"],
            year=values["year"],
            month=values["month"],
        )
        return Response(answer)


# --- payments ------------------------------------------------------------------------------------


class PaymentMethodOutput(serializers.Serializer):
    paymentMethodId = serializers.IntegerField(source="pk")
    code = serializers.CharField()
    description = serializers.CharField(source="name")


class PaymentMethodListApi(generics.ListAPIView):
    permission_classes = [Allowed.to("invoicing.view_paymentmethod")]
    serializer_class = PaymentMethodOutput
    pagination_class = None

    def get_queryset(self) -> QuerySet[PaymentMethod]:
        return selectors.payment_methods()


class PaymentInput(serializers.Serializer):
    billId = serializers.IntegerField(**ID)
    amount = serializers.DecimalField(**MONEY, min_value=Decimal("0.01"))
    method = serializers.CharField(
        max_length=30, help_text="Payment method code or id (GET /api/payment-methods)."
    )
    reference = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)


class PaymentCreateApi(APIView):
    permission_classes = [Allowed.to("invoicing.collect_payment")]

    @extend_schema(
        request=PaymentInput,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: PaymentOutput, 200: PaymentOutput, **ERRORS},
        summary="Record a payment against a bill (oldest open bills of the connection are settled first)",
    )
    def post(self, request: Request) -> Response:
        key = idempotency_key(request)
        data = PaymentInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        invoice = selectors.invoice_get_for(
            user=request.user, invoice_id=values["billId"], perm="invoicing.collect_payment"
        )
        method = method_named(values["method"])
        payment, new = services.payment_post(
            invoice=invoice,
            amount=values["amount"],
            method=method,
            received_by=request.user,
            reference=values["reference"],
            idempotency_key=key,
        )
        if not new:  # a retry: the first payment, read as a receipt is
            payment = selectors.payment_get_for(user=request.user, payment_id=payment.pk)
        return replay_aware(PaymentOutput(payment).data, replayed=not new)


def method_named(value: str) -> PaymentMethod:
    methods = selectors.payment_methods()
    by_id = re.fullmatch(r"[0-9]{1,9}", value)
    method = methods.filter(pk=int(value)).first() if by_id else methods.filter(code=value).first()
    if method is None:
        codes = ", ".join(methods.values_list("code", flat=True))
        raise DomainError(
            _("No payment method %(value)s; use one of: %(codes)s.") % {"value": repr(value), "codes": codes},
            field="method",
        )
    return method


class PaymentItemApi(APIView):
    permission_classes = [Allowed.to("invoicing.view_payment")]

    @extend_schema(responses={200: PaymentOutput, **ERRORS}, summary="A payment receipt")
    def get(self, request: Request, payment_id: int) -> Response:
        return Response(
            PaymentOutput(selectors.payment_get_for(user=request.user, payment_id=payment_id)).data
        )


class PaymentReceiptPdfApi(APIView):
    permission_classes = [Allowed.to("invoicing.view_payment")]

    @extend_schema(
        responses={(200, "application/pdf"): PDF_RESPONSE, **ERRORS}, summary="A payment receipt as a PDF"
    )
    def get(self, request: Request, payment_id: int) -> HttpResponse:
        payment = selectors.payment_get_for(user=request.user, payment_id=payment_id)
        return pdf_response(pdf.payment_receipt_pdf(payment), payment.receipt_number)


class PaymentListApi(generics.ListAPIView):
    permission_classes = [Allowed.to("invoicing.view_payment")]
    serializer_class = PaymentOutput

    def get_queryset(self) -> QuerySet[Payment]:
        return selectors.payment_list_for(user=self.request.user).prefetch_related("allocations__invoice")


class ReversalInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ReversalKind.choices, help_text="How the payment failed.")
    reason = serializers.CharField(
        max_length=500, help_text="What happened; printed on the reversal receipt."
    )


class PaymentReverseApi(APIView):
    """Officers (a role holding invoicing.add_paymentreversal: Super_Creator, Admin) reverse a payment:
    the bills it settled are owed again, other payments stay where they are."""

    permission_classes = [Allowed.to("invoicing.add_paymentreversal")]

    @extend_schema(
        request=ReversalInput,
        parameters=[IDEMPOTENCY_HEADER],
        responses={
            201: PaymentOutput,
            200: PaymentOutput,
            **ERRORS,
            409: OpenApiResponse(description="The payment was already reversed, or the key was reused."),
        },
        summary="Reverse a payment (bounced, charged back, posted in error; officers)",
    )
    def post(self, request: Request, payment_id: int) -> Response:
        key = idempotency_key(request)
        payment = selectors.payment_get_for(
            user=request.user, payment_id=payment_id, perm="invoicing.add_paymentreversal"
        )
        data = ReversalInput(data=request.data)
        data.is_valid(raise_exception=True)
        _reversal, new = services.payment_reverse(
            payment=payment,
            kind=data.validated_data["kind"],
            reason=data.validated_data["reason"],
            reversed_by=request.user,
            idempotency_key=key,
        )
        payment = selectors.payment_get_for(user=request.user, payment_id=payment.pk)
        return replay_aware(PaymentOutput(payment).data, replayed=not new)


class PaymentReversalReceiptPdfApi(APIView):
    permission_classes = [Allowed.to("invoicing.view_payment")]

    @extend_schema(
        responses={(200, "application/pdf"): PDF_RESPONSE, **ERRORS},
        summary="A payment's reversal receipt as a PDF (404 while it is not reversed)",
    )
    def get(self, request: Request, payment_id: int) -> HttpResponse:
        reversal = selectors.reversal_get_for(user=request.user, payment_id=payment_id)
        return pdf_response(pdf.reversal_receipt_pdf(reversal), reversal.number)


# --- adjustments ---------------------------------------------------------------------------------


class AdjustmentInput(serializers.Serializer):
    billId = serializers.IntegerField(**ID)
    amount = serializers.DecimalField(**MONEY, min_value=Decimal("0.01"))
    direction = serializers.ChoiceField(choices=["credit", "debit"])
    reason = serializers.CharField(max_length=500)


class AdjustmentCreateApi(APIView):
    """Officers (a role holding invoicing.add_adjustment: Super_Creator, Admin) adjust a bill; their
    name and designation come from their account."""

    permission_classes = [Allowed.to("invoicing.add_adjustment")]

    @extend_schema(
        request=AdjustmentInput,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: AdjustmentOutput, 200: AdjustmentOutput, **ERRORS},
        summary="Adjust a bill (officers)",
    )
    def post(self, request: Request) -> Response:
        key = idempotency_key(request)
        data = AdjustmentInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        invoice = selectors.invoice_get_for(
            user=request.user, invoice_id=values["billId"], perm="invoicing.add_adjustment"
        )
        adjustment, new = services.adjustment_create(
            invoice=invoice,
            amount=values["amount"],
            direction=values["direction"],
            reason=values["reason"],
            officer=request.user,
            idempotency_key=key,
        )
        adjustment = selectors.adjustment_get_for(user=request.user, adjustment_id=adjustment.pk)
        return replay_aware(AdjustmentOutput(adjustment).data, replayed=not new)


class AdjustmentItemApi(APIView):
    permission_classes = [Allowed.to("invoicing.view_adjustment")]

    @extend_schema(responses={200: AdjustmentOutput, **ERRORS}, summary="An adjustment receipt")
    def get(self, request: Request, adjustment_id: int) -> Response:
        adjustment = selectors.adjustment_get_for(user=request.user, adjustment_id=adjustment_id)
        return Response(AdjustmentOutput(adjustment).data)


class AdjustmentReceiptPdfApi(APIView):
    permission_classes = [Allowed.to("invoicing.view_adjustment")]

    @extend_schema(
        responses={(200, "application/pdf"): PDF_RESPONSE, **ERRORS}, summary="An adjustment receipt as a PDF"
    )
    def get(self, request: Request, adjustment_id: int) -> HttpResponse:
        adjustment = selectors.adjustment_get_for(user=request.user, adjustment_id=adjustment_id)
        return pdf_response(pdf.adjustment_receipt_pdf(adjustment), adjustment.number)


# --- billing runs --------------------------------------------------------------------------------


class BillingRunOutput(serializers.ModelSerializer):
    runId = serializers.IntegerField(source="pk")
    providerCode = serializers.CharField(source="provider.code")
    billingMonth = MonthField(source="period")
    issueDate = serializers.DateField(source="issue_date")
    alreadyBilled = serializers.IntegerField(source="already_billed")
    billedAmount = serializers.DecimalField(source="billed_amount", **MONEY)
    priceOrder = serializers.CharField(
        source="price_order.reference",
        default=None,
        allow_null=True,
        help_text="The retroactive price order the run re-bills under; null for a monthly run.",
    )
    creditedAmount = serializers.DecimalField(
        source="credited_amount", **MONEY, help_text="What the re-billed bills' credit notes took back."
    )
    startedBy = serializers.CharField(source="started_by.name", default=None, allow_null=True)
    startedAt = serializers.DateTimeField(source="started_at")
    finishedAt = serializers.DateTimeField(source="finished_at", allow_null=True)
    percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = BillingRun
        fields = [
            "runId", "providerCode", "billingMonth", "issueDate", "status", "total", "done", "issued",
            "alreadyBilled", "skipped", "failed", "billedAmount", "priceOrder", "creditedAmount", "startedBy",
            "startedAt", "finishedAt", "percent",
        ]  # fmt: skip


class BillingRunDetailOutput(BillingRunOutput):
    problems = serializers.SerializerMethodField()

    class Meta(BillingRunOutput.Meta):
        fields = [*BillingRunOutput.Meta.fields, "problems"]

    def get_problems(self, run: BillingRun) -> list[dict]:
        return [
            {"connectionId": problem.connection.number, "kind": problem.kind, "reason": problem.reason}
            for problem in run.problems.select_related("connection")
        ]


class BillingRunCollectionApi(generics.ListAPIView):
    serializer_class = BillingRunOutput

    def get_permissions(self) -> list:
        perm = "invoicing.add_billingrun" if self.request.method == "POST" else "invoicing.view_billingrun"
        return [Allowed.to(perm)()]

    def get_queryset(self) -> QuerySet[BillingRun]:
        return selectors.billing_run_list_for(user=self.request.user)

    @extend_schema(
        request=inline_serializer("BillingRunInput", {"month": serializers.CharField(help_text="YYYY-MM")}),
        responses={202: BillingRunDetailOutput, 200: BillingRunDetailOutput, **ERRORS, **QUEUE_DOWN},
        summary="Start (or resume) the billing run of the caller's provider for a month",
    )
    def post(self, request: Request) -> Response:
        provider = request.user.provider
        if provider is None:
            raise DomainError(_("Sign in as a user of a provider to bill its connections."))
        period = month_of(str(request.data.get("month", "")) if isinstance(request.data, dict) else "")
        require_queue("A billing run")
        run, new = services.billing_run_start(provider=provider, period=period, started_by=request.user)
        dispatch(run)
        run = selectors.billing_run_get_for(user=request.user, run_id=run.pk)
        return Response(
            BillingRunDetailOutput(run).data, status=status.HTTP_202_ACCEPTED if new else status.HTTP_200_OK
        )


class BillingRunItemApi(APIView):
    permission_classes = [Allowed.to("invoicing.view_billingrun")]

    @extend_schema(
        responses={200: BillingRunDetailOutput, **ERRORS}, summary="A billing run's progress and problems"
    )
    def get(self, request: Request, run_id: int) -> Response:
        return Response(
            BillingRunDetailOutput(selectors.billing_run_get_for(user=request.user, run_id=run_id)).data
        )


# --- e-mail messages ----------------------------------------------------------------------------------


class MessageFilter(filters.FilterSet):
    customer = filters.CharFilter(
        label="Customer ID",
        method="filter_customer",
        help_text="As printed, e.g. LHR-RES-0001: e-mails about their bills and payments, and to their login.",
    )
    kind = filters.ChoiceFilter(label="Kind", choices=MessageKind.choices)
    status = filters.ChoiceFilter(
        label="Status", choices=MessageStatus.choices, help_text="`failed`: not delivered, never tried again."
    )

    class Meta:
        model = Message
        fields: list[str] = []

    def filter_customer(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(selectors.messages_of_customer(customer_number=value.strip()))


class MessageStaffOutput(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    kind = serializers.ChoiceField(choices=MessageKind.choices)
    recipient = serializers.EmailField()
    language = serializers.CharField()
    status = serializers.ChoiceField(choices=MessageStatus.choices)
    attempts = serializers.IntegerField()
    lastError = serializers.CharField(source="last_error", help_text="Why the last delivery failed.")
    aboutType = serializers.CharField(source="about_type", help_text="e.g. invoicing.invoice")
    aboutId = serializers.IntegerField(source="about_id")
    userId = serializers.IntegerField(source="user_id", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")
    sentAt = serializers.DateTimeField(source="sent_at", allow_null=True)


class MessageListApi(generics.ListAPIView):
    """The e-mails of the provider: to whom, about what, and how sending went (a hard failure shows as
    `failed` with its reason)."""

    permission_classes = [Allowed.to("accounts.view_message")]
    serializer_class = MessageStaffOutput
    filterset_class = MessageFilter

    def get_queryset(self) -> QuerySet[Message]:
        return message_list_for(user=self.request.user)


class MessageItemApi(APIView):
    permission_classes = [Allowed.to("accounts.view_message")]

    @extend_schema(responses={200: MessageStaffOutput, **ERRORS}, summary="One e-mail message")
    def get(self, request: Request, message_id: int) -> Response:
        return Response(MessageStaffOutput(message_get_for(user=request.user, message_id=message_id)).data)

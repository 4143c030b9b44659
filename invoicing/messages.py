"""What the bill and payment e-mails say, written when they are sent (registered with
`accounts.messaging` by `InvoicingConfig.ready`).

A bill's e-mail carries the bill's PDF, a payment's (and a payment's reversal's) its receipt's; both print what the documents
themselves print (the invoice's snapshots of customer and provider), so the e-mail and its
attachment agree. Amounts still owed are read when the message is written: a reminder tells what is
owed that day.
"""

from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from accounts.messaging import Attachment, Content, register_builder, render
from accounts.models import Message, MessageKind
from billing.rating import NO_MONEY, money
from invoicing import selectors
from invoicing.models import AdjustmentKind, DunningStep, Invoice, Payment, PaymentReversal
from invoicing.pdf import invoice_pdf, payment_receipt_pdf, reopened_bills, reversal_receipt_pdf

PDF = "application/pdf"


def _link(name: str, *args: Any) -> str:
    return f"{settings.SITE_URL.rstrip('/')}{reverse(name, args=args)}"


def _about_bill(invoice: Invoice) -> dict[str, Any]:
    return {
        "invoice": invoice,
        "customer": invoice.customer_snapshot,
        "provider": invoice.provider_snapshot,
        "currency": invoice.provider_snapshot.get("currency") or settings.DEFAULT_CURRENCY,
        "bill_url": _link("portal-bill", invoice.pk),
        "portal_url": _link("portal-home"),
    }


def bill_issued(message: Message) -> Content:
    bill = selectors.bill_for_message(invoice_id=message.about_id)
    pdf = Attachment(f"{bill.number}.pdf", invoice_pdf(bill, bill.history), PDF)
    return render(message.kind, message.language, _about_bill(bill), attachments=(pdf,))


def bill_due_soon(message: Message) -> Content:
    invoice = Invoice.objects.get(pk=message.about_id)
    return render(
        message.kind,
        message.language,
        {
            **_about_bill(invoice),
            "amount_due": selectors.amount_payable(invoice),
            "days_left": max((invoice.due_date - timezone.localdate()).days, 0),
        },
    )


def bill_overdue(message: Message) -> Content:
    invoice = Invoice.objects.get(pk=message.about_id)
    surcharge = (
        invoice.adjustments.filter(kind=AdjustmentKind.LATE_SURCHARGE)
        .values_list("amount", flat=True)
        .first()
    )
    return render(
        message.kind,
        message.language,
        {**_about_bill(invoice), "amount_due": selectors.amount_payable(invoice), "surcharge": surcharge},
    )


def payment_received(message: Message) -> Content:
    payment = Payment.objects.select_related("invoice", "method").get(pk=message.about_id)
    receipt = Attachment(f"{payment.receipt_number}.pdf", payment_receipt_pdf(payment), PDF)
    return render(
        message.kind,
        message.language,
        {
            **_about_bill(payment.invoice),
            "payment": payment,
            "allocations": payment.allocations.select_related("invoice").order_by("invoice__period", "pk"),
        },
        attachments=(receipt,),
    )


def payment_reversed(message: Message) -> Content:
    reversal = PaymentReversal.objects.select_related("payment__invoice", "payment__method").get(
        pk=message.about_id
    )
    receipt = Attachment(f"{reversal.number}.pdf", reversal_receipt_pdf(reversal), PDF)
    return render(
        message.kind,
        message.language,
        {
            **_about_bill(reversal.payment.invoice),
            "payment": reversal.payment,
            "reversal": reversal,
            "reopened": reopened_bills(reversal),
        },
        attachments=(receipt,),
    )


def dunning_notice(message: Message) -> Content:
    """A reminder, final notice or disconnection notice: what the step was taken for, and what is
    overdue on the connection when the message is written."""
    step = DunningStep.objects.select_related("connection", "customer", "provider").get(pk=message.about_id)
    owed = (
        Invoice.objects.filter(connection_id=step.connection_id, customer_id=step.customer_id)
        .filter(selectors.unpaid_after_due())
        .aggregate(total=Sum("balance"))["total"]
    )
    return render(
        message.kind,
        message.language,
        {
            "step": step,
            "customer": step.customer,
            "provider": step.provider,
            "currency": step.provider.currency,
            "connection": step.connection,
            "amount_due": money(owed) if owed else NO_MONEY,  # SQLite sums decimals without their places
            "fee": step.provider.reconnection_fee,
            "portal_url": _link("portal-home"),
        },
    )


def register() -> None:
    register_builder(MessageKind.BILL_ISSUED, bill_issued)
    register_builder(MessageKind.BILL_DUE_SOON, bill_due_soon)
    register_builder(MessageKind.BILL_OVERDUE, bill_overdue)
    register_builder(MessageKind.PAYMENT_RECEIVED, payment_received)
    register_builder(MessageKind.PAYMENT_REVERSED, payment_reversed)
    for kind in (MessageKind.DUNNING_REMINDER, MessageKind.FINAL_NOTICE, MessageKind.DISCONNECTION_NOTICE):
        register_builder(kind, dunning_notice)

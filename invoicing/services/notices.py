"""The e-mails that tell customers about their bills and payments: which messages a change records.

Each is recorded in the transaction of the change it reports (an issue, a billing run's chunk, the
overdue job, a payment, the due-soon job) and sent once it commits (`accounts.services.messages_queue`);
what they say is written when they are sent (`invoicing.messages`). A customer without an e-mail
address, or who opted out of that kind, gets no message: nothing is recorded for them. A bill is told
of once per kind (a job run twice tells nobody twice; the database refuses a second one too).
"""

from collections.abc import Sequence
from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import Message, MessageKind, NotificationSettings
from accounts.services import messages_queue
from billing.models import Customer
from invoicing.models import Invoice, InvoiceStatus, Payment
from providers.models import Provider

# The customer's choice each kind follows.
CHOICE_OF = {
    MessageKind.BILL_ISSUED: "notify_bills",
    MessageKind.BILL_DUE_SOON: "notify_reminders",
    MessageKind.BILL_OVERDUE: "notify_reminders",
    MessageKind.PAYMENT_RECEIVED: "notify_payments",
}
INVOICE = Invoice._meta.label_lower
PAYMENT = Payment._meta.label_lower


def _recipients(kind: str, customer_ids: set[int]) -> dict[int, tuple[str, str, int | None]]:
    """(address, language, login) of each customer with an address who wants `kind` (one query)."""
    return {
        pk: (email, language, user_id)
        for pk, email, language, user_id in Customer.objects.filter(
            pk__in=customer_ids, **{CHOICE_OF[kind]: True}
        )
        .exclude(email="")
        .values_list("pk", "email", "preferred_language", "user_id")
    }


def invoices_notify(*, kind: str, invoices: Sequence[Invoice], told_before: bool = True) -> list[Message]:
    """Record the `kind` message about each of `invoices` its customer should get. `told_before=False`
    for invoices issued in this very transaction, which no message can be about yet (one query less on
    a billing run's path)."""
    if not invoices:
        return []
    if told_before:
        told = set(
            Message.objects.filter(
                kind=kind, about_type=INVOICE, about_id__in=[invoice.pk for invoice in invoices]
            ).values_list("about_id", flat=True)
        )
        invoices = [invoice for invoice in invoices if invoice.pk not in told]
    recipients = _recipients(kind, {invoice.customer_id for invoice in invoices})
    return messages_queue(
        messages=[
            Message(
                provider_id=invoice.provider_id,
                user_id=recipients[invoice.customer_id][2],
                recipient=recipients[invoice.customer_id][0],
                kind=kind,
                about_type=INVOICE,
                about_id=invoice.pk,
                language=recipients[invoice.customer_id][1],
            )
            for invoice in invoices
            if invoice.customer_id in recipients
        ]
    )


def payment_notify(*, payment: Payment) -> Message | None:
    """Record the receipt e-mail of a payment just posted, if its customer should get it."""
    customer_id = Invoice.objects.values_list("customer_id", flat=True).get(pk=payment.invoice_id)
    recipient = _recipients(MessageKind.PAYMENT_RECEIVED, {customer_id}).get(customer_id)
    if recipient is None:
        return None
    email, language, user_id = recipient
    (message,) = messages_queue(
        messages=[
            Message(
                provider_id=payment.provider_id,
                user_id=user_id,
                recipient=email,
                kind=MessageKind.PAYMENT_RECEIVED,
                about_type=PAYMENT,
                about_id=payment.pk,
                language=language,
            )
        ]
    )
    return message


def due_reminder_days(provider: Provider) -> int:
    row = NotificationSettings.objects.filter(provider=provider).first()
    return row.due_reminder_days if row else NotificationSettings.DEFAULT_DUE_REMINDER_DAYS


@transaction.atomic
def invoices_remind_due_soon(*, provider: Provider, today: date | None = None) -> int:
    """The daily reminder: every open bill of the provider due within its reminder days (the
    provider's setting, 3 by default), from today on, is reminded once. Bills issued today are left to
    the next day (their bill e-mail has just gone). Running it again the same day sends nothing more.
    Returns the number of reminders recorded."""
    today = today or timezone.localdate()
    due = list(
        Invoice.objects.filter(
            provider=provider,
            status__in=(InvoiceStatus.PENDING, InvoiceStatus.PARTIALLY_PAID),
            balance__gt=0,
            due_date__gte=today,
            due_date__lte=today + timedelta(days=due_reminder_days(provider)),
            issue_date__lt=today,
        )
        .exclude(
            pk__in=Message.objects.filter(kind=MessageKind.BILL_DUE_SOON, about_type=INVOICE).values(
                "about_id"
            )
        )
        .only("pk", "provider_id", "customer_id")
        .order_by("pk")
    )
    return len(invoices_notify(kind=MessageKind.BILL_DUE_SOON, invoices=due, told_before=False))

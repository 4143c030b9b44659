"""The e-mails that tell customers about their bills and payments: which messages a change records.

Each is recorded in the transaction of the change it reports (an issue, a billing run's chunk, the
overdue job, a payment, the due-soon job) and sent once it commits (`accounts.services.messages_queue_selected`);
what they say is written when they are sent (`invoicing.messages`). A customer without an e-mail
address, or who opted out of that kind, gets no message: nothing is recorded for them. A bill is told
of once per kind (a job run twice tells nobody twice; the database refuses a second one too).
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Message, MessageKind, NotificationSettings
from accounts.services import messages_queue_selected
from invoicing.models import DunningStep, Invoice, InvoiceStatus, Payment, PaymentReversal
from providers.models import Provider

# Inside `muted()` nothing is recorded: loading history (the demo's months gone by) tells nobody anything.
_muted: ContextVar[bool] = ContextVar("notices_muted", default=False)


@contextmanager
def muted() -> Iterator[None]:
    token = _muted.set(True)
    try:
        yield
    finally:
        _muted.reset(token)


# The customer's choice each kind follows.
CHOICE_OF = {
    MessageKind.BILL_ISSUED: "notify_bills",
    MessageKind.BILL_DUE_SOON: "notify_reminders",
    MessageKind.BILL_OVERDUE: "notify_reminders",
    MessageKind.PAYMENT_RECEIVED: "notify_payments",
    MessageKind.PAYMENT_REVERSED: "notify_payments",
    MessageKind.DUNNING_REMINDER: "notify_reminders",
}
# Formal notices a customer cannot opt out of: a utility must warn before it cuts the supply.
FORMAL = frozenset({MessageKind.FINAL_NOTICE, MessageKind.DISCONNECTION_NOTICE})
INVOICE = Invoice._meta.label_lower


def _wanting(kind: str, *, customer: str = "customer") -> Q:
    """Rows whose customer (the lookup `customer` leads to) wants `kind`: an address, that kind chosen."""
    return Q(**{f"{customer}__{CHOICE_OF[kind]}": True}) & ~Q(**{f"{customer}__email": ""})


def invoices_notify(*, kind: str, invoices: Sequence[Invoice], told_before: bool = True) -> list[int]:
    """Record the `kind` message about each of `invoices` its customer should get; returns their ids.
    `told_before=False` for invoices issued in this very transaction, which no message can be about
    yet (one condition less on a billing run's path)."""
    if not invoices or _muted.get():
        return []
    bills = Invoice.objects.filter(_wanting(kind), pk__in=[invoice.pk for invoice in invoices])
    if told_before:
        bills = bills.exclude(pk__in=Message.objects.filter(kind=kind, about_type=INVOICE).values("about_id"))
    return messages_queue_selected(
        kind=kind,
        rows=bills,
        recipient="customer__email",
        user="customer__user_id",
        language="customer__preferred_language",
    )


def payment_notify(*, payment: Payment) -> list[int]:
    """Record the receipt e-mail of a payment just posted, if its customer should get it."""
    kind = MessageKind.PAYMENT_RECEIVED
    customer = payment.invoice.customer  # read with the bill: a customer who wants none costs no statement
    if _muted.get() or not customer.email or not getattr(customer, CHOICE_OF[kind]):
        return []
    return messages_queue_selected(
        kind=kind,
        rows=Payment.objects.filter(_wanting(kind, customer="invoice__customer"), pk=payment.pk),
        recipient="invoice__customer__email",
        user="invoice__customer__user_id",
        language="invoice__customer__preferred_language",
    )


def payments_notify(*, payments: Sequence[Payment]) -> list[int]:
    """Record the receipt e-mails of payments just posted together (a bank file's rows), for the
    customers who should get them, in one statement."""
    kind = MessageKind.PAYMENT_RECEIVED
    wanted = [
        payment.pk
        for payment in payments
        if payment.invoice.customer.email and getattr(payment.invoice.customer, CHOICE_OF[kind])
    ]
    if _muted.get() or not wanted:
        return []
    return messages_queue_selected(
        kind=kind,
        rows=Payment.objects.filter(_wanting(kind, customer="invoice__customer"), pk__in=wanted),
        recipient="invoice__customer__email",
        user="invoice__customer__user_id",
        language="invoice__customer__preferred_language",
    )


def reversal_notify(*, reversal: PaymentReversal) -> list[int]:
    """Record the e-mail telling a customer their payment was reversed and what they owe again, if
    they take payment e-mails (the reversal is of a payment they were sent a receipt for)."""
    kind = MessageKind.PAYMENT_REVERSED
    customer = (
        reversal.payment.invoice.customer
    )  # read with the payment's lock: no statement for one who wants none
    if _muted.get() or not customer.email or not getattr(customer, CHOICE_OF[kind]):
        return []
    return messages_queue_selected(
        kind=kind,
        rows=PaymentReversal.objects.filter(
            _wanting(kind, customer="payment__invoice__customer"), pk=reversal.pk
        ),
        recipient="payment__invoice__customer__email",
        user="payment__invoice__customer__user_id",
        language="payment__invoice__customer__preferred_language",
    )


def dunning_notify(*, kind: str, step: DunningStep) -> list[int]:
    """Record the notice of a dunning step just taken for its customer: a reminder if they want
    reminders, a final notice or a disconnection notice whenever they have an address."""
    if _muted.get():
        return []
    wanting = ~Q(customer__email="") if kind in FORMAL else _wanting(kind)
    return messages_queue_selected(
        kind=kind,
        rows=DunningStep.objects.filter(wanting, pk=step.pk),
        recipient="customer__email",
        user="customer__user_id",
        language="customer__preferred_language",
    )


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

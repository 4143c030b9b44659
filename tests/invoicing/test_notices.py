"""The e-mails about bills and payments: a bill issued (its PDF attached), by hand or by a billing run's
chunk; due in a few days; overdue; a payment received (its receipt attached). Each is recorded in the
change's transaction and received by a real SMTP server once that commits; a customer's opt-out and a
customer without an address mean no message at all, and nothing is told twice."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from accounts.models import Message, MessageKind, MessageStatus
from accounts.services import notification_settings_set
from billing.models import Language
from billing.services import customer_invite
from invoicing import tasks
from invoicing.models import Invoice
from invoicing.selectors import pending_chunks
from invoicing.services import (
    billing_run_chunk_bill,
    billing_run_start,
    invoice_issue,
    invoices_mark_overdue,
    invoices_remind_due_soon,
    payment_post,
)
from tests.factories import billable_connection

pytestmark = pytest.mark.django_db
JANUARY = date(2024, 1, 1)  # January's bill: issued 31 January, due 10 February, 9,750.00


@pytest.fixture(autouse=True)
def _frozen(time_machine):
    time_machine.move_to(datetime(2024, 2, 5, 9, tzinfo=UTC), tick=False)


@pytest.fixture
def sent(django_capture_on_commit_callbacks):
    """Run the block as one transaction that commits: its messages are then sent."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def kinds() -> list[tuple[str, str]]:
    return sorted(Message.objects.values_list("kind", "status"))


def test_an_issued_bill_is_emailed_with_its_pdf(mailbox, connection, creator, sent):
    with sent():
        invoice = invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    (received,) = mailbox.received
    ((filename, content_type, pdf),) = received.attachments
    customer = connection.customer
    assert received.rcpt_tos == [customer.email]
    assert received.subject == "Your electricity bill for January 2024: Rs9,750.00 due 10 Feb 2024"
    assert f"Dear {customer.name}," in received.text
    assert f"Your electricity bill {invoice.number} for January 2024 is ready." in received.text
    assert "Payable by 10 Feb 2024: Rs9,750.00" in received.text
    assert f"/portal/bills/{invoice.pk}" in received.html
    assert (filename, content_type, pdf[:5]) == (f"{invoice.number}.pdf", "application/pdf", b"%PDF-")
    message = Message.objects.get()
    assert (message.kind, message.about_type, message.about_id, message.user, message.status) == (
        MessageKind.BILL_ISSUED,
        "invoicing.invoice",
        invoice.pk,
        customer.user,
        MessageStatus.SENT,
    )


def test_an_urdu_speaking_customers_bill_email_is_in_urdu_right_to_left(mailbox, connection, creator, sent):
    customer = connection.customer
    customer.preferred_language = Language.URDU
    customer.save()

    with sent():
        invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    (received,) = mailbox.received
    assert (
        received.subject
        == "جنوری 2024 کا آپ کا بجلی کا بل: 9,750.00 پاکستانی روپیہ، آخری تاریخ 10 فروری 2024"
    )
    assert "موجودہ چارجز: 9,750.00 پاکستانی روپیہ" in received.text
    assert '<html lang="ur" dir="rtl">' in received.html
    assert received.attachments[0][2][:5] == b"%PDF-"


def test_a_billing_run_chunk_records_its_bills_messages_at_once_and_hands_them_over_after_commit(
    mailbox, flat_provider, django_capture_on_commit_callbacks
):
    connections = [billable_connection(flat_provider) for _ in range(3)]
    quiet = connections[0].customer
    quiet.notify_bills = False
    quiet.save()
    no_address = connections[1].customer
    no_address.email = ""
    no_address.save()
    run, _ = billing_run_start(provider=flat_provider, period=JANUARY, chunk_size=10)

    with django_capture_on_commit_callbacks(execute=True) as handed_over:
        (chunk_id,) = pending_chunks(run)
        billing_run_chunk_bill(chunk_id=chunk_id)

    told = connections[2].customer
    invoice = Invoice.objects.get(connection=connections[2])
    (received,) = mailbox.received
    assert Invoice.objects.filter(billing_run=run).count() == 3
    assert len(handed_over) == 1  # one hand-over for the chunk's messages, however many
    assert list(Message.objects.values_list("recipient", "about_id", "status")) == [
        (told.email, invoice.pk, MessageStatus.SENT)
    ]
    assert received.rcpt_tos == [told.email]
    assert received.attachments[0][0] == f"{invoice.number}.pdf"


def test_an_invitation_goes_whatever_the_customers_choices(mailbox, connection, creator, sent):
    customer = connection.customer
    customer.notify_bills = customer.notify_reminders = customer.notify_payments = False
    customer.save()

    with sent():
        invoice_issue(connection=connection, period=JANUARY, created_by=creator)
        customer_invite(customer=customer, invited_by=creator)

    assert kinds() == [(MessageKind.INVITATION, MessageStatus.SENT)]
    assert len(mailbox.received) == 1


def test_a_payment_is_acknowledged_once_with_its_receipt(
    mailbox, connection, creator, super_creator, cash, sent
):
    invoice = invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    with sent():
        payment, _ = payment_post(
            invoice=invoice,
            amount=Decimal("4000.00"),
            method=cash,
            received_by=super_creator,
            idempotency_key="k-1",
        )
    with sent():
        again, new = payment_post(
            invoice=invoice,
            amount=Decimal("4000.00"),
            method=cash,
            received_by=super_creator,
            idempotency_key="k-1",
        )

    (received,) = mailbox.received
    assert (again.pk, new) == (payment.pk, False)
    assert received.subject == f"Payment received: Rs4,000.00, receipt {payment.receipt_number}"
    assert f"Bill {invoice.number} (January 2024): Rs4,000.00" in received.text
    assert "Still to pay on this connection: Rs5,750.00" in received.text
    assert received.attachments[0][0] == f"{payment.receipt_number}.pdf"
    assert received.attachments[0][2][:5] == b"%PDF-"
    assert Message.objects.filter(kind=MessageKind.PAYMENT_RECEIVED).count() == 1


def test_a_customer_who_opted_out_of_receipts_gets_none(connection, creator, super_creator, cash):
    customer = connection.customer
    customer.notify_payments = False
    customer.save()
    invoice = invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    payment_post(invoice=invoice, amount=Decimal("100.00"), method=cash, received_by=super_creator)

    assert kinds() == [(MessageKind.BILL_ISSUED, MessageStatus.QUEUED)]


def test_a_bill_marked_overdue_is_told_once_with_its_surcharge(
    mailbox, connection, creator, sent, time_machine
):
    invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    time_machine.move_to(datetime(2024, 2, 11, 6, tzinfo=UTC), tick=False)

    with sent():
        marked = invoices_mark_overdue(provider=connection.provider)
    with sent():
        invoices_mark_overdue(provider=connection.provider)

    (received,) = mailbox.received
    assert marked == 1
    assert received.subject.startswith("Overdue: bill ")
    assert "A late payment surcharge of Rs975.00 has been added to it." in received.text
    assert "To pay now: Rs10,725.00" in received.text
    assert Message.objects.filter(kind=MessageKind.BILL_OVERDUE).count() == 1


def test_an_overdue_bill_paid_in_part_and_marked_again_is_not_told_twice(
    connection, creator, super_creator, cash, time_machine
):
    invoice = invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    time_machine.move_to(datetime(2024, 2, 11, 6, tzinfo=UTC), tick=False)
    invoices_mark_overdue(provider=connection.provider)
    Invoice.objects.filter(pk=invoice.pk).update(status="Partially_Paid")  # as after a reopened bill

    invoices_mark_overdue(provider=connection.provider)

    assert Message.objects.filter(kind=MessageKind.BILL_OVERDUE).count() == 1


def test_a_customer_who_opted_out_of_reminders_is_not_told_of_an_overdue_bill(
    connection, creator, time_machine
):
    customer = connection.customer
    customer.notify_reminders = False
    customer.save()
    invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    time_machine.move_to(datetime(2024, 2, 11, 6, tzinfo=UTC), tick=False)

    invoices_mark_overdue(provider=connection.provider)

    assert not Message.objects.filter(kind=MessageKind.BILL_OVERDUE).exists()


# --- due in a few days --------------------------------------------------------------------------------


@pytest.fixture
def three_bills(flat_provider, creator, super_creator, cash):
    """January bills, due 10 February: one unpaid, one paid, one of a customer who wants no reminders."""
    unpaid, paid, quiet = (billable_connection(flat_provider) for _ in range(3))
    quiet.customer.notify_reminders = False
    quiet.customer.save()
    bills = [invoice_issue(connection=c, period=JANUARY, created_by=creator) for c in (unpaid, paid, quiet)]
    payment_post(invoice=bills[1], amount=bills[1].balance, method=cash, received_by=super_creator)
    return bills


def test_an_open_bill_is_reminded_three_days_before_it_is_due_once(
    mailbox, flat_provider, three_bills, time_machine, sent
):
    time_machine.move_to(datetime(2024, 2, 6, 4, tzinfo=UTC), tick=False)  # due in 4 days: not yet
    early = invoices_remind_due_soon(provider=flat_provider)
    time_machine.move_to(datetime(2024, 2, 7, 4, tzinfo=UTC), tick=False)  # due in 3 days

    with sent():
        tasks.remind_bills_due_soon.delay()
    with sent():
        tasks.remind_bills_due_soon.delay()  # the job come round again: nobody is reminded twice

    (received,) = mailbox.received
    reminded = Message.objects.get(kind=MessageKind.BILL_DUE_SOON)
    assert early == 0
    assert reminded.about_id == three_bills[0].pk
    assert received.subject == f"Reminder: Rs9,750.00 due on 10 Feb 2024 (bill {three_bills[0].number})"
    assert "is due in 3 days, on 10 February 2024." in received.text
    assert "a late payment surcharge of Rs975.00 is added" in received.text


def test_the_provider_chooses_how_many_days_before(flat_provider, three_bills, time_machine):
    notification_settings_set(provider=flat_provider, due_reminder_days=5)
    time_machine.move_to(datetime(2024, 2, 5, 4, tzinfo=UTC), tick=False)  # due in 5 days

    assert invoices_remind_due_soon(provider=flat_provider) == 1


def test_a_reminder_missed_on_its_day_still_goes_before_the_due_date_but_not_after(
    flat_provider, three_bills, time_machine
):
    time_machine.move_to(datetime(2024, 2, 11, 4, tzinfo=UTC), tick=False)  # the due date has passed
    late = invoices_remind_due_soon(provider=flat_provider)
    time_machine.move_to(datetime(2024, 2, 9, 4, tzinfo=UTC), tick=False)  # the job was down until the 9th

    assert (late, invoices_remind_due_soon(provider=flat_provider)) == (0, 1)


def test_a_bill_issued_today_is_not_reminded_the_same_day(flat_provider, creator, time_machine):
    time_machine.move_to(datetime(2024, 2, 29, 4, tzinfo=UTC), tick=False)
    connection = billable_connection(flat_provider, months=2)
    invoice_issue(
        connection=connection, period=date(2024, 2, 1), created_by=creator, due_date=date(2024, 3, 2)
    )

    assert invoices_remind_due_soon(provider=flat_provider) == 0

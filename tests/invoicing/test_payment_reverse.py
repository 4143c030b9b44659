"""payment_reverse: an officer takes a payment back (bounced, charged back, posted in error). What it
settled is owed again, each bill reopens with the status its due date and its other payments give it,
a bill past its due date gets its late surcharge once, the reversal has its own gapless receipt
number, other payments stay where they were, and a payment is reversed only once."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from accounts.models import Message, MessageKind
from auditing.models import AuditLog
from invoicing.models import (
    Adjustment,
    AdjustmentKind,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAllocation,
    PaymentReversal,
    ReversalKind,
)
from invoicing.services import (
    IdempotencyMismatch,
    PaymentReversed,
    ReversalRefused,
    credit_balance_of,
    credit_refund,
    invoice_issue,
    invoice_update,
    invoices_mark_overdue,
    payment_post,
    payment_reverse,
)
from providers.services import provider_update
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db
D = Decimal
JANUARY, FEBRUARY = date(2024, 1, 1), date(2024, 2, 1)
BEFORE_DUE = datetime(2024, 2, 5, 9, tzinfo=UTC)  # January's bill is due 10 February 2024
AFTER_DUE = datetime(2024, 2, 20, 9, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _before_due(time_machine):
    time_machine.move_to(BEFORE_DUE, tick=False)


@pytest.fixture
def january(connection, creator):
    """9750.00, issued 31 January 2024, due 10 February 2024."""
    return invoice_issue(connection=connection, period=JANUARY, created_by=creator)


@pytest.fixture
def paid(january, creator, cash):
    """January paid in full on 5 February."""
    payment, _ = payment_post(invoice=january, amount=D("9750.00"), method=cash, received_by=creator)
    return payment


def reverse(payment: Payment, officer, **overrides) -> PaymentReversal:
    values = {"kind": ReversalKind.BOUNCED, "reason": "Cheque 004512 returned: insufficient funds"}
    reversal, _ = payment_reverse(payment=payment, reversed_by=officer, **{**values, **overrides})
    return reversal


def ledger_of(invoice: Invoice) -> tuple:
    invoice.refresh_from_db()
    return invoice.status, invoice.amount_paid, invoice.balance, invoice.paid_on


def test_a_bounced_payment_before_the_due_date_reopens_the_bill_pending(
    connection, january, paid, super_creator
):
    reversal, new = payment_reverse(
        payment=paid,
        kind=ReversalKind.BOUNCED,
        reason="  Cheque 004512 returned: insufficient funds ",
        reversed_by=super_creator,
    )

    assert new
    assert ledger_of(january) == (InvoiceStatus.PENDING, D("0.00"), D("9750.00"), None)
    assert (reversal.number, reversal.kind, reversal.reason) == (
        f"{connection.provider.code}-RV-2024-000001",
        ReversalKind.BOUNCED,
        "Cheque 004512 returned: insufficient funds",
    )
    assert (reversal.reversed_by, reversal.reversed_at, reversal.provider) == (
        super_creator,
        BEFORE_DUE,
        connection.provider,
    )
    assert (reversal.amount, reversal.surcharge_total, reversal.payable_before, reversal.payable_after) == (
        D("9750.00"),
        D("0.00"),
        D("0.00"),
        D("9750.00"),
    )
    assert reversal.reopened == [
        {
            "billId": january.pk,
            "invoiceNumber": january.number,
            "period": "2024-01",
            "amount": "9750.00",
            "surcharge": "0.00",
            "balance": "9750.00",
            "status": InvoiceStatus.PENDING,
        }
    ]
    assert Payment.objects.get(pk=paid.pk).is_reversed
    assert not Adjustment.objects.exists()
    assert_ledger_holds(connection)


def test_a_reversed_part_payment_leaves_the_other_payment_on_the_bill(
    connection, january, creator, super_creator, cash
):
    first, _ = payment_post(invoice=january, amount=D("4000.00"), method=cash, received_by=creator)
    second, _ = payment_post(invoice=january, amount=D("5750.00"), method=cash, received_by=creator)

    reverse(first, super_creator)

    assert ledger_of(january) == (InvoiceStatus.PARTIALLY_PAID, D("5750.00"), D("4000.00"), None)
    assert list(second.allocations.values_list("invoice", "amount")) == [(january.pk, D("5750.00"))]
    assert not hasattr(Payment.objects.get(pk=second.pk), "reversal")
    assert_ledger_holds(connection)


def test_a_payment_reversed_after_the_due_date_reopens_the_bill_overdue_with_its_surcharge(
    connection, january, paid, super_creator, time_machine
):
    time_machine.move_to(AFTER_DUE, tick=False)

    reversal = reverse(paid, super_creator, kind=ReversalKind.CHARGED_BACK)

    assert ledger_of(january) == (InvoiceStatus.OVERDUE, D("0.00"), D("10725.00"), None)
    surcharge = Adjustment.objects.get(invoice=january)
    assert (surcharge.kind, surcharge.amount, surcharge.balance_before, surcharge.balance_after) == (
        AdjustmentKind.LATE_SURCHARGE,
        D("975.00"),
        D("9750.00"),
        D("10725.00"),
    )
    assert surcharge.number == f"{connection.provider.code}-ADJ-2024-000001"
    assert (reversal.surcharge_total, reversal.payable_before, reversal.payable_after) == (
        D("975.00"),
        D("0.00"),
        D("10725.00"),
    )
    assert (reversal.reopened[0]["surcharge"], reversal.reopened[0]["status"]) == (
        "975.00",
        InvoiceStatus.OVERDUE,
    )
    # The nightly job finds nothing more to do on it.
    assert invoices_mark_overdue(provider=connection.provider) == 0
    assert Adjustment.objects.filter(invoice=january).count() == 1
    assert_ledger_holds(connection)


def test_a_bill_surcharged_before_it_was_paid_is_not_surcharged_again(
    connection, january, creator, super_creator, cash, time_machine
):
    time_machine.move_to(AFTER_DUE, tick=False)
    invoices_mark_overdue(provider=connection.provider)
    payment, _ = payment_post(invoice=january, amount=D("10725.00"), method=cash, received_by=creator)
    assert ledger_of(january)[0] == InvoiceStatus.PAID

    reversal = reverse(payment, super_creator)

    assert ledger_of(january) == (InvoiceStatus.OVERDUE, D("0.00"), D("10725.00"), None)
    assert Adjustment.objects.filter(invoice=january, kind=AdjustmentKind.LATE_SURCHARGE).count() == 1
    assert reversal.surcharge_total == D("0.00")
    assert_ledger_holds(connection)


def test_a_payment_over_two_bills_reopens_both_and_a_later_payment_stays_where_it_was(
    connection, january, creator, super_creator, cash, time_machine
):
    time_machine.move_to(datetime(2024, 3, 2, 9, tzinfo=UTC), tick=False)
    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator)  # due 10 March
    both, _ = payment_post(invoice=february, amount=D("12000.00"), method=cash, received_by=creator)
    later, _ = payment_post(invoice=february, amount=D("7500.00"), method=cash, received_by=creator)

    reversal = reverse(
        both, super_creator, kind=ReversalKind.POSTED_IN_ERROR, reason="Posted to the wrong bill"
    )

    # January is past due (surcharged); February keeps the later payment.
    assert ledger_of(january) == (InvoiceStatus.OVERDUE, D("0.00"), D("10725.00"), None)
    assert ledger_of(february) == (InvoiceStatus.PARTIALLY_PAID, D("7500.00"), D("2250.00"), None)
    assert list(later.allocations.values_list("invoice", "amount")) == [(february.pk, D("7500.00"))]
    assert [(bill["invoiceNumber"], bill["amount"]) for bill in reversal.reopened] == [
        (january.number, "9750.00"),
        (february.number, "2250.00"),
    ]
    assert (reversal.payable_before, reversal.payable_after) == (D("0.00"), D("12975.00"))
    assert_ledger_holds(connection)


def test_a_payment_is_reversed_only_once(connection, january, paid, super_creator):
    first = reverse(paid, super_creator)

    with pytest.raises(PaymentReversed, match="already reversed") as refused:
        reverse(paid, super_creator, reason="Again")

    assert (refused.value.code, refused.value.status, refused.value.extra) == (
        "payment_reversed",
        409,
        {"reversal": first.number},
    )
    assert PaymentReversal.objects.count() == 1
    assert ledger_of(january) == (InvoiceStatus.PENDING, D("0.00"), D("9750.00"), None)
    assert_ledger_holds(connection)


@pytest.mark.parametrize(
    ("kind", "reason", "field"),
    [("stolen", "A reason", "kind"), (ReversalKind.BOUNCED, "   ", "reason")],
)
def test_a_reversal_without_a_known_kind_or_a_reason_is_refused_and_changes_nothing(
    connection, january, paid, super_creator, kind, reason, field
):
    with pytest.raises(ReversalRefused) as refused:
        reverse(paid, super_creator, kind=kind, reason=reason)

    assert (refused.value.code, refused.value.field) == ("reversal_refused", field)
    assert not PaymentReversal.objects.exists()
    assert ledger_of(january) == (InvoiceStatus.PAID, D("9750.00"), D("0.00"), date(2024, 2, 5))
    # No number was used up: the next reversal takes the first one.
    assert reverse(paid, super_creator).number.endswith("-RV-2024-000001")


def test_reversal_numbers_are_gapless_per_provider_and_year(
    connection, january, creator, super_creator, cash
):
    payments = [
        payment_post(invoice=january, amount=D("100.00"), method=cash, received_by=creator)[0]
        for _ in range(3)
    ]

    numbers = [reverse(payment, super_creator).number for payment in payments]

    code = connection.provider.code
    assert numbers == [f"{code}-RV-2024-{n:06d}" for n in (1, 2, 3)]


def test_a_retried_reversal_returns_the_first_and_another_body_with_the_key_is_refused(
    connection, january, paid, super_creator
):
    first, new = payment_reverse(
        payment=paid, kind="bounced", reason="Returned", reversed_by=super_creator, idempotency_key="k-1"
    )
    again, again_new = payment_reverse(
        payment=paid, kind="bounced", reason="Returned", reversed_by=super_creator, idempotency_key="k-1"
    )

    assert (new, again_new, again.pk) == (True, False, first.pk)
    with pytest.raises(IdempotencyMismatch):
        payment_reverse(
            payment=paid,
            kind="charged_back",
            reason="Returned",
            reversed_by=super_creator,
            idempotency_key="k-1",
        )
    assert_ledger_holds(connection)


def test_a_reversal_is_audited_with_the_bills_it_reopened(connection, january, paid, super_creator):
    reversal = reverse(paid, super_creator)

    created = AuditLog.objects.get(object_type="invoicing.paymentreversal", action="create")
    assert (created.object_id, created.new_values["number"], created.new_values["kind"]) == (
        str(reversal.pk),
        reversal.number,
        "bounced",
    )
    update = AuditLog.objects.filter(object_type="invoicing.invoice", object_id=str(january.pk)).latest("id")
    assert (update.action, update.old_values["status"], update.new_values["status"]) == (
        "update",
        InvoiceStatus.PAID,
        InvoiceStatus.PENDING,
    )
    assert (update.old_values["amount_paid"], update.new_values["amount_paid"]) == ("9750.00", "0.00")
    assert created.provider_id == connection.provider_id


def test_the_customer_is_told_of_the_reversal_with_its_receipt(
    mailbox, connection, january, paid, super_creator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        reversal = reverse(paid, super_creator)

    message = Message.objects.get(kind=MessageKind.PAYMENT_REVERSED)
    assert (message.about_type, message.about_id, message.recipient) == (
        "invoicing.paymentreversal",
        reversal.pk,
        connection.customer.email,
    )
    (received,) = [mail for mail in mailbox.received if "reversed" in mail.subject]
    assert received.subject == (
        f"Payment reversed: Rs9,750.00 of receipt {paid.receipt_number} is owed again"
    )
    assert f"Bill {january.number} (January 2024): Rs9,750.00 to pay" in received.text
    ((filename, content_type, pdf),) = received.attachments
    assert (filename, content_type, pdf[:5]) == (f"{reversal.number}.pdf", "application/pdf", b"%PDF-")


def test_a_customer_who_opted_out_of_payment_emails_is_not_told(connection, january, paid, super_creator):
    connection.customer.notify_payments = False
    connection.customer.save()

    reverse(paid, super_creator)

    assert not Message.objects.filter(kind=MessageKind.PAYMENT_REVERSED).exists()
    assert PaymentAllocation.objects.filter(payment=paid).count() == 1  # kept as the payment's history


def test_a_reversed_overpayment_takes_its_excess_back_from_the_credit_balance(
    flat_provider, january, creator, super_creator, cash
):
    provider_update(provider=flat_provider, allow_overpayment=True)
    payment, _ = payment_post(invoice=january, amount=D("10000.00"), method=cash, received_by=creator)
    assert credit_balance_of(january.customer) == D("250.00")

    reversal = reverse(payment, super_creator)

    assert reversal.amount == D("10000.00")
    assert credit_balance_of(january.customer) == D("0.00")
    assert ledger_of(january)[:3] == (InvoiceStatus.PENDING, D("0.00"), D("9750.00"))
    assert_ledger_holds(january.connection)


def test_an_overpayment_whose_credit_was_refunded_is_not_reversed_until_the_rest_is_charged_back(
    flat_provider, january, creator, super_creator, cash
):
    provider_update(provider=flat_provider, allow_overpayment=True)
    payment, _ = payment_post(invoice=january, amount=D("10000.00"), method=cash, received_by=creator)
    credit_refund(
        customer=january.customer, amount=D("200.00"), method=cash, reason="Asked", officer=super_creator
    )

    with pytest.raises(ReversalRefused, match=r"only 50\.00 of it is left"):
        reverse(payment, super_creator)

    assert not PaymentReversal.objects.exists()
    assert credit_balance_of(january.customer) == D("50.00")
    assert_ledger_holds(january.connection)


def test_a_payment_on_a_bill_re_rated_since_is_refused_and_changes_nothing(
    connection, january, super_creator, cash
):
    # Found by the ledger's state machine (test_ledger_properties.py): the reversal reopened the
    # cancelled bill beside the one replacing it, and the month's unique bill constraint failed (500).
    payment, _ = payment_post(invoice=january, amount=D("4000.00"), method=cash, received_by=super_creator)
    replacement = invoice_update(invoice=january, updated_by=super_creator, kwh=D("100"), reason="Misread")

    with pytest.raises(ReversalRefused, match="cancelled since") as refused:
        reverse(payment, super_creator)

    assert (refused.value.code, refused.value.field, refused.value.extra) == (
        "reversal_refused",
        "payment",
        {"cancelled": [january.number]},
    )
    assert not PaymentReversal.objects.exists()
    assert ledger_of(january)[:3] == (InvoiceStatus.CANCELLED, D("4000.00"), D("0.00"))
    # The 4000.00 paid went to the credit balance and paid the new bill of 3250.00 in full.
    assert ledger_of(replacement)[:3] == (InvoiceStatus.PAID, D("0.00"), D("0.00"))
    assert credit_balance_of(connection.customer) == D("750.00")
    assert_ledger_holds(connection)

"""Credit notes: cancelling and re-rating an issued bill, an officer's credit of part of a bill, and
the credit balance a credit note leaves, applied to the customer's next bill. The issued bill never
changes: its number, lines and amounts stay; its ledger moves."""

from datetime import date, datetime
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import IntegrityError, transaction

from auditing.models import AuditLog
from invoicing.models import CreditEntryKind, CreditNote, CustomerCredit, Invoice, InvoiceStatus
from invoicing.services import (
    CreditRefused,
    IdempotencyMismatch,
    InvoiceCancelled,
    InvoiceLocked,
    InvoicePaid,
    adjustment_create,
    credit_balance_of,
    credit_note_issue,
    invoice_issue,
    invoice_update,
    invoices_mark_overdue,
    payment_post,
    payment_reverse,
)
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db

JANUARY, FEBRUARY = date(2024, 1, 1), date(2024, 2, 1)
# Every rule here reads today (a credit note's date and number, a new bill's issue date).
TODAY = time_machine.travel(datetime(2024, 3, 20, 12, tzinfo=ZoneInfo("Asia/Karachi")), tick=False)


@pytest.fixture(autouse=True)
def _frozen():
    with TODAY:
        yield


@pytest.fixture
def january(connection, creator):
    return invoice_issue(connection=connection, period=JANUARY, created_by=creator)


def lines_of(invoice: Invoice) -> list[tuple]:
    return list(invoice.lines.values_list("kind", "amount"))


def note_lines(note: CreditNote) -> list[tuple]:
    return list(note.lines.values_list("label", "amount"))


# --- cancelling ------------------------------------------------------------------------------------


def test_cancelling_an_unpaid_bill_credits_its_open_amount_and_keeps_the_bill_as_issued(
    connection, january, creator
):
    invoice_update(invoice=january, updated_by=creator, cancel=True, reason="Issued to the wrong address")

    january.refresh_from_db()
    note = january.credit_notes.get()
    code = connection.provider.code
    assert (note.number, note.issue_date, note.amount, note.applied, note.to_balance) == (
        f"{code}-CN-2024-000001",
        date(2024, 3, 20),
        D("9750.00"),
        D("9750.00"),
        D("0.00"),
    )
    assert (note.reason, note.issued_by, note.issued_by_name) == (
        "Issued to the wrong address",
        creator,
        creator.name,
    )
    assert note_lines(note) == [
        (f"Open balance of bill {january.number} (January 2024), cancelled", D("9750.00"))
    ]
    assert (january.number, january.status, january.current_charges, january.credited, january.balance) == (
        f"{code}-2024-000001",
        InvoiceStatus.CANCELLED,
        D("9750.00"),
        D("9750.00"),
        D("0.00"),
    )
    assert lines_of(january) == [("energy", D("9750.00"))]
    assert credit_balance_of(january.customer) == D("0.00")
    assert_ledger_holds(connection)


def test_cancelling_a_part_paid_bill_credits_what_is_still_open_and_keeps_the_payment(
    connection, january, creator, cash
):
    payment_post(invoice=january, amount=D("1000.00"), method=cash, received_by=creator)

    invoice_update(invoice=january, updated_by=creator, cancel=True)

    january.refresh_from_db()
    note = january.credit_notes.get()
    assert (note.amount, note.applied, note.to_balance, note.reason) == (
        D("8750.00"),
        D("8750.00"),
        D("0.00"),
        "Bill cancelled",
    )
    assert (january.status, january.amount_paid, january.credited, january.balance) == (
        InvoiceStatus.CANCELLED,
        D("1000.00"),
        D("8750.00"),
        D("0.00"),
    )
    assert_ledger_holds(connection)


def test_cancelling_a_paid_bill_is_refused_with_what_to_do_instead(connection, january, creator, cash):
    payment_post(invoice=january, amount=D("9750.00"), method=cash, received_by=creator)

    with pytest.raises(InvoicePaid, match="Re-rate it, or issue a credit note"):
        invoice_update(invoice=january, updated_by=creator, cancel=True)

    january.refresh_from_db()
    assert (january.status, january.credit_notes.count()) == (InvoiceStatus.PAID, 0)


def test_a_cancelled_bill_cannot_be_cancelled_or_credited_again(connection, january, creator, super_creator):
    invoice_update(invoice=january, updated_by=creator, cancel=True)

    with pytest.raises(InvoiceCancelled):
        invoice_update(invoice=january, updated_by=creator, cancel=True)
    with pytest.raises(InvoiceCancelled, match="nothing more can be credited"):
        credit_note_issue(invoice=january, amount=D("1.00"), reason="Again", issued_by=super_creator)

    assert CreditNote.objects.count() == 1
    assert_ledger_holds(connection)


def test_credit_note_numbers_are_gapless_per_provider_and_year(connection, creator, super_creator):
    bills = [invoice_issue(connection=connection, period=month, created_by=creator) for month in (JANUARY,)]
    first, _ = credit_note_issue(invoice=bills[0], amount=D("10.00"), reason="One", issued_by=super_creator)
    second, _ = credit_note_issue(invoice=bills[0], amount=D("20.00"), reason="Two", issued_by=super_creator)

    code = connection.provider.code
    assert [first.number, second.number] == [f"{code}-CN-2024-000001", f"{code}-CN-2024-000002"]


# --- re-rating -------------------------------------------------------------------------------------


def test_rerating_a_paid_bill_credits_it_in_full_and_the_payment_settles_the_new_bill(
    connection, january, creator, cash
):
    payment_post(invoice=january, amount=D("9750.00"), method=cash, received_by=creator)

    replacement = invoice_update(invoice=january, updated_by=creator, kwh=D("200"), reason="Meter misread")

    january.refresh_from_db()
    note = january.credit_notes.get()
    assert (note.amount, note.applied, note.to_balance) == (D("9750.00"), D("0.00"), D("9750.00"))
    assert note_lines(note) == [(f"Charges of bill {january.number} (January 2024)", D("9750.00"))]
    assert (january.status, january.current_charges, january.amount_paid, january.balance) == (
        InvoiceStatus.CANCELLED,
        D("9750.00"),
        D("9750.00"),
        D("0.00"),
    )
    # 200 kWh at 32.50: 6500.00, paid out of the 9750.00 credit; 3250.00 of credit is left.
    assert (replacement.replaces_id, replacement.number, replacement.issue_date) == (
        january.pk,
        f"{connection.provider.code}-2024-000002",
        date(2024, 3, 20),
    )
    assert (
        replacement.current_charges,
        replacement.credit_applied,
        replacement.balance,
        replacement.status,
    ) == (
        D("6500.00"),
        D("6500.00"),
        D("0.00"),
        InvoiceStatus.PAID,
    )
    assert credit_balance_of(january.customer) == D("3250.00")
    kinds = list(
        january.customer.credit_entries.order_by("pk").values_list("kind", "amount", "balance_after")
    )
    assert kinds == [
        (CreditEntryKind.CREDIT_NOTE, D("9750.00"), D("9750.00")),
        (CreditEntryKind.APPLIED, D("-6500.00"), D("3250.00")),
    ]
    assert_ledger_holds(connection)


def test_rerating_a_bill_with_a_late_surcharge_credits_its_adjustments_too(connection, creator):
    january = invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    invoices_mark_overdue(provider=connection.provider, today=date(2024, 3, 1))

    replacement = invoice_update(invoice=january, updated_by=creator, kwh=D("300"))

    note = january.credit_notes.get()
    assert note_lines(note) == [
        (f"Charges of bill {january.number} (January 2024)", D("9750.00")),
        (f"Adjustments on bill {january.number}", D("975.00")),
    ]
    assert (note.amount, note.applied) == (D("10725.00"), D("10725.00"))
    assert (replacement.current_charges, replacement.balance, replacement.status) == (
        D("9750.00"),
        D("9750.00"),
        InvoiceStatus.PENDING,
    )
    assert_ledger_holds(connection)


@pytest.mark.parametrize("change", [{"kwh": D("0")}, {"cancel": True}])
def test_a_bill_owing_more_than_is_creditable_is_neither_re_rated_nor_cancelled(
    connection, january, creator, super_creator, cash, change
):
    # Found by the ledger's state machine (test_ledger_properties.py): a bill credited in full and
    # reopened by a reversal was re-rated, and came out cancelled with its bounced 4000.00 still owed.
    payment, _ = payment_post(invoice=january, amount=D("4000.00"), method=cash, received_by=creator)
    credit_note_issue(invoice=january, amount=D("9750.00"), reason="Meter misread", issued_by=super_creator)
    payment_reverse(payment=payment, kind="bounced", reason="Cheque returned", reversed_by=super_creator)
    january.refresh_from_db()
    assert (january.status, january.balance) == (InvoiceStatus.OVERDUE, D("4975.00"))  # 975.00 surcharge

    with pytest.raises(InvoiceLocked, match="a payment on it was reversed after it was credited") as refused:
        invoice_update(invoice=january, updated_by=super_creator, **change)

    assert refused.value.extra == {"balance": "4975.00", "creditable": "975.00"}
    january.refresh_from_db()
    assert (january.status, january.balance, CreditNote.objects.count()) == (
        InvoiceStatus.OVERDUE,
        D("4975.00"),
        1,
    )
    assert_ledger_holds(connection)


def test_the_replaced_month_stays_billed_once(connection, january, creator):
    replacement = invoice_update(invoice=january, updated_by=creator, kwh=D("100"))

    live = Invoice.objects.filter(connection=connection, period=JANUARY).exclude(
        status=InvoiceStatus.CANCELLED
    )
    assert list(live) == [replacement]
    with pytest.raises(InvoiceCancelled):
        invoice_update(invoice=january, updated_by=creator, kwh=D("50"))


def test_an_older_bill_a_later_one_carries_is_credited_by_a_credit_note_not_cancelled(
    connection, creator, super_creator
):
    january = invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator)

    with pytest.raises(InvoiceLocked, match="issue a credit note on this one") as refused:
        invoice_update(invoice=january, updated_by=creator, kwh=D("10"))
    note, _ = credit_note_issue(
        invoice=january, amount=D("750.00"), reason="Estimate", issued_by=super_creator
    )

    assert refused.value.extra == {"later": february.number}
    january.refresh_from_db()
    assert (note.applied, january.balance, january.status) == (
        D("750.00"),
        D("9000.00"),
        InvoiceStatus.PENDING,
    )
    assert_ledger_holds(connection)


# --- an officer's credit note ----------------------------------------------------------------------


def test_a_credit_note_on_an_unpaid_bill_lowers_its_balance(connection, january, super_creator):
    note, new = credit_note_issue(
        invoice=january, amount=D("1000.00"), reason="Goodwill", issued_by=super_creator
    )

    january.refresh_from_db()
    assert new
    assert (note.applied, note.to_balance, note.balance_before, note.balance_after) == (
        D("1000.00"),
        D("0.00"),
        D("9750.00"),
        D("8750.00"),
    )
    assert note_lines(note) == [("Goodwill", D("1000.00"))]
    assert (january.balance, january.credited, january.status) == (D("8750.00"), D("1000.00"), "Pending")
    assert_ledger_holds(connection)


def test_crediting_a_paid_bill_makes_the_credit_the_customers_credit_balance(
    connection, january, super_creator, cash
):
    payment_post(invoice=january, amount=D("9000.00"), method=cash, received_by=super_creator)

    note, _ = credit_note_issue(
        invoice=january, amount=D("1000.00"), reason="Tariff error", issued_by=super_creator
    )

    january.refresh_from_db()
    assert (note.applied, note.to_balance) == (D("750.00"), D("250.00"))
    assert (january.balance, january.status) == (D("0.00"), InvoiceStatus.PAID)
    assert credit_balance_of(january.customer) == D("250.00")
    assert_ledger_holds(connection)


def test_a_credit_above_what_the_bill_charged_is_refused(connection, january, super_creator):
    adjustment_create(
        invoice=january, amount=D("50.00"), direction="credit", reason="Misread", officer=super_creator
    )
    credit_note_issue(invoice=january, amount=D("700.00"), reason="Part", issued_by=super_creator)

    with pytest.raises(CreditRefused, match=r"credit at most 9000\.00") as refused:
        credit_note_issue(invoice=january, amount=D("9000.01"), reason="Too much", issued_by=super_creator)

    assert refused.value.extra == {"creditable": "9000.00"}
    assert CreditNote.objects.count() == 1
    assert_ledger_holds(connection)


def test_a_bill_credited_in_full_takes_no_more_credit(connection, january, super_creator, cash):
    payment_post(invoice=january, amount=D("9750.00"), method=cash, received_by=super_creator)
    credit_note_issue(invoice=january, amount=D("9750.00"), reason="Wrong meter", issued_by=super_creator)

    with pytest.raises(CreditRefused, match="already credited in full"):
        credit_note_issue(invoice=january, amount=D("0.01"), reason="Again", issued_by=super_creator)

    assert credit_balance_of(january.customer) == D("9750.00")
    assert_ledger_holds(connection)


@pytest.mark.parametrize(
    ("amount", "reason", "message"),
    [(D("0"), "Why", "more than zero"), (D("-5"), "Why", "more than zero"), (D("5"), "  ", "Say why")],
)
def test_a_credit_note_needs_an_amount_and_a_reason(january, super_creator, amount, reason, message):
    with pytest.raises(CreditRefused, match=message):
        credit_note_issue(invoice=january, amount=amount, reason=reason, issued_by=super_creator)


def test_a_retried_credit_note_returns_the_first_and_another_body_is_refused(
    connection, january, super_creator
):
    first, new = credit_note_issue(
        invoice=january, amount=D("100.00"), reason="Goodwill", issued_by=super_creator, idempotency_key="k-1"
    )
    again, again_new = credit_note_issue(
        invoice=january, amount=D("100.00"), reason="Goodwill", issued_by=super_creator, idempotency_key="k-1"
    )

    with pytest.raises(IdempotencyMismatch):
        credit_note_issue(
            invoice=january,
            amount=D("200.00"),
            reason="Goodwill",
            issued_by=super_creator,
            idempotency_key="k-1",
        )
    january.refresh_from_db()
    assert (new, again_new, again.pk) == (True, False, first.pk)
    assert january.balance == D("9650.00")
    assert_ledger_holds(connection)


# --- the credit balance on the next bill -----------------------------------------------------------


def test_the_credit_balance_pays_the_customers_next_bill_when_it_is_issued(
    connection, january, creator, super_creator, cash
):
    payment_post(invoice=january, amount=D("9750.00"), method=cash, received_by=super_creator)
    credit_note_issue(invoice=january, amount=D("2000.00"), reason="Tariff error", issued_by=super_creator)

    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator)

    assert (february.current_charges, february.credit_applied, february.credited, february.balance) == (
        D("9750.00"),
        D("2000.00"),
        D("2000.00"),
        D("7750.00"),
    )
    assert february.status == InvoiceStatus.PENDING
    # The bill prints what is left to pay.
    assert (february.payable_before_due, february.payable_after_due) == (D("7750.00"), D("8725.00"))
    assert credit_balance_of(january.customer) == D("0.00")
    applied = february.credit_entries.get()
    assert (applied.kind, applied.amount, applied.balance_after) == (
        CreditEntryKind.APPLIED,
        D("-2000.00"),
        D("0.00"),
    )
    assert_ledger_holds(connection)


def test_a_credit_balance_larger_than_the_next_bill_pays_it_in_full_and_the_rest_waits(
    connection, january, creator, super_creator, cash
):
    payment_post(invoice=january, amount=D("9750.00"), method=cash, received_by=super_creator)
    credit_note_issue(invoice=january, amount=D("9750.00"), reason="Wrong meter", issued_by=super_creator)

    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator, kwh=D("100"))

    assert (february.balance, february.status, february.paid_on) == (
        D("0.00"),
        InvoiceStatus.PAID,
        february.issue_date,
    )
    assert credit_balance_of(january.customer) == D("6500.00")
    assert_ledger_holds(connection)


def test_new_credit_rows_are_audited(connection, january, creator, super_creator, cash):
    payment_post(invoice=january, amount=D("9750.00"), method=cash, received_by=super_creator)
    credit_note_issue(invoice=january, amount=D("100.00"), reason="Goodwill", issued_by=super_creator)
    invoice_issue(connection=connection, period=FEBRUARY, created_by=creator)

    logged = set(AuditLog.objects.values_list("object_type", "action"))

    assert {
        ("invoicing.creditnote", "create"),
        ("invoicing.creditnoteline", "create"),
        ("invoicing.customercredit", "create"),
        ("invoicing.customercredit", "update"),
        ("invoicing.creditentry", "create"),
    } <= logged


# --- the database holds the ledger -----------------------------------------------------------------


def test_the_database_refuses_a_negative_credit_balance(connection, january, super_creator, cash):
    payment_post(invoice=january, amount=D("9750.00"), method=cash, received_by=super_creator)
    credit_note_issue(invoice=january, amount=D("10.00"), reason="Goodwill", issued_by=super_creator)

    with pytest.raises(IntegrityError), transaction.atomic():
        CustomerCredit.objects.filter(customer=january.customer).update(balance=D("-0.01"))


def test_the_database_refuses_a_bill_whose_balance_ignores_what_was_credited(january, super_creator):
    credit_note_issue(invoice=january, amount=D("10.00"), reason="Goodwill", issued_by=super_creator)

    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=january.pk).update(balance=D("9750.00"))


def test_cancelling_a_bill_the_credit_balance_paid_is_refused(
    connection, january, creator, super_creator, cash
):
    payment_post(invoice=january, amount=D("9750.00"), method=cash, received_by=super_creator)
    credit_note_issue(invoice=january, amount=D("9750.00"), reason="Wrong meter", issued_by=super_creator)
    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator, kwh=D("100"))

    with pytest.raises(InvoicePaid):
        invoice_update(invoice=february, updated_by=creator, cancel=True)

    assert credit_balance_of(january.customer) == D("6500.00")

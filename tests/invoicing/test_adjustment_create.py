"""adjustment_create: an officer's signed correction of an issued bill's balance, with a reason and
the officer as their account names them; never below zero, never on a paid or cancelled bill."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.roles import Role
from invoicing.models import Adjustment, AdjustmentKind, InvoiceStatus
from invoicing.services import (
    AdjustmentRefused,
    InvoiceCancelled,
    InvoicePaid,
    adjustment_create,
    credit_note_issue,
    invoice_issue,
    invoice_update,
    payment_post,
    payment_reverse,
)
from tests.factories import UserFactory
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db
D = Decimal
JANUARY = date(2024, 1, 1)


@pytest.fixture
def january(connection, creator):
    """9750.00, unpaid."""
    return invoice_issue(connection=connection, period=JANUARY, created_by=creator)


def adjust(
    invoice, officer, amount: str, direction: str = "credit", reason: str = "Meter misread in January"
):
    adjustment, _ = adjustment_create(
        invoice=invoice, amount=D(amount), direction=direction, reason=reason, officer=officer
    )
    return adjustment


def unchanged(invoice) -> None:
    invoice.refresh_from_db()
    assert not Adjustment.objects.exists()
    assert (invoice.adjustment_total, invoice.balance) == (
        D("0.00"),
        invoice.current_charges - invoice.amount_paid,
    )


def test_adjustment_create_credit_lowers_the_balance(connection, january, super_creator):
    adjustment = adjust(january, super_creator, "750.00", "credit")

    january.refresh_from_db()
    assert (january.adjustment_total, january.balance, january.status) == (
        D("-750.00"),
        D("9000.00"),
        InvoiceStatus.PENDING,
    )
    # Issued amounts never change: the correction lives in the ledger.
    assert (january.current_charges, january.payable_before_due) == (D("9750.00"), D("9750.00"))
    assert (adjustment.kind, adjustment.direction, adjustment.amount, adjustment.signed_amount) == (
        AdjustmentKind.OFFICER,
        "credit",
        D("750.00"),
        D("-750.00"),
    )
    assert adjustment.number == f"{connection.provider.code}-ADJ-{timezone.localdate().year}-000001"
    assert_ledger_holds(connection)


def test_adjustment_create_debit_raises_the_balance(connection, january, super_creator):
    adjustment = adjust(january, super_creator, "250.00", "debit", reason="Unbilled units from December")

    january.refresh_from_db()
    assert (january.adjustment_total, january.balance, january.status) == (
        D("250.00"),
        D("10000.00"),
        InvoiceStatus.PENDING,
    )
    assert (adjustment.signed_amount, adjustment.reason) == (D("250.00"), "Unbilled units from December")
    assert_ledger_holds(connection)


def test_adjustment_create_numbers_adjustments_consecutively(connection, january, super_creator):
    first = adjust(january, super_creator, "100.00", "credit")
    second = adjust(january, super_creator, "40.00", "debit")

    year = timezone.localdate().year
    code = connection.provider.code
    assert [first.number, second.number] == [f"{code}-ADJ-{year}-000001", f"{code}-ADJ-{year}-000002"]
    january.refresh_from_db()
    assert (january.adjustment_total, january.balance) == (D("-60.00"), D("9690.00"))
    assert_ledger_holds(connection)


def test_adjustment_create_refuses_a_credit_below_zero(connection, january, super_creator):
    with pytest.raises(AdjustmentRefused, match="below zero") as refused:
        adjust(january, super_creator, "9750.01", "credit")

    assert (refused.value.field, refused.value.extra) == ("amount", {"balance": "9750.00"})
    unchanged(january)
    assert_ledger_holds(connection)


def test_adjustment_create_refuses_a_credit_below_what_is_left_after_payments(
    connection, january, super_creator, creator, cash
):
    payment_post(invoice=january, amount=D("9000.00"), method=cash, received_by=creator)

    with pytest.raises(AdjustmentRefused, match="below zero") as refused:
        adjust(january, super_creator, "750.01", "credit")

    assert refused.value.extra == {"balance": "750.00"}
    unchanged(january)
    assert_ledger_holds(connection)


def test_adjustment_create_refuses_a_credit_below_what_credit_notes_took_back(
    connection, january, super_creator, creator, cash, time_machine
):
    # Found by the ledger's state machine (test_ledger_properties.py): a bill credited in full, then
    # reopened by a bounced payment, took a credit adjustment, and its credit notes came to more
    # than it charged.
    time_machine.move_to(datetime(2024, 2, 5, 9, tzinfo=UTC), tick=False)  # before the due date
    payment, _ = payment_post(invoice=january, amount=D("4000.00"), method=cash, received_by=creator)
    credit_note_issue(invoice=january, amount=D("9750.00"), reason="Meter misread", issued_by=super_creator)
    payment_reverse(payment=payment, kind="bounced", reason="Cheque returned", reversed_by=super_creator)
    january.refresh_from_db()
    assert january.balance == D("4000.00")  # owed again, though credited in full

    with pytest.raises(AdjustmentRefused, match="below what its credit notes took back") as refused:
        adjust(january, super_creator, "0.01", "credit")

    assert (refused.value.field, refused.value.extra) == ("amount", {"creditable": "0.00"})
    assert not Adjustment.objects.exists()
    assert adjust(january, super_creator, "10.00", "debit").balance_after == D("4010.00")
    assert_ledger_holds(connection)


def test_adjustment_create_refuses_a_paid_invoice(connection, january, super_creator, creator, cash):
    payment_post(invoice=january, amount=D("9750.00"), method=cash, received_by=creator)

    with pytest.raises(InvoicePaid, match="fully paid"):
        adjust(january, super_creator, "100.00", "debit")

    unchanged(january)
    assert_ledger_holds(connection)


def test_adjustment_create_refuses_a_cancelled_invoice(connection, january, super_creator, creator):
    invoice_update(invoice=january, updated_by=creator, cancel=True)

    with pytest.raises(InvoiceCancelled, match="cancelled"):
        adjust(january, super_creator, "100.00", "credit")

    january.refresh_from_db()
    assert not Adjustment.objects.exists()
    assert (january.status, january.balance) == (InvoiceStatus.CANCELLED, D("0.00"))
    assert_ledger_holds(connection)


def test_adjustment_create_refuses_an_officer_without_a_designation(connection, january, flat_provider):
    officer = UserFactory(provider=flat_provider, roles=[Role.SUPER_CREATOR], designation="  ")

    with pytest.raises(AdjustmentRefused, match="no designation"):
        adjust(january, officer, "100.00")

    unchanged(january)
    assert_ledger_holds(connection)


@pytest.mark.parametrize("reason", ["", "   \n"])
def test_adjustment_create_refuses_an_empty_reason(connection, january, super_creator, reason):
    with pytest.raises(AdjustmentRefused, match="Say why") as refused:
        adjust(january, super_creator, "100.00", reason=reason)

    assert refused.value.field == "reason"
    unchanged(january)
    assert_ledger_holds(connection)


@pytest.mark.parametrize(
    ("amount", "direction", "field"),
    [("0.00", "credit", "amount"), ("-5.00", "debit", "amount"), ("5.00", "refund", "direction")],
)
def test_adjustment_create_refuses_a_non_positive_amount_or_unknown_direction(
    connection, january, super_creator, amount, direction, field
):
    with pytest.raises(AdjustmentRefused) as refused:
        adjust(january, super_creator, amount, direction)

    assert refused.value.field == field
    unchanged(january)
    assert_ledger_holds(connection)


def test_adjustment_create_copies_the_officer_name_and_designation_from_the_account(
    connection, january, super_creator
):
    name_then = super_creator.name
    adjustment = adjust(january, super_creator, "100.00", reason="  Estimated reading corrected  ")
    super_creator.name = "Someone Renamed"
    super_creator.designation = "Retired"
    super_creator.save()

    adjustment.refresh_from_db()
    assert (adjustment.officer, adjustment.officer_name, adjustment.officer_designation) == (
        super_creator,
        name_then,
        "Senior Billing Officer",
    )
    assert adjustment.reason == "Estimated reading corrected"
    assert_ledger_holds(connection)


def test_adjustment_create_takes_no_officer_name_from_the_caller(january, super_creator):
    with pytest.raises(TypeError):
        adjustment_create(
            invoice=january,
            amount=D("100.00"),
            direction="credit",
            reason="Meter misread",
            officer=super_creator,
            officer_name="Chief Engineer",
        )

    assert not Adjustment.objects.exists()


def test_adjustment_receipt_shows_the_original_amount_and_the_balance_before_and_after(
    connection, january, super_creator, creator, cash
):
    payment_post(invoice=january, amount=D("1000.00"), method=cash, received_by=creator)

    credit = adjust(january, super_creator, "500.00", "credit")
    debit = adjust(january, super_creator, "20.00", "debit")

    assert (credit.original_amount, credit.balance_before, credit.balance_after) == (
        D("9750.00"),
        D("8750.00"),
        D("8250.00"),
    )
    assert (debit.original_amount, debit.balance_before, debit.balance_after) == (
        D("9750.00"),
        D("8250.00"),
        D("8270.00"),
    )
    january.refresh_from_db()
    assert (january.status, january.balance) == (InvoiceStatus.PARTIALLY_PAID, D("8270.00"))
    assert_ledger_holds(connection)


def test_adjustment_create_credit_that_clears_the_balance_makes_the_invoice_paid(
    connection, january, super_creator, creator, cash
):
    adjust(january, super_creator, "9750.00", "credit", reason="Bill raised in error")

    january.refresh_from_db()
    assert (january.status, january.balance, january.paid_on) == (
        InvoiceStatus.PAID,
        D("0.00"),
        timezone.localdate(),
    )
    with pytest.raises(InvoicePaid):
        payment_post(invoice=january, amount=D("1.00"), method=cash, received_by=creator)
    assert_ledger_holds(connection)


def test_adjustment_create_credit_of_what_is_left_after_a_payment_makes_the_invoice_paid(
    connection, january, super_creator, creator, cash
):
    payment_post(invoice=january, amount=D("9700.00"), method=cash, received_by=creator)

    adjustment = adjust(january, super_creator, "50.00", "credit", reason="Rounding waived")

    january.refresh_from_db()
    assert (adjustment.balance_before, adjustment.balance_after) == (D("50.00"), D("0.00"))
    assert (january.status, january.amount_paid, january.adjustment_total, january.balance) == (
        InvoiceStatus.PAID,
        D("9700.00"),
        D("-50.00"),
        D("0.00"),
    )
    assert_ledger_holds(connection)

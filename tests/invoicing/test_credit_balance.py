"""A customer's credit balance: kept from an overpayment where the provider allows it, applied to the
customer's bills as a billing run issues them (one query per chunk, however many customers have
credit), and refunded by an officer with a refund receipt in its own series."""

from datetime import date, datetime
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from invoicing.models import CreditEntryKind, CreditRefund, Invoice, InvoiceStatus, PaymentMethod
from invoicing.selectors import pending_chunks
from invoicing.services import (
    CreditRefused,
    IdempotencyMismatch,
    MethodInactive,
    Overpayment,
    billing_run_chunk_bill,
    billing_run_start,
    credit_balance_of,
    credit_refund,
    invoice_issue,
    payment_post,
)
from providers.services import provider_update
from tests.factories import FlatTariffFactory, UserFactory, billable_connection
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db

JANUARY, FEBRUARY = date(2024, 1, 1), date(2024, 2, 1)


@pytest.fixture
def lenient(flat_provider):
    """A provider that keeps an overpayment as the customer's credit."""
    return provider_update(provider=flat_provider, allow_overpayment=True)


@pytest.fixture
def officer(flat_provider):
    return UserFactory(provider=flat_provider, roles=[Role.SUPER_CREATOR], designation="Revenue Officer")


def overpaid(provider, officer, cash, extra: str):
    """A connection billed for January (9750.00) and paid `extra` more than that."""
    connection = billable_connection(provider, months=2)
    january = invoice_issue(connection=connection, period=JANUARY, created_by=officer)
    payment_post(invoice=january, amount=D("9750.00") + D(extra), method=cash, received_by=officer)
    return connection


# --- overpayments ----------------------------------------------------------------------------------


def test_an_overpayment_is_refused_by_default(connection, creator, cash):
    january = invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    with pytest.raises(Overpayment):
        payment_post(invoice=january, amount=D("9750.01"), method=cash, received_by=creator)

    assert credit_balance_of(january.customer) == D("0.00")


def test_where_the_provider_allows_it_the_excess_of_a_payment_is_the_customers_credit(
    lenient, connection, creator, cash
):
    january = invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    payment, _ = payment_post(invoice=january, amount=D("10000.00"), method=cash, received_by=creator)

    january.refresh_from_db()
    assert (payment.amount, payment.payable_before, payment.payable_after) == (
        D("10000.00"),
        D("9750.00"),
        D("0.00"),
    )
    assert [(row.invoice_id, row.amount) for row in payment.allocations.all()] == [(january.pk, D("9750.00"))]
    assert (january.balance, january.status) == (D("0.00"), InvoiceStatus.PAID)
    entry = january.customer.credit_entries.get()
    assert (entry.kind, entry.amount, entry.payment_id) == (
        CreditEntryKind.OVERPAYMENT,
        D("250.00"),
        payment.pk,
    )
    assert credit_balance_of(january.customer) == D("250.00")
    assert_ledger_holds(connection)


def test_the_overpaid_credit_pays_the_next_bill_issued(lenient, officer, cash):
    connection = overpaid(lenient, officer, cash, "250.00")

    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=officer)

    assert (february.credit_applied, february.balance) == (D("250.00"), D("9500.00"))
    assert_ledger_holds(connection)


# --- the billing run -------------------------------------------------------------------------------


def run_february(provider) -> int:
    """Bill February in one chunk; the number of queries the chunk took."""
    run, _ = billing_run_start(provider=provider, period=FEBRUARY, chunk_size=100)
    (chunk_id,) = pending_chunks(run)
    with CaptureQueriesContext(db_connection) as queries:
        billing_run_chunk_bill(chunk_id=chunk_id)
    return len(queries)


def test_a_billing_run_applies_each_customers_credit_to_their_new_bill(lenient, officer, cash):
    credited = [overpaid(lenient, officer, cash, extra) for extra in ("100.00", "20000.00")]
    plain = overpaid(lenient, officer, cash, "0.00")

    run_february(lenient)

    february = {bill.connection_id: bill for bill in Invoice.objects.filter(period=FEBRUARY)}
    assert [
        (february[c.pk].credit_applied, february[c.pk].balance, february[c.pk].status) for c in credited
    ] == [
        (D("100.00"), D("9650.00"), InvoiceStatus.PENDING),
        (D("9750.00"), D("0.00"), InvoiceStatus.PAID),
    ]
    assert (february[plain.pk].credit_applied, february[plain.pk].balance) == (D("0.00"), D("9750.00"))
    assert [credit_balance_of(c.customer) for c in credited] == [D("0.00"), D("10250.00")]
    assert_ledger_holds(*credited, plain)


def test_a_billing_run_reads_its_customers_credit_in_as_many_queries_however_many_have_some(
    lenient, other_provider, officer, cash
):
    provider_update(provider=other_provider, allow_overpayment=True)
    other_officer = UserFactory(provider=other_provider, roles=[Role.SUPER_CREATOR])
    FlatTariffFactory(provider=other_provider, rate=D("32.50"))
    for extra in ("10.00", "0.00", "0.00"):
        overpaid(lenient, officer, cash, extra)
    for extra in ("10.00", "20.00", "30.00"):
        overpaid(other_provider, other_officer, cash, extra)

    assert run_february(lenient) == run_february(other_provider)


# --- refunds ---------------------------------------------------------------------------------------


def test_an_officer_refunds_part_of_a_credit_balance_with_a_numbered_receipt(lenient, officer, cash):
    connection = overpaid(lenient, officer, cash, "500.00")
    customer = connection.customer

    with time_machine.travel(datetime(2024, 4, 2, 10, tzinfo=ZoneInfo("Asia/Karachi")), tick=False):
        refund, new = credit_refund(
            customer=customer,
            amount=D("300.00"),
            method=cash,
            reason="Customer asked for the overpayment back",
            reference="CHQ-1182",
            officer=officer,
        )

    assert new
    assert (refund.number, refund.amount, refund.balance_before, refund.balance_after) == (
        f"{lenient.code}-RF-2024-000001",
        D("300.00"),
        D("500.00"),
        D("200.00"),
    )
    assert (refund.officer_name, refund.officer_designation) == (officer.name, "Revenue Officer")
    entry = customer.credit_entries.get(kind=CreditEntryKind.REFUND)
    assert (entry.amount, entry.balance_after, entry.refund_id) == (D("-300.00"), D("200.00"), refund.pk)
    assert credit_balance_of(customer) == D("200.00")
    assert_ledger_holds(connection)


def test_a_refund_above_the_credit_balance_is_refused(lenient, officer, cash):
    connection = overpaid(lenient, officer, cash, "500.00")

    with pytest.raises(CreditRefused, match=r"refund at most 500\.00") as refused:
        credit_refund(
            customer=connection.customer, amount=D("500.01"), method=cash, reason="Back", officer=officer
        )

    assert refused.value.extra == {"creditBalance": "500.00"}
    assert not CreditRefund.objects.exists()
    assert credit_balance_of(connection.customer) == D("500.00")


def test_a_customer_without_credit_gets_no_refund(connection, officer, cash):
    with pytest.raises(CreditRefused, match=r"credit balance of 0\.00"):
        credit_refund(
            customer=connection.customer, amount=D("1.00"), method=cash, reason="Back", officer=officer
        )


def test_a_refund_needs_the_officers_designation_a_reason_and_a_method_in_use(lenient, officer, cash):
    connection = overpaid(lenient, officer, cash, "500.00")
    customer = connection.customer
    nameless = UserFactory(provider=lenient, roles=[Role.SUPER_CREATOR], designation="")
    retired = PaymentMethod.objects.create(code="postal-order", name="Postal order", is_active=False)

    with pytest.raises(CreditRefused, match="no designation"):
        credit_refund(customer=customer, amount=D("1.00"), method=cash, reason="Back", officer=nameless)
    with pytest.raises(CreditRefused, match="Say why"):
        credit_refund(customer=customer, amount=D("1.00"), method=cash, reason=" ", officer=officer)
    with pytest.raises(MethodInactive):
        credit_refund(customer=customer, amount=D("1.00"), method=retired, reason="Back", officer=officer)

    assert credit_balance_of(customer) == D("500.00")


def test_a_retried_refund_returns_the_first_and_another_body_is_refused(lenient, officer, cash):
    connection = overpaid(lenient, officer, cash, "500.00")
    values = {"customer": connection.customer, "method": cash, "reason": "Back", "officer": officer}

    first, _ = credit_refund(amount=D("100.00"), idempotency_key="r-1", **values)
    again, new = credit_refund(amount=D("100.00"), idempotency_key="r-1", **values)
    with pytest.raises(IdempotencyMismatch):
        credit_refund(amount=D("200.00"), idempotency_key="r-1", **values)

    assert (again.pk, new) == (first.pk, False)
    assert credit_balance_of(connection.customer) == D("400.00")
    assert_ledger_holds(connection)

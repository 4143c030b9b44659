"""The demo (`manage.py demo_data`) is alive on the day it is loaded: the sample company's own months
exactly as the file has them, then its prices, readings, bills and payments carried on up to the
month just ended, whatever today is."""

from datetime import date, datetime, time
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.roles import Role
from billing.models import Customer
from billing.months import previous_month
from invoicing.books import journal_for
from invoicing.models import Adjustment, AdjustmentDirection, Invoice, InvoiceLine, InvoiceStatus, Payment
from invoicing.selectors import dashboard_for
from invoicing.services import invoice_issue
from providers.models import Provider
from tests.sample_data import EXAMPLES

D = Decimal
# The first day of the carried-on prices, and a day in December 2026, nearly two years on. (Each day
# loads the whole demo, most of it posting payments one by one: a third day would add minutes.)
DEMO_DAYS = [date(2025, 1, 1), date(2026, 12, 2)]

# Each day freezes its own clock, so the clock-shifted pass would load the same demo again for nothing;
# the demo is the embedded default's (SQLite), so the PostgreSQL pass leaves it too.
pytestmark = pytest.mark.demo


@pytest.fixture(scope="module", params=DEMO_DAYS, ids=str)
def today(request, django_db_setup, django_db_blocker):
    """The demo loaded once per day (it is slow to load), with the clock stopped on that day at 09:00
    for the module's tests; each test runs inside it and rolls back, and the demo goes with the day."""
    with (
        django_db_blocker.unblock(),
        time_machine.travel(
            datetime.combine(request.param, time(9), tzinfo=timezone.get_current_timezone()), tick=False
        ),
        transaction.atomic(),
    ):
        call_command("demo_data", stdout=StringIO())
        yield request.param
        transaction.set_rollback(True)


@pytest.fixture
def disco(today, db):
    return Provider.objects.get(code="DISCO")


def test_the_calculator_estimates_on_today_s_prices(today, disco, as_role):
    customer = as_role(Customer.objects.get(number="LHR-RES-0001").user, Role.CUSTOMER)
    usage = {"connectionType": "2", "peakKwh": "217", "offPeakKwh": "211", "days": "30"}

    response = customer.post("/api/calculator", usage, format="json")

    # The sample's July 2024 bill of DISCO-RES-1101, priced on the carried-on schedule.
    assert response.status_code == 200, response.json()
    assert response.json()["currentCharges"] == "9151.64"


def test_a_bill_of_the_running_month_can_be_issued(today, disco):
    connection = Customer.objects.get(number="LHR-RES-0001").connections.get()
    clerk = User.objects.get(email="creator@disco.example")

    invoice = invoice_issue(
        connection=connection,
        period=today.replace(day=1),
        created_by=clerk,
        peak_kwh=D("217"),
        off_peak_kwh=D("211"),
    )

    assert invoice.issue_date == today
    assert invoice.current_charges > 0


def test_the_dashboard_shows_the_month_just_ended(today, disco):
    manager = User.objects.get(email="admin@disco.example")
    manager.active_role = Role.ADMIN  # as the signed-in request sets it

    figures = dashboard_for(user=manager)

    assert figures.month == previous_month(today)
    assert figures.billed > 0
    assert len(figures.by_month) == 12


def test_every_month_up_to_the_one_just_ended_is_billed_for_every_connection(today, disco):
    months = sorted(set(Invoice.objects.filter(provider=disco).values_list("period", flat=True)))

    assert (months[0], months[-1]) == (date(2023, 9, 1), previous_month(today))
    assert Invoice.objects.filter(provider=disco).count() == 75 * len(months)
    assert len(months) == (today.year - 2023) * 12 + today.month - 9


def test_payments_are_dated_between_their_bill_s_issue_and_due_dates(today, disco):
    payments = Payment.objects.filter(provider=disco).select_related("invoice")

    assert payments.exists()
    dated_outside = [
        payment.receipt_number
        for payment in payments
        if not payment.invoice.issue_date
        <= timezone.localdate(payment.received_at)
        <= payment.invoice.due_date
    ]
    assert dated_outside == []
    assert not payments.filter(received_at__date=today).exists()


def test_the_last_two_months_are_unpaid_and_every_earlier_bill_is_paid(today, disco):
    last_two = [previous_month(previous_month(today)), previous_month(today)]
    bills = Invoice.objects.filter(provider=disco)

    assert set(bills.filter(period__in=last_two).values_list("amount_paid", flat=True)) == {D("0")}
    assert set(bills.filter(period=last_two[0]).values_list("status", flat=True)) == {InvoiceStatus.OVERDUE}
    assert set(bills.filter(period=last_two[1]).values_list("status", flat=True)) == {InvoiceStatus.PENDING}
    assert set(bills.exclude(period__in=last_two).values_list("status", flat=True)) == {InvoiceStatus.PAID}


@pytest.mark.parametrize(
    "example", EXAMPLES, ids=lambda e: f"{e['connection_id']}-{e['year']}-{e['month']:02d}"
)
def test_the_sample_s_months_still_match_the_worked_examples(today, disco, example):
    invoice = Invoice.objects.get(
        connection__number=example["connection_id"], period=date(example["year"], example["month"], 1)
    )

    got = {
        "issue_date": f"{invoice.issue_date}",
        "due_date": f"{invoice.due_date}",
        "energy_charge": f"{invoice.energy_charge}",
        "tax_total": f"{invoice.tax_total}",
        "fixed_total": f"{invoice.fixed_total}",
        "subsidy_total": f"{invoice.subsidy_total}",
        "current_charges": f"{invoice.current_charges}",
        "late_surcharge": f"{invoice.late_surcharge}",
        "payable_after_due": f"{invoice.payable_after_due}",
    }
    assert got == {key: example[key] for key in got}


def test_the_journal_of_each_year_ties_to_the_demo_s_documents(today, disco):
    """Finance reconciles the books with the documents: for every year of the demo, each day balances,
    receivables are what was billed (and debited) less what was paid (and credited), cash by method is
    the payments by method, each authority's tax is its tax lines; over all years, the receivables left
    are the open balances."""
    live = Invoice.objects.filter(provider=disco).exclude(status=InvoiceStatus.CANCELLED)
    years = sorted({bill.issue_date.year for bill in live} | {today.year})
    left = Decimal("0.00")
    for year in years:
        journal = journal_for(provider=disco, first=date(year, 1, 1), last=date(year, 12, 31))
        assert all(day.debit == day.credit for day in journal.days)
        accounts = {entry.account.code: entry for entry in journal.totals}

        bills = [bill for bill in live if bill.issue_date.year == year]
        payments = [
            p
            for p in Payment.objects.filter(provider=disco)
            if timezone.localtime(p.received_at).year == year
        ]
        adjustments = [
            a
            for a in Adjustment.objects.filter(provider=disco)
            if timezone.localtime(a.created_at).year == year
        ]
        debits = sum((a.amount for a in adjustments if a.direction == AdjustmentDirection.DEBIT), Decimal(0))
        credits = sum(
            (a.amount for a in adjustments if a.direction == AdjustmentDirection.CREDIT), Decimal(0)
        )
        receivables = accounts.get("receivables")
        billed = sum((bill.current_charges for bill in bills), Decimal(0))
        paid = sum((payment.amount for payment in payments), Decimal(0))
        assert (receivables.debit, receivables.credit) == (billed + debits, paid + credits), year
        for method in {payment.method for payment in payments}:
            assert accounts[f"cash:{method.code}"].debit == sum(
                (payment.amount for payment in payments if payment.method == method), Decimal(0)
            )
        taxes = InvoiceLine.objects.filter(invoice__in=bills, kind="tax")
        assert sum((e.credit for code, e in accounts.items() if code.startswith("tax:")), Decimal(0)) == sum(
            (line.amount for line in taxes), Decimal(0)
        )
        left += receivables.debit - receivables.credit
    assert left == sum((bill.balance for bill in live), Decimal(0))

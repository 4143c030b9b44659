"""The books: the journal balances every day and ties to the documents it is read from (bills and
their lines, payments by method, adjustments), the tax report sums each authority's tax lines, and
both are the caller's provider's alone, as JSON, as CSV and on the staff page."""

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from accounts.roles import Role
from accounts.sessions import SESSION_ROLE_KEY
from invoicing.books import journal_for, tax_report_for
from invoicing.models import AdjustmentDirection, InvoiceLine, PaymentMethod
from invoicing.services import (
    adjustment_create,
    credit_note_issue,
    credit_refund,
    invoice_issue,
    invoice_update,
    invoices_mark_overdue,
    payment_post,
    payment_reverse,
)
from providers.importing import price_schedule_import
from providers.models import ConnectionType
from providers.services import provider_update
from tests.factories import UserFactory, billable_connection
from tests.sample_data import SAMPLE

pytestmark = pytest.mark.django_db
D = Decimal
ZONE = ZoneInfo(settings.TIME_ZONE)
JANUARY, FEBRUARY = date(2024, 1, 1), date(2024, 2, 1)


@pytest.fixture
def disco(provider, time_machine):
    """The sample company's whole price schedule (taxes for two authorities, a fixed charge, a
    subsidy), a residential connection billed for January and February 2024, and two payments."""
    time_machine.move_to(datetime(2024, 3, 20, 10, tzinfo=ZONE), tick=False)
    price_schedule_import(provider=provider, data=SAMPLE)
    return provider


@pytest.fixture
def officer(disco):
    return UserFactory(provider=disco, roles=[Role.SUPER_CREATOR], designation="Revenue Officer")


@pytest.fixture
def methods(db):
    return [
        PaymentMethod.objects.get_or_create(code=code, defaults={"name": name})[0]
        for code, name in (("bank-counter", "Paid at Bank Counter"), ("jazzcash", "JazzCash"))
    ]


@pytest.fixture
def documents(disco, officer, methods):
    household = ConnectionType.objects.get(provider=disco, code="1")
    connection = billable_connection(disco, months=2, connection_type=household)
    january = invoice_issue(
        connection=connection,
        period=JANUARY,
        created_by=officer,
        issue_date=date(2024, 2, 2),
        due_date=date(2024, 2, 12),
    )
    february = invoice_issue(
        connection=connection,
        period=FEBRUARY,
        created_by=officer,
        issue_date=date(2024, 3, 2),
        due_date=date(2024, 3, 12),
    )
    first, _ = payment_post(
        invoice=january,
        amount=D("1000.00"),
        method=methods[0],
        received_by=officer,
        received_at=datetime(2024, 2, 10, 15, tzinfo=ZONE),
    )
    second, _ = payment_post(
        invoice=february,
        amount=D("250.55"),
        method=methods[1],
        received_by=officer,
        received_at=datetime(2024, 3, 5, 23, 30, tzinfo=ZONE),  # late in the evening: still 5 March here
    )
    invoices_mark_overdue(provider=disco, today=date(2024, 3, 20))  # January's late surcharge
    credit, _ = adjustment_create(
        invoice=february,
        amount=D("100.00"),
        direction=AdjustmentDirection.CREDIT,
        reason="Meter misread",
        officer=officer,
    )
    january.refresh_from_db()
    february.refresh_from_db()
    return january, february, first, second, credit


def test_a_reversed_payment_is_taken_back_on_the_day_it_was_reversed(disco, documents, officer, time_machine):
    january, february, _, second, _ = documents
    time_machine.move_to(datetime(2024, 3, 25, 10, tzinfo=ZONE), tick=False)
    payment_reverse(payment=second, kind="bounced", reason="Cheque returned unpaid", reversed_by=officer)

    journal = journal_for(provider=disco, first=date(2024, 3, 25), last=date(2024, 3, 25))
    (day,) = journal.days
    entries = {entry.account.code: entry for entry in day.entries}
    assert entries["cash:jazzcash"].credit == D("250.55")
    assert entries["receivables"].debit == D("250.55")
    assert day.debit == day.credit
    everything = totals(journal_for(provider=disco, first=date(2024, 1, 1), last=date(2024, 12, 31)))
    debit, credit = everything["receivables"]
    january.refresh_from_db()
    february.refresh_from_db()
    assert debit - credit == january.balance + february.balance
    assert everything["cash:jazzcash"] == (D("250.55"), D("250.55"))


def totals(journal) -> dict[str, tuple[Decimal, Decimal]]:
    return {entry.account.code: (entry.debit, entry.credit) for entry in journal.totals}


def test_each_day_balances_and_each_document_is_posted_on_its_own_day(disco, documents):
    january, february, *_ = documents
    journal = journal_for(provider=disco, first=date(2024, 1, 1), last=date(2024, 3, 31))

    assert [day.day for day in journal.days] == [
        date(2024, 2, 2), date(2024, 2, 10), date(2024, 3, 2), date(2024, 3, 5), date(2024, 3, 20)
    ]  # fmt: skip
    for day in journal.days:
        assert day.debit == day.credit > 0, day
    by_day = {day.day: {entry.account.code: entry for entry in day.entries} for day in journal.days}
    assert by_day[date(2024, 2, 2)]["receivables"].debit == january.current_charges
    assert by_day[date(2024, 2, 10)]["cash:bank-counter"].debit == D("1000.00")
    assert by_day[date(2024, 2, 10)]["receivables"].credit == D("1000.00")
    assert by_day[date(2024, 3, 5)]["cash:jazzcash"].debit == D("250.55")
    # Both bills were past due and unpaid on 20 March: each got its surcharge that day.
    surcharge = january.late_surcharge + february.late_surcharge
    assert january.late_surcharge > 0 and february.late_surcharge > 0
    assert by_day[date(2024, 3, 20)]["late-surcharges"].credit == surcharge
    assert by_day[date(2024, 3, 20)]["officer-adjustments"].debit == D("100.00")
    assert by_day[date(2024, 3, 20)]["receivables"].debit == surcharge
    assert by_day[date(2024, 3, 20)]["receivables"].credit == D("100.00")


def test_the_receivables_left_are_the_open_balances_and_each_account_is_its_lines(disco, documents):
    january, february, *_ = documents
    accounts = totals(journal_for(provider=disco, first=date(2024, 1, 1), last=date(2024, 12, 31)))

    debit, credit = accounts["receivables"]
    assert debit - credit == january.balance + february.balance
    lines = list(InvoiceLine.objects.filter(invoice__in=[january, february]))
    energy = sum(line.amount for line in lines if line.kind == "energy")
    assert accounts["energy:1"] == (0, energy) and energy > 0
    taxes = {line.label: line.amount for line in lines if line.kind == "tax"}
    assert len(taxes) == 2  # the sales tax and the electricity duty, for two authorities
    tax_accounts = {code: amounts for code, amounts in accounts.items() if code.startswith("tax:")}
    assert sum(credit for _, credit in tax_accounts.values()) == sum(
        line.amount for line in lines if line.kind == "tax"
    )
    assert len(tax_accounts) == 2
    fixed = sum(line.amount for line in lines if line.kind == "fixed")
    assert sum(c for code, (_, c) in accounts.items() if code.startswith("fixed:")) == fixed > 0
    journal_debits = sum(d for d, _ in accounts.values())
    journal_credits = sum(c for _, c in accounts.values())
    assert journal_debits == journal_credits


def test_a_range_leaves_out_what_happened_outside_it(disco, documents):
    january, *_ = documents
    accounts = totals(journal_for(provider=disco, first=date(2024, 2, 1), last=date(2024, 2, 29)))
    assert accounts["receivables"] == (january.current_charges, D("1000.00"))
    assert "cash:jazzcash" not in accounts


def test_the_tax_report_sums_each_tax_per_authority_and_month(disco, documents):
    january, february, *_ = documents
    rows = tax_report_for(provider=disco, year=2024)

    assert {(row.month, row.bills) for row in rows} == {(date(2024, 2, 1), 1), (date(2024, 3, 1), 1)}
    for bill in (january, february):
        month = bill.issue_date.replace(day=1)
        assert sum(row.amount for row in rows if row.month == month) == bill.tax_total
    assert tax_report_for(provider=disco, year=2023) == []


def test_a_cancelled_bill_stays_in_the_books_and_its_credit_note_takes_it_back(disco, officer):
    household = ConnectionType.objects.get(provider=disco, code="1")
    connection = billable_connection(disco, months=1, connection_type=household)
    bill = invoice_issue(
        connection=connection, period=JANUARY, created_by=officer, issue_date=date(2024, 2, 2)
    )
    invoice_update(invoice=bill, updated_by=officer, cancel=True)  # on 20 March, by a credit note

    journal = journal_for(provider=disco, first=date(2024, 2, 1), last=date(2024, 3, 31))
    by_day = {day.day: {entry.account.code: entry for entry in day.entries} for day in journal.days}
    assert by_day[date(2024, 2, 2)]["receivables"].debit == bill.current_charges
    assert by_day[date(2024, 3, 20)]["credit-notes"].debit == bill.current_charges
    assert by_day[date(2024, 3, 20)]["receivables"].credit == bill.current_charges
    assert totals(journal)["receivables"] == (bill.current_charges, bill.current_charges)


def test_credit_balances_move_through_their_own_account_and_receivables_stay_the_open_balances(
    disco, officer, methods, time_machine
):
    """An overpayment's excess, a credit note beyond what a bill owed, the credit applied to the next
    bill and a refund: the customers' credit account ends at the customer's credit balance, and the
    receivables left are still the bills' open balances."""
    provider_update(provider=disco, allow_overpayment=True)
    household = ConnectionType.objects.get(provider=disco, code="1")
    connection = billable_connection(disco, months=2, connection_type=household)
    january = invoice_issue(
        connection=connection, period=JANUARY, created_by=officer, issue_date=date(2024, 2, 2)
    )
    payment_post(
        invoice=january, amount=january.current_charges + D("300.00"), method=methods[0], received_by=officer
    )
    credit_note_issue(invoice=january, amount=D("200.00"), reason="Meter misread", issued_by=officer)
    credit_refund(
        customer=january.customer, amount=D("100.00"), method=methods[1], reason="Asked", officer=officer
    )
    february = invoice_issue(
        connection=connection, period=FEBRUARY, created_by=officer, issue_date=date(2024, 3, 2)
    )  # the 400.00 left is applied to it

    accounts = totals(journal_for(provider=disco, first=date(2024, 1, 1), last=date(2024, 12, 31)))
    january.refresh_from_db()
    february.refresh_from_db()
    assert february.credit_applied == D("400.00")
    debit, credit = accounts["receivables"]
    assert debit - credit == january.balance + february.balance
    assert accounts["customer-credit"] == (
        D("500.00"),
        D("500.00"),
    )  # 300 + 200 in; 400 applied, 100 refunded
    assert accounts["credit-notes"] == (D("200.00"), D("0.00"))
    assert accounts["refunds:jazzcash"] == (D("0.00"), D("100.00"))
    assert sum(d for d, _ in accounts.values()) == sum(c for _, c in accounts.values())


@pytest.mark.parametrize("role", [Role.SUPER_CREATOR, Role.AUDITOR, Role.ADMIN])
def test_finance_reads_the_journal_as_json_and_csv(disco, documents, as_role, role):
    client = as_role(UserFactory(provider=disco, roles=[role]), role)
    query = {"from": "2024-02-01", "to": "2024-03-31"}

    answer = client.get("/api/books/journal", query)
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["provider"] == disco.code
    assert body["debit"] == body["credit"]
    assert [day["date"] for day in body["days"]][:2] == ["2024-02-02", "2024-02-10"]

    download = client.get("/api/books/journal.csv", query)
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(download.content.decode())))
    assert rows[0] == ["date", "account", "account_name", "debit", "credit"]
    day_rows = [row for row in rows[1:] if row[0] != "total"]
    assert sum(D(row[3]) for row in day_rows) == sum(D(row[4]) for row in day_rows) == D(body["debit"])
    assert ["2024-02-10", "cash:bank-counter", "Cash: Paid at Bank Counter", "1000.00", "0.00"] in rows

    taxes = client.get("/api/books/tax-report.csv", {"year": 2024})
    assert taxes.status_code == 200
    assert taxes.content.decode().splitlines()[0] == "month,authority,tax,bills,amount"


@pytest.mark.parametrize("role", [Role.INVOICE_CREATOR, Role.CUSTOMER])
def test_clerks_and_customers_may_not_read_the_books(disco, as_role, role):
    client = as_role(UserFactory(provider=disco, roles=[role]), role)
    assert client.get("/api/books/journal", {"from": "2024-01-01", "to": "2024-01-31"}).status_code == 403


def test_another_provider_s_books_are_not_found_and_its_documents_never_counted(
    disco, documents, other_provider, as_role
):
    stranger = as_role(UserFactory(provider=other_provider, roles=[Role.AUDITOR]), Role.AUDITOR)
    own = stranger.get("/api/books/journal", {"from": "2024-01-01", "to": "2024-12-31"})
    assert own.status_code == 200 and own.json()["days"] == []
    named = stranger.get(
        "/api/books/journal", {"from": "2024-01-01", "to": "2024-12-31", "provider": disco.code}
    )
    assert named.status_code == 404


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"to": "2024-01-31"}, "from"),
        ({"from": "2024-02-01", "to": "2024-01-31"}, "to"),
        ({"from": "2024-01-01", "to": "2025-01-31"}, "to"),
        ({"from": "yesterday", "to": "2024-01-31"}, "from"),
    ],
)
def test_a_bad_range_is_a_400_naming_the_field(disco, as_role, query, field):
    client = as_role(UserFactory(provider=disco, roles=[Role.AUDITOR]), Role.AUDITOR)
    answer = client.get("/api/books/journal", query)
    assert answer.status_code == 400
    assert field in str(answer.json())


def test_the_books_page_shows_the_totals_by_account_and_links_the_csv(disco, documents, client):
    user = UserFactory(provider=disco, roles=[Role.AUDITOR])
    client.force_login(user)
    session = client.session
    session[SESSION_ROLE_KEY] = Role.AUDITOR
    session.save()
    page = client.get("/books", {"first": "2024-02-01", "last": "2024-03-31"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "Cash: JazzCash" in text and "Late payment surcharges" in text
    assert "/api/books/journal.csv?from=2024-02-01&amp;to=2024-03-31" in text
    bad = client.get("/books", {"first": "2024-03-31", "last": "2024-02-01"})
    assert bad.status_code == 400 and "before the first" in bad.content.decode()

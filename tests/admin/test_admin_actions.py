"""Officers' business actions in Django admin, each through a service: export the filtered invoices as
CSV, mark overdue bills, issue an adjustment on a bill, start a billing run, enter a meter reading;
money and audit records stay read-only."""

import csv
import io
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.messages import get_messages
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from billing.models import Customer, MeterReading
from invoicing import services
from invoicing.models import Adjustment, BillingRun, CreditRefund, Invoice
from providers.models import Provider
from tests.admin.conftest import JANUARY, populate
from tests.factories import ConnectionFactory, FlatTariffFactory, UserFactory, billable_connection

pytestmark = pytest.mark.django_db

INVOICES = "/admin/invoicing/invoice/"
EXPORT = f"{INVOICES}export-csv/"
MARK_OVERDUE = f"{INVOICES}mark-overdue/"
START_RUN = "/admin/invoicing/billingrun/add/"
ADD_READING = "/admin/billing/meterreading/add/"
REFUND = "/admin/invoicing/creditrefund/add/"
HEADER = [
    "number",
    "customer number",
    "customer name",
    "connection",
    "month",
    "issue date",
    "due date",
    "current charges",
    "adjustments",
    "paid",
    "balance",
    "status",
]


@pytest.fixture
def clerk(flat_provider):
    return UserFactory(provider=flat_provider, roles=[Role.INVOICE_CREATOR])


@pytest.fixture
def foreign_bill(other_provider) -> Invoice:
    """A January bill of another provider, past its due date and unpaid."""
    FlatTariffFactory(provider=other_provider)
    return issue(other_provider, UserFactory(provider=other_provider, roles=[Role.INVOICE_CREATOR]))


def issue(provider: Provider, clerk) -> Invoice:
    """January 2024's bill of a new connection: 300 kWh at 32.50, issued 2024-01-31, due 2024-02-10."""
    return services.invoice_issue(connection=billable_connection(provider), period=JANUARY, created_by=clerk)


def csv_of(response: HttpResponse) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def said(response: HttpResponse) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def refused(response: HttpResponse) -> list[str]:
    """The refusals the admin form shows next to its fields or above them (the page comes back as typed)."""
    return [
        message for messages in response.context["adminform"].form.errors.values() for message in messages
    ]


def row_of(invoice: Invoice, adjustments: str, paid: str, balance: str, status: str) -> list[str]:
    customer = invoice.customer
    return [
        invoice.number,
        customer.number,
        customer.name,
        invoice.connection.number,
        "2024-01",
        "2024-01-31",
        "2024-02-10",
        "9750.00",
        adjustments,
        paid,
        balance,
        status,
    ]


# Export a CSV of the filtered invoices


def test_the_csv_export_holds_the_filtered_invoices_with_their_ledger(
    browser, officer, flat_provider, clerk, cash
):
    pending, adjusted, partly_paid = (issue(flat_provider, clerk) for _ in range(3))
    services.adjustment_create(
        invoice=adjusted,
        amount=Decimal("250.00"),
        direction="credit",
        reason="Estimated reading",
        officer=officer,
    )
    services.payment_post(invoice=partly_paid, amount=Decimal("1000.00"), method=cash, received_by=officer)

    listed = browser.get(INVOICES, {"status__exact": "Pending"})
    response = browser.get(listed.context["export_csv_url"])
    rows = csv_of(response)

    assert listed.context["export_csv_url"] == f"{EXPORT}?status__exact=Pending"
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert rows[0] == HEADER
    assert sorted(rows[1:]) == sorted(
        [
            row_of(pending, "0.00", "0.00", "9750.00", "Pending"),
            row_of(adjusted, "-250.00", "0.00", "9500.00", "Pending"),
        ]
    )


def test_the_csv_export_follows_the_search_and_leaves_out_other_providers(
    browser, flat_provider, clerk, foreign_bill
):
    first, second = issue(flat_provider, clerk), issue(flat_provider, clerk)

    everything = csv_of(browser.get(EXPORT))
    searched = csv_of(browser.get(EXPORT, {"q": first.number}))

    assert sorted(row[0] for row in everything[1:]) == sorted([first.number, second.number])
    assert [row[0] for row in searched[1:]] == [first.number]


def test_the_csv_export_keeps_a_name_that_looks_like_a_formula_as_text(
    browser, officer, flat_provider, clerk
):
    invoice = issue(flat_provider, clerk)
    Customer.objects.filter(pk=invoice.customer_id).update(name="=HYPERLINK(1)")

    (row,) = csv_of(browser.get(EXPORT))[1:]

    assert row[2] == "'=HYPERLINK(1)"


def test_the_csv_export_sends_an_unknown_filter_back_to_the_list(browser):
    response = browser.get(EXPORT, {"colour": "blue"})

    assert (response.status_code, response["Location"]) == (302, f"{INVOICES}?e=1")


# Mark overdue


def test_mark_overdue_marks_a_past_due_bill_and_surcharges_it_once(browser, flat_provider, clerk):
    invoice = issue(flat_provider, clerk)

    listed = browser.get(INVOICES, {"status__exact": "Pending"})
    first = browser.post(listed.context["mark_overdue_url"], follow=True)
    again = browser.post(MARK_OVERDUE, follow=True)
    invoice.refresh_from_db()
    surcharge = Adjustment.objects.get(invoice=invoice)

    assert (invoice.status, invoice.adjustment_total, invoice.balance) == (
        "Overdue",
        Decimal("975.00"),
        Decimal("10725.00"),
    )
    assert (surcharge.kind, surcharge.direction, surcharge.amount) == (
        "late_surcharge",
        "debit",
        Decimal("975.00"),
    )
    assert said(first) == [
        "1 bill unpaid after the due date marked Overdue, each with its late surcharge added once."
    ]
    assert first.redirect_chain == [(f"{INVOICES}?status__exact=Pending", 302)]
    assert said(again) == ["No bill was unpaid after its due date: nothing changed."]


def test_mark_overdue_reaches_the_officers_provider_only(browser, flat_provider, clerk, foreign_bill):
    mine = issue(flat_provider, clerk)

    browser.post(MARK_OVERDUE)

    assert Invoice.objects.get(pk=mine.pk).status == "Overdue"
    assert Invoice.objects.get(pk=foreign_bill.pk).status == "Pending"


def test_mark_overdue_by_the_platform_reaches_every_provider(
    platform_browser, flat_provider, clerk, foreign_bill
):
    mine = issue(flat_provider, clerk)

    response = platform_browser.post(MARK_OVERDUE, follow=True)

    assert set(
        Invoice.objects.filter(pk__in=[mine.pk, foreign_bill.pk]).values_list("status", flat=True)
    ) == {"Overdue"}
    assert said(response) == [
        "2 bills unpaid after the due date marked Overdue, each with its late surcharge added once."
    ]


def test_mark_overdue_is_a_button_never_a_link(browser, flat_provider, clerk):
    invoice = issue(flat_provider, clerk)

    page = browser.get(INVOICES).content.decode()

    assert browser.get(MARK_OVERDUE).status_code == 405
    assert f'<form method="post" action="{MARK_OVERDUE}">' in page
    assert Invoice.objects.get(pk=invoice.pk).status == "Pending"


# Issue an adjustment


def test_issue_an_adjustment_opens_the_form_with_the_invoice_chosen(browser, officer, flat_provider, clerk):
    invoice = issue(flat_provider, clerk)

    chosen = browser.post(INVOICES, {"action": "issue_adjustment", "_selected_action": [invoice.pk]})
    form = browser.get(chosen["Location"])
    saved = browser.post(
        chosen["Location"],
        {
            "invoice": invoice.pk,
            "direction": "credit",
            "amount": "250.00",
            "reason": "Meter misread",
            "_save": "Save",
        },
    )
    adjustment = Adjustment.objects.get()

    assert chosen["Location"] == f"/admin/invoicing/adjustment/add/?invoice={invoice.pk}"
    assert form.context["adminform"].form["invoice"].value() == str(invoice.pk)
    assert saved.status_code == 302
    assert (adjustment.invoice, adjustment.officer, adjustment.officer_name, adjustment.balance_after) == (
        invoice,
        officer,
        "Ayesha Malik",
        Decimal("9500.00"),
    )


def test_issue_an_adjustment_wants_one_open_invoice(browser, officer, flat_provider, clerk, cash):
    first, second, paid = (issue(flat_provider, clerk) for _ in range(3))
    services.payment_post(invoice=paid, amount=Decimal("9750.00"), method=cash, received_by=officer)

    two = browser.post(
        INVOICES, {"action": "issue_adjustment", "_selected_action": [first.pk, second.pk]}, follow=True
    )
    closed = browser.post(
        INVOICES, {"action": "issue_adjustment", "_selected_action": [paid.pk]}, follow=True
    )

    assert said(two) == ["Select exactly one invoice to adjust."]
    assert said(closed) == [f"{paid.number} is Paid: a paid or cancelled bill takes no adjustment."]
    assert Adjustment.objects.count() == 0


# Start a billing run


def test_an_officer_starts_a_billing_run_of_their_provider_from_the_invoice_list(
    browser, officer, flat_provider, other_provider, django_capture_on_commit_callbacks
):
    connection = billable_connection(flat_provider)

    listed = browser.get(INVOICES)
    form = browser.get(listed.context["billing_run_url"])
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            START_RUN, {"provider": other_provider.pk, "month": "2024-01-20", "_save": "Save"}
        )
    run = BillingRun.objects.get()

    assert listed.context["billing_run_url"] == START_RUN
    assert (form.context["title"], list(form.context["adminform"].form.fields)) == (
        "Start a billing run",
        ["month"],
    )
    assert response.status_code == 302
    assert (run.provider, run.period, run.status, run.issued, run.started_by) == (
        flat_provider,
        JANUARY,
        "completed",
        1,
        officer,
    )
    assert Invoice.objects.get().connection == connection


def test_the_platform_chooses_whose_billing_run_it_starts(
    platform_browser, flat_provider, django_capture_on_commit_callbacks
):
    billable_connection(flat_provider)

    unchosen = platform_browser.post(START_RUN, {"month": "2024-01-20", "_save": "Save"})
    with django_capture_on_commit_callbacks(execute=True):
        platform_browser.post(
            START_RUN, {"provider": flat_provider.pk, "month": "2024-01-20", "_save": "Save"}
        )

    assert list(unchosen.context["adminform"].form.errors) == ["provider"]
    assert BillingRun.objects.get().issued == 1


def test_a_billing_run_of_a_month_not_over_is_refused_with_the_reason(browser):
    today = timezone.localdate()

    response = browser.post(START_RUN, {"month": today.isoformat(), "_save": "Save"})

    assert refused(response) == [f"{today:%B %Y} has not ended; a month is billed once it is over."]
    assert response.context["adminform"].form["month"].value() == today.isoformat()  # kept as typed
    assert BillingRun.objects.count() == 0


# Meter readings


def reading_form(connection, *, peak: str, off_peak: str) -> dict:
    return {
        "connection": connection.pk,
        "taken_at_0": "2024-02-28",
        "taken_at_1": "09:00:00",
        "import_peak": peak,
        "import_off_peak": off_peak,
        "export_peak": "0",
        "export_off_peak": "0",
        "_save": "Save",
    }


def test_an_officer_enters_a_reading_through_the_service(browser, officer, flat_provider):
    connection = billable_connection(flat_provider)  # its last reading: 100 peak, 200 off-peak

    response = browser.post(ADD_READING, reading_form(connection, peak="180", off_peak="390"))
    reading = MeterReading.objects.get(connection=connection, taken_at__month=2)

    assert response.status_code == 302
    assert (reading.import_peak, reading.import_off_peak, reading.recorded_by) == (
        Decimal("180.0000"),
        Decimal("390.0000"),
        officer,
    )


def test_a_reading_below_the_one_before_is_refused_with_the_reason(browser, flat_provider):
    connection = billable_connection(flat_provider)

    response = browser.post(ADD_READING, reading_form(connection, peak="50", off_peak="390"))

    assert response.context["adminform"].form["import_off_peak"].value() == "390"  # kept as typed
    assert refused(response)[0].startswith(
        "The import peak register (50) is lower than the reading of 2024-01-28"
    )
    assert connection.readings.count() == 2


def test_a_reading_of_another_providers_connection_is_not_a_choice(browser, other_provider):
    foreign = billable_connection(other_provider)

    response = browser.post(ADD_READING, reading_form(foreign, peak="180", off_peak="390"))

    assert list(response.context["adminform"].form.errors) == ["connection"]
    assert foreign.readings.count() == 2


def test_the_connection_search_offers_the_officers_connections_only(browser, flat_provider, other_provider):
    ConnectionFactory(customer__provider=flat_provider, number="LHR-0001")
    ConnectionFactory(customer__provider=other_provider, number="LHR-0002")

    found = browser.get(
        "/admin/autocomplete/",
        {"app_label": "billing", "model_name": "meterreading", "field_name": "connection", "term": "LHR"},
    ).json()

    assert [result["text"] for result in found["results"]] == ["LHR-0001"]


# Refunds of a customer's credit balance


def in_credit(provider, officer, cash, amount: str):
    """A customer whose paid January bill was credited `amount`: their credit balance."""
    bill = services.invoice_issue(
        connection=billable_connection(provider), period=JANUARY, created_by=officer
    )
    services.payment_post(invoice=bill, amount=Decimal("9750.00"), method=cash, received_by=officer)
    services.credit_note_issue(invoice=bill, amount=Decimal(amount), reason="Tariff error", issued_by=officer)
    return bill.customer


def refund_form(customer, cash, amount: str) -> dict:
    return {
        "customer": customer.pk,
        "amount": amount,
        "method": cash.pk,
        "reason": "Moved away",
        "_save": "Save",
    }


def test_an_officer_refunds_a_credit_balance_through_the_service(browser, officer, flat_provider, cash):
    customer = in_credit(flat_provider, officer, cash, "400.00")

    response = browser.post(REFUND, refund_form(customer, cash, "150.00"))

    refund = CreditRefund.objects.get()
    assert response.status_code == 302
    assert (refund.amount, refund.balance_after, refund.officer, refund.officer_designation) == (
        Decimal("150.00"),
        Decimal("250.00"),
        officer,
        "Billing Manager",
    )
    assert services.credit_balance_of(customer) == Decimal("250.00")


def test_a_refund_above_the_credit_balance_is_refused_with_the_reason(browser, officer, flat_provider, cash):
    customer = in_credit(flat_provider, officer, cash, "400.00")

    response = browser.post(REFUND, refund_form(customer, cash, "400.01"))

    assert refused(response) == [
        f"400.01 is more than customer {customer.number}'s credit balance of 400.00; refund at most 400.00."
    ]
    assert not CreditRefund.objects.exists()


# Money and audit records are read-only

RECORDS = [
    ("invoicing.invoice", "provider"),
    ("invoicing.invoiceline", "invoice__provider"),
    ("invoicing.documentcounter", "provider"),
    ("invoicing.payment", "provider"),
    ("invoicing.paymentallocation", "payment__provider"),
    ("invoicing.adjustment", "provider"),
    ("invoicing.creditnote", "provider"),
    ("invoicing.creditnoteline", "credit_note__provider"),
    ("invoicing.customercredit", "provider"),
    ("invoicing.creditentry", "provider"),
    ("invoicing.creditrefund", "provider"),
    ("invoicing.billingrun", "provider"),
    ("invoicing.billingrunchunk", "run__provider"),
    ("invoicing.billingrunproblem", "run__provider"),
    ("billing.meterreading", "provider"),
    ("billing.numbercounter", "provider"),
    ("auditing.auditlog", "provider"),
    ("auditing.chainhead", "chain"),
    ("auditing.aiquery", "provider"),
]
# Written only by the system, never entered by hand.
SYSTEM_WRITTEN = [
    "invoicing.invoice",
    "invoicing.invoiceline",
    "invoicing.documentcounter",
    "invoicing.paymentallocation",
    "invoicing.creditnote",
    "invoicing.creditnoteline",
    "invoicing.customercredit",
    "invoicing.creditentry",
    "invoicing.billingrunchunk",
    "invoicing.billingrunproblem",
    "billing.numbercounter",
    "auditing.auditlog",
    "auditing.chainhead",
    "auditing.aiquery",
]


def admin_url(label: str, view: str, *args: object) -> str:
    return reverse(f"admin:{label.replace('.', '_')}_{view}", args=args)


def test_money_and_audit_records_are_shown_but_never_changed_or_deleted(
    browser: Client, populated_on, flat_provider, cash
):
    populate(flat_provider, count=1, cash=cash)
    answers = {}
    for label, path in RECORDS:
        row = apps.get_model(label).objects.filter(**{path: flat_provider.pk}).first()
        answers[label] = (
            browser.get(admin_url(label, "change", row.pk)).status_code,
            browser.post(admin_url(label, "change", row.pk), {}).status_code,
            browser.post(admin_url(label, "delete", row.pk), {"post": "yes"}).status_code,
        )

    assert answers == {label: (200, 403, 403) for label, _ in RECORDS}


def test_records_the_system_writes_cannot_be_added_by_hand(browser):
    answers = {label: browser.get(admin_url(label, "add")).status_code for label in SYSTEM_WRITTEN}

    assert answers == dict.fromkeys(SYSTEM_WRITTEN, 403)

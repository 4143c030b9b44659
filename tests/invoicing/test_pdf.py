"""Bills and receipts as PDF: made from real invoices, payments and adjustments (through the
services), read back as text, as a customer would read them."""

from datetime import date
from decimal import Decimal
from io import BytesIO

import pytest
from pypdf import PdfReader

from accounts.roles import Role
from invoicing.pdf import adjustment_receipt_pdf, invoice_pdf, local_fetcher, payment_receipt_pdf
from invoicing.selectors import bill_get_for
from invoicing.services import adjustment_create, invoice_issue, invoices_mark_overdue, payment_post
from providers.importing import price_schedule_import
from providers.models import ConnectionType
from tests.factories import UserFactory, billable_connection

# A small price schedule in the sample company's shape: peak and off-peak slabs by average kWh per
# hour, GST and Electricity Duty, Meter Rent and TV Fee, and a usage-based subsidy.
TIME_OF_USE_SCHEDULE = {
    "connection_types": [{"code": 1, "description": "Residential - 5 Kilo Watt", "sanctioned_load_kw": 5}],
    "tax_authorities": [
        {"authority_id": "FBR", "name": "Federal Board of Revenue"},
        {"authority_id": "GOP", "name": "Government of Punjab"},
        {"authority_id": "DISCO", "name": "Distribution Company"},
        {"authority_id": "PTV", "name": "Pakistan Television Corporation"},
    ],
    "subsidy_providers": [{"provider_id": "GOP", "name": "Government of Punjab"}],
    "tariffs": [
        {"code": f"T-{tou}-{slab}", "tou": tou, "connection_type_code": 1, "slab": slab,
         "start_date": "2023-01-01", "end_date": None, "threshold_low_per_hour": low,
         "threshold_high_per_hour": high, "rate_per_unit": rate, "min_amount": 0, "min_unit": 0}
        for tou, slab, low, high, rate in (
            ("peak", 1, 0, 0.09, 21), ("peak", 2, 0.09, 999999.9999, 41),
            ("off_peak", 1, 0, 0.33, 14), ("off_peak", 2, 0.33, 999999.9999, 30),
        )
    ],
    "tax_rates": [
        {"connection_type_code": 1, "tax_type": name, "authority_id": authority,
         "start_date": "2023-01-01", "end_date": None, "rate": rate}
        for name, authority, rate in (("GST", "FBR", 0.17), ("Electricity Duty", "GOP", 0.01))
    ],
    "fixed_charges": [
        {"connection_type_code": 1, "charge_type": name, "authority_id": authority,
         "start_date": "2023-01-01", "end_date": None, "fixed_fee": fee}
        for name, authority, fee in (("Meter Rent", "DISCO", 110), ("TV Fee", "PTV", 50))
    ],
    "subsidies": [
        {"code": "GOP-Protected", "provider_id": "GOP", "connection_type_code": 1,
         "start_date": "2023-01-01", "end_date": None, "threshold_low_per_hour": 0.27,
         "threshold_high_per_hour": 0.83, "rate_per_unit": 14}
    ],
}  # fmt: skip


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(pdf)).pages)


def pages_of(pdf: bytes) -> int:
    return len(PdfReader(BytesIO(pdf)).pages)


def line_with(text: str, needle: str) -> str:
    """The one extracted line holding `needle` (a table row reads as one line)."""
    (line,) = [line for line in text.splitlines() if needle in line]
    return line


def months(year: int, first: int, last: int) -> list[date]:
    return [date(year, month, 1) for month in range(first, last + 1)]


@pytest.fixture
def time_of_use_bill(provider):
    """January 2024 over 31 days: 100 kWh peak (0.1344 kWh/h: slab 2, 41.00) = 4100.00 and 200 kWh
    off-peak (0.2688 kWh/h: slab 1, 14.00) = 2800.00; GST 17% 1173.00, Electricity Duty 1% 69.00;
    Meter Rent 110.00, TV Fee 50.00; subsidy 14.00 x 300 kWh = 4200.00 (0.4032 kWh/h is in its band).
    Current charges 4102.00; after the due date 4102.00 + 10% = 4512.20."""
    price_schedule_import(provider=provider, data=TIME_OF_USE_SCHEDULE)
    connection = billable_connection(
        provider, months=1, connection_type=ConnectionType.objects.get(provider=provider, code="1")
    )
    clerk = UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR])
    return invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=clerk)


def test_invoice_pdf_shows_the_bill_as_issued(time_of_use_bill):
    invoice = time_of_use_bill
    customer = invoice.customer_snapshot

    text = text_of(invoice_pdf(invoice, []))

    assert "ELECTRICITY BILL" in text
    assert invoice.number in text
    assert customer["name"] in text
    assert customer["customerId"] in text
    assert customer["connectionId"] in text
    assert "January 2024" in text
    assert "31 Jan 2024" in text  # issued
    assert "10 Feb 2024" in text  # due
    for label in (
        "Energy (peak, slab 2)", "Energy (off-peak, slab 1)", "GST", "Electricity Duty",
        "Meter Rent", "TV Fee", "GOP-Protected",
    ):  # fmt: skip
        assert label in text
    assert line_with(text, "Energy (peak, slab 2)").endswith("4,100.00")
    assert "GOP-Protected -4,200.00" in text  # subtracted
    assert "4,102.00" in line_with(text, "Payable within due date")
    assert "4,512.20" in line_with(text, "Payable after due date")
    assert "This is the first bill of this connection." in text


def test_invoice_pdf_explains_how_the_bill_was_worked_out(time_of_use_bill):
    text = " ".join(text_of(invoice_pdf(time_of_use_bill, [])).split())

    assert "Billing days: 31.00" in text
    assert (
        "100 kWh ÷ 744.00 h = 0.1344 kWh per hour, in slab 2 (0.09 kWh per hour or more): 41.00 per kWh"
        in text
    )
    assert (
        "200 kWh ÷ 744.00 h = 0.2688 kWh per hour, in slab 1 (0 to under 0.33 kWh per hour): 14.00 per kWh"
        in text
    )
    assert "GST: 17% of the energy charges of 6,900.00 = 1,173.00" in text
    assert "Electricity Duty: 1% of the energy charges of 6,900.00 = 69.00" in text
    assert "14.00 per kWh \N{MULTIPLICATION SIGN} 300 kWh = 4,200.00 subtracted" in text


def test_invoice_pdf_lists_the_previous_bills_with_their_status(connection, creator, super_creator, cash):
    january, february, march = (
        invoice_issue(connection=connection, period=period, created_by=creator)
        for period in months(2024, 1, 3)
    )
    payment_post(invoice=january, amount=Decimal("9750.00"), method=cash, received_by=creator)
    payment_post(invoice=february, amount=Decimal("1000.00"), method=cash, received_by=creator)
    super_creator.active_role = Role.SUPER_CREATOR
    bill = bill_get_for(user=super_creator, invoice_id=march.pk)

    text = text_of(invoice_pdf(bill, bill.history))

    assert march.number in text
    assert "Energy (all hours, slab 1)" in text
    assert "Paid" in line_with(text, january.number)
    assert "9,750.00" in line_with(text, january.number)
    assert "Partially Paid" in line_with(text, february.number)
    assert "8,750.00" in line_with(text, february.number)  # its balance
    # March was issued while January and February were unpaid: 19,500.00 of arrears.
    assert "19,500.00" in line_with(text, "Arrears")
    assert "29,250.00" in line_with(text, "Payable within due date")
    assert "30,225.00" in line_with(text, "Payable after due date")


def test_invoice_pdf_of_a_bill_with_ten_previous_bills(flat_provider, creator, super_creator):
    connection = billable_connection(flat_provider, months=11)
    issued = [
        invoice_issue(connection=connection, period=period, created_by=creator)
        for period in months(2024, 1, 11)
    ]
    super_creator.active_role = Role.SUPER_CREATOR
    bill = bill_get_for(user=super_creator, invoice_id=issued[-1].pk)

    pdf = invoice_pdf(bill, bill.history)

    text = text_of(pdf)
    assert len(bill.history) == 10
    assert pages_of(pdf) <= 2
    for earlier in issued[:10]:
        assert "Pending" in line_with(text, earlier.number)
    assert "BILL HISTORY" in text


def test_payment_receipt_pdf_shows_the_payment_and_what_it_settled(connection, creator, cash):
    january, february = (
        invoice_issue(connection=connection, period=period, created_by=creator)
        for period in months(2024, 1, 2)
    )
    payment, _ = payment_post(
        invoice=february, amount=Decimal("12000.00"), method=cash, received_by=creator, reference="TRX-778812"
    )

    text = text_of(payment_receipt_pdf(payment))

    assert "PAYMENT RECEIPT" in text
    assert payment.receipt_number in text
    assert f"Bill no. {february.number}" in text
    assert connection.number in text
    assert february.customer_snapshot["name"] in text
    assert cash.name in text
    assert "TRX-778812" in text
    assert creator.name in text
    assert "12,000.00" in line_with(text, "AMOUNT PAID")
    assert "9,750.00" in line_with(text, january.number)  # the oldest bill settled first
    assert "2,250.00" in line_with(text, f"{february.number} February 2024")
    assert "19,500.00" in line_with(text, "Payable before this payment")
    assert "7,500.00" in line_with(text, "Payable after this payment")


def test_adjustment_receipt_pdf_shows_the_officer_and_the_new_balance(connection, creator, super_creator):
    invoice = invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)
    adjustment, _ = adjustment_create(
        invoice=invoice,
        amount=Decimal("250.00"),
        direction="credit",
        reason="Meter read twice; units corrected after a site visit.",
        officer=super_creator,
    )

    text = text_of(adjustment_receipt_pdf(adjustment))

    assert "BILL ADJUSTMENT" in text
    assert adjustment.number in text
    assert invoice.number in text
    assert f"Officer {super_creator.name}" in text
    assert "Designation Senior Billing Officer" in text
    assert "Credit (lowers the balance)" in text
    assert "Meter read twice; units corrected after a site visit." in text
    assert "9,750.00" in line_with(text, "Original bill amount")
    assert "9,750.00" in line_with(text, "Balance of the bill before")
    assert "-250.00" in line_with(text, "Adjustment (credit")
    assert "9,500.00" in line_with(text, "New balance")


def test_adjustment_receipt_pdf_of_a_late_surcharge_names_no_officer(connection, creator):
    invoice = invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)
    invoices_mark_overdue(provider=connection.provider, today=date(2024, 2, 20))
    (surcharge,) = invoice.adjustments.all()

    text = text_of(adjustment_receipt_pdf(surcharge))

    assert "LATE PAYMENT SURCHARGE" in text
    assert "+975.00" in line_with(text, "Adjustment (debit")
    assert "10,725.00" in line_with(text, "New balance")
    assert "(no officer)" in text


def test_pdfs_fetch_nothing_from_the_network():
    with pytest.raises(ValueError, match="disallowed protocol"):
        local_fetcher().fetch("https://example.com/logo.png")

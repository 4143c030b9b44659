"""A clerk takes part of a bill, then the rest: each payment has a receipt page and a PDF receipt."""

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from invoicing import services


@pytest.fixture
def january(connection, creator, time_machine):
    """The connection's only bill: 9,750.00, due 10 February 2024; paid on a clock (ticking) standing
    before that, so no late surcharge or overdue state can enter the figures."""
    time_machine.move_to(datetime(2024, 2, 5, 10, tzinfo=ZoneInfo(settings.TIME_ZONE)))
    return services.invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)


def receipt_pdf(page: Page):
    return page.request.get(page.get_by_role("link", name="Download receipt (PDF)").get_attribute("href"))


def test_a_part_payment_then_the_rest_settle_the_bill_with_a_receipt_each(
    page: Page, sign_in, creator, cash, january
):
    sign_in(creator)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Take a payment").click()

    page.get_by_label("Bill ID").fill(str(january.pk))
    page.get_by_label("Bill ID").press("Tab")
    expect(page.get_by_test_id("amount-payable")).to_have_text("9750.00")
    expect(page.get_by_role("spinbutton", name="Amount", exact=True)).to_have_value("9750.00")
    page.get_by_role("spinbutton", name="Amount", exact=True).fill("4000.00")
    page.get_by_label("Payment method").select_option(label=cash.name)
    page.get_by_role("button", name="Record payment").click()

    expect(page).to_have_url(re.compile(r"/payments/\d+$"))
    first = january.allocations.get().payment
    expect(page.get_by_test_id("receipt-number")).to_have_text(first.receipt_number)
    expect(page.get_by_test_id("payment-amount")).to_have_text("Rs4,000.00")
    expect(page.get_by_test_id("payable-after-payment")).to_have_text("Rs5,750.00")
    expect(page.get_by_role("row").filter(has_text=january.number)).to_contain_text("Partially Paid")
    pdf = receipt_pdf(page)
    assert (pdf.status, pdf.headers["content-type"], pdf.body()[:5]) == (200, "application/pdf", b"%PDF-")

    page.get_by_role("link", name="Take another payment on this bill").click()
    expect(page.get_by_test_id("amount-payable")).to_have_text("5750.00")
    expect(page.get_by_role("spinbutton", name="Amount", exact=True)).to_have_value("5750.00")
    page.get_by_label("Payment method").select_option(label=cash.name)
    page.get_by_role("button", name="Record payment").click()

    expect(page.get_by_test_id("payment-amount")).to_have_text("Rs5,750.00")
    expect(page.get_by_test_id("payable-after-payment")).to_have_text("Rs0.00")
    assert receipt_pdf(page).body()[:5] == b"%PDF-"
    page.get_by_role("link", name="Back to the bill").click()
    expect(page.get_by_test_id("balance")).to_have_text("Rs0.00")
    expect(page.get_by_role("region", name="Bill", exact=True).locator(".status")).to_have_text("Paid")


def test_a_refused_payment_comes_back_with_the_amount_the_clerk_typed(
    page: Page, sign_in, creator, cash, january
):
    sign_in(creator)
    page.goto(f"/payments/new?bill={january.pk}")
    amount = page.get_by_role("spinbutton", name="Amount", exact=True)
    expect(amount).to_have_value("9750.00")
    amount.fill("4000.125")  # a tenth of a paisa: refused
    page.get_by_label("Payment method").select_option(label=cash.name)
    page.get_by_role("button", name="Record payment").click()

    expect(page.locator(".has-error")).to_contain_text("decimal places")
    # The bill's figures are looked up again, but the field keeps what was typed.
    expect(page.get_by_test_id("amount-payable")).to_have_text("9750.00")
    expect(amount).to_have_value("4000.125")
    assert not january.allocations.exists()

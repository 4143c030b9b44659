"""An officer credits a bill: their own name and designation sign it, and the receipt shows the balance
before and after."""

import re
from datetime import date

import pytest
from playwright.sync_api import Page, expect

from invoicing import services


@pytest.fixture
def january(connection, creator):
    """The connection's only bill: 9,750.00."""
    return services.invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)


def test_an_officer_credits_a_bill_and_gets_a_receipt_with_the_balances(
    page: Page, sign_in, super_creator, january
):
    sign_in(super_creator)
    page.goto(f"/adjustments/new?bill={january.pk}")

    expect(page.get_by_test_id("officer-name")).to_have_text(super_creator.name)
    expect(page.get_by_test_id("officer-designation")).to_have_text("Senior Billing Officer")
    expect(page.get_by_role("textbox", name=re.compile("officer|designation", re.IGNORECASE))).to_have_count(
        0
    )
    expect(page.get_by_label("Bill ID")).to_have_value(str(january.pk))
    expect(page.get_by_test_id("original-amount")).to_have_text("9750.00")
    page.get_by_role("radio", name="Credit: lower the bill").check()
    page.get_by_label("Adjustment amount").fill("750.00")
    page.get_by_label("Reason").fill("Meter read twice in January; customer's complaint 118.")
    page.get_by_role("button", name="Record adjustment").click()

    expect(page).to_have_url(re.compile(r"/adjustments/\d+$"))
    expect(page.get_by_test_id("adjustment-number")).to_have_text(january.adjustments.get().number)
    expect(page.get_by_test_id("balance-before")).to_have_text("Rs9,750.00")
    expect(page.get_by_test_id("balance-after")).to_have_text("Rs9,000.00")
    expect(page.locator("dl.facts")).to_contain_text(f"{super_creator.name}, Senior Billing Officer")
    pdf = page.request.get(page.get_by_role("link", name="Download receipt (PDF)").get_attribute("href"))
    assert (pdf.status, pdf.headers["content-type"], pdf.body()[:5]) == (200, "application/pdf", b"%PDF-")

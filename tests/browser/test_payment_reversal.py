"""An officer reverses a bounced payment from its page, with the reason asked for first, and sees the
bill it had paid owed again: reopened Overdue (it is past its due date) with its late surcharge."""

import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from invoicing import services


@pytest.fixture
def paid_january(connection, creator, cash, time_machine):
    """January's bill (9,750.00, due 10 February 2024), paid in full on 15 February; now is 20 February."""
    time_machine.move_to(datetime(2024, 2, 15, 9, tzinfo=UTC))
    january = services.invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)
    payment, _ = services.payment_post(
        invoice=january, amount=Decimal("9750.00"), method=cash, received_by=creator
    )
    time_machine.move_to(datetime(2024, 2, 20, 9, tzinfo=UTC))
    return january, payment


def test_an_officer_reverses_a_payment_and_sees_the_bill_reopen(
    page: Page, sign_in, super_creator, paid_january
):
    january, payment = paid_january
    sign_in(super_creator)

    page.goto(f"/payments/{payment.pk}")
    page.get_by_role("link", name="Reverse this payment").click()
    page.get_by_role("button", name="Reverse this payment").click()  # nothing chosen, nothing typed
    expect(page.locator("#id_reason_error")).to_be_visible()

    page.get_by_label("Bounced").check()
    page.get_by_label("Reason").fill("Cheque 004512 returned: insufficient funds")
    page.get_by_role("button", name="Reverse this payment").click()

    expect(page).to_have_url(re.compile(rf"/payments/{payment.pk}$"))
    reversal = payment.__class__.objects.get(pk=payment.pk).reversal
    expect(page.get_by_test_id("reversal-number")).to_have_text(reversal.number)
    expect(page.get_by_test_id("payable-after-reversal")).to_have_text("Rs10,725.00")
    expect(page.get_by_text("Cheque 004512 returned: insufficient funds")).to_be_visible()
    expect(page.get_by_role("link", name="Reverse this payment")).to_have_count(0)
    pdf = page.request.get(
        page.get_by_role("link", name="Download reversal receipt (PDF)").get_attribute("href")
    )
    assert (pdf.status, pdf.headers["content-type"], pdf.body()[:5]) == (200, "application/pdf", b"%PDF-")

    page.get_by_role("link", name=january.number).first.click()
    expect(page.get_by_test_id("balance")).to_have_text("Rs10,725.00")
    expect(page.get_by_role("region", name="Bill", exact=True).locator(".status")).to_have_text("Overdue")
    expect(page.get_by_role("row").filter(has_text=payment.receipt_number)).to_contain_text("Reversed")

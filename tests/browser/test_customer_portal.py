"""A customer signs in, opens one of their bills and downloads it as a PDF."""

import re
from pathlib import Path

from playwright.sync_api import Page, expect


def test_a_customer_opens_their_bill_and_downloads_the_pdf(page: Page, sign_in, connection, bills):
    march = bills[-1]
    sign_in(connection.customer.user)

    expect(page).to_have_url(re.compile(r"/portal/$"))
    expect(page.get_by_test_id("bills").get_by_role("row").filter(has_text=march.number)).to_contain_text(
        "Pending"
    )
    page.get_by_role("link", name=f"Details of bill {march.number}").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Bill {march.number}")
    expect(page.get_by_test_id("payable-before")).to_have_text("Rs29,250.00")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the bill (PDF)").click()
    pdf = download.value
    assert pdf.suggested_filename == f"{march.number}.pdf"
    assert Path(pdf.path()).read_bytes()[:5] == b"%PDF-"

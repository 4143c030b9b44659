"""A clerk uploads a bank's payment file and reads its results: the totals, the refused rows with their
reasons, and the results as CSV."""

import re

import pytest
from playwright.sync_api import Page, expect

from invoicing.models import Payment, PaymentMethod
from tests.factories import PaymentFileFormatFactory
from tests.invoicing.bank_files import bank_csv


@pytest.fixture
def bank(flat_provider, cash):
    return PaymentFileFormatFactory(provider=flat_provider, name="HBL collections", default_method=cash)


@pytest.fixture
def ibft(db):
    """The method the file names. The migrations add it, but the live server's tests empty the
    database after each other (a browser test that ran before this one in the same process)."""
    return PaymentMethod.objects.get_or_create(code="ibft", defaults={"name": "IBFT"})[0]


def test_a_clerk_uploads_a_bank_file_and_reads_its_results(
    page: Page, sign_in, creator, bank, ibft, bills, mailbox
):
    january, february, _ = bills
    content = bank_csv(
        (january.number, "", "9,750.00", "2024-02-05", "ibft", "HBL-001"),
        ("", february.connection.number, "500.00", "2024-03-02", "", "HBL-002"),
        (january.number, "", "9,750.00", "2024-02-05", "ibft", "HBL-001"),
        ("DISCO-2024-999999", "", "10.00", "2024-02-05", "", "HBL-004"),
    )
    sign_in(creator)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Bank payment files").click()

    page.get_by_label("File format").select_option(label="HBL collections")
    page.get_by_label("Payment file (CSV)").set_input_files(
        {"name": "hbl-2024-02.csv", "mimeType": "text/csv", "buffer": content}
    )
    page.get_by_role("button", name="Upload and post").click()

    expect(page).to_have_url(re.compile(r"/payment-files/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment file: hbl-2024-02.csv")
    expect(page.get_by_test_id("file-status")).to_have_text("Completed")
    expect(page.get_by_test_id("file-posted")).to_have_text("2")
    expect(page.get_by_test_id("file-posted-amount")).to_have_text("10,250.00")
    expect(page.get_by_test_id("file-duplicates")).to_have_text("1")
    expect(page.get_by_test_id("file-refused")).to_have_text("1")
    first = Payment.objects.get(reference="HBL-001")
    expect(page.get_by_test_id("row-2")).to_contain_text(first.receipt_number)
    expect(page.get_by_test_id("row-4")).to_contain_text(
        f"Reference HBL-001 was posted already, as receipt {first.receipt_number}."
    )

    page.get_by_label("Outcome").select_option(label="Refused")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("row-5")).to_contain_text(
        "No bill DISCO-2024-999999 among the bills you may take payments on."
    )
    expect(page.get_by_test_id("row-2")).to_have_count(0)

    csv_link = page.get_by_role("link", name="Download the results (CSV)")
    with page.expect_download() as download:
        csv_link.click()
    lines = download.value.path().read_text(encoding="utf-8").splitlines()
    assert (
        lines[0]
        == "line,bill number,connection number,amount,date,method,bank reference,outcome,receipt number,reason"
    )
    assert lines[1].startswith(
        f"2,{january.number},,9750.00,2024-02-05,ibft,HBL-001,posted,{first.receipt_number}"
    )
    assert "posted,2,10250.00" in lines

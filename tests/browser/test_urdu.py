"""A customer who reads Urdu signs in: the portal, their bill and its PDF are in Urdu, right to left,
with money written as Urdu writes it."""

import io
import re
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from accounts.models import Language
from invoicing import services

PAYABLE_WITHIN_DUE_DATE = "آخری تاریخ تک قابلِ ادائیگی"
RUPEES = "پاکستانی روپیہ"  # CLDR's Urdu name of the Pakistani rupee, after the amount


@pytest.fixture
def urdu_bills(connection, creator, time_machine):
    """January to March 2024 (9,750.00 each, all unpaid) of a customer whose language is Urdu, on a
    clock (ticking) standing before March's due date: no bill is overdue yet."""
    time_machine.move_to(datetime(2024, 4, 2, 10, tzinfo=ZoneInfo(settings.TIME_ZONE)))
    customer = connection.customer
    customer.preferred_language = Language.URDU
    customer.save()
    return [
        services.invoice_issue(connection=connection, period=date(2024, month, 1), created_by=creator)
        for month in (1, 2, 3)
    ]


def test_an_urdu_reading_customer_opens_their_bill_and_its_pdf_in_urdu_right_to_left(
    page: Page, sign_in, connection, urdu_bills
):
    march = urdu_bills[-1]
    sign_in(connection.customer.user)

    expect(page).to_have_url(re.compile(r"/portal/$"))
    expect(page.locator("html")).to_have_attribute("lang", "ur")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.get_by_role("heading", level=1)).to_have_text("میرے بل")
    page.get_by_role("link", name=f"بل {march.number} کی تفصیلات").click()

    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"بل {march.number}")
    expect(page.get_by_text(PAYABLE_WITHIN_DUE_DATE, exact=True)).to_be_visible()
    # January's and February's bills are the arrears; each bill's month has its Urdu name.
    expect(page.get_by_test_id("arrears")).to_have_text(f"19,500.00 {RUPEES}")
    expect(page.get_by_test_id("payable-before")).to_have_text(f"29,250.00 {RUPEES}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("مارچ 2024")
    # Right to left: the bill's first card starts at the right edge of the page.
    first, second = (page.locator(".grid > .card").nth(index).bounding_box() for index in (0, 1))
    assert first["x"] > second["x"]

    with page.expect_download() as download:
        page.get_by_role("link", name="بل ڈاؤن لوڈ کریں (PDF)").click()
    pdf = download.value
    assert pdf.suggested_filename == f"{march.number}.pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(Path(pdf.path()).read_bytes())).pages)
    assert "بجلی کا بل" in text  # "ELECTRICITY BILL"
    assert PAYABLE_WITHIN_DUE_DATE in text and "29,250.00" in text
    # Extraction reads right-to-left text in visual order, joined letters apart: the currency's first word
    # comes out whole.
    assert RUPEES.split()[0] in text

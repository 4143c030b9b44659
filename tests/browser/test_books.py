"""Finance reads the journal of a range and downloads it: the same balanced figures on the page and in
the CSV file."""

import csv
import re
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from invoicing import services


@pytest.fixture
def paid_in_part(connection, creator, super_creator, cash, time_machine):
    """January's bill (9,750.00), issued 2 February 2024, and 4,000.00 paid on it on 10 February; the
    clock stands (ticking) on 1 March 2024, when finance reads February."""
    time_machine.move_to(datetime(2024, 3, 1, 10, tzinfo=ZoneInfo(settings.TIME_ZONE)))
    bill = services.invoice_issue(
        connection=connection,
        period=date(2024, 1, 1),
        created_by=creator,
        issue_date=date(2024, 2, 2),
        due_date=date(2024, 2, 20),
    )
    services.payment_post(
        invoice=bill,
        amount=Decimal("4000.00"),
        method=cash,
        received_by=super_creator,
        received_at=datetime(2024, 2, 10, 11, tzinfo=ZoneInfo(settings.TIME_ZONE)),
    )
    return bill


def test_finance_reads_the_journal_and_downloads_it(page: Page, sign_in, super_creator, paid_in_part):
    sign_in(super_creator)
    page.get_by_role("link", name="The books").click()
    page.get_by_label(re.compile(r"^From\b")).fill("2024-02-01")
    page.get_by_label(re.compile(r"^To\b")).fill("2024-02-29")
    page.get_by_role("button", name="Show the journal").click()

    totals = page.get_by_test_id("journal-totals")
    expect(totals).to_contain_text("Cash: Paid at Bank Counter")
    expect(totals).to_contain_text("Receivables (customers)")
    expect(page.get_by_test_id("journal-debit")).to_have_text("13,750.00")
    expect(page.get_by_test_id("journal-credit")).to_have_text("13,750.00")

    with page.expect_download() as download:
        page.get_by_test_id("journal-csv").click()
    assert download.value.suggested_filename.endswith("-2024-02-01-2024-02-29.csv")
    with open(download.value.path(), encoding="utf-8", newline="") as saved:
        rows = list(csv.reader(saved))
    assert rows[0] == ["date", "account", "account_name", "debit", "credit"]
    assert ["2024-02-02", "receivables", "Receivables (customers)", "9750.00", "0.00"] in rows
    assert ["2024-02-10", "cash:bank-counter", "Cash: Paid at Bank Counter", "4000.00", "0.00"] in rows
    days = [row for row in rows[1:] if row[0] != "total"]
    assert sum(Decimal(row[3]) for row in days) == sum(Decimal(row[4]) for row in days) == Decimal("13750.00")

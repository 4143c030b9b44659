"""Django admin shows amounts with thousands separators and billing months by name, in its lists and on
a record's page, while ids and years stay as they are."""

import re

import pytest

from invoicing import selectors, services
from invoicing.models import Invoice
from tests.admin.conftest import JANUARY
from tests.factories import billable_connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoice(flat_provider, officer) -> Invoice:
    """January 2024's bill of 300 kWh at 32.50: 9,750.00, due 10 February 2024."""
    return services.invoice_issue(
        connection=billable_connection(flat_provider), period=JANUARY, created_by=officer
    )


def cells(page: str, name: str) -> list[str]:
    """The text of a changelist's cells of field `name`."""
    return [
        re.sub(r"<[^>]+>", "", cell).strip()
        for cell in re.findall(rf'class="field-{name}[^"]*">(.*?)</t[dh]>', page, re.S)
    ]


def readonly(page: str, name: str) -> str:
    """A record page's read-only value of field `name`."""
    found = re.search(
        rf'<div class="form-row[^"]*field-{name}\b.*?<div class="readonly">(.*?)</div>', page, re.S
    )
    assert found, f"no read-only field {name}"
    return found.group(1).strip()


def test_the_invoice_list_groups_amounts_and_names_the_month(browser, invoice):
    page = browser.get("/admin/invoicing/invoice/").content.decode()

    assert cells(page, "current_charges") == ["9,750.00"]
    assert cells(page, "balance") == ["9,750.00"]
    assert cells(page, "period") == ["January 2024"]
    assert cells(page, "due_date") == ["Feb. 10, 2024"]  # other dates as before; the year not grouped


def test_an_invoice_page_groups_amounts_and_names_the_month(browser, invoice):
    page = browser.get(f"/admin/invoicing/invoice/{invoice.pk}/change/").content.decode()

    assert readonly(page, "period") == "January 2024"
    assert readonly(page, "current_charges") == "9,750.00"


def test_a_billing_run_is_listed_by_its_month(browser, flat_provider, invoice):
    run, _ = services.billing_run_start(provider=flat_provider, period=JANUARY)
    for chunk_id in selectors.pending_chunks(run):
        services.billing_run_chunk_bill(chunk_id=chunk_id)

    listed = browser.get("/admin/invoicing/billingrun/").content.decode()
    shown = browser.get(f"/admin/invoicing/billingrun/{run.pk}/change/").content.decode()

    assert cells(listed, "period") == ["January 2024"]
    assert readonly(shown, "period") == "January 2024"

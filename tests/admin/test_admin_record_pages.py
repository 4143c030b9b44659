"""A record's page in Django admin shows its parts to whoever may see the record: an invoice its lines,
adjustments and the payments settled on it, a payment the bills it settled, a run its problems."""

import re
from decimal import Decimal

import pytest

from invoicing import selectors, services
from invoicing.models import Invoice
from tests.admin.conftest import JANUARY
from tests.factories import ConnectionFactory, billable_connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoice(flat_provider, officer) -> Invoice:
    return services.invoice_issue(
        connection=billable_connection(flat_provider), period=JANUARY, created_by=officer
    )


def inline_groups(page: str) -> list[str]:
    """The tables of related rows a change page shows, by their formset prefix."""
    return re.findall(r'<div class="js-inline-admin-formset inline-group" id="(\w+)-group"', page)


def test_an_invoice_page_shows_its_lines_adjustments_and_payments(browser, officer, invoice, cash):
    adjustment, _ = services.adjustment_create(
        invoice=invoice,
        amount=Decimal("250.00"),
        direction="credit",
        reason="Estimated reading",
        officer=officer,
    )
    payment, _ = services.payment_post(
        invoice=invoice, amount=Decimal("1000.00"), method=cash, received_by=officer
    )

    page = browser.get(f"/admin/invoicing/invoice/{invoice.pk}/change/").content.decode()

    assert inline_groups(page) == ["lines", "adjustments", "allocations", "credit_notes"]
    assert [adjustment.number in page, payment.receipt_number in page] == [True, True]


def test_a_payment_page_shows_the_bills_it_settled(browser, officer, invoice, cash):
    payment, _ = services.payment_post(
        invoice=invoice, amount=Decimal("1000.00"), method=cash, received_by=officer
    )

    page = browser.get(f"/admin/invoicing/payment/{payment.pk}/change/").content.decode()

    assert inline_groups(page) == ["allocations"]
    assert "Bills this payment settled" in page


def test_a_billing_run_page_shows_the_connections_it_skipped_and_why(browser, flat_provider):
    skipped = ConnectionFactory(customer__provider=flat_provider, number="NO-READINGS-1")
    run, _ = services.billing_run_start(provider=flat_provider, period=JANUARY)
    for chunk_id in selectors.pending_chunks(run):
        services.billing_run_chunk_bill(chunk_id=chunk_id)

    page = browser.get(f"/admin/invoicing/billingrun/{run.pk}/change/").content.decode()

    assert inline_groups(page) == ["problems"]
    assert [skipped.number in page, run.problems.get().reason in page] == [True, True]

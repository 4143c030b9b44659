"""Django admin for officers: payments and adjustments entered through the services, the officer
taken from the signed-in account, money read-only afterwards, another provider's rows invisible."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection as db
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from invoicing import services
from invoicing.models import Adjustment, BillingRun, Invoice, Payment
from tests.factories import FlatTariffFactory, UserFactory, billable_connection
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer(flat_provider):
    return UserFactory(
        provider=flat_provider, roles=[Role.ADMIN], name="Ayesha Malik", designation="Billing Manager"
    )


@pytest.fixture
def browser(officer) -> Client:
    client = Client()
    client.force_login(officer)
    return client


@pytest.fixture
def invoice(connection, creator):
    return services.invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)


def test_an_officer_posts_a_payment_in_admin(browser, officer, invoice, cash):
    response = browser.post(
        "/admin/invoicing/payment/add/",
        {
            "invoice": invoice.pk,
            "amount": "1000.00",
            "method": cash.pk,
            "reference": "BANK-991",
            "_save": "Save",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    payment = Payment.objects.get()
    assert (payment.received_by, payment.amount, payment.payable_after) == (
        officer,
        Decimal("1000.00"),
        Decimal("8750.00"),
    )
    assert_ledger_holds(invoice.connection)


def test_an_overpayment_in_admin_is_refused_with_the_reason(browser, invoice, cash):
    response = browser.post(
        "/admin/invoicing/payment/add/",
        {"invoice": invoice.pk, "amount": "99999.00", "method": cash.pk, "_save": "Save"},
        follow=True,
    )

    assert "take at most 9750.00" in response.content.decode()
    assert Payment.objects.count() == 0


def test_an_officer_adjusts_a_bill_in_admin_as_themselves(browser, invoice):
    response = browser.post(
        "/admin/invoicing/adjustment/add/",
        {
            "invoice": invoice.pk,
            "direction": "credit",
            "amount": "250.00",
            "reason": "Estimated reading",
            "_save": "Save",
        },
    )

    assert response.status_code == 302
    adjustment = Adjustment.objects.get()
    assert (adjustment.officer_name, adjustment.officer_designation) == ("Ayesha Malik", "Billing Manager")
    assert adjustment.balance_after == Decimal("9500.00")


def test_issued_money_is_read_only_in_admin(browser, invoice, officer, cash):
    payment, _ = services.payment_post(invoice=invoice, amount=Decimal("5"), method=cash, received_by=officer)

    invoice_page = browser.get(f"/admin/invoicing/invoice/{invoice.pk}/change/").content.decode()
    payment_page = browser.get(f"/admin/invoicing/payment/{payment.pk}/change/").content.decode()

    assert 'name="current_charges"' not in invoice_page
    assert 'name="amount"' not in payment_page
    assert browser.post(f"/admin/invoicing/invoice/{invoice.pk}/delete/").status_code == 403


def test_another_providers_invoices_are_not_listed_and_the_list_has_no_n_plus_one(
    browser, creator, flat_provider, other_provider
):
    FlatTariffFactory(provider=other_provider)
    foreign_clerk = UserFactory(provider=other_provider, roles=[Role.INVOICE_CREATOR])
    foreign = services.invoice_issue(
        connection=billable_connection(other_provider), period=date(2024, 1, 1), created_by=foreign_clerk
    )
    for _ in range(2):
        services.invoice_issue(
            connection=billable_connection(flat_provider), period=date(2024, 1, 1), created_by=creator
        )
    with CaptureQueriesContext(db) as few:
        page = browser.get("/admin/invoicing/invoice/").content.decode()
    for _ in range(5):
        services.invoice_issue(
            connection=billable_connection(flat_provider), period=date(2024, 1, 1), created_by=creator
        )
    with CaptureQueriesContext(db) as more:
        browser.get("/admin/invoicing/invoice/")

    assert foreign.number not in page
    assert browser.get(f"/admin/invoicing/invoice/{foreign.pk}/change/").status_code == 302  # not found here
    assert len(more) == len(few)
    assert Invoice.objects.filter(provider=flat_provider).count() == 7


def test_an_officer_starts_a_billing_run_in_admin(browser, flat_provider, django_capture_on_commit_callbacks):
    billable_connection(flat_provider)

    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            "/admin/invoicing/billingrun/add/",
            {"provider": flat_provider.pk, "month": "2024-01-15", "_save": "Save"},
        )

    assert response.status_code == 302
    run = BillingRun.objects.get()
    assert (run.period, run.status, run.issued) == (date(2024, 1, 1), "completed", 1)

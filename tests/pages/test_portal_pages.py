"""The customer portal: a customer's own bills, a bill's details and PDF, their payments, and the
usage calculator; nothing of another customer or provider."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.roles import Role
from billing.selectors import usage_estimate
from invoicing.services import invoice_issue, payment_post
from invoicing.templatetags.money import money
from providers.models import Bucket
from tests.factories import ConnectionTypeFactory, FlatTariffFactory, UserFactory, billable_connection

JANUARY = date(2024, 1, 1)


@pytest.fixture
def customer(connection):
    return connection.customer.user


@pytest.fixture
def portal(signed_in, customer):
    return signed_in(customer, Role.CUSTOMER)


@pytest.fixture
def january(connection, creator):
    return invoice_issue(connection=connection, period=JANUARY, created_by=creator)


@pytest.fixture
def neighbours_bill(flat_provider, creator):
    """Another customer's bill, at the same provider."""
    return invoice_issue(connection=billable_connection(flat_provider), period=JANUARY, created_by=creator)


@pytest.fixture
def foreign_bill(other_provider):
    FlatTariffFactory(provider=other_provider)
    return invoice_issue(
        connection=billable_connection(other_provider),
        period=JANUARY,
        created_by=UserFactory(provider=other_provider, roles=[Role.INVOICE_CREATOR]),
    )


def test_a_customer_sees_their_own_bills_with_status_and_no_one_elses(
    portal, january, neighbours_bill, foreign_bill
):
    html = portal.get(reverse("portal-home")).content.decode()

    assert january.number in html
    assert '<span class="status status-Pending">Pending</span>' in html
    assert money(january.payable_before_due) in html
    assert january.connection.number in html
    assert neighbours_bill.number not in html
    assert foreign_bill.number not in html


def test_the_bill_page_shows_the_number_amounts_and_lines(portal, january):
    html = portal.get(reverse("portal-bill", args=[january.pk])).content.decode()

    assert january.number in html
    assert money(january.current_charges) in html
    assert money(january.payable_after_due) in html
    assert january.lines.get().label in html


def test_another_customers_bill_is_not_found(portal, neighbours_bill):
    response = portal.get(reverse("portal-bill", args=[neighbours_bill.pk]))

    assert response.status_code == 404


def test_the_pdf_link_downloads_the_customers_bill_and_not_anothers(portal, january, neighbours_bill):
    pdf_url = reverse("invoice-pdf", args=[january.pk])

    listed = portal.get(reverse("portal-home")).content.decode()
    own = portal.get(pdf_url)
    other = portal.get(reverse("invoice-pdf", args=[neighbours_bill.pk]))

    assert f'href="{pdf_url}"' in listed
    assert own.status_code == 200 and own["Content-Type"] == "application/pdf"
    assert other.status_code == 404


def test_payment_history_lists_the_customers_payment_and_its_bill(
    portal, january, neighbours_bill, super_creator, cash
):
    payment, _new = payment_post(
        invoice=january, amount=Decimal("1000.00"), method=cash, received_by=super_creator
    )
    neighbours, _new = payment_post(
        invoice=neighbours_bill, amount=Decimal("500.00"), method=cash, received_by=super_creator
    )

    html = portal.get(reverse("portal-payments")).content.decode()

    assert payment.receipt_number in html
    assert "1,000.00" in html and january.number in html and cash.name in html
    assert f'href="{reverse("payment-receipt", args=[payment.pk])}"' in html
    assert neighbours.receipt_number not in html


def test_the_calculator_total_is_billings_estimate_for_the_same_usage(portal, flat_provider, connection):
    connection_type = connection.connection_type
    expected = usage_estimate(
        provider=flat_provider,
        connection_type=connection_type,
        peak_kwh=Decimal(0),
        off_peak_kwh=Decimal(300),
        days=Decimal(30),
    )

    response = portal.get(
        reverse("usage-calculator"), {"connection_type": connection_type.code, "kwh": "300"}
    )

    assert response.status_code == 200
    assert f'data-testid="estimate-total">{money(expected.current_charges)}<' in response.content.decode()


def test_a_negative_kwh_is_refused_next_to_the_field_and_kept(portal, connection):
    response = portal.get(
        reverse("usage-calculator"), {"connection_type": connection.connection_type.code, "kwh": "-5"}
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_kwh_error"' in html and "kWh cannot be negative" in html
    assert 'value="-5"' in html
    assert 'data-testid="estimate"' not in html


def test_a_total_kwh_on_a_time_of_use_price_asks_for_peak_and_off_peak(signed_in, other_provider):
    connection_type = ConnectionTypeFactory(provider=other_provider)
    for bucket in (Bucket.PEAK, Bucket.OFF_PEAK):
        FlatTariffFactory(provider=other_provider, connection_type=connection_type, bucket=bucket)
    client = signed_in(UserFactory(provider=other_provider), Role.CUSTOMER)

    response = client.get(
        reverse("usage-calculator"), {"connection_type": connection_type.code, "kwh": "300"}
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_kwh_error"' in html and "give peak and off-peak kWh" in html


def test_staff_may_use_the_calculator_but_not_the_portal(signed_in, flat_provider, connection):
    auditor = signed_in(UserFactory(provider=flat_provider, roles=[Role.AUDITOR]), Role.AUDITOR)

    calculator = auditor.get(
        reverse("usage-calculator"), {"connection_type": connection.connection_type.code, "kwh": "300"}
    )

    assert calculator.status_code == 200 and 'data-testid="estimate-total"' in calculator.content.decode()
    assert auditor.get(reverse("portal-home")).status_code == 403
    assert auditor.get(reverse("portal-payments")).status_code == 403

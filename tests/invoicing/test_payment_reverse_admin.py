"""Reversing a payment in Django admin: the payment list's action leads to the reversal form, which
reverses through the service as the signed-in officer; a reversed payment, another provider's payment
and a role that may not reverse are refused."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.test import Client

from accounts.roles import Role
from invoicing import services
from invoicing.models import InvoiceStatus, PaymentReversal
from tests.factories import FlatTariffFactory, UserFactory, billable_connection
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db
REVERSE = {"kind": "charged_back", "reason": "Card issuer dispute 7781", "_save": "Save"}


@pytest.fixture(autouse=True)
def _before_due(time_machine):
    time_machine.move_to(datetime(2024, 2, 5, 9, tzinfo=UTC), tick=False)


@pytest.fixture
def officer(flat_provider):
    return UserFactory(provider=flat_provider, roles=[Role.ADMIN], name="Ayesha Malik")


@pytest.fixture
def browser(officer) -> Client:
    client = Client()
    client.force_login(officer)
    return client


@pytest.fixture
def invoice(connection, creator):
    return services.invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)


@pytest.fixture
def payment(invoice, officer, cash):
    return services.payment_post(
        invoice=invoice, amount=Decimal("9750.00"), method=cash, received_by=officer
    )[0]


def test_the_payment_lists_action_leads_to_the_reversal_form_which_reverses_as_the_officer(
    browser, officer, invoice, payment
):
    chosen = browser.post(
        "/admin/invoicing/payment/", {"action": "reverse_payment", "_selected_action": [payment.pk]}
    )
    assert chosen.status_code == 302
    assert chosen["Location"] == f"/admin/invoicing/paymentreversal/add/?payment={payment.pk}"
    assert f'value="{payment.pk}" selected' in browser.get(chosen["Location"]).content.decode()

    response = browser.post(
        "/admin/invoicing/paymentreversal/add/", {"payment": payment.pk, **REVERSE}, follow=True
    )

    assert response.redirect_chain[-1][0] == "/admin/invoicing/paymentreversal/"
    reversal = PaymentReversal.objects.get()
    assert reversal.number in response.content.decode()  # the reversals' list, this one on it
    assert (reversal.payment, reversal.reversed_by, reversal.kind) == (payment, officer, "charged_back")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.balance) == (InvoiceStatus.PENDING, Decimal("9750.00"))
    assert (
        "Card issuer dispute 7781"
        in browser.get(f"/admin/invoicing/payment/{payment.pk}/change/").content.decode()
    )
    assert_ledger_holds(invoice.connection)


def test_a_reversed_payment_is_neither_offered_nor_reversed_again(browser, officer, payment):
    services.payment_reverse(payment=payment, kind="bounced", reason="Returned", reversed_by=officer)

    chosen = browser.post(
        "/admin/invoicing/payment/",
        {"action": "reverse_payment", "_selected_action": [payment.pk]},
        follow=True,
    )
    again = browser.post("/admin/invoicing/paymentreversal/add/", {"payment": payment.pk, **REVERSE})

    assert "was already reversed" in chosen.content.decode()
    assert again.status_code == 200  # the form again, with the payment refused
    assert "Select a valid choice" in again.content.decode()
    assert PaymentReversal.objects.count() == 1


def test_a_blank_reason_is_refused_at_its_field(browser, payment):
    response = browser.post(
        "/admin/invoicing/paymentreversal/add/", {"payment": payment.pk, **REVERSE, "reason": " "}
    )

    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert not PaymentReversal.objects.exists()


def test_another_providers_payment_cannot_be_reversed_here(browser, other_provider, cash):
    their_officer = UserFactory(provider=other_provider, roles=[Role.SUPER_CREATOR])
    FlatTariffFactory(provider=other_provider)
    theirs = billable_connection(other_provider)
    bill = services.invoice_issue(connection=theirs, period=date(2024, 1, 1), created_by=their_officer)
    their_payment, _ = services.payment_post(
        invoice=bill, amount=Decimal("1.00"), method=cash, received_by=their_officer
    )

    response = browser.post("/admin/invoicing/paymentreversal/add/", {"payment": their_payment.pk, **REVERSE})

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not PaymentReversal.objects.exists()


def test_a_clerk_may_not_reverse_in_admin(flat_provider, payment):
    clerk = UserFactory(provider=flat_provider, roles=[Role.INVOICE_CREATOR], is_staff=True)
    client = Client()
    client.force_login(clerk)

    response = client.post("/admin/invoicing/paymentreversal/add/", {"payment": payment.pk, **REVERSE})

    assert response.status_code == 403
    assert not PaymentReversal.objects.exists()

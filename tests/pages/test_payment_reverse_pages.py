"""The staff pages of a payment's reversal: the Reverse button on the payment's page for officers, the
confirmation form (what happened and why, both required), and the payment's page once reversed."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from accounts.roles import Role
from invoicing import services
from invoicing.models import InvoiceStatus, PaymentReversal
from tests.factories import UserFactory
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _after_due(time_machine):
    time_machine.move_to(datetime(2024, 2, 20, 9, tzinfo=UTC), tick=False)  # January was due 10 February


@pytest.fixture
def invoice(connection, creator):
    return services.invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)


@pytest.fixture
def payment(invoice, creator, cash):
    return services.payment_post(
        invoice=invoice, amount=Decimal("9750.00"), method=cash, received_by=creator
    )[0]


def html(response) -> str:
    return response.content.decode()


def test_an_officer_sees_the_reverse_button_and_a_clerk_does_not(signed_in, super_creator, creator, payment):
    officer_page = html(signed_in(super_creator, Role.SUPER_CREATOR).get(f"/payments/{payment.pk}"))
    clerk_page = html(signed_in(creator, Role.INVOICE_CREATOR).get(f"/payments/{payment.pk}"))

    assert f'href="/payments/{payment.pk}/reverse"' in officer_page
    assert "/reverse" not in clerk_page


def test_an_officer_reverses_a_payment_and_its_page_shows_the_bill_reopened(
    signed_in, super_creator, invoice, payment
):
    client = signed_in(super_creator, Role.SUPER_CREATOR)
    form = html(client.get(f"/payments/{payment.pk}/reverse"))
    assert "Rs9,750.00" in form and 'name="reason"' in form

    response = client.post(
        f"/payments/{payment.pk}/reverse",
        {"kind": "bounced", "reason": "Cheque returned: account closed", "idempotencyKey": "r1"},
    )

    assert (response.status_code, response.url) == (302, f"/payments/{payment.pk}")
    page = html(client.get(response.url))
    reversal = PaymentReversal.objects.get()
    assert f'data-testid="reversal-number">{reversal.number}<' in page
    assert "Cheque returned: account closed" in page
    assert 'data-testid="payable-after-reversal">Rs10,725.00<' in page  # 975.00 late surcharge added
    assert "Overdue" in page and f'href="/api/payments/{payment.pk}/reversal-receipt"' in page
    invoice.refresh_from_db()
    assert (invoice.status, invoice.balance) == (InvoiceStatus.OVERDUE, Decimal("10725.00"))
    bill_page = html(client.get(f"/bills/{invoice.pk}"))
    assert "Reversed" in bill_page
    assert_ledger_holds(invoice.connection)


def test_the_reason_is_required_and_nothing_is_reversed_without_it(signed_in, super_creator, payment):
    response = signed_in(super_creator, Role.SUPER_CREATOR).post(
        f"/payments/{payment.pk}/reverse", {"kind": "bounced", "reason": "  ", "idempotencyKey": "r1"}
    )

    assert response.status_code == 400
    assert 'id="id_reason_error"' in html(response)
    assert not PaymentReversal.objects.exists()


def test_the_form_sent_twice_reverses_once(signed_in, super_creator, payment):
    client = signed_in(super_creator, Role.SUPER_CREATOR)
    form = {"kind": "charged_back", "reason": "Dispute 1182", "idempotencyKey": "once"}

    first, again = (
        client.post(f"/payments/{payment.pk}/reverse", form),
        client.post(f"/payments/{payment.pk}/reverse", form),
    )

    assert (first.status_code, again.status_code) == (302, 302)
    assert PaymentReversal.objects.count() == 1


def test_a_second_reversal_of_a_payment_is_refused_on_the_form(signed_in, super_creator, payment):
    client = signed_in(super_creator, Role.SUPER_CREATOR)
    client.post(f"/payments/{payment.pk}/reverse", {"kind": "bounced", "reason": "x", "idempotencyKey": "a"})

    response = client.post(
        f"/payments/{payment.pk}/reverse", {"kind": "bounced", "reason": "y", "idempotencyKey": "b"}
    )

    assert response.status_code == 400  # the form page, as every refused form comes back
    assert "already reversed" in html(response)
    assert PaymentReversal.objects.count() == 1


def test_a_clerk_may_not_open_the_reversal_form(signed_in, creator, payment):
    assert signed_in(creator, Role.INVOICE_CREATOR).get(f"/payments/{payment.pk}/reverse").status_code == 403


def test_another_providers_officer_finds_no_such_payment(signed_in, other_provider, payment):
    officer = UserFactory(provider=other_provider, roles=[Role.SUPER_CREATOR])

    assert signed_in(officer, Role.SUPER_CREATOR).get(f"/payments/{payment.pk}/reverse").status_code == 404

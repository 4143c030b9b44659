"""POST /api/payments/{id}/reverse: officers only, another provider's payment not found, a reversed
payment refused the second time, and the reversal shown in the payment's output and receipt PDF."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from accounts.roles import Role
from invoicing import services
from invoicing.models import InvoiceStatus, PaymentReversal
from tests.factories import UserFactory, billable_connection
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db
BOUNCED = {"kind": "bounced", "reason": "Cheque 004512 returned unpaid"}


@pytest.fixture(autouse=True)
def _before_due(time_machine):
    time_machine.move_to(datetime(2024, 2, 5, 9, tzinfo=UTC), tick=False)  # January is due 10 February


@pytest.fixture
def invoice(connection, creator):
    return services.invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)


@pytest.fixture
def payment(invoice, creator, cash):
    return services.payment_post(
        invoice=invoice, amount=Decimal("9750.00"), method=cash, received_by=creator
    )[0]


def reverse(api, payment_id: int, body: dict = BOUNCED, key: str | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post(f"/api/payments/{payment_id}/reverse", body, format="json", **headers)


@pytest.mark.parametrize("role", [Role.SUPER_CREATOR, Role.ADMIN])
def test_an_officer_reverses_a_payment_and_the_bill_is_owed_again(as_role, invoice, payment, role):
    officer = UserFactory(provider=invoice.provider, roles=[role])
    api = as_role(officer, role)

    response = reverse(api, payment.pk)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["paymentId"] == payment.pk
    assert body["settled"] == [{"billId": invoice.pk, "invoiceNumber": invoice.number, "amount": "9750.00"}]
    reversal = body["reversal"]
    assert reversal == {
        "reversalNumber": f"{invoice.provider.code}-RV-2024-000001",
        "kind": "bounced",
        "reason": "Cheque 004512 returned unpaid",
        "amount": "9750.00",
        "surchargeTotal": "0.00",
        "payableBefore": "0.00",
        "payableAfter": "9750.00",
        "reversedBy": officer.name,
        "reversedAt": reversal["reversedAt"],
        "reopened": [
            {
                "billId": invoice.pk,
                "invoiceNumber": invoice.number,
                "billingMonth": "2024-01",
                "amount": "9750.00",
                "surcharge": "0.00",
                "balance": "9750.00",
                "paymentStatus": "Pending",
            }
        ],
    }
    bill = api.get(f"/api/invoices/{invoice.pk}").json()
    assert (bill["paymentStatus"], bill["amountPaid"], bill["balance"]) == ("Pending", "0.00", "9750.00")
    assert bill["payments"][0]["reversed"] is True
    assert (
        api.get(f"/api/payments/{payment.pk}").json()["reversal"]["reversalNumber"]
        == reversal["reversalNumber"]
    )
    assert_ledger_holds(invoice.connection)


def test_a_payment_not_reversed_shows_no_reversal(as_role, super_creator, payment):
    body = as_role(super_creator, Role.SUPER_CREATOR).get(f"/api/payments/{payment.pk}").json()

    assert body["reversal"] is None


@pytest.mark.parametrize("role", [Role.INVOICE_CREATOR, Role.AUDITOR, Role.CUSTOMER])
def test_only_officers_may_reverse(as_role, invoice, payment, role):
    user = UserFactory(provider=invoice.provider, roles=[role])

    response = reverse(as_role(user, role), payment.pk)

    assert response.status_code == 403
    assert not PaymentReversal.objects.exists()


def test_the_clerk_who_took_the_payment_may_not_reverse_it(as_role, creator, payment):
    response = reverse(as_role(creator, Role.INVOICE_CREATOR), payment.pk)

    assert response.status_code == 403


def test_the_customer_whose_payment_it_is_may_not_reverse_it(as_role, invoice, payment):
    response = reverse(as_role(invoice.customer.user, Role.CUSTOMER), payment.pk)

    assert response.status_code == 403


def test_another_providers_payment_is_not_found(as_role, other_provider, payment):
    officer = UserFactory(provider=other_provider, roles=[Role.SUPER_CREATOR])

    response = reverse(as_role(officer, Role.SUPER_CREATOR), payment.pk)

    assert response.status_code == 404
    assert not PaymentReversal.objects.exists()


def test_a_payment_reversed_before_is_refused_with_its_reversal(as_role, super_creator, invoice, payment):
    api = as_role(super_creator, Role.SUPER_CREATOR)
    first = reverse(api, payment.pk).json()["reversal"]["reversalNumber"]

    response = reverse(api, payment.pk, {"kind": "charged_back", "reason": "Again"})

    assert response.status_code == 409
    assert (response.json()["code"], response.json()["extra"]) == ("payment_reversed", {"reversal": first})
    assert "already reversed" in response.json()["detail"]
    assert PaymentReversal.objects.count() == 1
    assert_ledger_holds(invoice.connection)


def test_a_retry_with_the_same_key_returns_the_first_reversal(as_role, super_creator, invoice, payment):
    api = as_role(super_creator, Role.SUPER_CREATOR)
    first = reverse(api, payment.pk, key="rev-1")

    again = reverse(api, payment.pk, key="rev-1")
    other = reverse(api, payment.pk, {"kind": "posted_in_error", "reason": "x"}, key="rev-1")

    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 200, "true")
    assert again.json()["reversal"] == first.json()["reversal"]
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_key_reused")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "stolen", "reason": "x"}, "kind"),
        ({"kind": "bounced", "reason": ""}, "reason"),
        ({"kind": "bounced"}, "reason"),
        ({"reason": "x"}, "kind"),
        ({"kind": "bounced", "reason": "x" * 501}, "reason"),
    ],
)
def test_a_reversal_without_a_known_kind_and_a_reason_is_a_400(
    as_role, super_creator, invoice, payment, body, field
):
    response = reverse(as_role(super_creator, Role.SUPER_CREATOR), payment.pk, body)

    assert response.status_code == 400
    assert field in response.json()["fields"]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.balance) == (InvoiceStatus.PAID, Decimal("0.00"))


def test_an_unknown_payment_is_not_found(as_role, super_creator):
    assert reverse(as_role(super_creator, Role.SUPER_CREATOR), 999_999).status_code == 404


def test_the_reversal_receipt_is_a_pdf_once_reversed(as_role, super_creator, payment, invoice):
    api = as_role(super_creator, Role.SUPER_CREATOR)
    assert api.get(f"/api/payments/{payment.pk}/reversal-receipt").status_code == 404

    reverse(api, payment.pk)
    response = api.get(f"/api/payments/{payment.pk}/reversal-receipt")

    assert (response.status_code, response["Content-Type"], response.content[:5]) == (
        200,
        "application/pdf",
        b"%PDF-",
    )
    assert f"{invoice.provider.code}-RV-2024-000001.pdf" in response["Content-Disposition"]
    customer = as_role(invoice.customer.user, Role.CUSTOMER)
    assert customer.get(f"/api/payments/{payment.pk}/reversal-receipt").status_code == 200
    stranger = UserFactory(provider=invoice.provider, roles=[Role.CUSTOMER])
    assert (
        as_role(stranger, Role.CUSTOMER).get(f"/api/payments/{payment.pk}/reversal-receipt").status_code
        == 404
    )


def test_a_reversal_on_another_connection_leaves_it_alone(
    as_role, super_creator, flat_provider, payment, cash
):
    other = billable_connection(flat_provider)
    bill = services.invoice_issue(connection=other, period=date(2024, 1, 1), created_by=super_creator)
    services.payment_post(invoice=bill, amount=Decimal("100.00"), method=cash, received_by=super_creator)

    reverse(as_role(super_creator, Role.SUPER_CREATOR), payment.pk)

    bill.refresh_from_db()
    assert (bill.status, bill.amount_paid) == (InvoiceStatus.PARTIALLY_PAID, Decimal("100.00"))
    assert_ledger_holds(payment.connection, other)

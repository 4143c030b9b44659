"""POST /api/payments: partial payments, refusals, Idempotency-Key, receipts, who may post."""

from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.roles import Role
from invoicing import services
from invoicing.models import Payment
from tests.factories import UserFactory, billable_connection
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoice(connection, creator):
    return services.invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)


def pay(api, invoice, amount: str, key: str | None = None, method: str = "bank-counter"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post(
        "/api/payments", {"billId": invoice.pk, "amount": amount, "method": method}, format="json", **headers
    )


def test_a_partial_payment_then_the_rest_pays_the_bill(as_role, super_creator, invoice):
    api = as_role(super_creator, Role.SUPER_CREATOR)

    first = pay(api, invoice, "4000.00")
    second = pay(api, invoice, "5750.00")

    assert first.status_code == 201, first.json()
    assert first.json()["receiptNumber"] == f"{invoice.provider.code}-PAY-{timezone.localdate().year}-000001"
    assert first.json()["payableAfter"] == "5750.00"
    assert second.json()["payableAfter"] == "0.00"
    assert second.json()["settled"] == [
        {"billId": invoice.pk, "invoiceNumber": invoice.number, "amount": "5750.00"}
    ]
    body = api.get(f"/api/invoices/{invoice.pk}").json()
    assert body["paymentStatus"] == "Paid"
    assert body["amountPaid"] == "9750.00"
    assert_ledger_holds(invoice.connection)


def test_an_amount_above_the_payable_is_refused_with_the_payable(as_role, super_creator, invoice):
    response = pay(as_role(super_creator, Role.SUPER_CREATOR), invoice, "9750.01")

    assert response.status_code == 400
    assert response.json()["code"] == "overpayment"
    assert response.json()["extra"]["payable"] == "9750.00"
    assert Payment.objects.count() == 0


def test_a_paid_bill_refuses_payments(as_role, super_creator, invoice):
    api = as_role(super_creator, Role.SUPER_CREATOR)
    pay(api, invoice, "9750.00")

    response = pay(api, invoice, "1.00")

    assert response.status_code == 409
    assert response.json()["code"] == "invoice_paid"


def test_an_unknown_method_lists_the_known_ones(as_role, super_creator, invoice):
    response = pay(as_role(super_creator, Role.SUPER_CREATOR), invoice, "10.00", method="cheque")

    assert response.status_code == 400
    assert "jazzcash" in response.json()["detail"]


def test_zero_and_negative_amounts_are_refused(as_role, super_creator, invoice):
    api = as_role(super_creator, Role.SUPER_CREATOR)

    assert pay(api, invoice, "0").status_code == 400
    assert pay(api, invoice, "-5").status_code == 400
    assert Payment.objects.count() == 0


def test_a_retry_with_the_same_key_returns_the_first_payment(as_role, super_creator, invoice):
    api = as_role(super_creator, Role.SUPER_CREATOR)

    first = pay(api, invoice, "100.00", key="till-7-000123")
    retry = pay(api, invoice, "100.00", key="till-7-000123")

    assert first.status_code == 201
    assert retry.status_code == 200
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json()["paymentId"] == first.json()["paymentId"]
    assert Payment.objects.count() == 1


def test_the_same_key_with_another_body_is_refused(as_role, super_creator, invoice):
    api = as_role(super_creator, Role.SUPER_CREATOR)
    pay(api, invoice, "100.00", key="till-7-000124")

    response = pay(api, invoice, "200.00", key="till-7-000124")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    assert Payment.objects.count() == 1


def test_a_malformed_key_is_refused(as_role, super_creator, invoice):
    response = pay(as_role(super_creator, Role.SUPER_CREATOR), invoice, "1.00", key="has spaces")

    assert response.status_code == 400


def test_a_creator_collects_only_on_their_own_invoices(as_role, creator, flat_provider, invoice):
    colleague = UserFactory(provider=flat_provider, roles=[Role.INVOICE_CREATOR])

    own = pay(as_role(creator, Role.INVOICE_CREATOR), invoice, "10.00")
    other = pay(as_role(colleague, Role.INVOICE_CREATOR), invoice, "10.00")

    assert own.status_code == 201
    assert other.status_code == 404


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.AUDITOR])
def test_customers_and_auditors_cannot_post_payments(as_role, flat_provider, invoice, role):
    user = UserFactory(provider=flat_provider, roles=[role])

    assert pay(as_role(user, role), invoice, "10.00").status_code == 403


def test_another_providers_bill_is_not_found(as_role, other_provider, invoice):
    stranger = UserFactory(provider=other_provider, roles=[Role.SUPER_CREATOR])

    assert pay(as_role(stranger, Role.SUPER_CREATOR), invoice, "10.00").status_code == 404


def test_the_receipt_is_readable_by_the_customer_and_as_a_pdf(as_role, super_creator, invoice):
    payment_id = pay(as_role(super_creator, Role.SUPER_CREATOR), invoice, "10.00").json()["paymentId"]
    customer_api = as_role(invoice.customer.user, Role.CUSTOMER)

    receipt = customer_api.get(f"/api/payments/{payment_id}")
    document = customer_api.get(f"/api/payments/{payment_id}/receipt")

    assert receipt.json()["amount"] == "10.00"
    assert document["Content-Type"] == "application/pdf"
    assert document.content.startswith(b"%PDF")


def test_payment_methods_are_listed(as_role, super_creator):
    body = as_role(super_creator, Role.SUPER_CREATOR).get("/api/payment-methods").json()

    assert [row["description"] for row in body] == [
        "Paid at Bank Counter",
        "IBFT",
        "Credit/Debit Card",
        "JazzCash",
        "EasyPaisa",
    ]


def test_payment_lists_are_scoped_to_the_callers_reach(
    as_role, super_creator, flat_provider, creator, invoice
):
    neighbour = billable_connection(flat_provider)
    neighbours_bill = services.invoice_issue(
        connection=neighbour, period=date(2024, 1, 1), created_by=creator
    )
    api = as_role(super_creator, Role.SUPER_CREATOR)
    mine = pay(api, invoice, "10.00").json()["receiptNumber"]
    theirs = pay(api, neighbours_bill, "20.00").json()["paymentId"]
    customer_api = as_role(invoice.customer.user, Role.CUSTOMER)

    assert [row["receiptNumber"] for row in customer_api.get("/api/payments/list").json()["results"]] == [
        mine
    ]
    assert customer_api.get(f"/api/payments/{theirs}").status_code == 404
    assert api.get("/api/payments/list").json()["count"] == 2


def test_another_providers_receipts_are_not_found(as_role, super_creator, other_provider, invoice):
    payment_id = pay(as_role(super_creator, Role.SUPER_CREATOR), invoice, "10.00").json()["paymentId"]
    stranger = as_role(UserFactory(provider=other_provider, roles=[Role.AUDITOR]), Role.AUDITOR)

    assert stranger.get(f"/api/payments/{payment_id}").status_code == 404
    assert stranger.get(f"/api/payments/{payment_id}/receipt").status_code == 404
    assert stranger.get("/api/payments/list").json()["count"] == 0


def test_odd_method_and_id_values_are_a_400_not_a_crash(as_role, super_creator, creator, invoice):
    odd_method = pay(as_role(super_creator, Role.SUPER_CREATOR), invoice, "1.00", method="²")
    huge_customer = as_role(creator, Role.INVOICE_CREATOR).post(
        "/api/invoices", {"customerId": 10**30, "kwhConsumed": "1"}, format="json"
    )

    assert odd_method.status_code == 400
    assert huge_customer.status_code == 400
    assert set(huge_customer.json()["fields"]) == {"customerId"}


def test_a_zero_bill_carrying_arrears_shows_what_settles_it(
    as_role, super_creator, creator, connection, invoice
):
    zero = services.invoice_issue(
        connection=connection, period=date(2024, 2, 1), created_by=creator, kwh=Decimal(0)
    )
    api = as_role(super_creator, Role.SUPER_CREATOR)

    body = api.get(f"/api/invoices/{zero.pk}").json()
    paid = pay(api, zero, "9750.00")

    assert (body["paymentStatus"], body["payableBeforeDue"], body["amountPayable"]) == (
        "Paid",
        "9750.00",
        "9750.00",
    )
    assert paid.json()["settled"] == [
        {"billId": invoice.pk, "invoiceNumber": invoice.number, "amount": "9750.00"}
    ]

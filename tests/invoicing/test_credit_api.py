"""The credit endpoints end to end: who may credit a bill or refund a credit balance, what each role
sees, another provider's rows not found, retries answered once, and the documents as PDFs."""

from datetime import date, datetime
from decimal import Decimal as D
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from pypdf import PdfReader

from accounts.roles import Role
from invoicing.models import CreditNote
from invoicing.services import credit_note_issue, invoice_issue, invoice_update, payment_post
from providers.services import provider_update
from tests.factories import FlatTariffFactory, UserFactory, billable_connection

pytestmark = pytest.mark.django_db

JANUARY, FEBRUARY = date(2024, 1, 1), date(2024, 2, 1)


@pytest.fixture(autouse=True)
def early_march(time_machine):
    """The bills are issued, paid and credited on 1 March 2024, once January and February are over."""
    time_machine.move_to(datetime(2024, 3, 1, 9, tzinfo=ZoneInfo(settings.TIME_ZONE)), tick=True)


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(pdf)).pages)


@pytest.fixture
def paid_bill(connection, super_creator, cash):
    bill = invoice_issue(connection=connection, period=JANUARY, created_by=super_creator)
    payment_post(invoice=bill, amount=D("9750.00"), method=cash, received_by=super_creator)
    return bill


@pytest.fixture
def foreign_bill(other_provider):
    FlatTariffFactory(provider=other_provider, rate=D("32.50"))
    clerk = UserFactory(provider=other_provider, roles=[Role.SUPER_CREATOR], designation="Officer")
    connection = billable_connection(other_provider)
    bill = invoice_issue(connection=connection, period=JANUARY, created_by=clerk)
    credit_note_issue(invoice=bill, amount=D("5.00"), reason="Theirs", issued_by=clerk)
    return bill


def credit(api, bill, amount="500.00", **headers):
    return api.post(
        "/api/credit-notes",
        {"billId": bill.pk, "amount": amount, "reason": "Tariff applied twice"},
        format="json",
        **headers,
    )


# --- credit notes ----------------------------------------------------------------------------------


def test_an_officer_credits_a_paid_bill_and_a_retry_returns_the_same_note(as_role, super_creator, paid_bill):
    api = as_role(super_creator, Role.SUPER_CREATOR)

    first = credit(api, paid_bill, HTTP_IDEMPOTENCY_KEY="cn-1")
    again = credit(api, paid_bill, HTTP_IDEMPOTENCY_KEY="cn-1")

    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 200, "true")
    body = first.json()
    assert body == again.json()
    assert (body["invoiceNumber"], body["amount"], body["applied"], body["toCreditBalance"]) == (
        paid_bill.number,
        "500.00",
        "0.00",
        "500.00",
    )
    assert body["creditNoteNumber"].startswith(f"{paid_bill.provider.code}-CN-")
    assert body["lines"] == [{"label": "Tariff applied twice", "amount": "500.00"}]
    assert CreditNote.objects.count() == 1
    customer_credit = api.get(f"/api/customers/{paid_bill.customer_id}/credit").json()
    assert customer_credit["creditBalance"] == "500.00"
    assert [(row["kind"], row["amount"]) for row in customer_credit["entries"]] == [("credit_note", "500.00")]


def test_a_credit_above_what_the_bill_charged_is_a_400_with_the_most_that_can_be_credited(
    as_role, super_creator, paid_bill
):
    response = credit(as_role(super_creator, Role.SUPER_CREATOR), paid_bill, amount="9750.01")

    assert response.status_code == 400
    assert (response.json()["code"], response.json()["extra"]) == (
        "credit_refused",
        {"creditable": "9750.00"},
    )


@pytest.mark.parametrize("role", [Role.INVOICE_CREATOR, Role.AUDITOR])
def test_only_officers_issue_credit_notes(as_role, flat_provider, paid_bill, role):
    user = UserFactory(provider=flat_provider, roles=[role])

    response = credit(as_role(user, role), paid_bill)

    assert response.status_code == 403
    assert not CreditNote.objects.exists()


def test_another_providers_bill_and_credit_notes_are_not_found(as_role, super_creator, foreign_bill):
    api = as_role(super_creator, Role.SUPER_CREATOR)
    theirs = foreign_bill.credit_notes.get()

    assert credit(api, foreign_bill).status_code == 404
    assert api.get(f"/api/credit-notes/{theirs.pk}").status_code == 404
    assert api.get(f"/api/credit-notes/{theirs.pk}/pdf").status_code == 404
    assert api.get("/api/credit-notes").json()["count"] == 0
    assert api.get(f"/api/customers/{foreign_bill.customer_id}/credit").status_code == 404


def test_a_customer_sees_their_own_credit_notes_and_balance_only(
    as_role, super_creator, paid_bill, flat_provider
):
    note, _ = credit_note_issue(
        invoice=paid_bill, amount=D("100.00"), reason="Goodwill", issued_by=super_creator
    )
    neighbour = billable_connection(flat_provider)
    owner = as_role(paid_bill.customer.user, Role.CUSTOMER)
    stranger = as_role(neighbour.customer.user, Role.CUSTOMER)

    assert owner.get(f"/api/credit-notes/{note.pk}").status_code == 200
    assert owner.get(f"/api/customers/{paid_bill.customer_id}/credit").json()["creditBalance"] == "100.00"
    assert stranger.get(f"/api/credit-notes/{note.pk}").status_code == 404
    assert stranger.get(f"/api/customers/{paid_bill.customer_id}/credit").status_code == 404
    assert stranger.get("/api/credit-notes").json()["count"] == 0


def test_a_clerk_sees_the_credit_notes_they_issued_by_cancelling_their_bills(
    as_role, creator, super_creator, connection, flat_provider
):
    own = invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    invoice_update(invoice=own, updated_by=creator, cancel=True)
    other = billable_connection(flat_provider)
    officers = invoice_issue(connection=other, period=JANUARY, created_by=super_creator)
    credit_note_issue(invoice=officers, amount=D("1.00"), reason="Officer's", issued_by=super_creator)

    listed = as_role(creator, Role.INVOICE_CREATOR).get("/api/credit-notes").json()

    assert [row["invoiceNumber"] for row in listed["results"]] == [own.number]


def test_the_bill_shows_its_credit_notes_and_the_credit_note_has_its_own_pdf(
    as_role, super_creator, paid_bill
):
    api = as_role(super_creator, Role.SUPER_CREATOR)
    note_id = credit(api, paid_bill).json()["creditNoteId"]

    bill = api.get(f"/api/invoices/{paid_bill.pk}").json()
    document = api.get(f"/api/credit-notes/{note_id}/pdf")
    bill_pdf = text_of(api.get(f"/api/invoices/{paid_bill.pk}/pdf").content)

    note = CreditNote.objects.get(pk=note_id)
    assert [(row["creditNoteNumber"], row["toCreditBalance"]) for row in bill["creditNotes"]] == [
        (note.number, "500.00")
    ]
    assert document["Content-Type"] == "application/pdf"
    text = text_of(document.content)
    assert "CREDIT NOTE" in text
    assert note.number in text
    assert paid_bill.number in text
    assert "Tariff applied twice" in text
    assert note.number in bill_pdf


def test_a_new_bill_paid_by_credit_shows_it_on_its_pdf(as_role, super_creator, paid_bill, connection):
    credit_note_issue(invoice=paid_bill, amount=D("1234.00"), reason="Goodwill", issued_by=super_creator)
    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=super_creator)

    text = text_of(as_role(super_creator, Role.SUPER_CREATOR).get(f"/api/invoices/{february.pk}/pdf").content)

    assert "Your credit balance applied" in text
    assert "-1,234.00" in text or "-1234.00" in text


# --- refunds ---------------------------------------------------------------------------------------


def refund(api, customer_id, amount="300.00", **headers):
    return api.post(
        "/api/credit-refunds",
        {"customerId": customer_id, "amount": amount, "method": "bank-counter", "reason": "Moved away"},
        format="json",
        **headers,
    )


@pytest.fixture
def in_credit(paid_bill, super_creator):
    credit_note_issue(invoice=paid_bill, amount=D("500.00"), reason="Tariff error", issued_by=super_creator)
    return paid_bill.customer


def test_an_officer_refunds_a_credit_balance_once_however_often_the_request_is_sent(
    as_role, super_creator, in_credit
):
    api = as_role(super_creator, Role.SUPER_CREATOR)

    first = refund(api, in_credit.pk, HTTP_IDEMPOTENCY_KEY="rf-1")
    again = refund(api, in_credit.pk, HTTP_IDEMPOTENCY_KEY="rf-1")

    assert (first.status_code, again.status_code) == (201, 200)
    body = first.json()
    assert (body["amount"], body["balanceBefore"], body["newBalance"], body["method"]) == (
        "300.00",
        "500.00",
        "200.00",
        "Paid at Bank Counter",
    )
    assert api.get(f"/api/customers/{in_credit.pk}/credit").json()["creditBalance"] == "200.00"
    receipt = api.get(f"/api/credit-refunds/{body['refundId']}/receipt")
    assert receipt.status_code == 200
    assert body["refundNumber"] in text_of(receipt.content)
    assert api.get("/api/credit-refunds").json()["count"] == 1


def test_a_refund_above_the_balance_is_a_400(as_role, super_creator, in_credit):
    response = refund(as_role(super_creator, Role.SUPER_CREATOR), in_credit.pk, amount="500.01")

    assert response.status_code == 400
    assert response.json()["code"] == "credit_refused"


@pytest.mark.parametrize("role", [Role.INVOICE_CREATOR, Role.AUDITOR, Role.CUSTOMER])
def test_only_officers_refund(as_role, flat_provider, in_credit, role):
    user = in_credit.user if role == Role.CUSTOMER else UserFactory(provider=flat_provider, roles=[role])

    assert refund(as_role(user, role), in_credit.pk).status_code == 403


def test_another_providers_customer_cannot_be_refunded(as_role, other_provider, in_credit):
    officer = UserFactory(provider=other_provider, roles=[Role.SUPER_CREATOR], designation="Officer")

    assert refund(as_role(officer, Role.SUPER_CREATOR), in_credit.pk).status_code == 404


def test_overpayment_is_a_provider_setting_shown_in_its_api(as_role, flat_provider):
    admin = UserFactory(provider=flat_provider, roles=[Role.ADMIN])
    provider_update(provider=flat_provider, allow_overpayment=True)

    body = as_role(admin, Role.ADMIN).get(f"/api/admin/providers/{flat_provider.pk}").json()

    assert body["allowOverpayment"] is True

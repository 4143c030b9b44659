"""Refusals and the bill's explanation in Urdu for whoever reads Urdu; the English text unchanged."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from accounts.models import Language
from accounts.roles import Role
from accounts.sessions import SESSION_ROLE_KEY
from invoicing import services

pytestmark = pytest.mark.django_db

URDU = {"HTTP_ACCEPT_LANGUAGE": "ur"}


@pytest.fixture(autouse=True)
def early_february(time_machine):
    """January 2024's bills are issued and paid on 5 February 2024, once January is over."""
    time_machine.move_to(datetime(2024, 2, 5, 9, tzinfo=ZoneInfo(django_settings.TIME_ZONE)), tick=True)


@pytest.fixture
def invoice(connection, creator):
    """January's bill: 9750.00 payable."""
    return services.invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)


def pay(api, invoice, amount: str, **headers):
    body = {"billId": invoice.pk, "amount": amount, "method": "bank-counter"}
    return api.post("/api/payments", body, format="json", **headers)


def test_an_overpayment_is_refused_in_the_language_asked_for(as_role, super_creator, invoice, cash):
    api = as_role(super_creator, Role.SUPER_CREATOR)

    urdu = pay(api, invoice, "9750.01", **URDU)
    english = pay(api, invoice, "9750.01")

    assert urdu.status_code == english.status_code == 400
    assert urdu.json()["code"] == english.json()["code"] == "overpayment"
    assert urdu.json()["detail"] == (
        f"9750.01 انوائس {invoice.number} پر واجب الادا 9750.00 سے زیادہ ہے؛ زیادہ سے زیادہ 9750.00 لیں۔"  # noqa: RUF001
    )
    assert english.json()["detail"] == (
        f"9750.01 is more than the 9750.00 payable on invoice {invoice.number}; take at most 9750.00."
    )


def test_a_paid_bill_refuses_payments_in_urdu_and_in_english(as_role, super_creator, invoice, cash):
    api = as_role(super_creator, Role.SUPER_CREATOR)
    assert pay(api, invoice, "9750.00").status_code == 201

    urdu = pay(api, invoice, "1.00", **URDU)
    english = pay(api, invoice, "1.00")

    assert urdu.status_code == english.status_code == 409
    assert urdu.json()["detail"] == f"انوائس {invoice.number} پوری ادا ہو چکی ہے؛ اس پر کچھ واجب الادا نہیں۔"  # noqa: RUF001
    assert english.json()["detail"] == f"Invoice {invoice.number} is fully paid; nothing is owed on it."


def test_an_urdu_customers_bill_explains_itself_in_urdu(connection, invoice):
    customer = connection.customer
    customer.preferred_language = Language.URDU
    customer.save(update_fields=["preferred_language"])
    browser = Client()
    browser.force_login(customer.user)
    session = browser.session
    session[SESSION_ROLE_KEY] = Role.CUSTOMER
    session.save()

    html = browser.get(reverse("portal-bill", args=[invoice.pk])).content.decode()

    explanation = html[html.index('id="bill-why"') :]
    assert 'id="bill-why">یہ بل کیسے بنا<' in explanation
    assert "بلنگ کے دن:" in explanation
    assert "ہر رقم جہاں حساب ہوتی ہے وہیں پیسے تک گول کی جاتی ہے (آدھا اوپر)۔" in explanation  # noqa: RUF001
    assert "موجودہ چارجز = توانائی + ٹیکس + مقررہ چارجز − سبسڈی" in explanation  # noqa: RUF001
    assert "Billing days" not in explanation and "Every amount is rounded" not in explanation

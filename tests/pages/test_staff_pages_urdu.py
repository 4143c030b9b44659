"""The staff's pages and the API's refusals in Urdu, when the browser asks for it, and in English otherwise."""

from datetime import date

import pytest
from django.test import Client

from accounts.roles import Role
from invoicing import services
from tests.factories import ConnectionFactory, CustomerFactory, UserFactory

JAN, FEB = date(2024, 1, 1), date(2024, 2, 1)
URDU = {"HTTP_ACCEPT_LANGUAGE": "ur"}


@pytest.fixture
def bills(connection, super_creator):
    return [
        services.invoice_issue(connection=connection, period=month, created_by=super_creator)
        for month in (JAN, FEB)
    ]


def page(client: Client, url: str, **headers) -> str:
    response = client.get(url, **headers)
    assert response.status_code == 200
    return response.content.decode()


def test_all_invoices_in_urdu_keep_the_numbers_and_say_the_rest_in_urdu(signed_in, super_creator, bills):
    client = signed_in(super_creator, Role.SUPER_CREATOR)

    urdu = page(client, "/invoices", **URDU)
    english = page(client, "/invoices")

    assert bills[0].number in urdu and bills[1].number in urdu
    # The filter form and the count, ending in Urdu's full stop.
    assert "انوائسیں فلٹر کریں" in urdu and "2 انوائسیں۔" in urdu  # noqa: RUF001
    assert "زیرِ ادائیگی" in urdu and "ڈیش بورڈ" in urdu  # a bill's status and the navigation
    assert "Filter the invoices" not in urdu
    assert "Filter the invoices" in english and "2 invoices." in english and "Dashboard" in english


def test_a_billing_run_page_in_urdu_shows_progress_and_the_skipped_connection(
    signed_in, super_creator, connection, django_capture_on_commit_callbacks
):
    silent = ConnectionFactory(
        customer=CustomerFactory(provider=connection.provider), provider=connection.provider
    )
    client = signed_in(super_creator, Role.SUPER_CREATOR)
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post("/billing-runs", {"month": "2024-01"}, **URDU)

    urdu = page(client, started.url, **URDU)
    english = page(client, started.url)

    assert 'data-testid="run-issued">1<' in urdu and 'data-testid="run-skipped">1<' in urdu
    assert "پیش رفت:" in urdu and "کنکشن جن کا بل نہیں بنا" in urdu and silent.number in urdu
    assert 'data-testid="run-status">مکمل: 1 کا بل بنا، 1 کنکشن چھوڑا گیا<' in urdu
    assert 'data-testid="run-status">Completed: 1 billed, 1 connection skipped<' in english
    assert "Connections not billed" in english


def test_the_audit_log_in_urdu(signed_in, flat_provider, bills):
    auditor = UserFactory(provider=flat_provider, roles=[Role.AUDITOR])
    client = signed_in(auditor, Role.AUDITOR)

    urdu = page(client, "/audit/log", **URDU)
    english = page(client, "/audit/log")

    assert "<h1>آڈٹ لاگ</h1>" in urdu and "آڈٹ ریکارڈز، تازہ ترین پہلے" in urdu
    assert "<h1>Audit log</h1>" in english and "Audit records, newest first" in english


def test_the_apis_refusals_follow_the_language_asked_for(client):
    urdu = client.get("/api/no-such-thing", **URDU)
    english = client.get("/api/no-such-thing")

    assert urdu.status_code == english.status_code == 404
    assert urdu.json() == {"detail": "API میں ایسا کوئی پتہ نہیں ہے۔", "code": "not_found"}  # noqa: RUF001
    assert english.json() == {"detail": "No such address in the API.", "code": "not_found"}


def test_the_payment_form_labels_its_fields_in_urdu(signed_in, super_creator, cash):
    client = signed_in(super_creator, Role.SUPER_CREATOR)

    urdu = page(client, "/payments/new", **URDU)
    english = page(client, "/payments/new")

    assert "<h1>ادائیگی وصول کریں</h1>" in urdu and "ادائیگی کا طریقہ" in urdu and "ادائیگی درج کریں" in urdu
    assert 'data-testid="amount-payable"' in urdu and 'name="billId"' in urdu
    assert "<h1>Take a payment</h1>" in english and "Payment method" in english

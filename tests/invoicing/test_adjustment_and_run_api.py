"""POST /api/adjustments (officers) and the billing-run endpoints."""

from datetime import date

import pytest
from django.utils import timezone

from accounts.roles import Role
from invoicing import services
from invoicing.models import Adjustment, Invoice
from tests.factories import UserFactory, billable_connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoice(connection, creator):
    return services.invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)


def adjust(api, invoice, amount: str, direction: str = "credit", reason: str = "Meter misread in January"):
    return api.post(
        "/api/adjustments",
        {"billId": invoice.pk, "amount": amount, "direction": direction, "reason": reason},
        format="json",
    )


def test_an_officer_credits_a_bill_and_gets_a_receipt(as_role, super_creator, invoice):
    response = adjust(as_role(super_creator, Role.SUPER_CREATOR), invoice, "750.00")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["officerName"] == super_creator.name
    assert body["officerDesignation"] == "Senior Billing Officer"
    assert (body["originalAmount"], body["amount"], body["newBalance"]) == ("9750.00", "750.00", "9000.00")


def test_the_officer_cannot_be_named_in_the_request(as_role, super_creator, invoice):
    response = as_role(super_creator, Role.SUPER_CREATOR).post(
        "/api/adjustments",
        {
            "billId": invoice.pk,
            "amount": "1.00",
            "direction": "debit",
            "reason": "test",
            "officerName": "Someone Else",
            "officerDesignation": "Director",
        },
        format="json",
    )

    assert response.json()["officerName"] == super_creator.name


def test_a_credit_below_zero_is_refused(as_role, super_creator, invoice):
    response = adjust(as_role(super_creator, Role.SUPER_CREATOR), invoice, "9750.01")

    assert response.status_code == 400
    assert response.json()["extra"]["balance"] == "9750.00"
    assert Adjustment.objects.count() == 0


def test_an_officer_without_a_designation_is_refused(as_role, flat_provider, invoice):
    officer = UserFactory(provider=flat_provider, roles=[Role.SUPER_CREATOR], designation="")

    response = adjust(as_role(officer, Role.SUPER_CREATOR), invoice, "1.00")

    assert response.status_code == 400
    assert "designation" in response.json()["detail"]


@pytest.mark.parametrize("role", [Role.INVOICE_CREATOR, Role.AUDITOR, Role.CUSTOMER])
def test_only_officers_adjust(as_role, flat_provider, invoice, role):
    user = UserFactory(provider=flat_provider, roles=[role], designation="Clerk")

    assert adjust(as_role(user, role), invoice, "1.00").status_code == 403


def test_an_adjustment_receipt_pdf_is_served(as_role, super_creator, invoice):
    api = as_role(super_creator, Role.SUPER_CREATOR)
    adjustment_id = adjust(api, invoice, "5.00").json()["adjustmentId"]

    document = api.get(f"/api/adjustments/{adjustment_id}/receipt")

    assert document["Content-Type"] == "application/pdf"


def test_a_super_creator_runs_the_months_billing_and_reads_its_progress(
    as_role, super_creator, flat_provider, django_capture_on_commit_callbacks
):
    billed = billable_connection(flat_provider)
    silent = billable_connection(flat_provider, months=0)
    api = as_role(super_creator, Role.SUPER_CREATOR)

    with django_capture_on_commit_callbacks(execute=True):  # the chunks are sent once the run is planned
        started = api.post("/api/billing-runs", {"month": "2024-01"}, format="json")

    assert started.status_code == 202, started.json()
    run = api.get(f"/api/billing-runs/{started.json()['runId']}").json()
    assert (run["status"], run["total"], run["issued"], run["skipped"], run["percent"]) == (
        "completed",
        2,
        1,
        1,
        100,
    )
    assert run["problems"][0]["connectionId"] == silent.number
    assert Invoice.objects.get().connection == billed


def test_a_billing_run_month_must_be_a_month(as_role, super_creator):
    response = as_role(super_creator, Role.SUPER_CREATOR).post(
        "/api/billing-runs", {"month": "2024"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["fields"]["month"]


def test_auditors_read_runs_but_cannot_start_one(as_role, super_creator, flat_provider, other_provider):
    auditor = UserFactory(provider=flat_provider, roles=[Role.AUDITOR])
    outsider = UserFactory(provider=other_provider, roles=[Role.SUPER_CREATOR])
    run_id = (
        as_role(super_creator, Role.SUPER_CREATOR)
        .post("/api/billing-runs", {"month": "2024-01"}, format="json")
        .json()["runId"]
    )

    assert as_role(auditor, Role.AUDITOR).get("/api/billing-runs").json()["count"] == 1
    assert as_role(auditor, Role.AUDITOR).post("/api/billing-runs", {"month": "2024-02"}).status_code == 403
    assert as_role(outsider, Role.SUPER_CREATOR).get(f"/api/billing-runs/{run_id}").status_code == 404


def test_adjustments_of_another_provider_or_customer_are_not_found(
    as_role, super_creator, flat_provider, other_provider, invoice
):
    adjustment_id = adjust(as_role(super_creator, Role.SUPER_CREATOR), invoice, "5.00").json()["adjustmentId"]
    neighbour = billable_connection(flat_provider).customer.user

    assert (
        as_role(invoice.customer.user, Role.CUSTOMER).get(f"/api/adjustments/{adjustment_id}").status_code
        == 200
    )
    assert as_role(neighbour, Role.CUSTOMER).get(f"/api/adjustments/{adjustment_id}").status_code == 404
    stranger = UserFactory(provider=other_provider, roles=[Role.AUDITOR])
    assert as_role(stranger, Role.AUDITOR).get(f"/api/adjustments/{adjustment_id}/receipt").status_code == 404


def test_a_retried_adjustment_with_the_same_key_is_made_once(as_role, super_creator, invoice):
    api = as_role(super_creator, Role.SUPER_CREATOR)
    body = {"billId": invoice.pk, "amount": "100.00", "direction": "credit", "reason": "Estimated reading"}

    first = api.post("/api/adjustments", body, format="json", HTTP_IDEMPOTENCY_KEY="adj-2024-0001")
    retry = api.post("/api/adjustments", body, format="json", HTTP_IDEMPOTENCY_KEY="adj-2024-0001")
    changed = api.post(
        "/api/adjustments", {**body, "amount": "200.00"}, format="json", HTTP_IDEMPOTENCY_KEY="adj-2024-0001"
    )

    assert (first.status_code, retry.status_code, changed.status_code) == (201, 200, 409)
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json()["adjustmentId"] == first.json()["adjustmentId"]
    assert Adjustment.objects.count() == 1


def test_the_running_month_is_not_billed_by_a_run(as_role, super_creator):
    month = timezone.localdate().strftime("%Y-%m")

    response = as_role(super_creator, Role.SUPER_CREATOR).post(
        "/api/billing-runs", {"month": month}, format="json"
    )

    assert response.status_code == 400
    assert "has not ended" in response.json()["detail"]

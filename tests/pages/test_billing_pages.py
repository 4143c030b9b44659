"""The staff's billing pages: what they show, what they refuse and why, and what stays typed."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from accounts.roles import Role
from invoicing import services
from invoicing.models import Adjustment, Invoice, InvoiceStatus, Payment
from tests.factories import ConnectionFactory, CustomerFactory, UserFactory, billable_connection
from tests.invoicing.ledger import assert_ledger_holds

JAN, FEB, MAR = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)


def issue(connection, period, user):
    return services.invoice_issue(connection=connection, period=period, created_by=user)


@pytest.fixture
def three_bills(connection, creator):
    return [issue(connection, month, creator) for month in (JAN, FEB, MAR)]


def html(response) -> str:
    return response.content.decode()


# --- dashboard -----------------------------------------------------------------------------------


def test_dashboard_shows_the_latest_month_billed_collected_and_rate(
    signed_in, super_creator, three_bills, cash
):
    services.payment_post(
        invoice=three_bills[2], amount=Decimal("9750.00") * 3, method=cash, received_by=super_creator,
        idempotency_key="",
    )  # fmt: skip

    page = html(signed_in(super_creator, Role.SUPER_CREATOR).get("/dashboard"))

    assert "Dashboard: March 2024" in page
    assert 'data-testid="kpi-billed">Rs9,750.00<' in page
    assert 'data-testid="kpi-collected">Rs9,750.00<' in page
    assert 'data-testid="kpi-rate">100.0%<' in page
    assert 'id="billed-chart"' in page and "chart.umd.min.js" in page


def test_dashboard_of_an_invoice_creator_counts_only_their_invoices(
    signed_in, flat_provider, creator, connection
):
    issue(connection, JAN, creator)
    other_creator = UserFactory(provider=flat_provider, roles=[Role.INVOICE_CREATOR])
    issue(billable_connection(flat_provider), JAN, other_creator)

    page = html(signed_in(creator, Role.INVOICE_CREATOR).get("/dashboard"))

    assert 'data-testid="kpi-billed">Rs9,750.00<' in page


# --- bill retrieval ------------------------------------------------------------------------------


def test_bill_search_opens_the_bill_with_lines_trace_payable_and_history(
    signed_in, super_creator, three_bills
):
    march = three_bills[2]
    client = signed_in(super_creator, Role.SUPER_CREATOR)

    found = client.get(
        "/bills/find",
        {
            "customerId": march.customer.number,
            "connectionId": march.connection.number,
            "month": 3,
            "year": 2024,
        },
    )
    page = html(client.get(found.url))

    assert found.url == f"/bills/{march.pk}"
    assert march.number in page
    assert "Energy (all hours" in page  # every line of the bill
    assert "How this bill was worked out" in page
    assert 'data-testid="arrears">Rs19,500.00<' in page  # January and February unpaid
    assert 'data-testid="payable-before">Rs29,250.00<' in page
    assert three_bills[0].number in page and three_bills[1].number in page  # previous bills


def test_bill_search_for_a_month_without_a_bill_says_so_and_keeps_the_inputs(
    signed_in, super_creator, three_bills
):
    bill = three_bills[0]

    response = signed_in(super_creator, Role.SUPER_CREATOR).get(
        "/bills/find",
        {
            "customerId": bill.customer.number,
            "connectionId": bill.connection.number,
            "month": 7,
            "year": 2024,
        },
    )

    assert response.status_code == 400
    assert "No bill of that customer&#x27;s connection for that month" in html(response)
    assert f'value="{bill.connection.number}"' in html(response)


def test_a_bill_of_another_provider_is_not_found(signed_in, other_provider, three_bills):
    outsider = UserFactory(provider=other_provider, roles=[Role.SUPER_CREATOR])

    assert signed_in(outsider, Role.SUPER_CREATOR).get(f"/bills/{three_bills[0].pk}").status_code == 404


# --- payments ------------------------------------------------------------------------------------


def test_payment_page_fills_in_the_amount_payable_of_the_bill(signed_in, super_creator, three_bills, cash):
    page = html(signed_in(super_creator, Role.SUPER_CREATOR).get(f"/payments/new?bill={three_bills[1].pk}"))

    assert 'name="amount" value="19500.00"' in page  # February and the unpaid January before it


def test_partial_payment_then_the_rest_with_receipts(signed_in, super_creator, three_bills, cash):
    client = signed_in(super_creator, Role.SUPER_CREATOR)
    january = three_bills[0]

    first = client.post(
        "/payments/new",
        {"billId": january.pk, "amount": "4000.00", "method": cash.code, "idempotencyKey": "k1"},
    )
    receipt = html(client.get(first.url))
    second = client.post(
        "/payments/new",
        {"billId": january.pk, "amount": "5750.00", "method": cash.code, "idempotencyKey": "k2"},
    )

    assert "Rs4,000.00 recorded" in receipt and 'data-testid="payable-after-payment">Rs5,750.00<' in receipt
    assert second.status_code == 302
    january.refresh_from_db()
    assert january.status == InvoiceStatus.PAID
    assert_ledger_holds(january.connection)


def test_a_payment_above_the_payable_amount_is_refused_next_to_the_amount(
    signed_in, super_creator, three_bills, cash
):
    response = signed_in(super_creator, Role.SUPER_CREATOR).post(
        "/payments/new",
        {"billId": three_bills[0].pk, "amount": "99999.00", "method": cash.code, "reference": "TX-77",
         "idempotencyKey": "k1"},
    )  # fmt: skip

    page = html(response)
    assert response.status_code == 400
    assert 'id="id_amount_error"' in page and "9750.00" in page.split('id="id_amount_error"')[1][:300]
    assert 'value="TX-77"' in page  # nothing typed is lost
    assert not Payment.objects.exists()


def test_the_same_payment_form_sent_twice_records_one_payment(signed_in, super_creator, three_bills, cash):
    client = signed_in(super_creator, Role.SUPER_CREATOR)
    form = {"billId": three_bills[0].pk, "amount": "100.00", "method": cash.code, "idempotencyKey": "once"}

    first, again = client.post("/payments/new", form), client.post("/payments/new", form)

    assert first.url == again.url
    assert Payment.objects.count() == 1


def test_an_invoice_creator_cannot_take_payment_on_another_creators_bill(
    signed_in, flat_provider, three_bills, cash
):
    other = UserFactory(provider=flat_provider, roles=[Role.INVOICE_CREATOR])

    response = signed_in(other, Role.INVOICE_CREATOR).post(
        "/payments/new",
        {"billId": three_bills[0].pk, "amount": "10.00", "method": cash.code, "idempotencyKey": "k"},
    )

    assert response.status_code == 400 and not Payment.objects.exists()


# --- adjustments ---------------------------------------------------------------------------------


def test_adjustment_page_shows_the_officers_own_name_and_designation(signed_in, super_creator):
    page = html(signed_in(super_creator, Role.SUPER_CREATOR).get("/adjustments/new"))

    assert f'data-testid="officer-name">{super_creator.name}<' in page
    assert 'data-testid="officer-designation">Senior Billing Officer<' in page
    assert 'name="officer' not in page  # shown, never typed


def test_a_credit_adjustment_shows_the_receipt_with_balance_before_and_after(
    signed_in, super_creator, three_bills
):
    client = signed_in(super_creator, Role.SUPER_CREATOR)

    response = client.post(
        "/adjustments/new",
        {"billId": three_bills[0].pk, "direction": "credit", "amount": "750.00", "reason": "Meter misread",
         "idempotencyKey": "a1"},
    )  # fmt: skip
    receipt = html(client.get(response.url))

    assert 'data-testid="balance-before">Rs9,750.00<' in receipt
    assert 'data-testid="balance-after">Rs9,000.00<' in receipt
    assert "Senior Billing Officer" in receipt
    assert Adjustment.objects.get().officer == super_creator


def test_an_officer_without_a_designation_is_told_why_and_keeps_the_reason(
    signed_in, flat_provider, three_bills
):
    officer = UserFactory(provider=flat_provider, roles=[Role.SUPER_CREATOR], designation="")

    response = signed_in(officer, Role.SUPER_CREATOR).post(
        "/adjustments/new",
        {"billId": three_bills[0].pk, "direction": "credit", "amount": "10.00", "reason": "Goodwill",
         "idempotencyKey": "a1"},
    )  # fmt: skip

    assert response.status_code == 400
    assert "designation" in html(response) and "Goodwill</textarea>" in html(response)
    assert not Adjustment.objects.exists()


def test_an_invoice_creator_may_not_open_the_adjustment_page(signed_in, creator):
    assert signed_in(creator, Role.INVOICE_CREATOR).get("/adjustments/new").status_code == 403


# --- invoices ------------------------------------------------------------------------------------


def test_creator_issues_an_invoice_for_kwh_entered(signed_in, creator, connection):
    response = signed_in(creator, Role.INVOICE_CREATOR).post(
        "/invoices/new", {"connectionNumber": connection.number, "month": "2024-01", "kwhConsumed": "100"}
    )

    invoice = Invoice.objects.get()
    assert response.url == f"/bills/{invoice.pk}"
    assert invoice.current_charges == Decimal("3250.00") and invoice.created_by == creator


def test_issuing_for_an_unknown_connection_is_refused_next_to_it(signed_in, creator, flat_provider):
    response = signed_in(creator, Role.INVOICE_CREATOR).post(
        "/invoices/new", {"connectionNumber": "NOPE-1", "month": "2024-01", "kwhConsumed": "120.5"}
    )

    page = html(response)
    assert response.status_code == 400
    assert 'id="id_connectionNumber_error"' in page and 'value="120.5"' in page


def test_a_month_written_wrongly_is_explained(signed_in, creator, connection):
    response = signed_in(creator, Role.INVOICE_CREATOR).post(
        "/invoices/new", {"connectionNumber": connection.number, "month": "January"}
    )

    assert "Write the month as YYYY-MM" in html(response)


def test_creator_moves_the_due_date_of_their_invoice(signed_in, creator, three_bills):
    bill = three_bills[0]

    signed_in(creator, Role.INVOICE_CREATOR).post(
        f"/invoices/{bill.pk}/edit", {"dueDate": (bill.due_date.replace(day=1)).isoformat()}
    )

    bill.refresh_from_db()
    assert bill.due_date.day == 1


def test_another_creators_invoice_cannot_be_edited(signed_in, flat_provider, three_bills):
    other = UserFactory(provider=flat_provider, roles=[Role.INVOICE_CREATOR])

    assert (
        signed_in(other, Role.INVOICE_CREATOR).get(f"/invoices/{three_bills[0].pk}/edit").status_code == 404
    )


def test_my_invoices_lists_only_the_creators_own(signed_in, flat_provider, creator, three_bills):
    other = UserFactory(provider=flat_provider, roles=[Role.INVOICE_CREATOR])
    theirs = issue(billable_connection(flat_provider), JAN, other)

    page = html(signed_in(creator, Role.INVOICE_CREATOR).get("/invoices/mine"))

    assert three_bills[0].number in page and theirs.number not in page


def test_all_invoices_filters_by_status_and_is_for_provider_wide_roles(
    signed_in, super_creator, creator, three_bills
):
    services.invoice_update(invoice=three_bills[2], updated_by=super_creator, cancel=True)

    page = html(signed_in(super_creator, Role.SUPER_CREATOR).get("/invoices", {"status": "Cancelled"}))

    assert three_bills[2].number in page and three_bills[0].number not in page
    assert signed_in(creator, Role.INVOICE_CREATOR).get("/invoices").status_code == 403


# --- billing runs --------------------------------------------------------------------------------


def test_billing_run_page_bills_the_month_and_lists_skipped_connections(
    signed_in, super_creator, connection, django_capture_on_commit_callbacks
):
    silent = ConnectionFactory(
        customer=CustomerFactory(provider=connection.provider), provider=connection.provider
    )
    client = signed_in(super_creator, Role.SUPER_CREATOR)

    with django_capture_on_commit_callbacks(execute=True):  # the chunks go to the (eager) workers
        started = client.post("/billing-runs", {"month": "2024-01"})
    page = html(client.get(started.url))

    assert 'data-testid="run-issued">1<' in page and 'data-testid="run-skipped">1<' in page
    assert silent.number in page and "<progress" in page
    assert Invoice.objects.filter(connection=connection, period=JAN).exists()


def test_a_run_that_billed_nothing_says_so_and_groups_its_skipped_connections(
    signed_in, super_creator, flat_provider, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to(datetime(2024, 2, 15, 10, tzinfo=ZoneInfo(settings.TIME_ZONE)))
    silent = [
        ConnectionFactory(customer=CustomerFactory(provider=flat_provider), provider=flat_provider)
        for _ in range(5)
    ]
    client = signed_in(super_creator, Role.SUPER_CREATOR)

    with django_capture_on_commit_callbacks(execute=True):
        started = client.post("/billing-runs", {"month": "2024-01"})
    page = html(client.get(started.url))
    listed = html(client.get("/billing-runs"))

    status = "Completed: nothing billed, 5 connections skipped"
    assert f'data-testid="run-status">{status}<' in page and f"<td>{status}</td>" in listed
    # One row for the one reason, naming "the connection", with the five connections listed under it.
    assert page.count('data-testid="problem-group"') == 1
    assert "The connection has no reading in January 2024" in page
    assert all(connection.number in page for connection in silent)
    assert "Show the 5 connections" in page


def test_a_billing_run_for_a_month_not_over_is_refused_next_to_the_month(
    signed_in, super_creator, flat_provider
):
    response = signed_in(super_creator, Role.SUPER_CREATOR).post("/billing-runs", {"month": "2099-01"})

    assert response.status_code == 400
    assert 'id="id_month_error"' in html(response) and "has not ended" in html(response)


def test_an_auditor_sees_billing_runs_but_no_start_form(signed_in, flat_provider):
    auditor = UserFactory(provider=flat_provider, roles=[Role.AUDITOR])
    client = signed_in(auditor, Role.AUDITOR)

    assert 'name="month"' not in html(client.get("/billing-runs"))
    client.post("/billing-runs", {"month": "2024-01"})
    assert not Invoice.objects.exists()


def test_a_month_billed_again_after_a_cancellation_opens_the_bill_in_force(
    signed_in, super_creator, connection
):
    cancelled = issue(connection, JAN, super_creator)
    services.invoice_update(invoice=cancelled, updated_by=super_creator, cancel=True)
    reissued = issue(connection, JAN, super_creator)
    client = signed_in(super_creator, Role.SUPER_CREATOR)

    found = client.get(
        "/bills/find",
        {
            "customerId": connection.customer.number,
            "connectionId": connection.number,
            "month": 1,
            "year": 2024,
        },
    )

    assert found.url == f"/bills/{reissued.pk}"
    assert client.get(f"/bills/{cancelled.pk}").status_code == 200


def test_a_bill_id_too_large_to_exist_is_an_input_error_not_a_crash(signed_in, super_creator, cash):
    client = signed_in(super_creator, Role.SUPER_CREATOR)
    huge = "9" * 30

    opened = client.get(f"/payments/new?bill={huge}")
    sent = client.post(
        "/payments/new", {"billId": huge, "amount": "1.00", "method": cash.code, "idempotencyKey": "k"}
    )

    assert opened.status_code == 200
    assert sent.status_code == 400 and 'id="id_billId_error"' in html(sent)

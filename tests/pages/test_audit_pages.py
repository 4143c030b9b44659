"""The auditors' pages: the audit log, an invoice's history, the pricing history and questions."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils.html import escape

from accounts.roles import Role
from auditing.models import AIQuery
from auditing.services import ai_query_submit
from config import context
from invoicing import services
from invoicing.models import Invoice
from providers.services import provider_price_set
from tests.factories import FlatTariffFactory, UserFactory, billable_connection


@pytest.fixture
def auditor(flat_provider):
    return UserFactory(provider=flat_provider, roles=[Role.AUDITOR], name="Ayesha Auditor")


@pytest.fixture
def ours(flat_provider, creator):
    """Two invoices of the auditor's provider, for January 2024."""
    return [
        services.invoice_issue(
            connection=billable_connection(flat_provider), period=date(2024, 1, 1), created_by=creator
        )
        for _ in range(2)
    ]


@pytest.fixture
def theirs(other_provider):
    """An invoice of another provider: never shown to the auditor."""
    FlatTariffFactory(provider=other_provider)
    clerk = UserFactory(provider=other_provider, roles=[Role.INVOICE_CREATOR])
    return services.invoice_issue(
        connection=billable_connection(other_provider), period=date(2024, 1, 1), created_by=clerk
    )


def history_link(invoice: Invoice) -> str:
    return f'href="/audit/invoices/{invoice.pk}/history"'


def test_the_audit_log_lists_the_providers_records_and_not_another_providers(
    signed_in, auditor, ours, theirs
):
    html = signed_in(auditor, Role.AUDITOR).get("/audit/log").content.decode()

    assert history_link(ours[0]) in html and history_link(ours[1]) in html
    assert theirs.number not in html


def test_searching_the_log_by_invoice_number_narrows_it_to_that_invoices_records(signed_in, auditor, ours):
    response = signed_in(auditor, Role.AUDITOR).get("/audit/log", {"invoice_number": ours[0].number})

    html = response.content.decode()
    assert response.status_code == 200
    assert history_link(ours[0]) in html
    assert history_link(ours[1]) not in html


def test_the_invoice_search_opens_the_history_of_the_one_match(signed_in, auditor, ours):
    response = signed_in(auditor, Role.AUDITOR).get("/audit/invoices", {"number": ours[1].number})

    assert response.status_code == 302 and response.url == f"/audit/invoices/{ours[1].pk}/history"


def test_the_invoice_search_says_so_next_to_the_field_when_nothing_matches(signed_in, auditor, ours, theirs):
    response = signed_in(auditor, Role.AUDITOR).get("/audit/invoices", {"number": theirs.number})

    html = response.content.decode()
    assert response.status_code == 400
    assert (
        'id="search_number_error"' in html and "No invoice of your provider has a number containing" in html
    )
    assert f'value="{theirs.number}"' in html


def test_an_invoices_history_shows_a_due_date_change_with_old_and_new_values(
    signed_in, auditor, creator, ours
):
    invoice = ours[0]
    old_due, new_due = invoice.due_date, invoice.due_date + timedelta(days=5)
    context.bind(actor_id=creator.pk, role=Role.INVOICE_CREATOR)  # as the clerk's request would

    services.invoice_update(invoice=invoice, updated_by=creator, due_date=new_due)
    html = signed_in(auditor, Role.AUDITOR).get(f"/audit/invoices/{invoice.pk}/history").content.decode()

    assert f"Due date: {old_due.isoformat()} → {new_due.isoformat()}" in html
    assert f'{creator.name}<br><span class="muted">{Role.INVOICE_CREATOR.label}</span>' in html
    assert html.index("Created") < html.index("Changed")  # oldest first


def test_an_invoices_history_includes_its_payments(signed_in, auditor, creator, ours, cash):
    services.payment_post(invoice=ours[0], amount=Decimal("1000.00"), method=cash, received_by=creator)

    html = signed_in(auditor, Role.AUDITOR).get(f"/audit/invoices/{ours[0].pk}/history").content.decode()

    assert "Payment:" in html and "Amount paid: 0.00 → 1000.00" in html


def test_another_providers_invoice_history_is_not_found(signed_in, auditor, theirs):
    response = signed_in(auditor, Role.AUDITOR).get(f"/audit/invoices/{theirs.pk}/history")

    assert response.status_code == 404


@pytest.mark.parametrize("url", ["/audit/log", "/audit/questions", "/audit/pricing"])
def test_a_role_without_audit_permissions_is_refused(signed_in, creator, url):
    assert signed_in(creator, Role.INVOICE_CREATOR).get(url).status_code == 403


@pytest.mark.django_db(transaction=True)  # the executor reads committed rows, as a worker does
def test_a_question_leads_to_its_sql_and_a_table_of_the_providers_rows(signed_in, auditor, ours, theirs):
    client = signed_in(auditor, Role.AUDITOR)
    customer = ours[0].customer.number

    response = client.post("/audit/questions", {"question": f"Invoices of customer {customer}"})
    query = AIQuery.objects.get()
    html = client.get(response.url).content.decode()

    assert response.status_code == 302 and response.url == f"/audit/questions/{query.pk}"
    assert 'data-testid="generated-sql"' in html and escape(query.generated_sql) in html
    assert 'data-testid="query-results"' in html and f"<td>{ours[0].number}</td>" in html
    assert ours[1].number not in html and theirs.number not in html


@pytest.mark.django_db(transaction=True)
def test_a_refused_query_says_it_was_refused_and_why(signed_in, auditor, ours):
    client = signed_in(auditor, Role.AUDITOR)

    response = client.post("/audit/questions", {"question": "SELECT * FROM invoices; DELETE FROM invoices"})
    html = client.get(response.url).content.decode()

    query = AIQuery.objects.get()
    assert query.reason
    assert "This query was refused" in html and escape(query.reason) in html
    assert 'data-testid="query-results"' not in html
    assert Invoice.objects.count() == 2


def test_an_empty_question_keeps_the_form_with_the_error_next_to_the_field(signed_in, auditor):
    response = signed_in(auditor, Role.AUDITOR).post("/audit/questions", {"question": "   "})

    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_question_error"' in html and "Ask a question, or write a SELECT query." in html
    assert not AIQuery.objects.exists()


def test_a_too_long_question_is_refused_and_kept_as_typed(signed_in, auditor):
    question = "Revenue by month " * 200

    response = signed_in(auditor, Role.AUDITOR).post("/audit/questions", {"question": question})

    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_question_error"' in html and question.strip() in html
    assert not AIQuery.objects.exists()


def test_a_waiting_question_polls_the_api_until_it_is_answered(signed_in, auditor):
    query = ai_query_submit(asked_by=auditor, question="Revenue by month")

    html = signed_in(auditor, Role.AUDITOR).get(f"/audit/questions/{query.pk}").content.decode()

    assert f'data-poll="/api/audit/query/{query.pk}"' in html
    assert 'data-poll-until="answered,refused,failed"' in html


def test_another_auditors_question_is_not_found(signed_in, auditor, flat_provider):
    query = ai_query_submit(asked_by=auditor, question="Revenue by month")
    colleague = UserFactory(provider=flat_provider, roles=[Role.AUDITOR])

    response = signed_in(colleague, Role.AUDITOR).get(f"/audit/questions/{query.pk}")

    assert response.status_code == 404


def test_the_question_page_lists_the_auditors_recent_questions(signed_in, auditor, flat_provider):
    mine = ai_query_submit(asked_by=auditor, question="Payments by method")
    colleague = UserFactory(provider=flat_provider, roles=[Role.AUDITOR])
    ai_query_submit(asked_by=colleague, question="Cancelled invoices")

    html = signed_in(auditor, Role.AUDITOR).get("/audit/questions").content.decode()

    assert f'href="/audit/questions/{mine.pk}"' in html and "Payments by method" in html
    assert "Cancelled invoices" not in html


def test_the_pricing_history_shows_a_price_change_with_the_old_and_new_rate(
    signed_in, auditor, flat_provider
):
    officer = UserFactory(provider=flat_provider, roles=[Role.ADMIN], name="Omar Officer")

    provider_price_set(provider=flat_provider, price=Decimal("41.25"), changed_by=officer)
    html = signed_in(auditor, Role.AUDITOR).get("/audit/pricing").content.decode()

    assert "32.50 →" in html and "<strong>41.25</strong>" in html
    assert "Omar Officer" in html


def test_the_pricing_history_is_filtered_by_days_typed_year_month_day(
    signed_in, auditor, flat_provider, time_machine
):
    time_machine.move_to(date(2024, 3, 4))  # a price change starts today or later
    officer = UserFactory(provider=flat_provider, roles=[Role.ADMIN])
    provider_price_set(provider=flat_provider, price=Decimal("41.25"), changed_by=officer)
    client = signed_in(auditor, Role.AUDITOR)

    shown = client.get("/audit/pricing", {"since": "2024-03-04"})
    form = client.get("/audit/pricing").content.decode()

    assert shown.status_code == 200
    assert shown.content.decode().count(
        'data-testid="price-row"'
    ) == 1 and "<strong>41.25</strong>" in html_of(shown)
    # A text box asking for year-month-day, not the browser's date box in the machine's own order.
    assert 'name="since"' in form and 'placeholder="yyyy-mm-dd"' in form and 'type="date"' not in form


@pytest.mark.parametrize("typed", ["03/04/2024", "4 March 2024", "2024-13-01"])
def test_a_day_not_typed_year_month_day_is_refused_with_how_to_type_it(signed_in, auditor, typed):
    response = signed_in(auditor, Role.AUDITOR).get("/audit/pricing", {"since": typed})

    assert response.status_code == 400
    assert "Enter the date as year-month-day, e.g. 2024-07-01." in html_of(response)
    assert f'value="{escape(typed)}"' in html_of(response)  # kept as typed, to correct


def html_of(response) -> str:
    return response.content.decode()

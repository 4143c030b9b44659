"""/metrics: off without a token, refused without the right one, and the figures a scrape reads after
requests, payments, a billing run, AI questions and e-mails (on the embedded default)."""

import os
import subprocess
import sys
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from prometheus_client.parser import text_string_to_metric_families

from accounts import services as accounts_services
from accounts.models import MessageKind
from accounts.roles import Role
from invoicing import services
from invoicing.models import PaymentMethod
from tests.factories import FlatTariffFactory, UserFactory, billable_connection

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def early_february(time_machine):
    """January 2024's bills are issued and paid on 5 February 2024, once January is over."""
    time_machine.move_to(datetime(2024, 2, 5, 9, tzinfo=ZoneInfo(django_settings.TIME_ZONE)), tick=True)


TOKEN = "scrape-token-for-tests"


@pytest.fixture
def flat_provider(provider):
    """300 kWh a month at a flat 32.50: a bill of 9750.00."""
    FlatTariffFactory(provider=provider, rate=Decimal("32.50"))
    return provider


@pytest.fixture
def officer(flat_provider):
    return UserFactory(provider=flat_provider, roles=[Role.SUPER_CREATOR])


@pytest.fixture
def scrape(client, settings):
    """The figures of one scrape, by sample name and labels: `figures["name", ("label", "value"), ...]`."""
    settings.METRICS_TOKEN = TOKEN

    def read() -> dict[tuple, float]:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain")
        return {
            (sample.name, *sorted(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.content.decode())
            for sample in family.samples
        }

    return read


def test_metrics_are_off_until_a_token_is_set(client, settings):
    settings.METRICS_TOKEN = ""

    response = client.get("/metrics")

    assert (response.status_code, response.json()["code"]) == (404, "metrics_off")


def test_metrics_refuse_a_scrape_without_the_token(client, settings):
    settings.METRICS_TOKEN = TOKEN

    missing = client.get("/metrics")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer guessed")

    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing["WWW-Authenticate"] == "Bearer"
    assert TOKEN not in missing.content.decode()


def test_a_request_is_counted_by_view_and_status_with_its_latency(client, scrape):
    latency = (
        "django_http_requests_latency_seconds_by_view_method_count",
        ("method", "GET"),
        ("view", "readyz"),
    )
    answered = (
        "django_http_responses_total_by_status_view_method_total",
        ("method", "GET"),
        ("status", "200"),
        ("view", "readyz"),
    )
    before = scrape()

    client.get("/readyz")
    after = scrape()

    assert after[latency] == before.get(latency, 0) + 1
    assert after[answered] == before.get(answered, 0) + 1


def test_payments_are_counted_with_their_amounts_by_method(as_role, flat_provider, officer, scrape):
    cash = PaymentMethod.objects.get_or_create(
        code="bank-counter", defaults={"name": "Paid at Bank Counter"}
    )[0]
    invoice = services.invoice_issue(
        connection=billable_connection(flat_provider), period=date(2024, 1, 1), created_by=officer
    )
    api = as_role(officer, Role.SUPER_CREATOR)
    for amount in ("4000.00", "5750.00"):
        paid = api.post(
            "/api/payments", {"billId": invoice.pk, "amount": amount, "method": cash.code}, format="json"
        )
        assert paid.status_code == 201, paid.json()

    figures = scrape()

    assert figures["billing_payments_total", ("method", "bank-counter")] == 2
    assert figures["billing_payments_amount_total", ("method", "bank-counter")] == 9750.0


def test_a_billing_runs_progress_then_its_completion(
    as_role, flat_provider, officer, scrape, django_capture_on_commit_callbacks
):
    billable_connection(flat_provider)
    billable_connection(flat_provider, months=0)  # no reading for January: skipped
    with django_capture_on_commit_callbacks(execute=False) as held:  # planned, its chunks not sent yet
        started = as_role(officer, Role.SUPER_CREATOR).post(
            "/api/billing-runs", {"month": "2024-01"}, format="json"
        )
    planned = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        for send in held:
            send()
    finished = scrape()

    assert started.status_code == 202, started.json()
    assert planned["billing_runs", ("status", "running")] == 1
    assert planned["billing_runs_running_connections", ("outcome", "total")] == 2
    assert planned["billing_runs_running_connections", ("outcome", "done")] == 0
    assert (
        finished["billing_runs", ("status", "running")],
        finished["billing_runs", ("status", "completed")],
    ) == (0, 1)
    assert finished["billing_runs_running_connections", ("outcome", "total")] == 0
    assert finished["billing_run_connection_failures_total",] == 0


@pytest.mark.django_db(transaction=True)  # the AI executor reads committed rows, as a worker does
def test_ai_questions_are_counted_answered_and_refused(as_role, flat_provider, scrape):
    api = as_role(UserFactory(provider=flat_provider, roles=[Role.AUDITOR]), Role.AUDITOR)
    api.post("/api/audit/query", {"question": "Revenue by month", "wait": 10}, format="json")
    api.post(
        "/api/audit/query",
        {"question": "SELECT * FROM invoices; DELETE FROM invoices", "wait": 10},
        format="json",
    )

    figures = scrape()

    assert figures["billing_ai_questions", ("status", "answered")] == 1
    assert figures["billing_ai_questions", ("status", "refused")] == 1


def test_emails_are_counted_sent_and_failed(provider, mailbox, scrape, django_capture_on_commit_callbacks):
    def send(to: str) -> None:
        user = UserFactory(provider=provider, email=to)
        with django_capture_on_commit_callbacks(execute=True):
            accounts_services.message_queue(
                kind=MessageKind.PASSWORD_RESET,
                recipient=to,
                about=user,
                language="en",
                user=user,
                provider=provider,
            )

    send("sana@example.com")
    mailbox.refuse_next("RCPT", "550 5.1.1 Mailbox does not exist")
    send("nobody@example.com")

    figures = scrape()

    assert figures["billing_messages", ("status", "sent")] == 1
    assert figures["billing_messages", ("status", "failed")] == 1


def test_under_gunicorn_a_scrape_adds_up_what_every_process_counted(scrape, tmp_path, monkeypatch):
    """PROMETHEUS_MULTIPROC_DIR set: another process (a gunicorn worker) answers requests, and this
    one's scrape reads its counts from the shared folder."""
    other_process = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "for _ in range(3): Client(HTTP_HOST='localhost').get('/healthz')\n"
    )
    environment = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
    }
    subprocess.run(
        [sys.executable, "-c", other_process], env=environment, check=True, cwd=django_settings.BASE_DIR
    )
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    figures = scrape()

    assert (
        figures[
            "django_http_requests_latency_seconds_by_view_method_count",
            ("method", "GET"),
            ("view", "healthz"),
        ]
        == 3
    )

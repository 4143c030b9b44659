"""Bill e-mails on the real stack: a billing run billed by a real Celery worker, which then sends each
bill's e-mail, its PDF attached, through SMTP to the server this test runs (aiosmtpd, in the test
process). The worker reads the server's address from the environment, as a deployed worker reads its
mail relay's."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import transaction

from accounts.models import Message, MessageKind, MessageStatus
from invoicing.models import BillingRun, BillingRunStatus, Invoice
from invoicing.services import billing_run_start
from invoicing.tasks import dispatch
from tests.factories import FlatTariffFactory, billable_connection
from tests.realstack.conftest import wait_until

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]

JANUARY = date(2024, 1, 1)


@pytest.fixture
def mail_worker(workers, smtp_server, monkeypatch):
    """A real worker whose e-mail goes to the test's SMTP server."""
    for name, value in smtp_server.settings().items():
        monkeypatch.setenv(name, str(value))
    smtp_server.inbox.clear()
    return workers.start()


def test_a_billing_run_on_a_real_worker_emails_each_bill_with_its_pdf(mail_worker, smtp_server, provider):
    FlatTariffFactory(provider=provider, rate=Decimal("32.50"))
    connections = [billable_connection(provider) for _ in range(4)]

    with transaction.atomic():
        run, _ = billing_run_start(provider=provider, period=JANUARY, chunk_size=2)
        dispatch(run)

    wait_until(
        lambda: (
            BillingRun.objects.values_list("status", flat=True).get(pk=run.pk) == BillingRunStatus.COMPLETED
        ),
        message="the worker did not finish the run",
    )
    wait_until(
        lambda: len(smtp_server.inbox.received) == 4, seconds=120, message="the e-mails did not arrive"
    )

    invoices = {invoice.customer.email: invoice for invoice in Invoice.objects.select_related("customer")}
    received = {mail.rcpt_tos[0]: mail for mail in smtp_server.inbox.received}
    assert set(received) == {connection.customer.email for connection in connections} == set(invoices)
    for address, mail in received.items():
        invoice = invoices[address]
        ((filename, content_type, pdf),) = mail.attachments
        assert (filename, content_type, pdf[:5]) == (f"{invoice.number}.pdf", "application/pdf", b"%PDF-")
        assert f"Your electricity bill {invoice.number} for January 2024 is ready." in mail.text
    assert set(Message.objects.values_list("kind", "status", "attempts")) == {
        (MessageKind.BILL_ISSUED, MessageStatus.SENT, 1)
    }

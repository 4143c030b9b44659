"""The API answers as its OpenAPI schema says, for every role, and never with a server error.

Schemathesis generates requests from the schema (`manage.py spectacular`) and sends them in-process
to the WSGI application, as each role and unauthenticated, over a provider with a bill, a payment,
an adjustment, a billing run and an AI question, so that the ids it tries find real objects. The
seed, the example count and the clock are fixed: the run is the same on every machine and every day.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import schemathesis
import time_machine
import weasyprint
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.roles import Role
from accounts.tokens import token_pair_for
from auditing.services import ai_query_submit
from invoicing import services
from invoicing.models import PaymentMethod
from tests.factories import FlatTariffFactory, ProviderFactory, UserFactory, billable_connection

pytestmark = [pytest.mark.schemathesis, pytest.mark.django_db]

# The module's clock (ticking) from the world's making to its last request: February 2024 is over (its
# run may start), January's bill fell due on 10 February.
WORLD_DAY = datetime(2024, 3, 15, 10, tzinfo=ZoneInfo(settings.TIME_ZONE))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ROLES = [Role.ADMIN, Role.SUPER_CREATOR, Role.AUDITOR, Role.CUSTOMER, None]

schema = schemathesis.openapi.from_dict(
    SchemaGenerator().get_schema(request=None, public=True),
    config=schemathesis.Config.from_dict(
        {
            "seed": 20261202,
            "generation": {"max-examples": 10, "deterministic": True},
            "phases": {"coverage": {"enabled": False}},
        }
    ),
)
schema.app = get_wsgi_application()
# Its answer is written by a Celery worker after the request commits; with `wait` the request polls
# for up to 30 s, and inside a test's transaction the worker's task is never sent.
schema = schema.exclude(method="POST", path="/api/audit/query")


@dataclass(frozen=True)
class World:
    tokens: dict[str, str]  # an access token per role
    ids: dict[str, object]  # the value of each path parameter that names an object of the world


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """One provider's data for every test of the module, rolled back when the module ends."""
    with time_machine.travel(WORLD_DAY), django_db_blocker.unblock(), transaction.atomic():
        provider = ProviderFactory()
        FlatTariffFactory(provider=provider, rate=Decimal("32.50"))
        connection = billable_connection(provider, months=3)
        users = {
            Role.CUSTOMER: connection.customer.user,
            **{
                role: UserFactory(provider=provider, roles=[role], designation="Billing Officer")
                for role in (Role.ADMIN, Role.SUPER_CREATOR, Role.AUDITOR)
            },
        }
        officer = users[Role.SUPER_CREATOR]
        invoice = services.invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=officer)
        payment, _ = services.payment_post(
            invoice=invoice,
            amount=Decimal("100.00"),
            method=PaymentMethod.objects.first(),
            received_by=officer,
        )
        adjustment, _ = services.adjustment_create(
            invoice=invoice,
            amount=Decimal("10.00"),
            direction="credit",
            reason="Meter misread",
            officer=officer,
        )
        run, _ = services.billing_run_start(provider=provider, period=date(2024, 2, 1), started_by=officer)
        question = ai_query_submit(asked_by=users[Role.AUDITOR], question="How many invoices are unpaid?")
        yield World(
            tokens={role: token_pair_for(user=user, role=role).access for role, user in users.items()},
            ids={
                "provider_id": provider.pk,
                "user_id": users[Role.CUSTOMER].pk,
                "role": Role.CUSTOMER,
                "connection_id": connection.pk,
                "customer_id": connection.customer_id,
                "invoice_id": invoice.pk,
                "payment_id": payment.pk,
                "adjustment_id": adjustment.pk,
                "run_id": run.pk,
                "query_id": question.pk,
            },
        )
        transaction.set_rollback(True)


class HTMLLaidOutInstantly:
    """WeasyPrint's stand-in: the bill's HTML is still rendered from its template, but not laid out
    (seconds a page; tests/invoicing/test_pdf.py checks the real PDFs)."""

    def __init__(self, string: str, **options: object) -> None:
        self.html = string

    def write_pdf(self) -> bytes:
        return b"%PDF-1.7\n%%EOF\n"


@pytest.fixture(autouse=True)
def _pdfs_without_layout(monkeypatch):
    monkeypatch.setattr(weasyprint, "HTML", HTMLLaidOutInstantly)


@pytest.fixture(autouse=True)
def _connections_kept_for_the_test_transaction():
    """The WSGI handler closes "old" connections around each request, as a server does; here the
    connection holds the test's transaction, so it is kept, as Django's test client keeps it."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role or "anonymous")
@schema.parametrize()
@schema.given(on_the_worlds_objects=st.booleans())
def test_the_api_answers_as_its_schema_says(case, role, world, on_the_worlds_objects):
    # Ids drawn at random rarely name an object; half the examples address the world's own.
    if on_the_worlds_objects and case.path_parameters:
        case.path_parameters = {
            name: world.ids.get(name, value) for name, value in case.path_parameters.items()
        }
    headers = {"Authorization": f"Bearer {world.tokens[role]}"} if role else {}
    case.call_and_validate(headers=headers, checks=CHECKS)

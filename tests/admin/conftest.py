"""Officers and administrators in Django admin, and a provider with enough of everything to list."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import factory
import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts.roles import Role
from accounts.services import login_start, notification_settings_set
from auditing.services import ai_query_submit
from billing.lifecycle import connection_disconnect
from billing.models import ConnectionTypeChange
from billing.services import connection_create, customer_create, meter_exchange_record
from invoicing import selectors, services
from invoicing.models import PaymentMethod
from providers.models import Authority, FixedCharge, Provider, Subsidy, TaxRule
from providers.orders import price_order_enter
from providers.services import TariffSpec, provider_price_set, provider_update, schedule_row_add
from tests.factories import (
    PASSWORD,
    ConnectionFactory,
    ConnectionTypeFactory,
    FlatTariffFactory,
    PaymentFileFormatFactory,
    UserFactory,
    billable_connection,
)
from tests.invoicing.bank_files import bank_csv

JANUARY = date(2024, 1, 1)
# The day `populate` and the tests over its rows stand on: after January's bills fell due (10 February),
# so the bounced payments' reversals surcharge them and the dunning job reminds them, whatever today is.
POPULATED_ON = datetime(2024, 3, 20, 10, tzinfo=ZoneInfo(settings.TIME_ZONE))
AWAY, BACK = (datetime(2024, 2, day, 10, tzinfo=ZoneInfo(settings.TIME_ZONE)) for day in (11, 12))
MANY = 21  # rows of each kind: more than a changelist's fixed queries, so one query per row would show


class TypeChangeFactory(factory.django.DjangoModelFactory):
    """A change of connection type as its service records it (the connection switched alongside)."""

    class Meta:
        model = ConnectionTypeChange

    provider = factory.SelfAttribute("connection.provider")
    from_type = factory.SelfAttribute("connection.connection_type")
    to_type = factory.LazyAttribute(lambda o: ConnectionTypeFactory(provider=o.connection.provider))
    effective_from = date(2024, 2, 15)
    reason = "A shop opened in the house"


class AuthorityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Authority

    code = factory.Sequence(lambda n: f"AUTH{n}")
    name = factory.Sequence(lambda n: f"Authority {n}")


@pytest.fixture
def flat_provider(provider):
    """A provider charging a flat 32.50 per kWh: a month of 300 kWh is 9750.00."""
    FlatTariffFactory(provider=provider, rate=Decimal("32.50"))
    return provider


@pytest.fixture
def officer(flat_provider):
    return UserFactory(
        provider=flat_provider, roles=[Role.ADMIN], name="Ayesha Malik", designation="Billing Manager"
    )


@pytest.fixture
def platform_admin(db):
    return UserFactory(provider=None, roles=[Role.ADMIN], is_superuser=True)


@pytest.fixture
def browser(officer) -> Client:
    client = Client()
    client.force_login(officer)
    return client


@pytest.fixture
def platform_browser(platform_admin) -> Client:
    client = Client()
    client.force_login(platform_admin)
    return client


@pytest.fixture
def cash(db):
    return PaymentMethod.objects.get_or_create(
        code="bank-counter", defaults={"name": "Paid at Bank Counter"}
    )[0]


def populate(provider: Provider, *, count: int, cash: PaymentMethod) -> None:
    """`count` of every kind of row for `provider`, each written by its service: billed connections
    with their readings, a customer and a pending connection numbered from the provider's series,
    invoices, lines, payments (one of each bill's reversed), allocations, adjustments, credit notes and
    refunds, unbillable connections (a run's problems),
    meter exchanges and changes of type (recorded as their service would), a run of one chunk per
    connection, the e-mails of the bills and payments, sign-in tickets, AI questions, the provider's
    notification settings, dunning steps, a price order, a disconnection order and payment plans, and price
    schedule rows opening today (after the bills, which keep their prices). Its callers stand the clock at
    POPULATED_ON (the `populated_on` fixture)."""
    officer = UserFactory(provider=provider, roles=[Role.ADMIN], designation="Billing Manager")
    notification_settings_set(provider=provider, due_reminder_days=5)
    provider_update(provider=provider, reconnection_fee=Decimal("500.00"))
    for _ in range(count):
        connection = billable_connection(provider)
        ConnectionFactory(customer__provider=provider)  # no readings: the run skips it
        meter_exchange_record(
            connection=connection,
            at=datetime(2024, 2, 10, 9, tzinfo=timezone.get_current_timezone()),
            old_final={"import_peak": Decimal(150), "import_off_peak": Decimal(250)},
            new_first={"import_peak": Decimal(0), "import_off_peak": Decimal(0)},
            new_meter_number=f"NEW-{connection.pk}",
            reason="Faulty display",
            recorded_by=officer,
        )
        TypeChangeFactory(connection=connection, recorded_by=officer)
    # A customer and a connection numbered from the provider's own series (its counters).
    walk_in = customer_create(provider=provider, name="Walk-in customer")
    connection_create(customer=walk_in, connection_type=ConnectionTypeFactory(provider=provider))
    run, _ = services.billing_run_start(provider=provider, period=JANUARY, chunk_size=1)
    for chunk_id in selectors.pending_chunks(run):
        services.billing_run_chunk_bill(chunk_id=chunk_id)
    for invoice in run.invoices.all():
        services.payment_post(invoice=invoice, amount=Decimal("100.00"), method=cash, received_by=officer)
        # A second payment, which bounced.
        bounced, _ = services.payment_post(
            invoice=invoice, amount=Decimal("10.00"), method=cash, received_by=officer
        )
        services.payment_reverse(payment=bounced, kind="bounced", reason="Returned", reversed_by=officer)
        services.adjustment_create(
            invoice=invoice, amount=Decimal("50.00"), direction="credit", reason="Estimate", officer=officer
        )
        # Disconnected and reconnected after its January bill: two steps and a fee waiting for a bill.
        connection_disconnect(connection=invoice.connection, reason="Away.", effective_at=AWAY, by=officer)
        services.connection_reconnect(
            connection=invoice.connection, reason="Back.", effective_at=BACK, by=officer
        )
    # A bank's payment file of a row per bill, posted.
    payment_file = services.payment_file_upload(
        file_format=PaymentFileFormatFactory(provider=provider, default_method=cash),
        name="bank.csv",
        content=bank_csv(
            *[(bill.number, "", "1.00", "2024-02-05", "", f"BANK-{bill.pk}") for bill in run.invoices.all()]
        ),
        uploaded_by=officer,
        role=Role.ADMIN,
    )
    for first, last in services.payment_file_chunks(payment_file):
        services.payment_file_chunk_post(file_id=payment_file.pk, first_line=first, last_line=last)
    # The January bills are long overdue: each debt reminded, then spread over two instalments.
    for days, action in ((5, "reminder"), (15, "final_notice")):
        services.dunning_level_create(
            provider=provider, days_after_due=days, action=action, created_by=officer
        )
    services.dunning_run(provider=provider)
    # A regulator's order dated back to January, entered and not yet confirmed.
    price_order_enter(
        provider=provider,
        reference="SRO-1/2024",
        valid_from=JANUARY,
        connection_type=None,
        rows=[TariffSpec(rate=Decimal("30.00"))],
        entered_by=officer,
    )
    # An officer's disconnection order on site, carried out as it is issued.
    services.disconnection_order_issue(
        connection=run.invoices.first().connection,
        reason="Unpaid",
        effective_at=BACK + timedelta(days=1),
        by=officer,
    )
    for invoice in run.invoices.all():
        services.payment_plan_create(
            connection=invoice.connection,
            instalments=2,
            first_due_date=timezone.localdate() + timedelta(days=1),
            reason="Agreed at the counter",
            created_by=officer,
        )
        # Then credited beyond what it owed (what it charged, its late surcharge from the bounced
        # payment's reversal included, less 100 paid): 100 to the customer's credit balance, 40 of it
        # refunded.
        invoice.refresh_from_db()
        services.credit_note_issue(
            invoice=invoice,
            amount=invoice.balance + Decimal("100.00"),
            reason="Meter misread",
            issued_by=officer,
        )
        services.credit_refund(
            customer=invoice.customer, amount=Decimal("40.00"), method=cash, reason="Asked", officer=officer
        )
    auditor = UserFactory(provider=provider, roles=[Role.AUDITOR, Role.SUPER_CREATOR])
    for step in range(count):
        login_start(email=auditor.email, password=PASSWORD)
        ai_query_submit(asked_by=auditor, question=f"How many invoices were paid in month {step}?")
    today = timezone.localdate()
    for step in range(count):
        price = Decimal("33.00") + step
        provider_price_set(
            provider=provider, price=price, changed_by=officer, valid_from=today + timedelta(step)
        )
        authority = AuthorityFactory(provider=provider)
        for row in (
            TaxRule(provider=provider, name=f"Tax {step}", authority=authority, rate=Decimal("0.17")),
            FixedCharge(provider=provider, name=f"Fee {step}", authority=authority, amount=Decimal("35")),
            Subsidy(
                provider=provider, code=f"S{step}", payer=authority, band_low=0, rate_per_unit=Decimal("1.5")
            ),
        ):
            row.valid_from = today
            schedule_row_add(row=row, created_by=officer)


@pytest.fixture
def populated_on(time_machine):
    """The clock stands at POPULATED_ON (ticking) for the rest of the test."""
    time_machine.move_to(POPULATED_ON)


@pytest.fixture
def busy_provider(populated_on, flat_provider, cash):
    populate(flat_provider, count=MANY, cash=cash)
    return flat_provider


@pytest.fixture
def foreign_rows(populated_on, other_provider, cash):
    """Another provider with one row of every kind, added after the caller's (newest first in lists)."""
    FlatTariffFactory(provider=other_provider)
    populate(other_provider, count=1, cash=cash)
    return other_provider

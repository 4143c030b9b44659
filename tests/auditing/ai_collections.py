"""A provider's corrections and collections, for AI query tests: a row in every table auditors read
about them (credit notes and their lines, credit balances and their movements, a refund, a reversal,
dunning levels, cases and steps with their bills, a disconnection order, a payment plan and its
instalments, a reconnection fee, a bank payment file and its rows).

Every date is fixed: the clock is moved with `time_machine` day by day, as the dunning job runs.
"""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.apps import apps
from django.conf import settings

from accounts.roles import Role
from auditing.ai import schema
from billing.lifecycle import connection_disconnect
from invoicing.models import DunningAction, PaymentMethod, ReversalKind
from invoicing.services import (
    connection_reconnect,
    credit_note_issue,
    credit_refund,
    disconnection_order_issue,
    dunning_level_create,
    dunning_run,
    invoice_issue,
    invoices_mark_overdue,
    payment_file_chunk_post,
    payment_file_chunks,
    payment_file_upload,
    payment_plan_create,
    payment_post,
    payment_reverse,
)
from invoicing.services.notices import muted
from providers.models import Provider
from tests.factories import (
    FlatTariffFactory,
    PaymentFileFormatFactory,
    ProviderFactory,
    UserFactory,
    billable_connection,
)
from tests.invoicing.bank_files import bank_csv

ZONE = ZoneInfo(settings.TIME_ZONE)
JANUARY = date(2024, 1, 1)
# The tables of corrections and collections, and how each finds its provider in the ORM.
COLLECTION_TABLES = (
    "payment_reversals", "credit_notes", "credit_note_lines", "customer_credits", "credit_entries",
    "credit_refunds", "pending_charges", "dunning_levels", "dunning_cases", "dunning_steps",
    "dunning_step_invoices", "payment_plans", "payment_plan_invoices", "payment_instalments",
    "payment_file_formats", "payment_files", "payment_file_rows", "connection_events",
)  # fmt: skip
PROVIDER_LOOKUP = {
    "credit_note_lines": "credit_note__provider_id",
    "dunning_step_invoices": "invoice__provider_id",
    "payment_plan_invoices": "invoice__provider_id",
    "payment_file_rows": "file__provider_id",
}


def model_of(name: str):
    """The Django model (an automatic many-to-many one included) of a logical table."""
    source = schema.BY_NAME[name].source
    return next(
        model for model in apps.get_models(include_auto_created=True) if model._meta.db_table == source
    )


def ids_of(name: str, provider_id: int) -> set[int]:
    """The ids of a logical table's rows that are `provider_id`'s, read through the ORM."""
    lookup = PROVIDER_LOOKUP.get(name, "provider_id")
    return set(model_of(name).objects.filter(**{lookup: provider_id}).values_list("pk", flat=True))


def books(code: str, time_machine, *, credit: Decimal) -> Provider:
    """A provider charging 32.50 per kWh (a January 2024 bill of 9750.00 per connection) with a
    reconnection fee of 500, whose corrections and collections fill every table above; `credit`
    (at most 9750.00) is the credit note on its first connection's paid bill. No notice is sent."""
    with muted():
        return _books(code, time_machine, credit=credit)


def _books(code: str, time_machine, *, credit: Decimal) -> Provider:

    def day(when: date) -> None:
        time_machine.move_to(datetime(when.year, when.month, when.day, 9, tzinfo=ZONE), tick=False)

    provider = ProviderFactory(
        code=code, name=f"{code.capitalize()} Power", reconnection_fee=Decimal("500.00")
    )
    FlatTariffFactory(provider=provider, rate=Decimal("32.50"))
    creator = UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR], name=f"{code} creator")
    officer = UserFactory(
        provider=provider, roles=[Role.SUPER_CREATOR], name=f"{code} officer", designation="Billing Officer"
    )
    cash = PaymentMethod.objects.get_or_create(
        code="bank-counter", defaults={"name": "Paid at Bank Counter"}
    )[0]
    credited, reversed_, planned, dunned, reconnected, filed = (
        billable_connection(provider) for _ in range(6)
    )

    day(date(2024, 2, 1))
    bills = {
        connection.pk: invoice_issue(connection=connection, period=JANUARY, created_by=creator)
        for connection in (credited, reversed_, planned, dunned, reconnected, filed)
    }
    for days, action in (
        (5, DunningAction.REMINDER),
        (15, DunningAction.FINAL_NOTICE),
        (25, DunningAction.DISCONNECTION),
    ):
        dunning_level_create(provider=provider, days_after_due=days, action=action, created_by=officer)

    # A paid bill credited: the credit becomes the customer's balance, and part of it is refunded.
    bill = bills[credited.pk]
    payment_post(invoice=bill, amount=bill.payable_before_due, method=cash, received_by=creator)
    credit_note_issue(invoice=bill, amount=credit, reason="Meter misread", issued_by=officer)
    credit_refund(
        customer=credited.customer, amount=Decimal("100.00"), method=cash, reason="Asked for", officer=officer
    )
    # A payment that bounced.
    payment, _ = payment_post(
        invoice=bills[reversed_.pk], amount=Decimal("2000.00"), method=cash, received_by=creator
    )
    payment_reverse(payment=payment, kind=ReversalKind.BOUNCED, reason="Cheque returned", reversed_by=officer)
    # Disconnected on request and reconnected: the reconnection fee waits for the next bill.
    connection_disconnect(
        connection=reconnected,
        reason="Asked for",
        effective_at=datetime(2024, 2, 1, 8, tzinfo=ZONE),
        by=officer,
    )
    connection_reconnect(
        connection=reconnected,
        reason="Back",
        effective_at=datetime(2024, 2, 1, 8, 30, tzinfo=ZONE),
        by=officer,
    )
    # A bank's file pays one bill.
    file_format = PaymentFileFormatFactory(provider=provider)
    payment_file = payment_file_upload(
        file_format=file_format,
        name=f"{code} collections.csv",
        content=bank_csv((bills[filed.pk].number, "", "1500.00", "2024-02-01", "", f"{code}-TXN-1")),
        uploaded_by=officer,
        role=Role.SUPER_CREATOR,
    )
    for first, last in payment_file_chunks(payment_file):
        payment_file_chunk_post(file_id=payment_file.pk, first_line=first, last_line=last)

    # The unpaid bills fall due on 10 February: reminders on the 15th and final notices on the 25th (the
    # disconnection level, at 25 days, is not reached); one debt is spread over a payment plan before
    # its final notice, and an officer orders another connection disconnected the day after.
    for when in (date(2024, 2, 15), date(2024, 2, 20), date(2024, 2, 25)):
        day(when)
        invoices_mark_overdue(provider=provider)
        if when == date(2024, 2, 20):
            payment_plan_create(
                connection=planned, instalments=3, first_due_date=when, reason="Hardship", created_by=officer
            )
        dunning_run(provider=provider)
    day(date(2024, 2, 26))
    disconnection_order_issue(
        connection=dunned,
        reason="Final notice unanswered",
        effective_at=datetime(2024, 2, 26, 8, tzinfo=ZONE),
        by=officer,
    )
    return provider

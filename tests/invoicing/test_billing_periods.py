"""Period continuity: a bill's period starts where the connection's previous bill ended, so bills cover
every moment once; with nothing to continue from, at the last reading of the month before, or at a new
connection's first reading. The issue, a re-rate, the billing run and the preview alike."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from invoicing.models import Invoice, InvoiceStatus
from invoicing.selectors import pending_chunks
from invoicing.services import (
    InvoiceRefused,
    billing_run_chunk_bill,
    billing_run_start,
    invoice_issue,
    invoice_update,
)
from tests.factories import (
    ConnectionFactory,
    CustomerFactory,
    FlatTariffFactory,
    ReadingFactory,
    billable_connection,
)
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db
D = Decimal
ZONE = ZoneInfo(settings.TIME_ZONE)
JANUARY, FEBRUARY, MARCH = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)


def at(month: int, day: int, hour: int = 9, year: int = 2024) -> datetime:
    return datetime(year, month, day, hour, tzinfo=ZONE)


def read(connection, when: datetime, peak: str, off_peak: str = "0") -> None:
    ReadingFactory(connection=connection, taken_at=when, import_peak=D(peak), import_off_peak=D(off_peak))


def ends(invoice: Invoice) -> tuple:
    invoice.refresh_from_db()
    return (invoice.period_start, invoice.period_end, invoice.end_import_peak, invoice.end_import_off_peak)


@pytest.fixture
def connection(flat_provider):
    return ConnectionFactory(customer=CustomerFactory(provider=flat_provider))


def test_a_bill_records_its_period_and_the_registers_it_closed_at(connection, creator):
    read(connection, at(12, 28, year=2023), "1000", "2000")
    read(connection, at(1, 10), "1040", "2080")
    read(connection, at(1, 28), "1100", "2200")

    invoice = invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    assert ends(invoice) == (at(12, 28, year=2023), at(1, 28), D("1100"), D("2200"))
    assert (invoice.estimated, invoice.kwh_consumed, invoice.current_charges) == (
        False,
        D("300"),
        D("9750.00"),
    )


def test_the_next_bill_starts_where_the_previous_one_ended(connection, creator):
    for month, peak in ((12, "0"), (1, "100"), (2, "250"), (3, "300")):
        read(connection, at(month, 28, year=2023 if month == 12 else 2024), peak)
    january = invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator)

    assert ends(february)[:3] == (ends(january)[1], at(2, 28), D("250"))
    assert february.kwh_consumed == D("150")


def test_a_final_bill_to_a_mid_month_reading_and_the_next_bill_cover_every_moment_once(connection, creator):
    read(connection, at(12, 28, year=2023), "1000")
    read(connection, at(1, 15, 14), "1070")  # the move-out reading
    read(connection, at(1, 28), "1090")  # the incoming customer's first weeks
    read(connection, at(2, 27), "1300")
    final = invoice_issue(connection=connection, period=JANUARY, created_by=creator, until=at(1, 15, 14))

    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator)

    assert ends(final)[:3] == (at(12, 28, year=2023), at(1, 15, 14), D("1070"))
    assert ends(february)[:3] == (at(1, 15, 14), at(2, 27), D("1300"))
    assert final.kwh_consumed + february.kwh_consumed == D("300")
    assert final.billing_days + february.billing_days == D("61.000000")  # 28 Dec to 27 Feb
    assert_ledger_holds(connection)


def test_a_month_left_unbilled_is_billed_with_the_next_one(connection, creator):
    read(connection, at(12, 28, year=2023), "0")
    read(connection, at(1, 28), "100")
    read(connection, at(2, 28), "250")
    read(connection, at(3, 28), "300")
    january = invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    march = invoice_issue(connection=connection, period=MARCH, created_by=creator)

    assert ends(march)[:3] == (ends(january)[1], at(3, 28), D("300"))
    assert march.kwh_consumed == D("200")


def test_a_cancelled_bill_leaves_its_period_to_the_bill_that_replaces_it(connection, creator):
    read(connection, at(12, 28, year=2023), "0")
    read(connection, at(1, 28), "100")
    read(connection, at(2, 15), "180")
    read(connection, at(2, 28), "250")
    january = invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    mistaken = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator, until=at(2, 15))
    mistaken = invoice_update(invoice=mistaken, updated_by=creator, cancel=True)

    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator)

    assert mistaken.status == InvoiceStatus.CANCELLED
    assert ends(february)[:3] == (ends(january)[1], at(2, 28), D("250"))


def test_a_bill_of_typed_kwh_has_no_ends_and_the_next_starts_at_the_month_before(connection, creator):
    read(connection, at(12, 28, year=2023), "0")
    read(connection, at(1, 28), "100")
    read(connection, at(2, 20), "170")
    read(connection, at(2, 28), "250")
    typed = invoice_issue(connection=connection, period=JANUARY, created_by=creator, kwh=D("90"))

    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator)

    assert ends(typed) == (None, None, None, None)
    assert ends(february)[:3] == (at(1, 28), at(2, 28), D("250"))


def test_a_connection_connected_within_the_month_is_billed_from_its_first_reading(connection, creator):
    read(connection, at(1, 12, 11), "5", "7")  # connected on 12 January
    read(connection, at(1, 31, 20), "45", "87")

    invoice = invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    assert ends(invoice) == (at(1, 12, 11), at(1, 31, 20), D("45"), D("87"))
    assert invoice.kwh_consumed == D("120")


def test_a_month_with_no_reading_after_the_period_start_is_refused_with_the_reason(connection, creator):
    read(connection, at(1, 12, 11), "5", "7")  # only the connection's first reading

    with pytest.raises(
        InvoiceRefused, match="has no reading in January 2024 after 12 January 2024 11:00"
    ) as refused:
        invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    assert refused.value.field == "month"


def test_a_rerate_rates_the_same_period_again(connection, creator):
    read(connection, at(12, 28, year=2023), "1000")
    read(connection, at(1, 15, 14), "1070")
    final = invoice_issue(connection=connection, period=JANUARY, created_by=creator, until=at(1, 15, 14))
    read(connection, at(1, 28), "1090")

    invoice_update(invoice=final, updated_by=creator, rerate=True)

    assert ends(final)[:3] == (at(12, 28, year=2023), at(1, 15, 14), D("1070"))


def test_the_billing_run_continues_each_connection_from_its_previous_bill(flat_provider, creator):
    regular = billable_connection(flat_provider, months=2)
    moved = ConnectionFactory(customer=CustomerFactory(provider=flat_provider))
    read(moved, at(12, 28, year=2023), "0")
    read(moved, at(1, 20, 14), "80")
    read(moved, at(1, 28), "100")
    read(moved, at(2, 28), "400")
    invoice_issue(connection=moved, period=JANUARY, created_by=creator, until=at(1, 20, 14))
    invoice_issue(connection=regular, period=JANUARY, created_by=creator)

    run, _ = billing_run_start(provider=flat_provider, period=FEBRUARY, chunk_size=10)
    for chunk_id in pending_chunks(run):
        billing_run_chunk_bill(chunk_id=chunk_id)

    moved_february = Invoice.objects.get(connection=moved, period=FEBRUARY)
    assert ends(moved_february)[:3] == (at(1, 20, 14), at(2, 28), D("400"))
    assert moved_february.kwh_consumed == D("320")
    regular_february = Invoice.objects.get(connection=regular, period=FEBRUARY)
    assert ends(regular_february)[:2] == (at(1, 28), at(2, 28))
    assert_ledger_holds(regular, moved)


def chunk_queries(provider, connections: int) -> int:
    for _ in range(connections):
        billable_connection(provider, months=2)
    first, _ = billing_run_start(provider=provider, period=JANUARY, chunk_size=100)
    for chunk_id in pending_chunks(first):
        billing_run_chunk_bill(chunk_id=chunk_id)
    second, _ = billing_run_start(provider=provider, period=FEBRUARY, chunk_size=100)
    (chunk_id,) = pending_chunks(second)
    with CaptureQueriesContext(db_connection) as queries:
        billing_run_chunk_bill(chunk_id=chunk_id)
    assert Invoice.objects.filter(provider=provider, period=FEBRUARY).count() == connections
    return len(queries)


def test_the_billing_run_reads_the_previous_bills_of_a_whole_chunk_at_once(flat_provider, other_provider):
    FlatTariffFactory(provider=other_provider)

    assert chunk_queries(flat_provider, 2) == chunk_queries(other_provider, 6)


def test_the_bill_preview_continues_from_the_previous_bill(as_role, connection, creator):
    read(connection, at(12, 28, year=2023), "0")
    read(connection, at(1, 15, 14), "70")
    read(connection, at(1, 28), "100")
    read(connection, at(2, 28), "250")
    invoice_issue(connection=connection, period=JANUARY, created_by=creator, until=at(1, 15, 14))

    response = as_role(creator, Role.INVOICE_CREATOR).get(
        f"/api/connections/{connection.pk}/bill-preview?year=2024&month=2"
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["periodStart"], body["periodEnd"], body["estimated"]) == (
        at(1, 15, 14).isoformat(),
        at(2, 28).isoformat(),
        False,
    )
    assert body["currentCharges"] == "5850.00"  # 180 kWh x 32.50

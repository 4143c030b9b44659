"""A change of connection type from a day: recorded, dated, audited, refused with the reason, and the
bill whose period holds the day rated on each type's rows for its part of the period."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings

from auditing.models import AuditLog
from billing.lifecycle import LifecycleRefused, StatusConflict
from billing.models import ConnectionStatus, ConnectionTypeChange, EventKind
from invoicing.selectors import pending_chunks
from invoicing.services import (
    billing_run_chunk_bill,
    billing_run_start,
    connection_close,
    connection_type_change,
    invoice_issue,
    invoice_update,
)
from tests.factories import ConnectionTypeFactory, FlatTariffFactory, ProviderFactory, billable_connection

pytestmark = pytest.mark.django_db
D = Decimal
ZONE = ZoneInfo(settings.TIME_ZONE)
TODAY = datetime(2024, 6, 10, 12, 0, tzinfo=ZONE)
JANUARY, FEBRUARY, MARCH = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(TODAY, tick=False):
        yield


@pytest.fixture
def house(flat_provider):
    return ConnectionTypeFactory(provider=flat_provider, code="R1", description="Residential")


@pytest.fixture
def shop(flat_provider):
    return ConnectionTypeFactory(provider=flat_provider, code="C1", description="Commercial")


@pytest.fixture
def priced(flat_provider, house, shop):
    """A house pays 10.00 per kWh, a shop 20.00 (their own rows, before the all-types 32.50)."""
    FlatTariffFactory(provider=flat_provider, connection_type=house, rate=D("10.00"), code="R1")
    FlatTariffFactory(provider=flat_provider, connection_type=shop, rate=D("20.00"), code="C1")
    return flat_provider


@pytest.fixture
def home(priced, house):
    """Read on the 28th, December 2023 to March 2024: 300 kWh a month."""
    return billable_connection(priced, months=3, connection_type=house)


def change(connection, to_type, day: date, user, reason: str = "A shop opened in the front room."):
    return connection_type_change(
        connection=connection, to_type=to_type, effective_from=day, reason=reason, recorded_by=user
    )


def test_connection_type_change_records_the_change_and_switches_the_type(home, house, shop, super_creator):
    event = change(home, shop, date(2024, 3, 15), super_creator)

    home.refresh_from_db()
    recorded = ConnectionTypeChange.objects.get(connection=home)
    assert home.connection_type == shop
    assert (recorded.from_type, recorded.to_type, recorded.effective_from, recorded.recorded_by) == (
        house,
        shop,
        date(2024, 3, 15),
        super_creator,
    )
    assert (event.kind, event.effective_at, event.details) == (
        EventKind.TYPE_CHANGED,
        datetime(2024, 3, 15, tzinfo=ZONE),
        {"fromType": "R1", "toType": "C1", "typeChangeId": recorded.pk},
    )
    logged = AuditLog.objects.filter(action="create").values_list("object_type", flat=True)
    assert {"billing.connectiontypechange", "billing.connectionevent"} <= set(logged)


def test_a_bill_across_the_change_rates_each_part_on_its_own_types_rows(home, shop, super_creator):
    for month in (JANUARY, FEBRUARY):
        invoice_issue(connection=home, period=month, created_by=super_creator)
    change(home, shop, date(2024, 3, 15), super_creator)

    march = invoice_issue(connection=home, period=MARCH, created_by=super_creator)

    # 28 February to 28 March: 29 calendar days, 15 as a house (29 February to 14 March), 14 as a
    # shop; 300 kWh shared so: 155.1724 at 10.00 and the remaining 144.8276 at 20.00.
    assert list(march.lines.values_list("kind", "amount")) == [
        ("energy", D("1551.72")),
        ("energy", D("2896.55")),
    ]
    assert march.current_charges == D("4448.27")
    assert [part["type"] for part in march.trace["parts"]] == ["R1", "C1"]


def test_the_billing_run_rates_a_month_across_the_change_the_same_way(priced, home, shop, super_creator):
    for month in (JANUARY, FEBRUARY):
        invoice_issue(connection=home, period=month, created_by=super_creator)
    change(home, shop, date(2024, 3, 15), super_creator)

    run, _ = billing_run_start(provider=priced, period=MARCH)
    for chunk_id in pending_chunks(run):
        billing_run_chunk_bill(chunk_id=chunk_id)

    assert run.invoices.get().current_charges == D("4448.27")


def test_a_change_from_a_day_already_billed_is_refused_until_that_bill_is_cancelled(
    home, shop, super_creator
):
    for month in (JANUARY, FEBRUARY, MARCH):
        invoice_issue(connection=home, period=month, created_by=super_creator)

    with pytest.raises(
        LifecycleRefused, match=r"billed up to 2024-03-28 \(.*\): a change of type applies from 2024-03-29"
    ) as refused:
        change(home, shop, date(2024, 3, 15), super_creator)
    assert refused.value.field == "effectiveFrom"
    invoice_update(invoice=home.invoices.get(period=MARCH), updated_by=super_creator, cancel=True)
    change(home, shop, date(2024, 3, 15), super_creator)

    home.refresh_from_db()
    assert home.connection_type == shop


def test_a_change_the_day_after_the_last_bill_ends_is_accepted(home, shop, super_creator):
    for month in (JANUARY, FEBRUARY, MARCH):
        invoice_issue(connection=home, period=month, created_by=super_creator)

    change(home, shop, date(2024, 3, 29), super_creator)

    assert ConnectionTypeChange.objects.filter(connection=home).exists()


def test_a_change_to_the_type_it_has_is_refused(home, house, super_creator):
    with pytest.raises(LifecycleRefused, match="is of type R1 already"):
        change(home, house, date(2024, 3, 15), super_creator)


def test_a_change_to_another_providers_type_is_refused(home, super_creator):
    theirs = ConnectionTypeFactory(provider=ProviderFactory())

    with pytest.raises(LifecycleRefused, match="is not one of") as refused:
        change(home, theirs, date(2024, 3, 15), super_creator)

    assert refused.value.field == "connectionType"


def test_a_change_from_a_day_to_come_is_refused(home, shop, super_creator):
    with pytest.raises(LifecycleRefused, match="2024-06-11 is still to come"):
        change(home, shop, date(2024, 6, 11), super_creator)


def test_changes_are_recorded_in_date_order(home, house, shop, super_creator):
    change(home, shop, date(2024, 4, 10), super_creator)

    with pytest.raises(
        LifecycleRefused, match="changed type from 2024-04-10; a later change applies from a later day"
    ):
        change(home, house, date(2024, 4, 10), super_creator)


def test_a_closed_connection_keeps_its_type(home, shop, super_creator):
    connection_close(
        connection=home,
        closed_at=datetime(2024, 4, 15, 10, tzinfo=ZONE),
        registers={"import_peak": D("350"), "import_off_peak": D("700")},
        reason="Demolished.",
        by=super_creator,
    )

    with pytest.raises(StatusConflict, match="cannot be given another type: it is closed for good"):
        change(home, shop, date(2024, 5, 1), super_creator)


def test_a_pending_connection_takes_its_new_type_from_any_day_gone(priced, house, shop, super_creator):
    pending = billable_connection(priced, months=0, connection_type=house, status=ConnectionStatus.PENDING)

    change(pending, shop, date(2024, 1, 1), super_creator)

    pending.refresh_from_db()
    assert pending.connection_type == shop

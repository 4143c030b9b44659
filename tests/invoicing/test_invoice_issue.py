"""invoice_issue and invoice_update: a bill from the month's readings or from kWh a clerk entered,
numbered gaplessly, once per connection and month, frozen once paid or adjusted."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone
from guardian.shortcuts import get_perms

from accounts.permissions import role_allows
from accounts.roles import Role
from billing.models import ConnectionStatus
from invoicing.models import Invoice, InvoiceLine, InvoiceSource, InvoiceStatus, Payment
from invoicing.services import (
    InvoiceCancelled,
    InvoiceExists,
    InvoiceLocked,
    InvoiceRefused,
    invoice_issue,
    invoice_update,
    payment_post,
)
from providers.models import Bucket, TariffRow
from tests.factories import (
    ConnectionFactory,
    ConnectionTypeFactory,
    CustomerFactory,
    FlatTariffFactory,
    ProviderFactory,
    ReadingFactory,
    UserFactory,
    billable_connection,
)
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db
D = Decimal
DECEMBER_2023 = date(2023, 12, 1)
JANUARY, FEBRUARY, MARCH, APRIL = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1), date(2024, 4, 1)


@pytest.fixture
def tou_provider(db):
    """Peak hours at 40.00 per kWh, off-peak hours at 25.00."""
    provider = ProviderFactory()
    FlatTariffFactory(provider=provider, bucket=Bucket.PEAK, rate=D("40.00"), code="PEAK")
    FlatTariffFactory(provider=provider, bucket=Bucket.OFF_PEAK, rate=D("25.00"), code="OFFPEAK")
    return provider


@pytest.fixture
def unread_connection(flat_provider):
    """A connection of the flat provider with no meter readings at all."""
    return ConnectionFactory(customer=CustomerFactory(provider=flat_provider))


def lines_of(invoice: Invoice) -> list[tuple]:
    return list(invoice.lines.values_list("position", "kind", "label", "amount"))


# --- issuing -------------------------------------------------------------------------------------


def test_invoice_issue_bills_the_months_readings_at_the_flat_price(connection, creator):
    invoice = invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    invoice.refresh_from_db()
    assert (invoice.source, invoice.period, invoice.issue_date) == (
        InvoiceSource.READINGS,
        JANUARY,
        date(2024, 1, 31),
    )
    # Readings of 28 December and 28 January: 31 days, 100 peak + 200 off-peak kWh.
    assert (invoice.billing_days, invoice.peak_units, invoice.off_peak_units, invoice.kwh_consumed) == (
        D("31.000000"),
        D("100.0000"),
        D("200.0000"),
        D("300.0000"),
    )
    assert (invoice.energy_charge, invoice.tax_total, invoice.fixed_total, invoice.subsidy_total) == (
        D("9750.00"),
        D("0.00"),
        D("0.00"),
        D("0.00"),
    )
    assert (invoice.current_charges, invoice.arrears, invoice.payable_before_due) == (
        D("9750.00"),
        D("0.00"),
        D("9750.00"),
    )
    assert (invoice.late_surcharge, invoice.payable_after_due) == (D("975.00"), D("10725.00"))
    assert (invoice.balance, invoice.amount_paid, invoice.status, invoice.paid_on) == (
        D("9750.00"),
        D("0.00"),
        InvoiceStatus.PENDING,
        None,
    )
    assert lines_of(invoice) == [(1, "energy", "Energy (all hours, slab 1)", D("9750.00"))]
    assert invoice.pricing == TariffRow.objects.get(provider=connection.provider)
    assert invoice.trace["billingDays"] == "31"
    assert invoice.created_by == creator
    assert_ledger_holds(connection)


def test_invoice_issue_rounds_billing_days_half_up(flat_provider, unread_connection, creator):
    zone = ZoneInfo(settings.TIME_ZONE)
    opened = datetime(2023, 12, 28, 9, 0, tzinfo=zone)
    ReadingFactory(connection=unread_connection, taken_at=opened)
    # 31 days and 27 seconds: 31.0003125 days, half a millionth of a day over 31.000312.
    ReadingFactory(
        connection=unread_connection,
        taken_at=opened + timedelta(days=31, seconds=27),
        import_off_peak=D("300.0000"),
    )

    invoice = invoice_issue(connection=unread_connection, period=JANUARY, created_by=creator)

    invoice.refresh_from_db()
    assert invoice.billing_days == D("31.000313")
    assert invoice.trace["billingDays"] == "31.0003125"


def test_invoice_issue_bills_kwh_a_clerk_entered_without_readings(unread_connection, creator):
    invoice = invoice_issue(connection=unread_connection, period=JANUARY, created_by=creator, kwh=D("123.4"))

    invoice.refresh_from_db()
    assert invoice.source == InvoiceSource.KWH
    assert (invoice.billing_days, invoice.kwh_consumed) == (D("31.000000"), D("123.4000"))
    assert (invoice.current_charges, invoice.payable_before_due, invoice.balance) == (
        D("4010.50"),
        D("4010.50"),
        D("4010.50"),
    )
    assert lines_of(invoice) == [(1, "energy", "Energy (all hours, slab 1)", D("4010.50"))]
    assert_ledger_holds(unread_connection)


def test_invoice_issue_rates_peak_and_off_peak_readings_apart_on_a_time_of_use_tariff(tou_provider):
    connection = billable_connection(tou_provider, months=1, peak=100, off_peak=200)
    clerk = UserFactory(provider=tou_provider, roles=[Role.INVOICE_CREATOR])

    invoice = invoice_issue(connection=connection, period=JANUARY, created_by=clerk)

    assert (invoice.peak_units, invoice.off_peak_units) == (D("100"), D("200"))
    assert lines_of(invoice) == [
        (1, "energy", "Energy (peak, slab 1)", D("4000.00")),
        (2, "energy", "Energy (off-peak, slab 1)", D("5000.00")),
    ]
    assert (invoice.energy_charge, invoice.current_charges) == (D("9000.00"), D("9000.00"))
    assert_ledger_holds(connection)


def test_invoice_issue_bills_peak_and_off_peak_kwh_on_a_time_of_use_tariff(tou_provider):
    connection = ConnectionFactory(customer=CustomerFactory(provider=tou_provider))
    clerk = UserFactory(provider=tou_provider, roles=[Role.INVOICE_CREATOR])

    invoice = invoice_issue(
        connection=connection, period=JANUARY, created_by=clerk, peak_kwh=D("50"), off_peak_kwh=D("150")
    )

    assert (invoice.source, invoice.peak_units, invoice.off_peak_units, invoice.kwh_consumed) == (
        InvoiceSource.KWH,
        D("50"),
        D("150"),
        D("200"),
    )
    assert lines_of(invoice) == [
        (1, "energy", "Energy (peak, slab 1)", D("2000.00")),
        (2, "energy", "Energy (off-peak, slab 1)", D("3750.00")),
    ]
    assert invoice.current_charges == D("5750.00")
    assert_ledger_holds(connection)


def test_invoice_issue_refuses_total_kwh_alone_on_a_time_of_use_tariff(tou_provider):
    connection = ConnectionFactory(customer=CustomerFactory(provider=tou_provider))
    clerk = UserFactory(provider=tou_provider, roles=[Role.INVOICE_CREATOR])

    with pytest.raises(InvoiceRefused, match="peak and off-peak") as refused:
        invoice_issue(connection=connection, period=JANUARY, created_by=clerk, kwh=D("200"))

    assert refused.value.field == "peakKwh"
    assert not Invoice.objects.exists()


def test_invoice_numbers_run_consecutively_per_provider_and_year_of_issue(connection, creator):
    neighbour = billable_connection(connection.provider, months=1)
    other_provider = ProviderFactory()
    FlatTariffFactory(provider=other_provider)
    elsewhere = billable_connection(other_provider, months=1)
    code = connection.provider.code

    january = invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    neighbours = invoice_issue(connection=neighbour, period=JANUARY, created_by=creator)
    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator)
    theirs = invoice_issue(connection=elsewhere, period=JANUARY, created_by=creator)
    newcomer = billable_connection(connection.provider, months=1)
    last_year = invoice_issue(connection=newcomer, period=DECEMBER_2023, created_by=creator, kwh=D("10"))

    assert [january.number, neighbours.number, february.number] == [
        f"{code}-2024-000001",
        f"{code}-2024-000002",
        f"{code}-2024-000003",
    ]
    assert theirs.number == f"{other_provider.code}-2024-000001"
    assert (last_year.issue_date, last_year.number) == (date(2023, 12, 31), f"{code}-2023-000001")


def test_invoice_issue_refuses_a_second_invoice_for_the_same_connection_and_month(connection, creator):
    first = invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    with pytest.raises(InvoiceExists, match=first.number) as refused:
        invoice_issue(connection=connection, period=date(2024, 1, 15), created_by=creator, kwh=D("1"))

    assert refused.value.extra == {"invoiceId": first.pk}
    assert list(Invoice.objects.values_list("number", "current_charges")) == [(first.number, D("9750.00"))]
    # The refusal used no number: the next bill takes the one after the first.
    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator)
    assert february.number == f"{connection.provider.code}-2024-000002"


def test_invoice_issue_carries_the_open_balance_of_earlier_months_as_arrears(connection, creator, cash):
    january = invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    payment_post(invoice=january, amount=D("4000.00"), method=cash, received_by=creator)

    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator)

    assert (february.current_charges, february.arrears, february.payable_before_due) == (
        D("9750.00"),
        D("5750.00"),
        D("15500.00"),
    )
    assert february.payable_after_due == D("16475.00")
    # Arrears are printed, not owed twice: February's own balance is its own charges.
    assert february.balance == D("9750.00")
    assert_ledger_holds(connection)


def test_invoice_issue_counts_no_arrears_for_a_first_bill_or_a_cancelled_one(connection, creator):
    january = invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    invoice_update(invoice=january, updated_by=creator, cancel=True)

    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator)

    assert (january.arrears, february.arrears, february.payable_before_due) == (
        D("0.00"),
        D("0.00"),
        D("9750.00"),
    )
    assert_ledger_holds(connection)


def test_invoice_issue_dates_the_bill_due_the_providers_due_days_after_issue(creator):
    provider = ProviderFactory(due_days=14)
    FlatTariffFactory(provider=provider)
    connection = billable_connection(provider, months=2)

    january = invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    february = invoice_issue(
        connection=connection, period=FEBRUARY, created_by=creator, issue_date=date(2024, 3, 5)
    )

    assert (january.issue_date, january.due_date) == (date(2024, 1, 31), date(2024, 2, 14))
    assert (february.issue_date, february.due_date) == (date(2024, 3, 5), date(2024, 3, 19))


def test_invoice_issue_takes_a_due_date_given_but_not_one_before_issue(connection, creator):
    with pytest.raises(InvoiceRefused, match="before the issue date") as refused:
        invoice_issue(connection=connection, period=JANUARY, created_by=creator, due_date=date(2024, 1, 30))
    january = invoice_issue(
        connection=connection, period=JANUARY, created_by=creator, due_date=date(2024, 2, 1)
    )

    assert refused.value.field == "dueDate"
    assert (january.issue_date, january.due_date) == (date(2024, 1, 31), date(2024, 2, 1))
    assert Invoice.objects.count() == 1


def test_invoice_issue_refuses_a_month_without_readings_naming_the_month(flat_provider, connection, creator):
    flat_provider.estimate_missing_readings = False  # else the month is estimated (test_estimated_bills.py)
    flat_provider.save()

    with pytest.raises(InvoiceRefused, match="April 2024") as refused:
        invoice_issue(connection=connection, period=APRIL, created_by=creator)

    assert refused.value.field == "month"
    assert connection.number in refused.value.detail
    assert not Invoice.objects.exists()


def test_invoice_issue_refuses_readings_whose_registers_go_down(flat_provider, unread_connection, creator):
    zone = ZoneInfo(settings.TIME_ZONE)
    ReadingFactory(
        connection=unread_connection,
        taken_at=datetime(2023, 12, 28, 9, tzinfo=zone),
        import_peak=D("500"),
        import_off_peak=D("500"),
    )
    ReadingFactory(
        connection=unread_connection,
        taken_at=datetime(2024, 1, 28, 9, tzinfo=zone),
        import_peak=D("400"),
        import_off_peak=D("600"),
    )

    with pytest.raises(InvoiceRefused, match="register went down"):
        invoice_issue(connection=unread_connection, period=JANUARY, created_by=creator)

    assert not Invoice.objects.exists()


def test_invoice_issue_refuses_a_disconnected_connection(flat_provider, creator):
    connection = billable_connection(flat_provider, months=1, status=ConnectionStatus.DISCONNECTED)

    with pytest.raises(InvoiceRefused, match=f"{connection.number} is disconnected"):
        invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    assert not Invoice.objects.exists()


def test_invoice_issue_refuses_an_issue_date_in_the_future(connection, creator):
    tomorrow = timezone.localdate() + timedelta(days=1)

    with pytest.raises(InvoiceRefused, match="future") as refused:
        invoice_issue(connection=connection, period=JANUARY, created_by=creator, issue_date=tomorrow)

    assert refused.value.field == "issueDate"
    assert not Invoice.objects.exists()


def test_invoice_issue_refuses_when_no_tariff_is_in_force_in_the_period(creator):
    # Each day of a period is rated on the rows in force that day: January's period (29 December to
    # 28 January, read on the 28th) has none; February's (29 January to 28 February) has.
    provider = ProviderFactory()
    FlatTariffFactory(provider=provider, valid_from=date(2024, 1, 29))
    connection = billable_connection(provider, months=2)

    with pytest.raises(InvoiceRefused, match="No tariff") as refused:
        invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator)

    assert refused.value.field == "month"
    assert "from 2023-12-29 to 2024-01-28" in refused.value.detail
    assert list(Invoice.objects.values_list("pk", flat=True)) == [february.pk]


def test_invoice_issue_keeps_the_customer_and_provider_details_as_printed(flat_provider, creator):
    customer = CustomerFactory(
        provider=flat_provider,
        number="LHR-RES-0042",
        organisation="",
        user=UserFactory(
            provider=flat_provider,
            name="Amina Khan",
            email="amina@example.com",
            address="12 Mall Road, Lahore",
            phone="0300-1234567",
            roles=[Role.CUSTOMER],
        ),
    )
    connection = ConnectionFactory(
        customer=customer,
        number="LHR-1101",
        meter_number="M-778",
        meter_type="Single phase",
        division="Lahore Central",
        subdivision="Gulberg",
        connection_type=ConnectionTypeFactory(provider=flat_provider, code="R1", description="Residential"),
    )
    printed_name = flat_provider.name

    invoice = invoice_issue(connection=connection, period=JANUARY, created_by=creator, kwh=D("10"))
    customer.name = "Amina Butt"
    customer.save()
    flat_provider.name = "Renamed Power"
    flat_provider.save()

    invoice.refresh_from_db()
    assert invoice.customer_snapshot == {
        "customerId": "LHR-RES-0042",
        "name": "Amina Khan",
        "organisation": "",
        "kind": "Residential",
        "address": "12 Mall Road, Lahore",
        "phone": "0300-1234567",
        "email": "amina@example.com",
        "connectionId": "LHR-1101",
        "connectionType": "R1 Residential",
        "meterNumber": "M-778",
        "meterType": "Single phase",
        "division": "Lahore Central",
        "subdivision": "Gulberg",
    }
    assert invoice.provider_snapshot == {
        "code": flat_provider.code,
        "name": printed_name,
        "city": "Lahore",
        "email": flat_provider.email,
        "phone": "",
        "currency": "PKR",
    }


def test_invoice_issue_makes_the_invoice_its_creators_own(connection, creator):
    colleague = UserFactory(provider=connection.provider, roles=[Role.INVOICE_CREATOR])

    invoice = invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    for perm in ("invoicing.view_invoice", "invoicing.change_invoice", "invoicing.collect_payment"):
        assert role_allows(Role.INVOICE_CREATOR, perm, user=creator, obj=invoice)
        assert not role_allows(Role.INVOICE_CREATOR, perm, user=colleague, obj=invoice)
    assert get_perms(creator, invoice) == []  # by its columns: no object permission written


# --- changing an issued invoice --------------------------------------------------------------------


@pytest.fixture
def january(connection, creator):
    return invoice_issue(connection=connection, period=JANUARY, created_by=creator)


def test_invoice_update_moves_the_due_date(january, creator):
    invoice_update(invoice=january, updated_by=creator, due_date=date(2024, 2, 25))

    january.refresh_from_db()
    assert (january.due_date, january.status, january.balance) == (
        date(2024, 2, 25),
        InvoiceStatus.PENDING,
        D("9750.00"),
    )


def test_invoice_update_refuses_a_due_date_before_issue(january, creator):
    with pytest.raises(InvoiceRefused, match="before the issue date") as refused:
        invoice_update(invoice=january, updated_by=creator, due_date=date(2024, 1, 30))

    january.refresh_from_db()
    assert refused.value.field == "dueDate"
    assert january.due_date == date(2024, 2, 10)


def test_invoice_update_cancels_an_unpaid_invoice(connection, january, creator):
    invoice_update(invoice=january, updated_by=creator, cancel=True)

    january.refresh_from_db()
    assert (january.status, january.balance) == (InvoiceStatus.CANCELLED, D("0.00"))
    # Issued amounts never change, even on a cancelled bill.
    assert (january.current_charges, january.number) == (
        D("9750.00"),
        f"{connection.provider.code}-2024-000001",
    )
    assert_ledger_holds(connection)


def test_invoice_update_refuses_any_change_to_a_cancelled_invoice(january, creator):
    invoice_update(invoice=january, updated_by=creator, cancel=True)

    with pytest.raises(InvoiceCancelled):
        invoice_update(invoice=january, updated_by=creator, due_date=date(2024, 2, 25))
    with pytest.raises(InvoiceCancelled):
        invoice_update(invoice=january, updated_by=creator, kwh=D("1"))

    january.refresh_from_db()
    assert (january.due_date, january.current_charges) == (date(2024, 2, 10), D("9750.00"))


@time_machine.travel(datetime(2024, 3, 5, 12, tzinfo=ZoneInfo("Asia/Karachi")), tick=False)
def test_invoice_update_rerates_with_new_kwh_on_a_new_bill_replacing_the_first(connection, january, creator):
    replacement = invoice_update(invoice=january, updated_by=creator, kwh=D("400"))

    original = Invoice.objects.get(pk=january.pk)
    january = replacement
    assert (january.replaces_id, original.status, original.current_charges) == (
        original.pk,
        InvoiceStatus.CANCELLED,
        D("9750.00"),
    )
    assert (january.number, january.source, january.kwh_consumed, january.billing_days) == (
        f"{connection.provider.code}-2024-000002",
        InvoiceSource.KWH,
        D("400.0000"),
        D("31.000000"),
    )
    assert (january.current_charges, january.payable_before_due, january.balance) == (
        D("13000.00"),
        D("13000.00"),
        D("13000.00"),
    )
    assert (january.late_surcharge, january.payable_after_due) == (D("1300.00"), D("14300.00"))
    assert lines_of(january) == [(1, "energy", "Energy (all hours, slab 1)", D("13000.00"))]
    # The original keeps its lines.
    assert lines_of(original) == [(1, "energy", "Energy (all hours, slab 1)", D("9750.00"))]
    assert InvoiceLine.objects.count() == 2
    assert_ledger_holds(connection)


def test_invoice_update_rerates_from_the_readings_after_a_correction(connection, january, creator):
    last = connection.readings.get(taken_at__month=1, taken_at__year=2024)
    last.import_off_peak = D("300")
    last.save()

    january = invoice_update(invoice=january, updated_by=creator, rerate=True)

    assert (january.source, january.off_peak_units, january.kwh_consumed, january.current_charges) == (
        InvoiceSource.READINGS,
        D("300.0000"),
        D("400.0000"),
        D("13000.00"),
    )
    assert lines_of(january) == [(1, "energy", "Energy (all hours, slab 1)", D("13000.00"))]
    assert not Payment.objects.exists()
    assert_ledger_holds(connection)


def test_invoice_update_rerating_a_kwh_bill_from_the_readings_says_it_came_from_the_readings(
    connection, creator
):
    invoice = invoice_issue(connection=connection, period=JANUARY, created_by=creator, kwh=D("10"))

    invoice = invoice_update(invoice=invoice, updated_by=creator, rerate=True)

    assert (invoice.kwh_consumed, invoice.current_charges) == (D("300.0000"), D("9750.00"))
    assert invoice.source == InvoiceSource.READINGS


def test_invoice_issue_racing_a_billing_run_for_the_same_month_is_a_conflict(connection, creator):
    """The run's chunk does not lock connections: the unique constraint catches the clash."""
    clash = IntegrityError("duplicate key value violates unique constraint invoice_once_per_connection_month")

    with (
        mock.patch("invoicing.services.issue._number_and_insert", side_effect=clash),
        pytest.raises(InvoiceExists),
    ):
        invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    assert Invoice.objects.count() == 0


def test_invoice_issue_refuses_a_month_before_the_latest_bill(connection, creator):
    """A later bill already printed the arrears; an earlier month issued now would be paid out of order."""
    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator)

    with pytest.raises(InvoiceRefused, match=f"already billed for February 2024 \\({february.number}\\)"):
        invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    assert Invoice.objects.count() == 1


def test_a_cancelled_month_can_be_billed_again(connection, creator):
    january = invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    invoice_update(invoice=january, updated_by=creator, cancel=True)

    again = invoice_issue(connection=connection, period=JANUARY, created_by=creator, kwh=D("100"))

    assert again.number != january.number
    assert again.current_charges == D("3250.00")
    assert_ledger_holds(connection)


def test_cancelling_or_rerating_a_bill_a_later_bill_carries_is_refused(connection, creator):
    january = invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator)

    with pytest.raises(InvoiceLocked, match=february.number):
        invoice_update(invoice=january, updated_by=creator, cancel=True)
    with pytest.raises(InvoiceLocked, match=february.number):
        invoice_update(invoice=january, updated_by=creator, kwh=D("10"))

    january.refresh_from_db()
    assert (january.status, january.current_charges) == (InvoiceStatus.PENDING, D("9750.00"))


def test_a_due_date_more_than_ninety_days_after_issue_is_refused(connection, creator):
    january = invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    with pytest.raises(InvoiceRefused, match="at most 90 days"):
        invoice_update(invoice=january, updated_by=creator, due_date=date(2099, 12, 31))

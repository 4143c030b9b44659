"""The steps of a connection's life that bill or weigh money: a disconnection order for non-payment, a
reconnection and its fee on the next bill (exactly once), closing with the final bill at once, and a
move-out / move-in where each customer's balance stays theirs."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from auditing.models import AuditLog
from billing.lifecycle import LifecycleRefused, StatusConflict, connection_disconnect
from billing.models import ConnectionStatus, DisconnectionGround, EventKind
from billing.services import ReadingRefused, reading_record
from invoicing.models import Invoice, InvoiceStatus, PendingCharge
from invoicing.selectors import amount_payable, pending_chunks
from invoicing.services import (
    InvoiceRefused,
    Overpayment,
    billing_run_chunk_bill,
    billing_run_start,
    connection_close,
    connection_move,
    connection_reconnect,
    disconnection_order_issue,
    invoice_issue,
    invoice_update,
    payment_post,
)
from providers.models import Authority, TaxRule
from providers.services import provider_update, schedule_row_add
from tests.factories import (
    ConnectionFactory,
    CustomerFactory,
    ProviderFactory,
    UserFactory,
    billable_connection,
)
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db
D = Decimal
ZONE = ZoneInfo(settings.TIME_ZONE)
TODAY = datetime(2024, 6, 10, 12, 0, tzinfo=ZONE)
JANUARY, FEBRUARY, MARCH, APRIL, MAY = (date(2024, month, 1) for month in range(1, 6))
FEE = D("500.00")


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(TODAY, tick=False):
        yield


@pytest.fixture
def officer(flat_provider):
    return UserFactory(provider=flat_provider, roles=[Role.SUPER_CREATOR], designation="Revenue Officer")


@pytest.fixture
def fee_provider(flat_provider):
    return provider_update(provider=flat_provider, reconnection_fee=FEE)


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZONE)


def registers(peak: int, off_peak: int) -> dict[str, Decimal]:
    return {"import_peak": D(peak), "import_off_peak": D(off_peak)}


def read(connection, day: date, peak: int, off_peak: int) -> None:
    reading_record(connection=connection, taken_at=at(day, 9), registers=registers(peak, off_peak))


def bill(connection, period: date, user) -> Invoice:
    return invoice_issue(connection=connection, period=period, created_by=user)


def run_month(provider, period: date):
    run, _ = billing_run_start(provider=provider, period=period)
    for chunk_id in pending_chunks(run):
        billing_run_chunk_bill(chunk_id=chunk_id)
    run.refresh_from_db()
    return run


def lines_of(invoice: Invoice) -> list[tuple]:
    return list(invoice.lines.values_list("kind", "label", "amount"))


# The `connection` fixture reads 300 kWh a month (100 peak, 200 off-peak) on the 28th, December 2023 to
# March 2024, at a flat 32.50: each month's bill is 9750.00. Its registers on 28 March: 300 and 600.


# --- the disconnection order ---------------------------------------------------------------------


def test_disconnection_order_disconnects_for_the_overdue_balance_and_numbers_the_order(connection, officer):
    bill(connection, JANUARY, officer)  # due 10 February, unpaid on 10 June

    event = disconnection_order_issue(
        connection=connection, reason="January bill unpaid.", effective_at=at(date(2024, 6, 3)), by=officer
    )

    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.DISCONNECTED
    assert (event.kind, event.ground, event.overdue_balance, event.recorded_by) == (
        EventKind.DISCONNECTED,
        DisconnectionGround.NON_PAYMENT,
        D("9750.00"),
        officer,
    )
    assert event.order_number == f"{connection.provider.code}-DO-2024-000001"


def test_disconnection_order_is_refused_when_nothing_is_overdue(connection, officer):
    paid_on_time = invoice_issue(
        connection=connection, period=MARCH, created_by=officer, issue_date=date(2024, 6, 5)
    )  # due 15 June: not overdue yet

    with pytest.raises(LifecycleRefused, match="owes nothing overdue on connection") as refused:
        disconnection_order_issue(
            connection=connection, reason="Unpaid.", effective_at=at(date(2024, 6, 6)), by=officer
        )

    connection.refresh_from_db()
    assert (refused.value.field, connection.status, paid_on_time.status) == (
        "ground",
        ConnectionStatus.ACTIVE,
        InvoiceStatus.PENDING,
    )


def test_disconnection_order_is_refused_once_the_overdue_bill_is_paid(connection, officer, cash):
    january = bill(connection, JANUARY, officer)
    payment_post(invoice=january, amount=D("9750.00"), method=cash, received_by=officer)

    with pytest.raises(LifecycleRefused, match="owes nothing overdue"):
        disconnection_order_issue(
            connection=connection, reason="Unpaid.", effective_at=at(date(2024, 6, 3)), by=officer
        )


def test_disconnection_order_gives_its_number_back_when_refused(connection, officer):
    bill(connection, JANUARY, officer)
    connection_disconnect(
        connection=connection, reason="Requested.", effective_at=at(date(2024, 6, 1)), by=officer
    )

    with pytest.raises(StatusConflict, match="disconnected already"):
        disconnection_order_issue(
            connection=connection, reason="Unpaid.", effective_at=at(date(2024, 6, 3)), by=officer
        )
    connection_reconnect(connection=connection, reason="Back.", effective_at=at(date(2024, 6, 4)), by=officer)
    event = disconnection_order_issue(
        connection=connection, reason="Unpaid.", effective_at=at(date(2024, 6, 5)), by=officer
    )

    assert event.order_number.endswith("-DO-2024-000001")


# --- reconnection and its fee ----------------------------------------------------------------------


def test_connection_reconnect_makes_the_connection_active_and_charges_the_fee_once(
    fee_provider, connection, creator
):
    connection_disconnect(
        connection=connection, reason="Away.", effective_at=at(date(2024, 4, 5)), by=creator
    )

    event = connection_reconnect(
        connection=connection, reason="Back home.", effective_at=at(date(2024, 4, 10)), by=creator
    )

    connection.refresh_from_db()
    charge = PendingCharge.objects.get(connection=connection)
    assert connection.status == ConnectionStatus.ACTIVE
    assert (event.kind, event.details) == (EventKind.RECONNECTED, {"reconnectionFee": "500.00"})
    assert (charge.kind, charge.label, charge.amount, charge.customer, charge.event, charge.invoice) == (
        "reconnection_fee",
        "Reconnection fee",
        FEE,
        connection.customer,
        event,
        None,
    )


def test_the_reconnection_fee_is_a_line_of_the_next_bill_and_of_no_other(fee_provider, connection, creator):
    connection_disconnect(
        connection=connection, reason="Away.", effective_at=at(date(2024, 4, 5)), by=creator
    )
    connection_reconnect(
        connection=connection, reason="Back.", effective_at=at(date(2024, 4, 10)), by=creator
    )
    read(connection, date(2024, 4, 28), 400, 800)
    read(connection, date(2024, 5, 28), 500, 1000)

    april = bill(connection, APRIL, creator)
    may = bill(connection, MAY, creator)

    assert lines_of(april) == [
        ("energy", "Energy (all hours, slab 1)", D("9750.00")),
        ("fee", "Reconnection fee", D("500.00")),
    ]
    assert (april.fee_total, april.current_charges, april.payable_before_due, april.balance) == (
        D("500.00"),
        D("10250.00"),
        D("10250.00"),
        D("10250.00"),
    )
    assert april.late_surcharge == D("1025.00")  # 10% of the current charges, the fee among them
    assert (lines_of(may), may.fee_total, may.current_charges) == (
        [("energy", "Energy (all hours, slab 1)", D("9750.00"))],
        D("0.00"),
        D("9750.00"),
    )
    assert PendingCharge.objects.get().invoice == april
    assert_ledger_holds(connection)


def test_the_reconnection_fee_is_not_taxed(fee_provider, connection, creator):
    fbr = Authority.objects.create(provider=fee_provider, code="FBR", name="Federal Board of Revenue")
    schedule_row_add(
        row=TaxRule(
            provider=fee_provider, name="GST", authority=fbr, rate=D("0.17"), valid_from=date(2020, 1, 1)
        ),
        created_by=creator,
        today=date(2020, 1, 1),
    )
    connection_disconnect(
        connection=connection, reason="Away.", effective_at=at(date(2024, 4, 5)), by=creator
    )
    connection_reconnect(
        connection=connection, reason="Back.", effective_at=at(date(2024, 4, 10)), by=creator
    )
    read(connection, date(2024, 4, 28), 400, 800)

    april = bill(connection, APRIL, creator)

    assert lines_of(april) == [
        ("energy", "Energy (all hours, slab 1)", D("9750.00")),
        ("tax", "GST", D("1657.50")),  # 17% of the energy, not of the fee
        ("fee", "Reconnection fee", D("500.00")),
    ]
    assert (april.tax_total, april.current_charges) == (D("1657.50"), D("11907.50"))


def test_the_billing_run_bills_the_reconnection_fee_once(fee_provider, connection, creator):
    connection_disconnect(
        connection=connection, reason="Away.", effective_at=at(date(2024, 4, 5)), by=creator
    )
    connection_reconnect(
        connection=connection, reason="Back.", effective_at=at(date(2024, 4, 10)), by=creator
    )
    read(connection, date(2024, 4, 28), 400, 800)
    read(connection, date(2024, 5, 28), 500, 1000)

    april_run = run_month(fee_provider, APRIL)
    may_run = run_month(fee_provider, MAY)

    april, may = april_run.invoices.get(), may_run.invoices.get()
    assert (april.fee_total, april.current_charges, ("fee", "Reconnection fee", FEE) in lines_of(april)) == (
        FEE,
        D("10250.00"),
        True,
    )
    assert (may.fee_total, may.current_charges) == (D("0.00"), D("9750.00"))
    charge = PendingCharge.objects.get()
    assert charge.invoice == april
    update = AuditLog.objects.get(
        object_type="invoicing.pendingcharge", object_id=str(charge.pk), action="update"
    )
    assert (update.old_values, update.new_values) == ({"invoice": None}, {"invoice_id": april.pk})


def test_the_billing_run_reads_and_marks_a_chunks_pending_charges_in_one_query_each(fee_provider, creator):
    connections = [billable_connection(fee_provider, months=4) for _ in range(4)]
    for each in connections:
        connection_disconnect(connection=each, reason="Away.", effective_at=at(date(2024, 4, 29)), by=creator)
        connection_reconnect(connection=each, reason="Back.", effective_at=at(date(2024, 4, 30)), by=creator)
    run, _ = billing_run_start(provider=fee_provider, period=APRIL)
    (chunk_id,) = pending_chunks(run)

    with CaptureQueriesContext(db_connection) as queries:
        billing_run_chunk_bill(chunk_id=chunk_id)

    on_charges = [query["sql"] for query in queries if "invoicing_pendingcharge" in query["sql"]]
    assert len(on_charges) == 2  # read (and locked) at once, then marked billed at once
    assert sorted(run.invoices.values_list("fee_total", flat=True)) == [FEE] * 4
    assert not PendingCharge.objects.filter(invoice__isnull=True).exists()


def test_a_cancelled_bill_gives_its_reconnection_fee_to_the_next_one(fee_provider, connection, creator):
    connection_disconnect(
        connection=connection, reason="Away.", effective_at=at(date(2024, 4, 5)), by=creator
    )
    connection_reconnect(
        connection=connection, reason="Back.", effective_at=at(date(2024, 4, 10)), by=creator
    )
    read(connection, date(2024, 4, 28), 400, 800)
    first = bill(connection, APRIL, creator)

    invoice_update(invoice=first, updated_by=creator, cancel=True)
    again = bill(connection, APRIL, creator)

    assert (again.fee_total, again.current_charges) == (FEE, D("10250.00"))
    assert PendingCharge.objects.get().invoice == again


def test_a_re_rated_bill_keeps_its_reconnection_fee(fee_provider, connection, creator):
    connection_disconnect(
        connection=connection, reason="Away.", effective_at=at(date(2024, 4, 5)), by=creator
    )
    connection_reconnect(
        connection=connection, reason="Back.", effective_at=at(date(2024, 4, 10)), by=creator
    )
    read(connection, date(2024, 4, 28), 400, 800)
    april = bill(connection, APRIL, creator)

    replacement = invoice_update(invoice=april, updated_by=creator, kwh=D("100"))

    assert (lines_of(replacement), replacement.current_charges) == (
        [("energy", "Energy (all hours, slab 1)", D("3250.00")), ("fee", "Reconnection fee", FEE)],
        D("3750.00"),
    )
    # The fee is billed once: now on the bill that replaced April's.
    assert list(replacement.charges.values_list("amount", flat=True)) == [FEE]
    assert not april.charges.exists()


def test_a_provider_without_a_reconnection_fee_charges_none(connection, creator):
    connection_disconnect(
        connection=connection, reason="Away.", effective_at=at(date(2024, 4, 5)), by=creator
    )

    event = connection_reconnect(
        connection=connection, reason="Back.", effective_at=at(date(2024, 4, 10)), by=creator
    )

    assert (event.details, PendingCharge.objects.exists()) == ({}, False)


def test_connection_reconnect_after_non_payment_waits_for_the_overdue_balance(
    fee_provider, connection, officer, cash
):
    january = bill(connection, JANUARY, officer)
    disconnection_order_issue(
        connection=connection, reason="Unpaid.", effective_at=at(date(2024, 6, 3)), by=officer
    )

    with pytest.raises(
        LifecycleRefused, match=r"disconnected for non-payment .* and 9750\.00 is still overdue"
    ):
        connection_reconnect(
            connection=connection, reason="Paid?", effective_at=at(date(2024, 6, 4)), by=officer
        )
    payment_post(invoice=january, amount=D("9750.00"), method=cash, received_by=officer)
    connection_reconnect(
        connection=connection, reason="Paid in full.", effective_at=at(date(2024, 6, 5)), by=officer
    )

    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.ACTIVE
    assert PendingCharge.objects.get().amount == FEE


def test_connection_reconnect_refuses_an_active_connection(connection, creator):
    with pytest.raises(StatusConflict, match="cannot be reconnected: it is active already"):
        connection_reconnect(
            connection=connection, reason="Back.", effective_at=at(date(2024, 4, 10)), by=creator
        )


# --- closing ---------------------------------------------------------------------------------------


def test_connection_close_takes_the_final_reading_and_issues_the_final_bill_at_once(connection, officer):
    for month in (JANUARY, FEBRUARY, MARCH):
        bill(connection, month, officer)

    event = connection_close(
        connection=connection,
        closed_at=at(date(2024, 4, 15)),
        registers=registers(350, 700),
        reason="The house is demolished.",
        by=officer,
    )

    connection.refresh_from_db()
    final = Invoice.objects.get(connection=connection, period=APRIL)
    assert connection.status == ConnectionStatus.CLOSED
    assert (event.kind, event.reading.taken_at, event.details) == (
        EventKind.CLOSED,
        at(date(2024, 4, 15)),
        {"finalInvoice": final.number, "finalInvoiceId": final.pk},
    )
    # 28 March to 15 April: 50 peak + 100 off-peak kWh at 32.50, dated the day of the final reading.
    assert (final.kwh_consumed, final.current_charges, final.issue_date, final.due_date) == (
        D("150.0000"),
        D("4875.00"),
        date(2024, 4, 15),
        date(2024, 4, 25),
    )
    assert final.arrears == D("29250.00")  # January to March, unpaid


def test_a_closed_connection_is_never_billed_again_nor_read(connection, officer):
    connection_close(
        connection=connection,
        closed_at=at(date(2024, 4, 15)),
        registers=registers(350, 700),
        reason="Left.",
        by=officer,
    )

    with pytest.raises(ReadingRefused, match="is closed; it takes no readings"):
        read(connection, date(2024, 5, 28), 500, 1000)
    with pytest.raises(InvoiceRefused, match="is closed; it is not billed"):
        bill(connection, MAY, officer)
    run = run_month(connection.provider, MAY)
    assert (run.total, run.issued) == (0, 0)
    with pytest.raises(StatusConflict, match="closed for good"):
        connection_reconnect(
            connection=connection, reason="Back.", effective_at=at(date(2024, 5, 1)), by=officer
        )


def test_connection_close_carries_a_pending_reconnection_fee_on_the_final_bill(
    fee_provider, connection, officer
):
    connection_disconnect(
        connection=connection, reason="Away.", effective_at=at(date(2024, 4, 5)), by=officer
    )
    connection_reconnect(
        connection=connection, reason="Back.", effective_at=at(date(2024, 4, 10)), by=officer
    )

    connection_close(
        connection=connection,
        closed_at=at(date(2024, 4, 15)),
        registers=registers(350, 700),
        reason="Left.",
        by=officer,
    )

    final = Invoice.objects.get(connection=connection, period=APRIL)
    assert (final.fee_total, final.current_charges) == (FEE, D("5375.00"))


def test_a_disconnected_connection_is_closed_with_its_final_reading_and_bill(connection, officer):
    connection_disconnect(
        connection=connection, reason="Away.", effective_at=at(date(2024, 4, 5)), by=officer
    )

    connection_close(
        connection=connection,
        closed_at=at(date(2024, 4, 20)),
        registers=registers(320, 640),
        reason="Not back.",
        by=officer,
    )

    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.CLOSED
    assert Invoice.objects.get(connection=connection, period=APRIL).kwh_consumed == D("60.0000")


def test_connection_close_is_refused_when_the_final_readings_month_is_billed(connection, officer):
    read(connection, date(2024, 4, 28), 400, 800)
    april = bill(connection, APRIL, officer)

    with pytest.raises(
        LifecycleRefused, match=f"billed for April 2024 already \\({april.number}\\)"
    ) as refused:
        connection_close(
            connection=connection,
            closed_at=at(date(2024, 4, 30)),
            registers=registers(410, 820),
            reason="Left.",
            by=officer,
        )

    connection.refresh_from_db()
    assert (refused.value.field, connection.status, connection.readings.count()) == (
        "closedAt",
        ConnectionStatus.ACTIVE,
        5,
    )


def test_connection_close_is_refused_without_the_final_reading(connection, officer):
    with pytest.raises(LifecycleRefused, match="Give the final reading"):
        connection_close(
            connection=connection, closed_at=at(date(2024, 4, 15)), registers=None, reason="Left.", by=officer
        )


def test_connection_close_is_refused_when_the_final_bill_cannot_be_rated(connection, officer):
    with pytest.raises(ReadingRefused, match="lower than the reading"):
        connection_close(
            connection=connection,
            closed_at=at(date(2024, 4, 15)),
            registers=registers(10, 10),
            reason="Left.",
            by=officer,
        )

    connection.refresh_from_db()
    assert (connection.status, connection.events.exists()) == (ConnectionStatus.ACTIVE, False)


def test_a_connection_never_connected_is_closed_without_a_reading_or_a_bill(flat_provider, officer):
    pending = ConnectionFactory(
        customer=CustomerFactory(provider=flat_provider), status=ConnectionStatus.PENDING
    )

    event = connection_close(
        connection=pending,
        closed_at=at(date(2024, 6, 1)),
        registers=None,
        reason="Application withdrawn.",
        by=officer,
    )

    pending.refresh_from_db()
    assert (pending.status, event.reading, pending.invoices.exists()) == (
        ConnectionStatus.CLOSED,
        None,
        False,
    )


# --- moving out and in -------------------------------------------------------------------------------


@pytest.fixture
def incoming(flat_provider):
    return CustomerFactory(provider=flat_provider, name="Bilal Ahmed")


def test_connection_move_bills_the_outgoing_customer_to_the_move_out_reading(connection, incoming, officer):
    outgoing = connection.customer
    for month in (JANUARY, FEBRUARY, MARCH):
        bill(connection, month, officer)

    moved_out, moved_in = connection_move(
        connection=connection,
        move_at=at(date(2024, 4, 15)),
        registers=registers(350, 700),
        incoming_customer=incoming,
        reason="Tenancy ended; new tenant from 15 April.",
        by=officer,
    )

    connection.refresh_from_db()
    final = Invoice.objects.get(connection=connection, period=APRIL)
    assert connection.customer == incoming
    assert (final.customer, final.current_charges, final.arrears, final.issue_date) == (
        outgoing,
        D("4875.00"),
        D("29250.00"),
        date(2024, 4, 15),
    )
    assert final.customer_snapshot["customerId"] == outgoing.number
    assert (moved_out.kind, moved_out.customer, moved_out.details) == (
        EventKind.MOVED_OUT,
        outgoing,
        {"finalInvoice": final.number, "finalInvoiceId": final.pk, "incomingCustomer": incoming.number},
    )
    assert (moved_in.kind, moved_in.customer, moved_in.reading, moved_in.details) == (
        EventKind.MOVED_IN,
        incoming,
        moved_out.reading,
        {"outgoingCustomer": outgoing.number},
    )


def test_the_incoming_customer_is_billed_from_the_move_out_reading_without_the_outgoing_ones_debt(
    connection, incoming, officer, cash
):
    outgoing = connection.customer
    for month in (JANUARY, FEBRUARY, MARCH):
        bill(connection, month, officer)
    connection_move(
        connection=connection, move_at=at(date(2024, 4, 15)), registers=registers(350, 700),
        incoming_customer=incoming, reason="New tenant.", by=officer,
    )  # fmt: skip
    read(connection, date(2024, 5, 28), 450, 900)

    may = bill(connection, MAY, officer)

    # 15 April to 28 May: 100 peak + 200 off-peak kWh, the incoming customer's own, with no arrears.
    assert (may.customer, may.kwh_consumed, may.current_charges, may.arrears, may.payable_before_due) == (
        incoming,
        D("300.0000"),
        D("9750.00"),
        D("0.00"),
        D("9750.00"),
    )
    assert amount_payable(may) == D("9750.00")
    with pytest.raises(Overpayment, match=r"take at most 9750\.00"):
        payment_post(invoice=may, amount=D("9750.01"), method=cash, received_by=officer)
    payment, _ = payment_post(invoice=may, amount=D("9750.00"), method=cash, received_by=officer)

    assert list(payment.allocations.values_list("invoice", flat=True)) == [may.pk]
    owed = Invoice.objects.filter(customer=outgoing, status=InvoiceStatus.PENDING)
    assert sum(row.balance for row in owed) == D("34125.00")  # January to March and the final bill
    assert_ledger_holds(connection)


def test_the_outgoing_customer_pays_their_own_bills_after_the_move(connection, incoming, officer, cash):
    for month in (JANUARY, FEBRUARY):
        bill(connection, month, officer)
    connection_move(
        connection=connection, move_at=at(date(2024, 3, 30)), registers=registers(310, 620),
        incoming_customer=incoming, reason="New tenant.", by=officer,
    )  # fmt: skip
    read(connection, date(2024, 4, 28), 400, 800)
    april = bill(connection, APRIL, officer)
    final = Invoice.objects.get(connection=connection, period=MARCH)

    payment, _ = payment_post(invoice=final, amount=amount_payable(final), method=cash, received_by=officer)

    assert amount_payable(final) == D("0.00")
    assert sorted(payment.allocations.values_list("invoice__period", flat=True)) == [JANUARY, FEBRUARY, MARCH]
    april.refresh_from_db()
    assert (april.customer, april.status, april.balance, april.arrears) == (
        incoming,
        InvoiceStatus.PENDING,
        D("8775.00"),  # 30 March to 28 April: 90 peak + 180 off-peak kWh
        D("0.00"),
    )
    assert_ledger_holds(connection)


def test_the_outgoing_customers_reconnection_fee_goes_on_their_final_bill(
    fee_provider, connection, incoming, officer
):
    connection_disconnect(
        connection=connection, reason="Away.", effective_at=at(date(2024, 4, 5)), by=officer
    )
    connection_reconnect(
        connection=connection, reason="Back.", effective_at=at(date(2024, 4, 10)), by=officer
    )

    connection_move(
        connection=connection, move_at=at(date(2024, 4, 15)), registers=registers(350, 700),
        incoming_customer=incoming, reason="New tenant.", by=officer,
    )  # fmt: skip
    read(connection, date(2024, 5, 28), 450, 900)
    may = bill(connection, MAY, officer)

    final = Invoice.objects.get(connection=connection, period=APRIL)
    assert (final.fee_total, may.fee_total) == (FEE, D("0.00"))


def test_the_overdue_balance_of_the_outgoing_customer_is_no_ground_to_disconnect_the_incoming_one(
    connection, incoming, officer
):
    bill(connection, JANUARY, officer)  # overdue, the outgoing customer's
    connection_move(
        connection=connection, move_at=at(date(2024, 4, 15)), registers=registers(350, 700),
        incoming_customer=incoming, reason="New tenant.", by=officer,
    )  # fmt: skip

    with pytest.raises(LifecycleRefused, match="Bilal Ahmed owes nothing overdue"):
        disconnection_order_issue(
            connection=connection, reason="Unpaid.", effective_at=at(date(2024, 6, 1)), by=officer
        )


def test_connection_move_clears_the_outgoing_customers_declared_income(connection, incoming, officer):
    connection.declared_monthly_income = D("30000.00")
    connection.income_declared_on = date(2024, 1, 5)
    connection.save()

    connection_move(
        connection=connection, move_at=at(date(2024, 4, 15)), registers=registers(350, 700),
        incoming_customer=incoming, reason="New tenant.", by=officer,
    )  # fmt: skip

    connection.refresh_from_db()
    assert (connection.declared_monthly_income, connection.income_declared_on) == (None, None)


def test_connection_move_to_the_same_customer_is_refused(connection, officer):
    with pytest.raises(LifecycleRefused, match=r"is the customer of connection \S+ already") as refused:
        connection_move(
            connection=connection, move_at=at(date(2024, 4, 15)), registers=registers(350, 700),
            incoming_customer=connection.customer, reason="?", by=officer,
        )  # fmt: skip

    assert refused.value.field == "incomingCustomer"


def test_connection_move_to_another_providers_customer_is_refused(connection, officer):
    stranger = CustomerFactory(provider=ProviderFactory())

    with pytest.raises(LifecycleRefused, match="must be a customer of"):
        connection_move(
            connection=connection, move_at=at(date(2024, 4, 15)), registers=registers(350, 700),
            incoming_customer=stranger, reason="?", by=officer,
        )  # fmt: skip

    assert not Invoice.objects.filter(connection=connection).exists()


def test_connection_move_of_a_disconnected_connection_is_refused(connection, incoming, officer):
    connection_disconnect(
        connection=connection, reason="Away.", effective_at=at(date(2024, 4, 5)), by=officer
    )

    with pytest.raises(
        StatusConflict, match="cannot be passed to another customer: it is disconnected: reconnect it first"
    ):
        connection_move(
            connection=connection, move_at=at(date(2024, 4, 15)), registers=registers(350, 700),
            incoming_customer=incoming, reason="New tenant.", by=officer,
        )  # fmt: skip


def test_after_a_mid_month_move_the_incoming_customers_next_bill_starts_at_the_move_out_reading(
    flat_provider, incoming, officer
):
    connection = billable_connection(flat_provider, months=2)  # read to 28 February: 200 and 400
    for month in (JANUARY, FEBRUARY):
        bill(connection, month, officer)
    connection_move(
        connection=connection, move_at=at(date(2024, 3, 15)), registers=registers(250, 500),
        incoming_customer=incoming, reason="New tenant.", by=officer,
    )  # fmt: skip
    read(connection, date(2024, 3, 28), 300, 600)
    read(connection, date(2024, 4, 28), 400, 800)

    april = bill(connection, APRIL, officer)

    final = Invoice.objects.get(connection=connection, period=MARCH)
    assert (final.period_start, final.period_end, final.kwh_consumed) == (
        at(date(2024, 2, 28), 9),
        at(date(2024, 3, 15)),
        D("150.0000"),
    )
    # Every day once: the outgoing customer's to 15 March, the incoming one's from it.
    assert (april.customer, april.period_start, april.period_end, april.kwh_consumed, april.arrears) == (
        incoming,
        final.period_end,
        at(date(2024, 4, 28), 9),
        D("450.0000"),
        D("0.00"),
    )
    assert_ledger_holds(connection)


def test_the_billing_run_of_the_move_out_month_leaves_the_final_bill_alone(flat_provider, incoming, officer):
    connection = billable_connection(flat_provider, months=2)
    connection_move(
        connection=connection, move_at=at(date(2024, 3, 15)), registers=registers(250, 500),
        incoming_customer=incoming, reason="New tenant.", by=officer,
    )  # fmt: skip
    read(connection, date(2024, 3, 28), 300, 600)

    run = run_month(flat_provider, MARCH)

    assert (run.issued, run.already_billed) == (0, 1)
    assert Invoice.objects.get(connection=connection, period=MARCH).customer != incoming


def test_a_final_bill_covers_the_months_left_unbilled_since_the_last_bill(connection, officer):
    bill(connection, JANUARY, officer)  # February and March left unbilled

    connection_close(
        connection=connection,
        closed_at=at(date(2024, 4, 15)),
        registers=registers(350, 700),
        reason="Left.",
        by=officer,
    )

    final = Invoice.objects.get(connection=connection, period=APRIL)
    # From the January bill's end (28 January: 100 and 200) to the final reading.
    assert (final.period_start, final.kwh_consumed, final.current_charges) == (
        at(date(2024, 1, 28), 9),
        D("750.0000"),
        D("24375.00"),
    )


def test_a_credit_the_outgoing_customers_final_bill_carries_never_comes_off_the_incoming_ones_bill(
    connection, incoming, officer
):
    for month in (JANUARY, FEBRUARY, MARCH):
        bill(connection, month, officer)
    estimate = bill(connection, APRIL, officer)  # no reading in April: 300 kWh estimated
    connection_move(
        connection=connection, move_at=at(date(2024, 5, 2)), registers=registers(303, 607),
        incoming_customer=incoming, reason="New tenant.", by=officer,
    )  # fmt: skip
    read(connection, date(2024, 6, 5), 403, 807)

    june = bill(connection, date(2024, 6, 1), officer)

    final = Invoice.objects.get(connection=connection, period=MAY)
    # The final bill trues up the estimate: 10 kWh since 28 March, less the estimate's energy.
    assert (estimate.estimated, final.current_charges, final.credit_carried > 0) == (True, D("0.00"), True)
    assert (june.customer, june.credit_brought, june.current_charges) == (incoming, D("0.00"), D("9750.00"))
    assert_ledger_holds(connection)

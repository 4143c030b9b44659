"""invoices_mark_overdue: unpaid bills past their due date become Overdue and carry the provider's
late surcharge once, as an audited adjustment; the job may run any number of times."""

import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from threading import Event
from unittest import mock

import pytest
from django.db import connection as database
from django.db import connections
from django.utils import timezone

from billing.signals import rows_bulk_created, rows_bulk_updated
from invoicing import tasks
from invoicing.models import Adjustment, AdjustmentKind, Invoice, InvoiceStatus
from invoicing.services import (
    InvoiceLocked,
    Overpayment,
    invoice_issue,
    invoice_update,
    invoices_mark_overdue,
    payment_post,
    payments,
)
from tests.factories import FlatTariffFactory, ProviderFactory, billable_connection
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db
D = Decimal
JANUARY, FEBRUARY = date(2024, 1, 1), date(2024, 2, 1)
DUE = date(2024, 2, 10)  # January's bill: issued 31 January, 10 days to pay
DAY_AFTER_DUE = date(2024, 2, 11)


@pytest.fixture
def january(connection, creator):
    """9750.00, due 10 February 2024; its late surcharge is 10%: 975.00."""
    return invoice_issue(connection=connection, period=JANUARY, created_by=creator)


@pytest.fixture
def bulk_signals():
    """What the bulk signals carried, by signal name, as (sender, kwargs) pairs."""
    sent: dict[str, list] = {"created": [], "updated": []}

    def on_created(sender, **kwargs):
        sent["created"].append((sender, kwargs))

    def on_updated(sender, **kwargs):
        sent["updated"].append((sender, kwargs))

    rows_bulk_created.connect(on_created, weak=False, dispatch_uid="test-overdue-created")
    rows_bulk_updated.connect(on_updated, weak=False, dispatch_uid="test-overdue-updated")
    yield sent
    rows_bulk_created.disconnect(dispatch_uid="test-overdue-created")
    rows_bulk_updated.disconnect(dispatch_uid="test-overdue-updated")


def test_invoices_mark_overdue_marks_an_unpaid_bill_past_due_and_adds_the_surcharge(
    connection, january, flat_provider
):
    marked = invoices_mark_overdue(provider=flat_provider, today=DAY_AFTER_DUE)

    january.refresh_from_db()
    assert marked == 1
    assert (january.status, january.late_surcharge, january.adjustment_total, january.balance) == (
        InvoiceStatus.OVERDUE,
        D("975.00"),
        D("975.00"),
        D("10725.00"),
    )
    # The issued amounts stay as printed.
    assert (january.current_charges, january.payable_after_due) == (D("9750.00"), D("10725.00"))
    surcharge = Adjustment.objects.get()
    assert (surcharge.invoice, surcharge.kind, surcharge.direction, surcharge.amount) == (
        january,
        AdjustmentKind.LATE_SURCHARGE,
        "debit",
        D("975.00"),
    )
    assert (surcharge.original_amount, surcharge.balance_before, surcharge.balance_after) == (
        D("9750.00"),
        D("9750.00"),
        D("10725.00"),
    )
    assert (surcharge.officer, surcharge.officer_name, surcharge.officer_designation) == (None, "", "")
    assert (
        surcharge.reason
        == "Late payment surcharge: 10% of current charges 9,750.00, unpaid after 2024-02-10."
    )
    assert surcharge.number == f"{flat_provider.code}-ADJ-2024-000001"
    assert_ledger_holds(connection)


def test_invoices_mark_overdue_a_second_time_changes_nothing(connection, january, flat_provider):
    invoices_mark_overdue(provider=flat_provider, today=DAY_AFTER_DUE)

    again_that_day = invoices_mark_overdue(provider=flat_provider, today=DAY_AFTER_DUE)
    a_month_later = invoices_mark_overdue(provider=flat_provider, today=date(2024, 3, 11))

    january.refresh_from_db()
    assert (again_that_day, a_month_later) == (0, 0)
    assert Adjustment.objects.count() == 1
    assert (january.status, january.adjustment_total, january.balance) == (
        InvoiceStatus.OVERDUE,
        D("975.00"),
        D("10725.00"),
    )
    assert_ledger_holds(connection)


def test_an_overdue_bills_due_date_cannot_be_moved_to_escape_its_surcharge(
    connection, january, flat_provider, creator
):
    invoices_mark_overdue(provider=flat_provider, today=DAY_AFTER_DUE)

    with pytest.raises(InvoiceLocked, match="adjustment"):
        invoice_update(invoice=january, updated_by=creator, due_date=timezone.localdate())
    marked_again = invoices_mark_overdue(provider=flat_provider, today=date(2099, 1, 1))

    january.refresh_from_db()
    assert marked_again == 0
    assert Adjustment.objects.count() == 1
    assert (january.status, january.balance) == (InvoiceStatus.OVERDUE, D("10725.00"))
    assert_ledger_holds(connection)


def test_invoices_mark_overdue_surcharges_a_partly_paid_bill_on_its_current_charges(
    connection, january, flat_provider, creator, cash
):
    payment_post(invoice=january, amount=D("4000.00"), method=cash, received_by=creator)

    invoices_mark_overdue(provider=flat_provider, today=DAY_AFTER_DUE)

    january.refresh_from_db()
    assert (january.status, january.amount_paid, january.adjustment_total, january.balance) == (
        InvoiceStatus.OVERDUE,
        D("4000.00"),
        D("975.00"),
        D("6725.00"),
    )
    assert Adjustment.objects.get().balance_before == D("5750.00")
    assert_ledger_holds(connection)


def test_invoices_mark_overdue_leaves_paid_cancelled_and_not_yet_due_bills_alone(
    connection, january, flat_provider, creator, cash
):
    payment_post(invoice=january, amount=D("9750.00"), method=cash, received_by=creator)
    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator)  # due 10 March
    neighbour = billable_connection(flat_provider, months=1)
    cancelled = invoice_issue(connection=neighbour, period=JANUARY, created_by=creator)
    invoice_update(invoice=cancelled, updated_by=creator, cancel=True)

    marked = invoices_mark_overdue(provider=flat_provider, today=date(2024, 3, 10))

    assert marked == 0
    assert not Adjustment.objects.exists()
    assert list(Invoice.objects.order_by("pk").values_list("pk", "status", "balance")) == [
        (january.pk, InvoiceStatus.PAID, D("0.00")),
        (february.pk, InvoiceStatus.PENDING, D("9750.00")),
        (cancelled.pk, InvoiceStatus.CANCELLED, D("0.00")),
    ]
    assert_ledger_holds(connection, neighbour)


def test_invoices_mark_overdue_touches_only_the_given_provider(connection, january, creator):
    other = ProviderFactory()
    FlatTariffFactory(provider=other)

    marked = invoices_mark_overdue(provider=other, today=DAY_AFTER_DUE)

    january.refresh_from_db()
    assert marked == 0
    assert (january.status, january.balance) == (InvoiceStatus.PENDING, D("9750.00"))


def test_invoices_mark_overdue_adds_no_surcharge_when_the_provider_charges_none(creator):
    provider = ProviderFactory(late_surcharge_percent=D("0"))
    FlatTariffFactory(provider=provider)
    connection = billable_connection(provider, months=1)
    invoice = invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    marked = invoices_mark_overdue(provider=provider, today=DAY_AFTER_DUE)

    invoice.refresh_from_db()
    assert marked == 1
    assert not Adjustment.objects.exists()
    assert (invoice.status, invoice.late_surcharge, invoice.balance) == (
        InvoiceStatus.OVERDUE,
        D("0.00"),
        D("9750.00"),
    )
    assert_ledger_holds(connection)


def test_paying_an_overdue_bill_in_full_makes_it_paid(connection, january, flat_provider, creator, cash):
    invoices_mark_overdue(provider=flat_provider, today=DAY_AFTER_DUE)

    with pytest.raises(Overpayment) as refused:
        payment_post(invoice=january, amount=D("10725.01"), method=cash, received_by=creator)
    part, _ = payment_post(invoice=january, amount=D("5000.00"), method=cash, received_by=creator)
    january.refresh_from_db()
    still_overdue = (january.status, january.balance)
    rest, _ = payment_post(invoice=january, amount=D("5725.00"), method=cash, received_by=creator)

    january.refresh_from_db()
    assert refused.value.extra == {"payable": "10725.00"}
    assert still_overdue == (InvoiceStatus.OVERDUE, D("5725.00"))
    assert (january.status, january.amount_paid, january.balance, january.paid_on) == (
        InvoiceStatus.PAID,
        D("10725.00"),
        D("0.00"),
        timezone.localdate(),
    )
    assert (part.payable_before, rest.payable_after) == (D("10725.00"), D("0.00"))
    assert_ledger_holds(connection)


def test_invoices_mark_overdue_sends_the_bulk_signals(connection, january, flat_provider, bulk_signals):
    invoices_mark_overdue(provider=flat_provider, today=DAY_AFTER_DUE)

    surcharge = Adjustment.objects.get()
    [(created_sender, created)] = bulk_signals["created"]
    [(updated_sender, updated)] = bulk_signals["updated"]
    assert created_sender is Adjustment
    assert [(row.pk, row.amount) for row in created["rows"]] == [(surcharge.pk, D("975.00"))]
    assert updated_sender is Invoice
    assert [(row.pk, row.status, row.balance) for row in updated["rows"]] == [
        (january.pk, InvoiceStatus.OVERDUE, D("10725.00"))
    ]
    assert set(updated["fields"]) == {"status", "balance", "adjustment_total"}
    assert updated["before"][january.pk]["status"] == InvoiceStatus.PENDING
    assert updated["before"][january.pk]["balance"] == D("9750.00")


def test_invoices_mark_overdue_tells_the_audit_trail_the_old_value_of_every_changed_field(
    connection, january, flat_provider, bulk_signals
):
    invoices_mark_overdue(provider=flat_provider, today=DAY_AFTER_DUE)

    [(_, updated)] = bulk_signals["updated"]
    assert updated["before"] == {
        january.pk: {"status": InvoiceStatus.PENDING, "balance": D("9750.00"), "adjustment_total": D("0.00")}
    }


def test_invoices_mark_overdue_sends_no_signal_when_nothing_is_late(january, flat_provider, bulk_signals):
    invoices_mark_overdue(provider=flat_provider, today=DUE)

    assert bulk_signals == {"created": [], "updated": []}


def test_the_daily_overdue_task_marks_every_active_providers_late_bills(
    connection, january, flat_provider, creator
):
    dormant = ProviderFactory(is_active=False)
    FlatTariffFactory(provider=dormant)
    dormant_connection = billable_connection(dormant, months=1)
    dormant_bill = invoice_issue(connection=dormant_connection, period=JANUARY, created_by=creator)

    with mock.patch.object(timezone, "localdate", return_value=DAY_AFTER_DUE):
        tasks.mark_overdue.delay()

    january.refresh_from_db()
    dormant_bill.refresh_from_db()
    assert (january.status, january.balance) == (InvoiceStatus.OVERDUE, D("10725.00"))
    assert (dormant_bill.status, dormant_bill.balance) == (InvoiceStatus.PENDING, D("9750.00"))
    assert_ledger_holds(connection, dormant_connection)


# --- the overdue job beside a payment ------------------------------------------------------------


def on_own_connection(call, **kwargs):
    """Run a service on this thread's own database connection, as a worker and a cashier do."""
    try:
        return call(**kwargs)
    finally:
        connections.close_all()


def until_waiting_on_a_lock_or_done(job: Future) -> None:
    """Wait until `job` (another connection) queues for a row lock, or has finished without one."""
    deadline = time.monotonic() + 30
    with database.cursor() as cursor:
        while not job.done() and time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)


@pytest.mark.skipif(database.vendor != "postgresql", reason="row locks and two connections: PostgreSQL only")
@pytest.mark.django_db(transaction=True)
def test_the_overdue_job_and_a_payment_on_a_later_bill_never_deadlock(
    connection, flat_provider, creator, cash
):
    january = invoice_issue(connection=connection, period=JANUARY, created_by=creator)  # due 10 February
    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator)  # due 10 March
    presented_bill_locked, go_on = Event(), Event()
    lock_for_payment = payments.lock_for_payment

    def then_hold_the_locks(invoice, **options):
        locked = lock_for_payment(invoice, **options)
        presented_bill_locked.set()
        go_on.wait(timeout=30)
        return locked

    paused = mock.patch.object(payments, "lock_for_payment", side_effect=then_hold_the_locks)
    with paused, ThreadPoolExecutor(max_workers=2) as pool:
        paying = pool.submit(
            on_own_connection,
            payment_post,
            invoice=february,
            amount=D("12000.00"),
            method=cash,
            received_by=creator,
        )
        assert presented_bill_locked.wait(timeout=30)
        marking = pool.submit(
            on_own_connection, invoices_mark_overdue, provider=flat_provider, today=date(2024, 3, 11)
        )
        until_waiting_on_a_lock_or_done(marking)
        go_on.set()
        payment, _ = paying.result(timeout=60)
        marking.result(timeout=60)

    january.refresh_from_db()
    february.refresh_from_db()
    assert payment.amount == D("12000.00")
    # Whichever ran first, January is settled and February is late and partly paid.
    assert (january.status, february.status) == (InvoiceStatus.PAID, InvoiceStatus.OVERDUE)
    assert_ledger_holds(connection)

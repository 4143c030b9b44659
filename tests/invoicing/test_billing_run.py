"""The monthly billing run: planned once in chunks of connection ids, each chunk billed in its own
transaction, resumable after a crash, never billing a connection twice a month; its management
command and its Celery task."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from billing.models import ConnectionStatus
from config.errors import DomainError
from invoicing import services, tasks
from invoicing.models import (
    BillingRun,
    BillingRunStatus,
    DocumentCounter,
    Invoice,
    InvoiceSource,
    InvoiceStatus,
    ProblemKind,
)
from invoicing.selectors import pending_chunks
from invoicing.services import billing_run_chunk_bill, billing_run_start, invoice_issue, issue
from tests.factories import (
    ConnectionFactory,
    CustomerFactory,
    FlatTariffFactory,
    ProviderFactory,
    ReadingFactory,
    billable_connection,
)
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db
D = Decimal
JANUARY = date(2024, 1, 1)


def seven_connections(provider) -> dict:
    """In id order: billable, disconnected, billable, no readings, billable x 3. Six are active:
    with chunks of 2, the disconnected one lies inside the first chunk's id range, the unread one
    shares the second chunk with a billable one."""
    billable_one = billable_connection(provider, months=1)
    disconnected = billable_connection(provider, months=1, status=ConnectionStatus.DISCONNECTED)
    billable_two = billable_connection(provider, months=1)
    unread = ConnectionFactory(customer=CustomerFactory(provider=provider))
    billable_rest = [billable_connection(provider, months=1) for _ in range(3)]
    return {
        "billable": [billable_one, billable_two, *billable_rest],
        "disconnected": disconnected,
        "unread": unread,
        "all": [billable_one, disconnected, billable_two, unread, *billable_rest],
    }


@pytest.fixture
def setup(flat_provider) -> dict:
    return seven_connections(flat_provider)


def bill_pending(run: BillingRun) -> BillingRun:
    """What a worker pool does with a run: bill each pending chunk, here one after another."""
    for chunk_id in pending_chunks(run):
        billing_run_chunk_bill(chunk_id=chunk_id)
    run.refresh_from_db()
    return run


def counters(run: BillingRun) -> dict:
    run.refresh_from_db()
    return {
        "status": run.status,
        "total": run.total,
        "done": run.done,
        "issued": run.issued,
        "already_billed": run.already_billed,
        "skipped": run.skipped,
        "failed": run.failed,
        "billed_amount": run.billed_amount,
    }


def billed(provider, connections: list) -> list[tuple[str, int]]:
    """The provider's invoices as (number without the provider code, position of the connection)."""
    return [
        (number.removeprefix(f"{provider.code}-"), [c.pk for c in connections].index(connection_id))
        for number, connection_id in Invoice.objects.filter(provider=provider)
        .order_by("number")
        .values_list("number", "connection_id")
    ]


def readings(connection, *registers: tuple[datetime, str, str]) -> None:
    for taken_at, peak, off_peak in registers:
        ReadingFactory(
            connection=connection, taken_at=taken_at, import_peak=D(peak), import_off_peak=D(off_peak)
        )


COMPLETED_CLEAN = {
    "status": BillingRunStatus.COMPLETED,
    "total": 6,
    "done": 6,
    "issued": 5,
    "already_billed": 0,
    "skipped": 1,
    "failed": 0,
    "billed_amount": D("48750.00"),
}
# Billable connections are at positions 0, 2, 4, 5, 6 of `all`; numbers follow them in id order.
CLEAN_NUMBERS = [
    ("2024-000001", 0),
    ("2024-000002", 2),
    ("2024-000003", 4),
    ("2024-000004", 5),
    ("2024-000005", 6),
]


def test_billing_run_bills_every_active_connection_with_readings(flat_provider, setup):
    run, new = billing_run_start(provider=flat_provider, period=JANUARY, chunk_size=2)

    assert new
    assert (run.period, run.issue_date, run.total, run.status) == (
        JANUARY,
        date(2024, 1, 31),
        6,
        BillingRunStatus.RUNNING,
    )
    assert list(run.chunks.values_list("index", "size", "done")) == [
        (0, 2, False),
        (1, 2, False),
        (2, 2, False),
    ]

    bill_pending(run)

    assert counters(run) == COMPLETED_CLEAN
    assert run.finished_at is not None
    assert not run.chunks.filter(done=False).exists()
    assert billed(flat_provider, setup["all"]) == CLEAN_NUMBERS
    assert set(
        Invoice.objects.values_list(
            "source", "billing_run", "issue_date", "due_date", "current_charges", "status"
        )
    ) == {
        (InvoiceSource.RUN, run.pk, date(2024, 1, 31), date(2024, 2, 10), D("9750.00"), InvoiceStatus.PENDING)
    }
    [problem] = run.problems.all()
    assert (problem.connection, problem.kind) == (setup["unread"], ProblemKind.SKIPPED)
    assert problem.reason == (
        f"Connection {setup['unread'].number} has no reading in January 2024 and no history to estimate one "
        "from (no actual period between two readings before it); it is billed once a reading comes."
    )
    assert not Invoice.objects.filter(connection=setup["disconnected"]).exists()
    assert_ledger_holds(*setup["all"])


def test_billing_run_for_a_month_already_billed_issues_nothing_twice(flat_provider, setup):
    first, _ = billing_run_start(provider=flat_provider, period=JANUARY, chunk_size=2)
    bill_pending(first)

    second, new = billing_run_start(provider=flat_provider, period=JANUARY, chunk_size=2)
    bill_pending(second)

    assert (new, second.pk != first.pk) == (True, True)
    assert counters(second) == {
        **COMPLETED_CLEAN,
        "issued": 0,
        "already_billed": 5,
        "billed_amount": D("0.00"),
    }
    assert billed(flat_provider, setup["all"]) == CLEAN_NUMBERS
    assert_ledger_holds(*setup["all"])


def test_billing_run_counts_a_bill_a_clerk_issued_first_as_already_billed(flat_provider, setup, creator):
    by_hand = invoice_issue(connection=setup["billable"][2], period=JANUARY, created_by=creator, kwh=D("10"))

    run, _ = billing_run_start(provider=flat_provider, period=JANUARY, chunk_size=2)
    bill_pending(run)

    by_hand.refresh_from_db()
    assert counters(run) == {
        **COMPLETED_CLEAN,
        "issued": 4,
        "already_billed": 1,
        "billed_amount": D("39000.00"),
    }
    assert (by_hand.source, by_hand.current_charges, by_hand.billing_run) == (
        InvoiceSource.KWH,
        D("325.00"),
        None,
    )
    assert Invoice.objects.count() == 5
    assert_ledger_holds(*setup["all"])


def test_billing_run_chunk_billed_twice_issues_nothing_the_second_time(flat_provider, setup):
    run, _ = billing_run_start(provider=flat_provider, period=JANUARY, chunk_size=2)
    first_chunk = pending_chunks(run)[0]

    first_delivery = billing_run_chunk_bill(chunk_id=first_chunk)
    second_delivery = billing_run_chunk_bill(chunk_id=first_chunk)

    assert (first_delivery, second_delivery) == (True, False)
    assert Invoice.objects.count() == 2
    assert counters(run) == {
        **COMPLETED_CLEAN,
        "status": BillingRunStatus.RUNNING,
        "done": 2,
        "issued": 2,
        "skipped": 0,
        "billed_amount": D("19500.00"),
    }
    assert_ledger_holds(*setup["all"])


def test_billing_run_start_resumes_an_unfinished_run(flat_provider, setup):
    run, _ = billing_run_start(provider=flat_provider, period=JANUARY, chunk_size=2)
    first, *rest = pending_chunks(run)
    billing_run_chunk_bill(chunk_id=first)

    resumed, new = billing_run_start(provider=flat_provider, period=JANUARY, chunk_size=50)

    assert (resumed.pk, new, resumed.chunk_size) == (run.pk, False, 2)
    assert pending_chunks(resumed) == rest
    bill_pending(resumed)
    assert counters(resumed) == COMPLETED_CLEAN
    assert BillingRun.objects.count() == 1


def test_billing_run_resumed_after_a_crash_issues_exactly_what_a_clean_run_does(db):
    clean_provider, crashed_provider = ProviderFactory(), ProviderFactory()
    FlatTariffFactory(provider=clean_provider)
    FlatTariffFactory(provider=crashed_provider)
    clean = seven_connections(clean_provider)
    crashed = seven_connections(crashed_provider)
    clean_run, _ = billing_run_start(provider=clean_provider, period=JANUARY, chunk_size=2)
    bill_pending(clean_run)

    run, _ = billing_run_start(provider=crashed_provider, period=JANUARY, chunk_size=2)
    # The worker dies in the second chunk, after its invoices were inserted, before its lines were.
    dies_in_second_chunk = mock.patch.object(
        issue,
        "insert_values",
        wraps=issue.insert_values,
        side_effect=[mock.DEFAULT, RuntimeError("worker lost")],
    )
    with dies_in_second_chunk, pytest.raises(RuntimeError, match="worker lost"):
        bill_pending(run)
    after_crash = counters(run)
    resumed, new = billing_run_start(provider=crashed_provider, period=JANUARY, chunk_size=2)
    bill_pending(resumed)

    assert (after_crash["status"], after_crash["done"], after_crash["issued"]) == (
        BillingRunStatus.RUNNING,
        2,
        2,
    )
    assert Invoice.objects.filter(provider=crashed_provider).count() == 5
    assert (resumed.pk, new) == (run.pk, False)
    assert counters(resumed) == counters(clean_run) == COMPLETED_CLEAN
    assert billed(crashed_provider, crashed["all"]) == billed(clean_provider, clean["all"]) == CLEAN_NUMBERS
    assert DocumentCounter.objects.get(provider=crashed_provider, series="invoice", year=2024).last == 5
    assert (
        list(
            Invoice.objects.filter(provider=crashed_provider)
            .order_by("number")
            .values_list("lines__amount", flat=True)
        )
        == [D("9750.00")] * 5
    )
    assert_ledger_holds(*crashed["all"])


def test_billing_run_fails_a_connection_whose_registers_go_down_and_bills_the_rest(flat_provider):
    zone = ZoneInfo(settings.TIME_ZONE)
    fine = billable_connection(flat_provider, months=1)
    broken = ConnectionFactory(customer=CustomerFactory(provider=flat_provider))
    readings(
        broken,
        (datetime(2023, 12, 28, 9, tzinfo=zone), "500", "500"),
        (datetime(2024, 1, 28, 9, tzinfo=zone), "400", "600"),
    )
    also_fine = billable_connection(flat_provider, months=1)

    run, _ = billing_run_start(provider=flat_provider, period=JANUARY, chunk_size=2)
    bill_pending(run)

    assert counters(run) == {
        **COMPLETED_CLEAN,
        "total": 3,
        "done": 3,
        "issued": 2,
        "skipped": 0,
        "failed": 1,
        "billed_amount": D("19500.00"),
    }
    assert set(Invoice.objects.values_list("connection", flat=True)) == {fine.pk, also_fine.pk}
    [problem] = run.problems.all()
    assert (problem.connection, problem.kind) == (broken, ProblemKind.FAILED)
    assert problem.reason == (
        f"Connection {broken.number}: A register went down between the two readings; if the meter was "
        "exchanged, record the meter exchange (the old meter's final registers and the new meter's first)."
    )
    assert_ledger_holds(fine, broken, also_fine)


def test_billing_run_prints_the_arrears_of_the_month_before(flat_provider):
    connection = billable_connection(flat_provider, months=2)
    january, _ = billing_run_start(provider=flat_provider, period=JANUARY, chunk_size=2)
    bill_pending(january)

    february, _ = billing_run_start(provider=flat_provider, period=date(2024, 2, 1), chunk_size=2)
    bill_pending(february)

    bill = Invoice.objects.get(period=date(2024, 2, 1))
    assert (bill.current_charges, bill.arrears, bill.payable_before_due, bill.balance) == (
        D("9750.00"),
        D("9750.00"),
        D("19500.00"),
        D("9750.00"),
    )
    assert_ledger_holds(connection)


def test_billing_run_with_no_active_connection_is_complete_at_once(flat_provider):
    billable_connection(flat_provider, months=1, status=ConnectionStatus.DISCONNECTED)

    run, _ = billing_run_start(provider=flat_provider, period=JANUARY, chunk_size=2)

    assert (run.status, run.total, pending_chunks(run)) == (BillingRunStatus.COMPLETED, 0, [])


def test_billing_run_start_refuses_a_month_that_has_not_started(flat_provider):
    next_month = (timezone.localdate().replace(day=1) + timedelta(days=32)).replace(day=1)

    with pytest.raises(DomainError, match="has not ended") as refused:
        billing_run_start(provider=flat_provider, period=next_month)

    assert refused.value.field == "period"
    assert not BillingRun.objects.exists()


# --- the management command ----------------------------------------------------------------------


def run_command(*args: str) -> list[str]:
    out = StringIO()
    call_command("billing_run", *args, stdout=out)
    return out.getvalue().splitlines()


def test_billing_run_command_bills_a_providers_month_and_prints_the_counts(flat_provider, setup):
    code = flat_provider.code

    first = run_command("--provider", code, "--month", "2024-01", "--chunk-size", "2")
    again = run_command("--provider", code, "--month", "2024-01")

    first_run, second_run = BillingRun.objects.order_by("pk")
    skipped = (
        f"  skipped: Connection {setup['unread'].number} has no reading in January 2024 and no history to "
        "estimate one from (no actual period between two readings before it); it is billed once a reading comes."
    )
    assert first == [
        f"{code} 2024-01: started run {first_run.pk}",
        f"{code} 2024-01: 5 issued, 0 already billed, 1 skipped, 0 failed, 48750.00 PKR billed",
        skipped,
    ]
    assert again == [
        f"{code} 2024-01: started run {second_run.pk}",
        f"{code} 2024-01: 0 issued, 5 already billed, 1 skipped, 0 failed, 0.00 PKR billed",
        skipped,
    ]
    assert counters(first_run) == COMPLETED_CLEAN
    assert Invoice.objects.count() == 5
    assert_ledger_holds(*setup["all"])


def test_billing_run_command_resumes_an_unfinished_run(flat_provider, setup):
    run, _ = billing_run_start(provider=flat_provider, period=JANUARY, chunk_size=2)
    billing_run_chunk_bill(chunk_id=pending_chunks(run)[0])

    printed = run_command("--provider", flat_provider.code, "--month", "2024-01")

    assert printed[:2] == [
        f"{flat_provider.code} 2024-01: resuming run {run.pk}",
        f"{flat_provider.code} 2024-01: 5 issued, 0 already billed, 1 skipped, 0 failed, 48750.00 PKR billed",
    ]
    assert counters(run) == COMPLETED_CLEAN


@pytest.mark.parametrize("month", ["2024-13", "January", "2024/01", "2024-1-5"])
def test_billing_run_command_refuses_a_month_not_written_yyyy_mm(flat_provider, month):
    with pytest.raises(CommandError, match="--month takes YYYY-MM"):
        run_command("--provider", flat_provider.code, "--month", month)

    assert not BillingRun.objects.exists()


def test_billing_run_command_refuses_an_unknown_provider_or_a_month_to_come(flat_provider):
    next_month = (timezone.localdate().replace(day=1) + timedelta(days=32)).strftime("%Y-%m")

    with pytest.raises(CommandError, match="No provider with code NOPE"):
        run_command("--provider", "NOPE", "--month", "2024-01")
    with pytest.raises(CommandError, match="has not ended"):
        run_command("--provider", flat_provider.code, "--month", next_month)
    with pytest.raises(CommandError, match="at least 1"):
        run_command("--provider", flat_provider.code, "--month", "2024-01", "--chunk-size", "0")

    assert not BillingRun.objects.exists()


# --- the Celery task -----------------------------------------------------------------------------


def test_bill_month_just_ended_bills_every_active_provider_once_however_often_it_comes(
    flat_provider, setup, django_capture_on_commit_callbacks
):
    dormant = ProviderFactory(is_active=False)
    FlatTariffFactory(provider=dormant)
    dormant_connection = billable_connection(dormant, months=1)

    with mock.patch.object(timezone, "localdate", return_value=date(2024, 2, 15)):
        with django_capture_on_commit_callbacks(execute=True) as first_dispatch:
            tasks.bill_month_just_ended.delay()
        with django_capture_on_commit_callbacks(execute=True) as second_dispatch:
            tasks.bill_month_just_ended.delay()  # the daily catch-up: the month has its run

    (run,) = BillingRun.objects.filter(provider=flat_provider)
    # The run's chunks sent, then (once its one chunk committed) the e-mails of its bills; nothing more.
    assert (len(first_dispatch), len(second_dispatch)) == (2, 0)
    assert (run.period, run.issue_date) == (JANUARY, date(2024, 1, 31))
    assert counters(run) == COMPLETED_CLEAN
    assert billed(flat_provider, setup["all"]) == CLEAN_NUMBERS
    assert not BillingRun.objects.filter(provider=dormant).exists()
    assert not Invoice.objects.filter(connection=dormant_connection).exists()
    assert_ledger_holds(*setup["all"])


def test_a_run_prints_the_same_customer_details_as_a_bill_issued_by_hand(flat_provider):
    connection = billable_connection(flat_provider, meter_number="M-0042", division="Lahore")
    connection.customer.address = "House 5, Street 2, DHA"
    connection.customer.save()
    run, _ = billing_run_start(provider=flat_provider, period=date(2024, 1, 1))

    for chunk_id in pending_chunks(run):
        billing_run_chunk_bill(chunk_id=chunk_id)

    invoice = Invoice.objects.get(connection=connection)
    assert invoice.customer_snapshot == services.customer_snapshot(connection)
    assert invoice.customer_snapshot["address"] == "House 5, Street 2, DHA"
    assert invoice.provider_snapshot["code"] == flat_provider.code


def test_a_run_skips_a_connection_already_billed_for_a_later_month(flat_provider, creator):
    connection = billable_connection(flat_provider, months=2)
    later = invoice_issue(connection=connection, period=date(2024, 2, 1), created_by=creator)
    run, _ = billing_run_start(provider=flat_provider, period=date(2024, 1, 1))

    for chunk_id in pending_chunks(run):
        billing_run_chunk_bill(chunk_id=chunk_id)

    run.refresh_from_db()
    assert (run.issued, run.skipped) == (0, 1)
    assert run.problems.get().reason == f"Connection {connection.number} is already billed for February 2024."
    assert list(Invoice.objects.values_list("number", flat=True)) == [later.number]

"""Bank payment files on the real stack: a file of 50,000 rows posted by two real Celery workers (the
time and peak memory printed), and a worker killed with SIGKILL mid-file, the file's chunks sent again
(as the reconciler does) and every row posted exactly once.

A reference the API posts while a worker decides a file's rows is found on the rows' second try.

PAYMENT_FILE_ROWS changes the size of the large file (e.g. 2000 for a quick look)."""

import os
import threading
import time
import tracemalloc
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import transaction
from django.db.models import Sum

from accounts.roles import Role
from invoicing.models import Invoice, Payment, PaymentFile, PaymentFileStatus, PaymentMethod, RowOutcome
from invoicing.services import billing_run_chunk_bill, billing_run_start, payment_file_upload, payment_post
from invoicing.services.payment_files import received_at
from invoicing.tasks import dispatch_payment_file
from tests.factories import (
    ConnectionFactory,
    ConnectionTypeFactory,
    CustomerFactory,
    FlatTariffFactory,
    PaymentFileFormatFactory,
    ReadingFactory,
    UserFactory,
)
from tests.invoicing.bank_files import bank_csv
from tests.invoicing.ledger import assert_ledger_holds
from tests.realstack.conftest import row_locked, wait_until, waiting_for_a_lock
from tests.realstack.threads import start_together

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]

JANUARY = date(2024, 1, 1)
ROWS = int(os.environ.get("PAYMENT_FILE_ROWS") or 50_000)
ROWS_PER_BILL = 100  # 10.00 each: 1,000.00 of a 9,750.00 bill
AMOUNT = Decimal("10.00")


def bills_of(provider, count: int) -> list[Invoice]:
    """`count` connections billed for January 2024 (9,750.00 each) by a billing run, in this process.
    Their customers have no e-mail address: the figures are the posting's, not the mail's."""
    FlatTariffFactory(provider=provider, rate=Decimal("32.50"))
    kind = ConnectionTypeFactory(provider=provider)
    for _ in range(count):
        connection = ConnectionFactory(
            customer=CustomerFactory(provider=provider, user=None, email=""),
            provider=provider,
            connection_type=kind,
        )
        for month, units in ((12, 0), (1, 300)):
            ReadingFactory(
                connection=connection,
                taken_at=f"{2023 if month == 12 else 2024}-{month:02d}-28T09:00:00+05:00",
                import_peak=Decimal(units // 3),
                import_off_peak=Decimal(units - units // 3),
            )
    run, _ = billing_run_start(provider=provider, period=JANUARY, chunk_size=1000)
    for chunk_id in run.chunks.values_list("pk", flat=True):
        billing_run_chunk_bill(chunk_id=chunk_id)
    return list(Invoice.objects.filter(provider=provider).select_related("connection").order_by("pk"))


def rows_for(bills: list[Invoice], count: int, prefix: str) -> list[tuple]:
    """`count` rows of 10.00 on the bills in turn; every tenth names the connection instead of the bill."""
    rows = []
    for n in range(count):
        bill = bills[n % len(bills)]
        by_connection = n % 10 == 9
        rows.append(
            (
                "" if by_connection else bill.number,
                bill.connection.number if by_connection else "",
                f"{AMOUNT}",
                "2024-02-05",
                "ibft" if n % 2 else "",
                f"{prefix}-{n:06d}",
            )
        )
    return rows


def bank_of(provider) -> object:
    # The methods a migration adds, again: a transactional test's flush removed them for the next one.
    PaymentMethod.objects.get_or_create(code="ibft", defaults={"name": "IBFT"})
    cash, _ = PaymentMethod.objects.get_or_create(
        code="bank-counter", defaults={"name": "Paid at Bank Counter"}
    )
    return PaymentFileFormatFactory(provider=provider, default_method=cash)


def worker_peak_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024


def worker_cpu_seconds(pid: int) -> float:
    """The CPU time a worker has used (user and system), from /proc/<pid>/stat: on a machine other work
    shares, the figure the load does not move."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def file_status(payment_file: PaymentFile) -> tuple[str, int]:
    return PaymentFile.objects.values_list("status", "done").get(pk=payment_file.pk)


@pytest.mark.timeout(3600)  # a few minutes on a busy two-core machine
def test_real_workers_post_a_file_of_50000_rows(workers, provider, capsys):
    officer = UserFactory(provider=provider, roles=[Role.SUPER_CREATOR])
    bills = bills_of(provider, max(1, ROWS // ROWS_PER_BILL))
    bank = bank_of(provider)
    rows = rows_for(bills, ROWS - 200, "BIG")
    # 100 rows again (duplicates) and 100 on a bill of no one's (refused): at scale as in small.
    rows += rows[:100] + [("NO-SUCH-BILL", "", "10.00", "2024-02-05", "", f"NONE-{n}") for n in range(100)]
    content = bank_csv(*rows)
    pair = [workers.start(), workers.start()]  # two processes share the chunks, as on two cores

    cpu_before = sum(worker_cpu_seconds(worker.pid) for worker in pair)
    tracemalloc.start()
    began = time.perf_counter()
    with transaction.atomic():
        payment_file = payment_file_upload(
            file_format=bank, name="big.csv", content=content, uploaded_by=officer, role=Role.SUPER_CREATOR
        )
        chunks = dispatch_payment_file(payment_file)
    stored = time.perf_counter() - began
    upload_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    wait_until(
        lambda: file_status(payment_file)[0] == PaymentFileStatus.COMPLETED,
        seconds=3600,
        message="the worker did not finish the file",
    )
    posting = time.perf_counter() - began - stored
    cpu = sum(worker_cpu_seconds(worker.pid) for worker in pair) - cpu_before

    payment_file.refresh_from_db()
    with capsys.disabled():
        print(
            f"\npayment file of {ROWS:,} rows ({len(content) / 2**20:.1f} MB, {chunks} chunks): stored in "
            f"{stored:.1f} s (upload peak {upload_peak:.0f} MiB of Python objects), posted by two workers in "
            f"{posting:.1f} s = {ROWS / posting:.0f} rows/s, {cpu:.1f} CPU-seconds of the workers "
            f"({cpu / ROWS * 1000:.2f} ms a row); the workers' peak RSS "
            f"{', '.join(f'{worker_peak_mib(worker.pid):.0f}' for worker in pair)} MiB; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
    posted = ROWS - 200
    assert (payment_file.posted, payment_file.duplicates, payment_file.refused) == (posted, 100, 100)
    assert payment_file.posted_amount == AMOUNT * posted
    assert Payment.objects.filter(provider=provider).count() == posted
    assert Payment.objects.aggregate(total=Sum("amount"))["total"] == AMOUNT * posted
    receipts = sorted(Payment.objects.values_list("receipt_number", flat=True))
    assert receipts == [f"{provider.code}-PAY-2024-{n:06d}" for n in range(1, posted + 1)]  # gapless
    assert not payment_file.rows.filter(outcome=RowOutcome.PENDING).exists()
    assert_ledger_holds(*[bill.connection for bill in bills[:20]])


def test_a_worker_killed_mid_file_is_taken_over_and_no_row_is_posted_twice(workers, provider):
    officer = UserFactory(provider=provider, roles=[Role.SUPER_CREATOR])
    bills = bills_of(provider, 20)
    bank = bank_of(provider)
    first = workers.start()
    # The file's second half pays bills of a connection this test holds locked: the worker commits the
    # first half's rows, transaction by transaction, then waits on the lock mid-chunk and is killed there.
    rows = rows_for(bills[:10], 1000, "KILL") + rows_for(bills[10:], 1000, "HELD")
    with row_locked(bills[10].connection):
        with transaction.atomic():
            # One chunk: its message, taken by the worker killed, is not delivered again before the
            # broker's visibility timeout; the chunk is sent again, as the reconciler would.
            payment_file = payment_file_upload(
                file_format=bank,
                name="kill.csv",
                content=bank_csv(*rows),
                uploaded_by=officer,
                role=Role.SUPER_CREATOR,
                chunk_size=2000,
            )
            dispatch_payment_file(payment_file)

        wait_until(waiting_for_a_lock, seconds=300, message="the worker never reached the locked connection")
        first.kill()  # SIGKILL mid-chunk: the rows it was posting roll back; its message is never acked
        first.wait(timeout=30)
    assert payment_file.rows.filter(outcome=RowOutcome.POSTED).count() == 1000
    assert payment_file.rows.filter(outcome=RowOutcome.PENDING).count() == 1000
    workers.start()
    dispatch_payment_file(payment_file)  # what the reconciler sends once the file has been still

    wait_until(
        lambda: file_status(payment_file)[0] == PaymentFileStatus.COMPLETED,
        seconds=600,
        message="the second worker did not finish the file",
    )
    payment_file.refresh_from_db()
    assert (payment_file.posted, payment_file.duplicates, payment_file.refused) == (2000, 0, 0)
    assert Payment.objects.filter(provider=provider).count() == 2000
    assert set(Payment.objects.values_list("reference", flat=True)) == {row[5] for row in rows}
    assert_ledger_holds(*[bill.connection for bill in bills])


def test_a_reference_the_api_posts_while_the_rows_are_decided_is_a_duplicate_and_posted_once(
    workers, provider
):
    officer = UserFactory(provider=provider, roles=[Role.SUPER_CREATOR])
    bills = bills_of(provider, 2)
    bank = bank_of(provider)
    workers.start()
    written, commit = threading.Event(), threading.Event()

    def by_hand() -> Payment:
        with transaction.atomic():
            payment, _ = payment_post(
                invoice=bills[1],
                amount=AMOUNT,
                method=PaymentMethod.objects.get(code="ibft"),
                received_by=officer,
                reference="RACE-2",
                received_at=received_at(date(2024, 2, 5)),  # in the file's year: one receipt series
            )
            written.set()
            commit.wait(timeout=120)  # uncommitted till then: it holds the receipt counter
        return payment

    finished = start_together([by_hand])
    assert written.wait(timeout=60)
    rows = [(bills[0].number, "", f"{AMOUNT}", "2024-02-05", "", f"RACE-{n}") for n in (1, 2, 3)]
    with transaction.atomic():
        payment_file = payment_file_upload(
            file_format=bank,
            name="race.csv",
            content=bank_csv(*rows),
            uploaded_by=officer,
            role=Role.SUPER_CREATOR,
        )
        dispatch_payment_file(payment_file)
    # The worker read the references posted (RACE-2 not yet) and waits for the counter to write its rows.
    wait_until(waiting_for_a_lock, seconds=120, message="the worker never waited for the receipt counter")
    commit.set()
    [by_hand_payment] = finished()

    wait_until(
        lambda: file_status(payment_file)[0] == PaymentFileStatus.COMPLETED,
        seconds=120,
        message="the worker did not finish the file",
    )
    assert list(payment_file.rows.order_by("line").values_list("reference", "outcome", "payment_id")) == [
        ("RACE-1", RowOutcome.POSTED, Payment.objects.get(reference="RACE-1").pk),
        ("RACE-2", RowOutcome.DUPLICATE, by_hand_payment.pk),
        ("RACE-3", RowOutcome.POSTED, Payment.objects.get(reference="RACE-3").pk),
    ]
    assert Payment.objects.filter(reference="RACE-2").count() == 1
    receipts = sorted(Payment.objects.values_list("receipt_number", flat=True))
    assert receipts == [f"{provider.code}-PAY-2024-{n:06d}" for n in (1, 2, 3)]
    assert_ledger_holds(*[bill.connection for bill in bills])

"""The monthly billing run on the real stack: chunks sent through Redis to a real Celery worker, chunks
delivered twice, and the management command killed with SIGKILL mid-run and started again."""

import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from urllib.parse import urlparse, urlunparse

import pytest
from django.conf import settings
from django.db import connection, transaction

from billing.models import Customer, ServiceConnection
from invoicing.models import (
    BillingRun,
    BillingRunChunk,
    BillingRunProblem,
    BillingRunStatus,
    Invoice,
    InvoiceSource,
    ProblemKind,
)
from invoicing.services import billing_run_start
from invoicing.tasks import bill_chunk, dispatch
from tests.factories import ConnectionFactory, CustomerFactory, FlatTariffFactory, billable_connection
from tests.realstack.conftest import wait_until

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]

JANUARY = date(2024, 1, 1)


@pytest.fixture
def flat_provider(provider):
    """A flat 32.50 per kWh, nothing else: 300 kWh in January 2024 is a bill of 9750.00."""
    FlatTariffFactory(provider=provider, rate=Decimal("32.50"))
    return provider


@pytest.fixture
def twelve_billable_and_one_unread(flat_provider):
    """Twelve connections with January's readings, then one without any (the highest id)."""
    billable = [billable_connection(flat_provider) for _ in range(12)]
    unread = ConnectionFactory(customer=CustomerFactory(provider=flat_provider), provider=flat_provider)
    return billable, unread


def run_status(run: BillingRun) -> str:
    return BillingRun.objects.values_list("status", flat=True).get(pk=run.pk)


def numbers(code: str, count: int) -> list[str]:
    return [f"{code}-2024-{n:06d}" for n in range(1, count + 1)]


def test_a_real_worker_bills_a_run_in_chunks_and_skips_connections_without_readings(
    celery_worker, flat_provider, twelve_billable_and_one_unread
):
    billable, unread = twelve_billable_and_one_unread

    with transaction.atomic():
        run, new = billing_run_start(provider=flat_provider, period=JANUARY, chunk_size=3)
        sent = dispatch(run)

    assert (new, sent) == (True, 5)  # 13 connections in chunks of 3
    wait_until(lambda: run_status(run) == BillingRunStatus.COMPLETED, message="the worker did not finish")
    run.refresh_from_db()
    assert (run.total, run.done, run.issued, run.already_billed, run.skipped, run.failed) == (
        13,
        13,
        12,
        0,
        1,
        0,
    )
    assert run.billed_amount == Decimal("117000.00")
    assert run.finished_at is not None
    assert list(run.chunks.values_list("size", "done")) == [
        (3, True),
        (3, True),
        (3, True),
        (3, True),
        (1, True),
    ]
    invoices = Invoice.objects.filter(billing_run=run)
    assert sorted(invoices.values_list("connection_id", flat=True)) == [c.pk for c in billable]
    assert sorted(invoices.values_list("number", flat=True)) == numbers(flat_provider.code, 12)
    assert set(invoices.values_list("source", "period", "issue_date", "current_charges")) == {
        (InvoiceSource.RUN, JANUARY, date(2024, 1, 31), Decimal("9750.00"))
    }
    assert list(run.problems.values_list("connection_id", "kind", "reason")) == [
        (
            unread.pk,
            ProblemKind.SKIPPED,
            f"Connection {unread.number} has no reading in January 2024 and no history to estimate one "
            "from (no actual period between two readings before it); it is billed once a reading comes.",
        )
    ]


def test_chunks_delivered_again_to_a_real_worker_issue_nothing_twice(
    celery_worker, flat_provider, twelve_billable_and_one_unread
):
    billable, _ = twelve_billable_and_one_unread

    with transaction.atomic():
        run, _ = billing_run_start(provider=flat_provider, period=JANUARY, chunk_size=3)
        assert (dispatch(run), dispatch(run)) == (5, 5)  # every chunk sent twice
    wait_until(lambda: run_status(run) == BillingRunStatus.COMPLETED, message="the worker did not finish")
    assert dispatch(run) == 0  # nothing left to send once all chunks are done
    for chunk_id in run.chunks.values_list("pk", flat=True):  # and all of them sent a third time anyway
        bill_chunk.delay(chunk_id)
    # A later run of the month, queued behind them, bills only what is still missing: nothing.
    with transaction.atomic():
        later, new = billing_run_start(provider=flat_provider, period=JANUARY, chunk_size=3)
        dispatch(later)
    wait_until(
        lambda: run_status(later) == BillingRunStatus.COMPLETED, message="the later run did not finish"
    )

    run.refresh_from_db()
    later.refresh_from_db()
    assert new is True
    assert (run.total, run.done, run.issued, run.skipped) == (13, 13, 12, 1)
    assert (later.total, later.done, later.issued, later.already_billed, later.skipped) == (13, 13, 0, 12, 1)
    assert later.billed_amount == Decimal("0.00")
    assert sorted(Invoice.objects.values_list("connection_id", flat=True)) == [c.pk for c in billable]
    assert sorted(Invoice.objects.values_list("number", flat=True)) == numbers(flat_provider.code, 12)
    assert BillingRunProblem.objects.filter(run=run).count() == 1


def billing_run_command(provider_code: str) -> list[str]:
    return [
        sys.executable,
        "manage.py",
        "billing_run",
        "--provider",
        provider_code,
        "--month",
        "2024-01",
        "--chunk-size",
        "1",
    ]


@pytest.fixture
def command_env(transactional_db):
    """The environment of a `manage.py` process working on this test's database."""
    test_db_url = urlunparse(
        urlparse(os.environ["DATABASE_URL"])._replace(path=f"/{connection.settings_dict['NAME']}")
    )
    return {**os.environ, "DATABASE_URL": test_db_url, "DJANGO_SETTINGS_MODULE": "config.settings.test"}


def test_a_billing_run_killed_mid_way_resumes_and_bills_every_connection_exactly_once(
    flat_provider, command_env
):
    connections = [billable_connection(flat_provider) for _ in range(200)]
    # The command runs on the test settings, whose tasks run in its own process: without addresses its
    # customers' bill e-mails (each a PDF) are not written on its path, which this test times.
    Customer.objects.filter(provider=flat_provider).update(email="")
    done_chunks = BillingRunChunk.objects.filter(run__provider=flat_provider, done=True)

    first = subprocess.Popen(
        billing_run_command(flat_provider.code),
        cwd=settings.BASE_DIR,
        env=command_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: done_chunks.exists(), seconds=120, message="the run billed nothing")
    finally:
        first.kill()  # SIGKILL: no cleanup, a chunk's transaction may be left half-way
        first.wait(timeout=10)
    killed_after = done_chunks.count()
    run = BillingRun.objects.get(provider=flat_provider)
    assert first.returncode == -9
    assert 0 < killed_after < 200
    assert run.status == BillingRunStatus.RUNNING
    assert Invoice.objects.filter(provider=flat_provider).count() == run.issued == killed_after

    second = subprocess.run(
        billing_run_command(flat_provider.code),
        cwd=settings.BASE_DIR,
        env=command_env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert second.returncode == 0, second.stderr
    assert f"resuming run {run.pk}" in second.stdout
    run.refresh_from_db()
    assert BillingRun.objects.filter(provider=flat_provider).count() == 1
    assert (run.status, run.total, run.done, run.issued, run.skipped, run.failed) == (
        BillingRunStatus.COMPLETED,
        200,
        200,
        200,
        0,
        0,
    )
    assert run.billed_amount == Decimal("1950000.00")
    invoices = Invoice.objects.filter(provider=flat_provider)
    assert sorted(invoices.values_list("connection_id", "period")) == [(c.pk, JANUARY) for c in connections]
    assert sorted(invoices.values_list("number", flat=True)) == numbers(flat_provider.code, 200)
    assert set(invoices.values_list("billing_run_id", flat=True)) == {run.pk}
    assert (
        not ServiceConnection.objects.filter(provider=flat_provider)
        .exclude(invoices__period=JANUARY)
        .exists()
    )


def billed(run: BillingRun) -> list[tuple]:
    """What a run charged, connection by connection (in the order they were made).

    Numbers are left out: chunks take theirs as they commit, so two nodes number them in either order.
    """
    invoices = Invoice.objects.filter(billing_run=run).order_by("connection_id")
    return [
        (
            invoice.kwh_consumed,
            invoice.current_charges,
            invoice.payable_after_due,
        )
        for invoice in invoices
    ]


def test_two_worker_nodes_share_a_run_and_bill_it_as_one_worker_does(workers, flat_provider, other_provider):
    FlatTariffFactory(provider=other_provider, rate=Decimal("32.50"))
    usages = [(50 + 7 * n, 100 + 13 * n) for n in range(24)]
    for peak, off_peak in usages:
        billable_connection(flat_provider, peak=peak, off_peak=off_peak)
    for peak, off_peak in usages:
        billable_connection(other_provider, peak=peak, off_peak=off_peak)

    alone = workers.start()
    with transaction.atomic():
        one, _ = billing_run_start(provider=other_provider, period=JANUARY, chunk_size=2)
        dispatch(one)
    wait_until(
        lambda: run_status(one) == BillingRunStatus.COMPLETED,
        seconds=120,
        message="one worker did not finish",
    )
    alone.terminate()
    alone.wait(timeout=30)
    workers.start()
    workers.start()  # two nodes (`-n`), each its own process
    with transaction.atomic():
        shared, _ = billing_run_start(provider=flat_provider, period=JANUARY, chunk_size=2)
        dispatch(shared)
    wait_until(
        lambda: run_status(shared) == BillingRunStatus.COMPLETED,
        seconds=120,
        message="two workers did not finish",
    )

    nodes = set(shared.chunks.values_list("billed_by", flat=True))
    assert len(nodes) == 2 and "" not in nodes  # both nodes billed chunks
    assert len(set(one.chunks.values_list("billed_by", flat=True))) == 1
    assert billed(shared) and billed(shared) == billed(one)
    gapless = [f"2024-{n:06d}" for n in range(1, 25)]
    for run in (one, shared):
        numbers = Invoice.objects.filter(billing_run=run).values_list("number", flat=True)
        assert sorted(number.split("-", 1)[1] for number in numbers) == gapless
